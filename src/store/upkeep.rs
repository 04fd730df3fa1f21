//! What keeps the store small while the server runs: finished invoices are sealed into their
//! long-term form a few hundred at a time, and what retention lets go of is pruned, a few
//! hundred records at a time, each step through the writer like any other write, so the
//! request path never waits long behind them.

use std::sync::Arc;
use std::time::Duration;

use super::{Db, PruneCursor, PruneRequest, Pruned, Retention, StoreError};
use crate::clock::Clock;

/// How often the sealer looks for invoices to seal.
const SEAL_EVERY: Duration = Duration::from_secs(10);
/// Invoices sealed per write: a few milliseconds of the writer's time.
const SEAL_BATCH: usize = 256;
/// How often the pruner makes a pass: retention is counted in hours and days.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_FIRST: Duration = Duration::from_secs(60);
/// Records looked at per pruning step: a few milliseconds of the writer's time.
const PRUNE_BATCH: usize = 512;

pub async fn seal_forever(db: Db, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(SEAL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.unix();
        loop {
            match db.commit(move |s| s.seal(now, SEAL_BATCH)).await {
                Ok(moved) if moved >= SEAL_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "could not seal finished invoices");
                    break;
                }
            }
        }
    }
}

fn step<'a>(
    rules: &'a Retention,
    now: u64,
    from: &'a PruneCursor,
    dry_run: bool,
) -> PruneRequest<'a> {
    PruneRequest {
        rules,
        now,
        from,
        budget: PRUNE_BATCH,
        dry_run,
    }
}

/// One whole pruning pass at `now`, in steps. A dry run reads beside the writer and counts.
pub async fn prune(
    db: &Db,
    rules: Retention,
    now: u64,
    dry_run: bool,
) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    let mut from = PruneCursor::default();
    loop {
        let step = if dry_run {
            db.read(move |s| s.prune(&step(&rules, now, &from, true)))
                .await?
        } else {
            db.commit(move |s| s.prune(&step(&rules, now, &from, false)))
                .await?
        };
        total.add(step.pruned);
        match step.next {
            Some(next) => from = next,
            None => return Ok(total),
        }
        tokio::task::yield_now().await;
    }
}

pub async fn prune_forever(db: Db, clock: Arc<dyn Clock>, rules: Retention) {
    // The first pass a minute after start: start-up and the watchers' catching up come first.
    let first = tokio::time::Instant::now() + PRUNE_FIRST;
    let mut tick = tokio::time::interval_at(first, PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match prune(&db, rules, clock.unix(), false).await {
            Ok(pruned) if pruned.total() > 0 => tracing::info!(
                unpaid_invoices = pruned.unpaid_invoices,
                paid_invoices = pruned.paid_invoices,
                events = pruned.events,
                dead_letters = pruned.dead_letters,
                "pruned what retention lets go of"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not prune the store"),
        }
    }
}
