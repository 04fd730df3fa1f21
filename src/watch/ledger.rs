use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Live;
use crate::clock::Clock;
use crate::domain::{Hash32, InvoiceRecord, InvoiceStatus};
use crate::limits::PendingCounts;
use crate::metrics::Metrics;
use crate::outbox::{events_for, prepare_zap_receipt, ZapContext};
use crate::store::{next_status, Db, StoreError};

/// Where a watcher is in its backend's numbering of payments (LND's `settle_index`, CLN's
/// `pay_index`), saved with the transitions it led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<'a> {
    pub backend: &'a str,
    pub position: u64,
}

fn cursor_key(backend: &str) -> String {
    format!("watch.cursor.{backend}")
}

/// Records what became of invoices. Each call is one durable write holding the new statuses,
/// the events they call for (webhooks) and the watcher's cursor, so a crash either keeps all of
/// it or none, and a replay after the crash finds the same events already queued.
pub struct Ledger {
    db: Db,
    live: Live,
    outbox_wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    /// How long an event is retried before it is given up (dead-lettered).
    delivery_window: Duration,
    /// Signs zap receipts; `None` where no Nostr identity is loaded (the offline CLI).
    zaps: Option<ZapContext>,
    metrics: Arc<Metrics>,
    pending: Option<Arc<PendingCounts>>,
}

impl Ledger {
    pub fn new(db: Db, clock: Arc<dyn Clock>, delivery_window: Duration) -> Self {
        Self {
            db,
            live: Live::new(),
            outbox_wake: Arc::new(Notify::new()),
            clock,
            delivery_window,
            zaps: None,
            metrics: Arc::new(Metrics::new()),
            pending: None,
        }
    }

    /// Lowers `pending` as invoices stop being pending.
    pub fn with_pending_counts(mut self, pending: Arc<PendingCounts>) -> Self {
        self.pending = Some(pending);
        self
    }

    /// Counts transitions and queued events in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Signs and queues zap receipts for paid zaps.
    pub fn with_zaps(mut self, zaps: ZapContext) -> Self {
        self.zaps = Some(zaps);
        self
    }

    pub fn delivery_window(&self) -> Duration {
        self.delivery_window
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Signalled whenever events were queued.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    pub fn cursor(&self, backend: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .db
            .store()
            .meta(&cursor_key(backend))?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// Applies `changes` (invoices rayo does not know, and changes that would go backwards or
    /// repeat, are skipped) and returns the invoices that changed.
    pub async fn record(
        &self,
        changes: Vec<(Hash32, InvoiceStatus)>,
        cursor: Option<Cursor<'_>>,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let now = self.clock.unix();
        let max_age = self.delivery_window.as_secs();
        let cursor = cursor.map(|c| (cursor_key(c.backend), c.position));
        // Zap receipts are signed here, before the write, not on the store's writer thread.
        let mut receipts = std::collections::HashMap::new();
        if let Some(zaps) = &self.zaps {
            for (hash, status) in &changes {
                let InvoiceStatus::Paid(paid) = status else {
                    continue;
                };
                let Some(record) = self.db.store().invoice(hash)? else {
                    continue;
                };
                if let Some(receipt) = prepare_zap_receipt(&record, paid, zaps) {
                    receipts.insert(*hash, receipt);
                }
            }
        }
        let (changed, closed, queued) = self
            .db
            .commit(move |store| {
                let mut changed = Vec::new();
                let mut closed = Vec::new();
                let mut queued = 0usize;
                for (hash, status) in changes {
                    let Some(before) = store.invoice(&hash)? else {
                        continue;
                    };
                    if !matches!(next_status(before.status, status), Ok(Some(_))) {
                        continue;
                    }
                    if before.is_pending() {
                        closed.push(before.user.clone());
                    }
                    let after = store.set_invoice_status(&hash, status)?;
                    let user = store.user(&after.user)?;
                    for event in
                        events_for(&after, user.as_ref(), now, max_age, receipts.get(&hash))
                    {
                        if store.enqueue(&event)? {
                            queued += 1;
                        }
                    }
                    changed.push(after);
                }
                if let Some((key, position)) = cursor {
                    store.put_meta(&key, &position.to_be_bytes())?;
                }
                Ok((changed, closed, queued))
            })
            .await?;
        if let Some(pending) = &self.pending {
            for user in &closed {
                pending.closed(user);
            }
        }
        for record in &changed {
            tracing::info!(
                payment_hash = %record.payment_hash,
                user = %record.user,
                status = record.status.name(),
                amount_msat = record.amount_msat.msat(),
                backend = %record.backend,
                "invoice {}", record.status.name()
            );
            match record.status {
                InvoiceStatus::Paid(_) => {
                    Metrics::count(&self.metrics.invoices_paid, &record.backend)
                }
                InvoiceStatus::Expired => {
                    Metrics::count(&self.metrics.invoices_expired, &record.backend)
                }
                InvoiceStatus::Pending => {}
            }
            self.live.publish(record.clone());
        }
        if queued > 0 {
            self.metrics.outbox_backlog.inc_by(queued as i64);
            self.outbox_wake.notify_one();
        }
        Ok(changed)
    }
}
