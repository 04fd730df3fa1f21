//! Running as one of several instances on a shared store (PostgreSQL), or alone (sled).
//!
//! Alone, every job runs here and nothing needs telling. Shared:
//! - jobs that one instance does at a time (watching a backend, sweeping expired invoices,
//!   pruning) run only while this instance holds their lease (`lead`);
//! - what the others change reaches this instance (`changes`), and `Services` applies it to
//!   its memory: live followers hear payments recorded elsewhere, the directory forgets users
//!   changed elsewhere, the counts of unpaid invoices include the others', and queued events
//!   wake the deliverer.
//!
//! Any instance answers any request, and due events are claimed one instance at a time (see
//! `Store::claim_due`), so those need nothing here.

use std::future::Future;
use std::sync::Arc;

use crate::store::{Change, Coordination};

/// This instance among those sharing its store: alone (sled), or coordinating with the
/// others through the store (PostgreSQL).
#[derive(Clone, Default)]
pub struct Cluster(Option<Arc<dyn Coordination>>);

impl Cluster {
    pub fn alone() -> Self {
        Self(None)
    }

    pub fn shared(coordination: Arc<dyn Coordination>) -> Self {
        Self(Some(coordination))
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
