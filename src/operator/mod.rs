//! What operators do: manage users, look at and settle invoices, look at and retry webhook
//! events, manage API keys and the Nostr key, back the store up. One service, used by the
//! admin API while a server runs and by the CLI on its own when none does.

mod backend_check;
mod bip353;
mod invoices;
mod keys;
mod notify;
mod users;
mod views;
mod webhooks;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::backends::Backend;
use crate::backends::DevBackend;
use crate::clock::{Clock, Random};
use crate::config::Domains;
use crate::directory::Directory;
use crate::domain::{BackendName, Hash32, Username};
use crate::net::Reach;
use crate::nostr::NostrIdentity;
use crate::store::{upkeep, Db, Pruned, Retention, StoreError};
use crate::watch::Ledger;

pub use backend_check::{check_backend, CheckReport};
pub use bip353::{LnurlOnly, RecordsView};
pub use notify::{ChannelView, TelegramLinkCode, TelegramReply};
pub use views::{ApiKeyCreated, ApiKeyView, NostrView, UserView, WebhookQuery, WebhookView};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Operator {
    db: Db,
    /// The users the LNURL routes serve; every user change is shown to it.
    directory: Arc<Directory>,
    domains: Domains,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    dev: Arc<Backend<DevBackend>>,
    ledger: Arc<Ledger>,
    /// User changes are rare; serialising them keeps the directory in the store's order.
    user_writes: tokio::sync::Mutex<()>,
    /// The configured backends: users may name only these.
    backends: BTreeSet<BackendName>,
    nostr: NostrIdentity,
    /// Where users' own webhooks may point.
    webhook_reach: Reach,
    /// Where users' own wallets' relays may be.
    relay_reach: Reach,
    retention: Retention,
    currencies: Vec<&'static crate::prices::Currency>,
    /// To say whether a user priced in a currency can be paid now.
    prices: Arc<crate::prices::PriceBook>,
    user_wallets: Arc<crate::backends::UserWallets>,
    notifier: Arc<crate::notify::Notifier>,
    offers: Arc<crate::offers::Keeper>,
    syncer: Option<Arc<crate::bip353::sync::Syncer>>,
    nameservers: Vec<String>,
}

/// What an `Operator` is made of.
pub struct OperatorParts {
    pub db: Db,
    pub directory: Arc<Directory>,
    pub domains: Domains,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub dev: Arc<Backend<DevBackend>>,
    pub ledger: Arc<Ledger>,
    pub backends: BTreeSet<BackendName>,
    pub nostr: NostrIdentity,
    pub webhook_reach: Reach,
    pub relay_reach: Reach,
    pub retention: Retention,
    /// The currencies the server offers: a user's currency must be one of them.
    pub currencies: Vec<&'static crate::prices::Currency>,
    pub prices: Arc<crate::prices::PriceBook>,
    /// Users' own wallets: a removed user's is let go.
    pub user_wallets: Arc<crate::backends::UserWallets>,
    /// Payment alerts: a new address is sent its confirmation, a test goes through it.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Every address's BOLT12 offer.
    pub offers: Arc<crate::offers::Keeper>,
    /// The DNS hosts BIP-353 records are kept at, if any.
    pub syncer: Option<Arc<crate::bip353::sync::Syncer>>,
    /// The BIP-353 zones' name servers (`RAYO_DNS_NS`).
    pub nameservers: Vec<String>,
}

impl Operator {
    pub fn new(parts: OperatorParts) -> Self {
        Self {
            db: parts.db,
            directory: parts.directory,
            domains: parts.domains,
            clock: parts.clock,
            random: parts.random,
            dev: parts.dev,
            ledger: parts.ledger,
            user_writes: tokio::sync::Mutex::new(()),
            backends: parts.backends,
            nostr: parts.nostr,
            webhook_reach: parts.webhook_reach,
            relay_reach: parts.relay_reach,
            retention: parts.retention,
            currencies: parts.currencies,
            prices: parts.prices,
            user_wallets: parts.user_wallets,
            notifier: parts.notifier,
            offers: parts.offers,
            syncer: parts.syncer,
            nameservers: parts.nameservers,
        }
    }

    /// Prunes now what retention lets go of (or, in a dry run, counts it), as the background
    /// pruner does every few minutes.
    pub async fn prune(&self, dry_run: bool) -> Result<Pruned, OperatorError> {
        let pruned = upkeep::prune(&self.db, self.retention, self.clock.unix(), dry_run).await?;
        if !dry_run {
            tracing::info!(
                unpaid_invoices = pruned.unpaid_invoices,
                paid_invoices = pruned.paid_invoices,
                events = pruned.events,
                dead_letters = pruned.dead_letters,
                "pruned on the operator's request"
            );
        }
        Ok(pruned)
    }
}

fn no_user(name: &Username) -> OperatorError {
    OperatorError::NotFound(format!("no user '{name}'"))
}

fn no_invoice(hash: &Hash32) -> OperatorError {
    OperatorError::NotFound(format!("no invoice {hash}"))
}
