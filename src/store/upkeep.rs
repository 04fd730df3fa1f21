//! What keeps the store small while the server runs: finished invoices are sealed into their
//! long-term form a few hundred at a time, through the writer like any other write, so the
//! request path never waits long behind it.

use std::sync::Arc;
use std::time::Duration;

use super::Db;
use crate::clock::Clock;

/// How often the sealer looks for invoices to seal.
const SEAL_EVERY: Duration = Duration::from_secs(10);
/// Invoices sealed per write: a few milliseconds of the writer's time.
const SEAL_BATCH: usize = 256;

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
