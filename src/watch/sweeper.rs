use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Ledger;
use crate::clock::Clock;
use crate::domain::{BackendName, InvoiceStatus};
use crate::store::Db;

/// How often the sweeper looks for invoices past their expiry.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Expirations recorded per write.
const BATCH: usize = 512;

/// Marks pending invoices expired once they are past their expiry plus their backend's grace:
/// a payment may settle in the last second and reach us a moment later (and a polled backend
/// only tells us at its next poll), so the watcher gets that long to say "paid" first. A
/// payment that still arrives later is recorded anyway (expired -> paid is allowed).
pub async fn run(
    db: Db,
    ledger: Arc<Ledger>,
    clock: Arc<dyn Clock>,
    grace: BTreeMap<BackendName, Duration>,
) {
    let shortest = grace.values().copied().min().unwrap_or_default().as_secs();
    let grace_of =
        |backend: &BackendName| grace.get(backend).copied().unwrap_or_default().as_secs();
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.unix();
        let until = now.saturating_sub(shortest);
        let due = match db.read(move |s| s.expiring(until, BATCH)).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "sweeper could not read pending invoices");
                continue;
            }
        };
        let expired: Vec<_> = due
            .iter()
            .filter(|r| r.expires_at.saturating_add(grace_of(&r.backend)) <= now)
            .map(|r| (r.payment_hash, InvoiceStatus::Expired))
            .collect();
        if expired.is_empty() {
            continue;
        }
        if let Err(e) = ledger.record(expired, None).await {
            tracing::error!(error = %e, "sweeper could not record expired invoices");
        }
    }
}
