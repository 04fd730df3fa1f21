//! A person's account: the address it owns, its passkeys and its linked Lightning wallets.
//! Keeping them in one record makes "never remove the last way in" one compare-and-swap.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::Passkey;

use super::{encode, refused, AccountError, Accounts};
use crate::domain::{Hash32, Username};
use crate::store::records::owner_value;
use crate::store::{RecordKind, Swap};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub name: Username,
    /// The passkeys' user handle: random, so it says nothing about the name.
    pub handle: String,
    pub created_at: u64,
    #[serde(default)]
    pub passkeys: Vec<StoredPasskey>,
    #[serde(default)]
    pub wallets: Vec<LinkedWallet>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// A short id for pages and forms: the start of the SHA-256 of the credential id.
    pub id: String,
    pub label: String,
    pub added_at: u64,
    #[serde(default)]
    pub last_used_at: Option<u64>,
    pub passkey: Passkey,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedWallet {
    /// The wallet's linking key for this domain (LUD-04/05), hex, compressed.
    pub key: String,
    pub label: String,
    pub added_at: u64,
    #[serde(default)]
    pub last_used_at: Option<u64>,
}

/// A short id for a credential, for pages and forms.
pub(super) fn passkey_id(credential_id: &[u8]) -> String {
    Hash32::sha256(credential_id).to_hex()[..16].to_owned()
}

impl StoredPasskey {
    /// A new passkey, labelled, as added at `now`.
    pub(super) fn labelled(passkey: Passkey, label: String, now: u64) -> Self {
        Self {
            id: passkey_id(passkey.cred_id().as_ref()),
            label,
            added_at: now,
            last_used_at: None,
            passkey,
        }
    }
}

impl LinkedWallet {
    /// What a page calls it: its label, else the start of its key.
    pub fn short_key(&self) -> &str {
        &self.key[..self.key.len().min(16)]
    }
}

/// Labels people give their passkeys and wallets: short, one line.
pub const MAX_LABEL: usize = 60;

pub(super) fn clean_label(raw: &str) -> Result<String, AccountError> {
    let label = raw.trim();
    if label.is_empty() {
        return Err(refused("Give it a name."));
    }
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(refused(format!(
            "A name is one line of at most {MAX_LABEL} characters."
        )));
    }
    Ok(label.to_owned())
}

impl Account {
    /// Ways to sign in this account has.
    fn ways_in(&self) -> usize {
        self.passkeys.len() + self.wallets.len()
    }
}

impl Accounts {
    pub async fn account(&self, name: &Username) -> Result<Option<Account>, AccountError> {
        Ok(self
            .read::<Account>(RecordKind::Account, name.as_str())
            .await?
            .map(|r| r.value))
    }

    /// The account whose passkeys carry `handle`.
    pub(super) async fn account_by_handle(
        &self,
        handle: &str,
    ) -> Result<Option<Account>, AccountError> {
        let Some(name) = self.read::<Username>(RecordKind::Handle, handle).await? else {
            return Ok(None);
        };
        self.account(&name.value).await
    }

    /// The account a linking key signs in to.
    pub(super) async fn account_by_linking_key(
        &self,
        key: &str,
    ) -> Result<Option<Account>, AccountError> {
        let Some(name) = self.read::<Username>(RecordKind::LinkingKey, key).await? else {
            return Ok(None);
        };
        self.account(&name.value).await
    }

    /// Creates the account of `name` with its first passkey, and the index that finds it by
    /// handle, in one durable write; refuses if the name already has an account.
    pub(super) async fn create_account(&self, account: Account) -> Result<(), AccountError> {
        let record = encode(&account)?;
        let name = owner_value(&account.name);
        let created = self
            .db
            .commit(move |s| {
                let key = account.name.as_str();
                // A wallet that signs in elsewhere cannot be another account's way in.
                for wallet in &account.wallets {
                    if s.record(RecordKind::LinkingKey, &wallet.key)?.is_some() {
                        return Ok(false);
                    }
                }
                if !s.swap_record(Swap::create(RecordKind::Account, key, &record))? {
                    return Ok(false);
                }
                s.swap_record(Swap::create(RecordKind::Handle, &account.handle, &name))?;
                for wallet in &account.wallets {
                    s.swap_record(Swap::create(RecordKind::LinkingKey, &wallet.key, &name))?;
                }
                Ok(true)
            })
            .await?;
        if created {
            Ok(())
        } else {
            Err(refused(
                "That address already has an account, or the wallet signs in to another.",
            ))
        }
    }

    /// Changes `name`'s account with `change`, which may refuse.
    pub(super) async fn change_account<R>(
        &self,
        name: &Username,
        mut change: impl FnMut(&mut Account) -> Result<R, AccountError>,
    ) -> Result<R, AccountError> {
        self.update::<Account, R>(RecordKind::Account, name.as_str(), |current| {
            let Some(current) = current else {
                return Err(AccountError::NotFound("no such account".into()));
            };
            let mut next = current.clone();
            let answer = change(&mut next)?;
            Ok((Some(next), answer))
        })
        .await
    }

    pub async fn rename_passkey(
        &self,
        name: &Username,
        id: &str,
        label: &str,
    ) -> Result<(), AccountError> {
        let label = clean_label(label)?;
        self.change_account(name, |account| {
            let passkey = account
                .passkeys
                .iter_mut()
                .find(|p| p.id == id)
                .ok_or_else(|| AccountError::NotFound("no such passkey".into()))?;
            passkey.label = label.clone();
            Ok(())
        })
        .await
    }

    /// Removes a passkey, unless it is the account's last way to sign in.
    pub async fn remove_passkey(&self, name: &Username, id: &str) -> Result<(), AccountError> {
        self.change_account(name, |account| {
            let index = account
                .passkeys
                .iter()
                .position(|p| p.id == id)
                .ok_or_else(|| AccountError::NotFound("no such passkey".into()))?;
            if account.ways_in() <= 1 {
                return Err(refused(
                    "This is your only way to sign in: add another passkey or link a wallet first.",
                ));
            }
            account.passkeys.remove(index);
            Ok(())
        })
        .await
    }

    pub async fn rename_wallet(
        &self,
        name: &Username,
        key: &str,
        label: &str,
    ) -> Result<(), AccountError> {
        let label = clean_label(label)?;
        self.change_account(name, |account| {
            let wallet = account
                .wallets
                .iter_mut()
                .find(|w| w.key == key)
                .ok_or_else(|| AccountError::NotFound("no such wallet".into()))?;
            wallet.label = label.clone();
            Ok(())
        })
        .await
    }

    /// Unlinks a wallet, unless it is the account's last way to sign in; its key then signs in
    /// nowhere.
    pub async fn remove_wallet(&self, name: &Username, key: &str) -> Result<(), AccountError> {
        self.change_account(name, |account| {
            let index = account
                .wallets
                .iter()
                .position(|w| w.key == key)
                .ok_or_else(|| AccountError::NotFound("no such wallet".into()))?;
            if account.ways_in() <= 1 {
                return Err(refused(
                    "This is your only way to sign in: add a passkey or link another wallet first.",
                ));
            }
            account.wallets.remove(index);
            Ok(())
        })
        .await?;
        let owner = owner_value(name);
        self.swap(RecordKind::LinkingKey, key, Some(owner), None)
            .await?;
        Ok(())
    }

    /// Links a wallet's key to `name`'s account: refused if the key signs in elsewhere.
    pub(super) async fn link_wallet(&self, name: &Username, key: &str) -> Result<(), AccountError> {
        let owner = owner_value(name);
        let claimed = self
            .swap(RecordKind::LinkingKey, key, None, Some(owner.clone()))
            .await?;
        if !claimed {
            let current = self.read::<Username>(RecordKind::LinkingKey, key).await?;
            if current.map(|r| r.value) != Some(name.clone()) {
                return Err(refused("That wallet already signs in to another account."));
            }
        }
        let now = self.now();
        let linked = self
            .change_account(name, |account| {
                if account.wallets.iter().any(|w| w.key == key) {
                    return Ok(());
                }
                if account.wallets.len() >= 10 {
                    return Err(refused("An account may link at most 10 wallets."));
                }
                account.wallets.push(LinkedWallet {
                    key: key.to_owned(),
                    label: format!("Wallet {}", account.wallets.len() + 1),
                    added_at: now,
                    last_used_at: None,
                });
                Ok(())
            })
            .await;
        if linked.is_err() && claimed {
            // Give the key back: it was claimed for an account that did not take it.
            self.swap(RecordKind::LinkingKey, key, Some(owner), None)
                .await?;
        }
        linked
    }
}
