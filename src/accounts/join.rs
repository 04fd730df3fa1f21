//! Joining: what an invite (or open sign-up) lets a person claim, and making the address and
//! its account with a first way in, a passkey or a wallet's linking key, through the
//! operator's services. A hand-over (`invite --for`) adds the way in to the existing account.

use super::account::{Account, LinkedWallet, StoredPasskey};
use super::invites::invite_key;
use super::{refused, AccountError, Accounts};
use crate::config::PublicUrl;
use crate::domain::{UserSettings, Username};
use crate::limits::ClientKey;
use crate::operator::Operator;

/// An account's first way to sign in.
pub(super) enum FirstWay {
    Passkey(Box<webauthn_rs::prelude::Passkey>),
    /// A wallet's linking key (hex).
    Wallet(String),
}

impl Accounts {
    /// What joining with `invite_token` (or by open sign-up) as `typed` on `url` claims: the
    /// invite's key, the name, the domain; or why not.
    pub async fn joining(
        &self,
        invite_token: Option<&str>,
        typed: &str,
        url: &PublicUrl,
        client: Option<ClientKey>,
    ) -> Result<(Option<String>, Username, String), AccountError> {
        let (invite, name, domain, handing_over) = match invite_token {
            Some(token) => {
                let invite = self.invite(token).await?;
                let name = invite.name_for(typed, self)?;
                let domain = match &invite.domain {
                    Some(domain) => domain.clone(),
                    None => url.domain().to_string(),
                };
                let handing_over = invite.for_user.is_some();
                (Some(invite_key(token)), name, domain, handing_over)
            }
            None => {
                if self.signup != crate::config::Signup::Open {
                    return Err(refused("Joining needs an invite on this server."));
                }
                // Open sign-up: a few names an hour per client.
                if !self.limits.allow_signup(client) {
                    return Err(AccountError::RateLimited);
                }
                (
                    None,
                    self.names.claimable(typed)?,
                    url.domain().to_string(),
                    false,
                )
            }
        };
        if domain != url.domain().as_str() {
            return Err(refused(format!("Open this invite on {domain}.")));
        }
        self.name_is_claimable(&name, handing_over).await?;
        Ok((invite, name, domain))
    }

    /// A new name must be free of users and of quarantine, said before any ceremony starts;
    /// an address being handed over must still exist.
    async fn name_is_claimable(
        &self,
        name: &Username,
        handing_over: bool,
    ) -> Result<(), AccountError> {
        let found = name.clone();
        let exists = self.db.point(move |s| s.user(&found)).await?.is_some();
        if handing_over {
            return match exists {
                true => Ok(()),
                false => Err(refused(format!(
                    "'{name}' no longer exists here: ask for a new invite."
                ))),
            };
        }
        if exists {
            return Err(refused(format!("'{name}' is taken.")));
        }
        let held = self
            .read::<u64>(crate::store::RecordKind::Quarantine, name.as_str())
            .await?
            .is_some_and(|until| until.value > self.now());
        if held {
            return Err(refused(format!("'{name}' is not available yet.")));
        }
        Ok(())
    }

    /// Joins with a wallet's linking key as the first way in: the wallet's callback, once its
    /// signature is checked.
    pub(super) async fn join_with_wallet(
        &self,
        operator: &Operator,
        invite: Option<&str>,
        name: &Username,
        domain: &str,
        key: &str,
    ) -> Result<(), AccountError> {
        if self.account_by_linking_key(key).await?.is_some() {
            return Err(refused(
                "This wallet already signs in to an account here: sign in with it instead.",
            ));
        }
        let used = match invite {
            Some(invite) => Some(self.use_invite(invite).await?),
            None => None,
        };
        let handle = self.handle().simple().to_string();
        let joined = self
            .join_with(
                operator,
                used.as_ref(),
                name,
                domain,
                handle,
                FirstWay::Wallet(key.to_owned()),
            )
            .await;
        if joined.is_err() {
            if let Some(invite) = invite {
                self.give_back_invite(invite).await?;
            }
        }
        joined
    }

    pub(super) async fn join_with(
        &self,
        operator: &Operator,
        invite: Option<&super::Invite>,
        name: &Username,
        domain: &str,
        handle: String,
        first: FirstWay,
    ) -> Result<(), AccountError> {
        let now = self.now();
        let handing_over = invite.is_some_and(|i| i.for_user.is_some());
        if handing_over && self.account(name).await?.is_some() {
            // Recovery or hand-over: the new way in joins the address's account, and every
            // old session ends.
            match first {
                FirstWay::Passkey(passkey) => {
                    let key = StoredPasskey::labelled(*passkey, "Passkey".into(), now);
                    self.change_account(name, |account| {
                        account.passkeys.push(key.clone());
                        Ok(())
                    })
                    .await?;
                }
                FirstWay::Wallet(key) => self.link_wallet(name, &key).await?,
            }
            self.end_sessions(name, None).await?;
            return Ok(());
        }
        if !handing_over {
            let settings = UserSettings {
                domain: (Some(domain) != Some(self.domains.primary().domain().as_str()))
                    .then(|| domain.to_owned()),
                ..UserSettings::default()
            };
            operator.add_user(name.clone(), settings).await?;
        }
        let (passkeys, wallets) = match first {
            FirstWay::Passkey(passkey) => (
                vec![StoredPasskey::labelled(*passkey, "Passkey 1".into(), now)],
                Vec::new(),
            ),
            FirstWay::Wallet(key) => (
                Vec::new(),
                vec![LinkedWallet {
                    key,
                    label: "Wallet 1".into(),
                    added_at: now,
                    last_used_at: Some(now),
                }],
            ),
        };
        self.create_account(Account {
            name: name.clone(),
            handle,
            created_at: now,
            passkeys,
            wallets,
        })
        .await
    }
}
