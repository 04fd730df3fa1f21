//! The people behind the addresses: invites, accounts with passkeys and linked Lightning
//! wallets (LNURL-auth), and sessions. Services only, no HTTP: the pages call these, and every
//! change to a user goes through the operator's services, the same path the CLI and the admin
//! API take. Authorization is by owner, here: a person's session opens their account only.

mod account;
mod audit;
mod challenges;
mod invites;
mod join;
mod limits;
mod lnurl_auth;
mod names;
mod operators;
mod passkeys;
mod payments;
mod profile;
mod sessions;

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};

use crate::clock::{Clock, Random};
use crate::config::{Domains, Settings, Signup};
use crate::store::{Db, RecordKind, StoreError, Swap};

pub use crate::invoices::PaymentRow;
pub use account::{Account, LinkedWallet, StoredPasskey};
pub use audit::AuditEntry;
pub use invites::{Invite, InviteCreated, InviteRequest, InviteView};
pub use limits::SignInLimits;
pub use lnurl_auth::{LnurlAuth, LnurlAuthError, LoginAction, LoginWait};
pub use names::Names;
pub use operators::{
    OperatorAccount, OperatorInvite, OperatorInviteCreated, OperatorInviteUrl, OperatorView,
    MAX_OPERATOR_INVITE, OPERATOR_INVITE_LIFETIME,
};
pub use passkeys::{PasskeyCeremony, Relying};
pub use payments::{csv, csv_with_users, PaymentFilter, EXPORTED, LISTED};
pub use profile::{ProfileForm, WebhookForm, QUARANTINE};
pub use sessions::{Realm, Session, SessionStarted, SessionView};

/// How long a sign-in or registration may take from its start.
pub const CHALLENGE_LIFETIME: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Said to the person as is: what was wrong and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many attempts; wait a minute and try again")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::operator::OperatorError> for AccountError {
    fn from(e: crate::operator::OperatorError) -> Self {
        use crate::operator::OperatorError as E;
        match e {
            E::Store(e) => AccountError::Store(e),
            E::NotFound(m) => AccountError::NotFound(m),
            E::Conflict(m) | E::Invalid(m) => AccountError::Refused(m),
        }
    }
}

fn refused(message: impl Into<String>) -> AccountError {
    AccountError::Refused(message.into())
}

/// The accounts service.
pub struct Accounts {
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    domains: Domains,
    pub signup: Signup,
    pub names: Names,
    session_idle: u64,
    session_lifetime: u64,
    pub limits: SignInLimits,
    pub relying: Relying,
}

impl Accounts {
    pub fn new(
        settings: &Settings,
        domains: Domains,
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            relying: Relying::for_domains(&domains),
            domains,
            db,
            clock,
            random,
            signup: settings.signup,
            names: Names::new(&settings.reserved_names),
            session_idle: settings.session_idle.as_secs(),
            session_lifetime: settings.session_lifetime.as_secs(),
            limits: SignInLimits::default(),
        }
    }

    fn now(&self) -> u64 {
        self.clock.unix()
    }

    /// A fresh random token: 32 bytes, base64url.
    fn token(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.random.bytes32())
    }
}

pub use crate::clock::when;

/// What a record is stored by: the hex SHA-256 of a secret (tokens are never stored as such).
fn key_of(secret: &str) -> String {
    crate::domain::Hash32::sha256(secret.as_bytes()).to_hex()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("an account record: {e}")))
}

/// A record as read, with the bytes a compare-and-swap must find unchanged.
struct Read<T> {
    value: T,
    bytes: Vec<u8>,
}

impl Accounts {
    async fn read<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: RecordKind,
        key: &str,
    ) -> Result<Option<Read<T>>, StoreError> {
        let key = key.to_owned();
        let bytes = self.db.point(move |s| s.record(kind, &key)).await?;
        bytes
            .map(|bytes| {
                Ok(Read {
                    value: decode(&bytes)?,
                    bytes,
                })
            })
            .transpose()
    }

    /// One durable compare-and-swap.
    async fn swap(
        &self,
        kind: RecordKind,
        key: &str,
        old: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.db
            .commit(move |s| {
                s.swap_record(Swap {
                    kind,
                    key: &key,
                    old: old.as_deref(),
                    new: new.as_deref(),
                })
            })
            .await
    }

    /// Changes the record at `key` with `change` (given its current value, or `None`), retrying
    /// when another writer got there first. `change` answers the new value (`None`: remove) and
    /// something for the caller, or refuses.
    async fn update<T, R>(
        &self,
        kind: RecordKind,
        key: &str,
        mut change: impl FnMut(Option<&T>) -> Result<(Option<T>, R), AccountError>,
    ) -> Result<R, AccountError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        for _ in 0..8 {
            let current = self.read::<T>(kind, key).await?;
            let (next, answer) = change(current.as_ref().map(|r| &r.value))?;
            let new = next.as_ref().map(encode).transpose()?;
            if self.swap(kind, key, current.map(|r| r.bytes), new).await? {
                return Ok(answer);
            }
        }
        Err(AccountError::Store(StoreError::Conflict(format!(
            "{} {key} changed under every attempt",
            kind.name()
        ))))
    }
}
