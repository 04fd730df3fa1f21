//! Running as one of several instances on a shared store (PostgreSQL), or alone (sled).
//!
//! Alone, every job runs here and nothing needs telling. Shared:
//! - jobs that one instance does at a time (watching a backend, sweeping expired invoices,
//!   pruning) run only while this instance holds their lease (`lead`);
//! - what the others change reaches this instance's memory (`follow`): live followers hear
//!   payments recorded elsewhere, the directory forgets users changed elsewhere, the counts of
//!   unpaid invoices include the others', and queued events wake the deliverer.
//!
//! Any instance answers any request, and due events are claimed one instance at a time (see
//! `Store::claim_due`), so those need nothing here.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::services::Services;
use crate::store::postgres::{Change, PgCluster};

#[derive(Clone, Default)]
pub struct Cluster(Option<Arc<PgCluster>>);

impl Cluster {
    pub fn alone() -> Self {
        Self(None)
    }

    pub fn shared(cluster: Arc<PgCluster>) -> Self {
        Self(Some(cluster))
    }

    pub fn is_shared(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `work` whenever this instance leads `role`: alone, at once and for good; shared,
    /// while it holds the role's lease, stopping the work when the lease is lost and starting
    /// it again once the lease is back. Returns when `work` does.
    pub async fn lead<F, Fut>(&self, role: &str, mut work: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let Some(cluster) = &self.0 else {
            return work().await;
        };
        loop {
            let mut lease = cluster.lead(role).await;
            tracing::info!(role, "this instance leads");
            tokio::select! {
                _ = work() => return,
                _ = lease.lost() => {
                    tracing::warn!(role, "lost the lease: stopping until it is back");
                }
            }
        }
    }

    /// Starts following the other instances' changes (nothing alone). Call before reading
    /// what the changes keep up to date, so that none falls between.
    pub async fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        match &self.0 {
            Some(cluster) => Some(cluster.changes().await),
            None => None,
        }
    }
}

/// Applies the other instances' changes to this one's memory, for as long as it runs.
pub async fn follow(
    services: Arc<Services>,
    mut changes: tokio::sync::broadcast::Receiver<Change>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind the other instances' changes");
                Change::Resync
            }
            Err(RecvError::Closed) => return,
        };
        apply(&services, change).await;
    }
}

async fn apply(services: &Services, change: Change) {
    match change {
        Change::Added { user, payer, .. } => services.pending.opened_elsewhere(&user, payer),
        Change::Moved {
            payment_hash,
            user,
            payer,
            was_pending,
        } => {
            if was_pending {
                services.pending.closed(&user, payer);
            }
            let live = services.ledger.live();
            if live.followed() {
                match services.db.read(move |s| s.invoice(&payment_hash)).await {
                    Ok(Some(record)) => live.publish(record),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "could not read an invoice paid elsewhere")
                    }
                }
            }
        }
        Change::User(name) => {
            services.directory.remove(&name);
            let read = name.clone();
            match services.db.point(move |s| s.user(&read)).await {
                Ok(user) => services.issuer.user_wallets().refresh(&name, user.as_ref()),
                Err(e) => tracing::error!(error = %e, "could not read a user changed elsewhere"),
            }
        }
        Change::Queued => services.ledger.outbox_wake().notify_one(),
        Change::Meta(key) if crate::nostr::NostrIdentity::stored_under(&key) => {
            reload_nostr_key(services).await
        }
        Change::Meta(_) => {}
        Change::Resync => {
            services.directory.forget_all();
            match services.db.read(pending_invoices).await {
                Ok(pending) => services.pending.recount(pending),
                Err(e) => tracing::error!(error = %e, "could not count the unpaid invoices again"),
            }
            services.ledger.outbox_wake().notify_one();
            reload_nostr_key(services).await;
        }
    }
}

/// Another instance rotated the Nostr key: sign and advertise the new one here too.
async fn reload_nostr_key(services: &Services) {
    match services.nostr.reload(&services.db).await {
        Ok(Some(public_key)) => {
            tracing::info!(nostr_pubkey = %public_key, "Nostr key rotated by another instance");
            services.directory.set_nostr_key(public_key);
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not read the rotated Nostr key"),
    }
}

/// Every unpaid invoice's user and payer: what `PendingCounts` counts.
pub fn pending_invoices(
    store: &dyn crate::store::Store,
) -> Result<
    Vec<(crate::domain::Username, Option<crate::domain::ClientTag>)>,
    crate::store::StoreError,
> {
    Ok(store
        .expiring(u64::MAX, usize::MAX)?
        .into_iter()
        .map(|r| (r.user, r.payer))
        .collect())
}
