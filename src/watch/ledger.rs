use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Live;
use crate::clock::Clock;
use crate::domain::{BackendName, Hash32, InvoiceRecord, InvoiceStatus};
use crate::limits::PendingCounts;
use crate::metrics::Metrics;
use crate::outbox::{events_for, prepare_zap_receipt, ZapContext};
use crate::store::{next_status, Db, StoreError, Transitions};

/// Where a watcher is in its backend's numbering of payments (LND's `settle_index`, CLN's
/// `pay_index`), saved with the transitions it led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<'a> {
    pub backend: &'a BackendName,
    pub position: u64,
}

fn cursor_key(backend: &BackendName) -> String {
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
    /// Tells people they were paid, when set.
    notifier: Option<Arc<crate::notify::Notifier>>,
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
            notifier: None,
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

    /// Queues payment alerts for the people paid.
    pub fn with_notifier(mut self, notifier: Arc<crate::notify::Notifier>) -> Self {
        self.notifier = Some(notifier);
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

    pub async fn cursor(&self, backend: &BackendName) -> Result<Option<u64>, StoreError> {
        let key = cursor_key(backend);
        Ok(self
            .db
            .point(move |s| s.meta(&key))
            .await?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// Records a payment rayo learned of only when it arrived (a BOLT12 offer's): `record`,
    /// as it was asked for, is stored already `paid`, with its events, in one write of the
    /// writer: nobody sees it unpaid, and a replay finds it there and changes nothing.
    pub async fn record_arrival(
        &self,
        record: InvoiceRecord,
        paid: InvoiceStatus,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let now = self.clock.unix();
        let max_age = self.delivery_window.as_secs();
        let notifier = self.notifier.clone();
        let (changed, queued) = self
            .db
            .commit(move |store| {
                if store.invoice(&record.payment_hash)?.is_some() {
                    return Ok((Vec::new(), 0));
                }
                let Ok(Some(status)) = next_status(record.status, paid) else {
                    return Ok((Vec::new(), 0));
                };
                store.insert_invoice(&record)?;
                let mut step = Transitions::default();
                let mut record = record;
                record.status = status;
                let user = store.user(&record.user)?;
                step.events = payment_events(
                    &record,
                    user.as_ref(),
                    now,
                    max_age,
                    None,
                    notifier.as_deref(),
                );
                step.invoices.push(record);
                let queued = store.commit_transitions(&step)?;
                Ok((step.invoices, queued))
            })
            .await?;
        self.announce(&changed, queued);
        Ok(changed)
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
                let hash = *hash;
                let Some(record) = self.db.point(move |s| s.invoice(&hash)).await? else {
                    continue;
                };
                if let Some(receipt) = prepare_zap_receipt(&record, paid, zaps) {
                    receipts.insert(hash, receipt);
                }
            }
        }
        let notifier = self.notifier.clone();
        let (changed, closed, queued) = self
            .db
            .commit(move |store| {
                // The writer is the store's only writer: what is read here stays true until
                // the step below is committed, as one unit, with its events and the cursor.
                let mut step = Transitions::default();
                let mut closed = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for (hash, status) in changes {
                    if !seen.insert(hash) {
                        continue;
                    }
                    let Some(mut record) = store.invoice(&hash)? else {
                        continue;
                    };
                    let Ok(Some(next)) = next_status(record.status, status) else {
                        continue;
                    };
                    if record.is_pending() {
                        closed.push((record.user.clone(), record.payer));
                    }
                    record.status = next;
                    let user = store.user(&record.user)?;
                    step.events.extend(payment_events(
                        &record,
                        user.as_ref(),
                        now,
                        max_age,
                        receipts.get(&hash),
                        notifier.as_deref(),
                    ));
                    step.invoices.push(record);
                }
                if let Some((key, position)) = cursor {
                    step.meta.push((key, position.to_be_bytes().to_vec()));
                }
                let queued = store.commit_transitions(&step)?;
                Ok((step.invoices, closed, queued))
            })
            .await?;
        if let Some(pending) = &self.pending {
            for (user, payer) in &closed {
                pending.closed(user, *payer);
            }
        }
        self.announce(&changed, queued);
        Ok(changed)
    }

    /// After a write: the log, the counts, the live views, and the outbox woken.
    fn announce(&self, changed: &[InvoiceRecord], queued: usize) {
        for record in changed {
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
                    Metrics::count(&self.metrics.invoices_paid, record.backend.as_str())
                }
                InvoiceStatus::Expired => {
                    Metrics::count(&self.metrics.invoices_expired, record.backend.as_str())
                }
                InvoiceStatus::Pending => {}
            }
            self.live.publish(record.clone());
        }
        if queued > 0 {
            self.metrics.outbox_backlog.inc_by(queued as i64);
            self.outbox_wake.notify_one();
        }
    }
}

/// The events a status change calls for: webhooks, a zap receipt where one was signed, and
/// the person's payment alerts.
fn payment_events(
    record: &InvoiceRecord,
    user: Option<&crate::domain::User>,
    now: u64,
    max_age: u64,
    receipt: Option<&crate::outbox::ZapReceipt>,
    notifier: Option<&crate::notify::Notifier>,
) -> Vec<crate::domain::OutboxItem> {
    let mut events = events_for(record, user, now, max_age, receipt);
    if let (Some(notifier), Some(user), InvoiceStatus::Paid(_)) = (notifier, user, &record.status) {
        events.extend(notifier.paid_events(record, user, now));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{Msat, PaidDetails, Secret, User, UserContext, UserSettings, Username};
    use crate::store::{FaultyStore, Store};

    fn paid() -> InvoiceStatus {
        InvoiceStatus::Paid(PaidDetails {
            paid_at: 10,
            preimage: None,
            amount_received_msat: Msat::from_msat(1000),
        })
    }

    fn alice_with_a_pending_invoice(store: &dyn Store) -> Hash32 {
        let ctx = UserContext {
            domain: "example.com",
            now: 1,
            new_secret: &|| Secret::new("whsec_x"),
        };
        let settings = UserSettings {
            webhook_url: Some("https://hooks.example/paid".into()),
            ..Default::default()
        };
        let user = User::create(Username::parse("alice").unwrap(), settings, &ctx).unwrap();
        store.put_user(&user).unwrap();
        // Pending, and far from expiring: only a payment moves it.
        let record = InvoiceRecord {
            expires_at: u64::MAX,
            ..crate::store::contract::invoice("alice", 1)
        };
        store.insert_invoice(&record).unwrap();
        record.payment_hash
    }

    #[tokio::test]
    async fn a_payment_is_never_recorded_without_its_events() {
        let store = Arc::new(FaultyStore::new());
        let hash = alice_with_a_pending_invoice(store.as_ref());
        let db = Db::new(store.clone());
        let ledger = Ledger::new(db, Arc::new(SystemClock), Duration::from_secs(60));
        let events = || store.outbox_items(&mut |_| true, 10).unwrap().len();

        // The disk fails in the middle of recording the payment: nothing of it stays.
        store.fail_transitions(true);
        let default = BackendName::default_name();
        let cursor = Some(Cursor {
            backend: &default,
            position: 7,
        });
        assert!(ledger.record(vec![(hash, paid())], cursor).await.is_err());
        assert!(store.invoice(&hash).unwrap().unwrap().is_pending());
        assert_eq!(events(), 0);
        assert_eq!(
            ledger.cursor(&default).await.unwrap(),
            None,
            "the stream replays it"
        );

        // The replay records the payment with its webhook, once.
        store.fail_transitions(false);
        let changed = ledger.record(vec![(hash, paid())], cursor).await.unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(store.invoice(&hash).unwrap().unwrap().status, paid());
        assert_eq!(events(), 1);
        assert_eq!(ledger.cursor(&default).await.unwrap(), Some(7));
        assert!(ledger
            .record(vec![(hash, paid())], cursor)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(events(), 1);
    }

    #[tokio::test]
    async fn a_payment_that_arrives_unannounced_is_stored_paid_with_its_events_once() {
        let store = Arc::new(FaultyStore::new());
        let known = alice_with_a_pending_invoice(store.as_ref());
        let db = Db::new(store.clone());
        let ledger = Ledger::new(db, Arc::new(SystemClock), Duration::from_secs(60));
        let events = || store.outbox_items(&mut |_| true, 10).unwrap().len();
        let arrived = InvoiceRecord {
            expires_at: u64::MAX,
            ..crate::store::contract::invoice("alice", 2)
        };
        let hash = arrived.payment_hash;
        assert_ne!(hash, known);

        let changed = ledger
            .record_arrival(arrived.clone(), paid())
            .await
            .unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(store.invoice(&hash).unwrap().unwrap().status, paid());
        assert_eq!(events(), 1, "its webhook");
        // A replay (the backend's stream again after a restart) changes nothing.
        assert!(ledger
            .record_arrival(arrived, paid())
            .await
            .unwrap()
            .is_empty());
        assert_eq!(events(), 1);
        assert!(store.invoice(&known).unwrap().unwrap().is_pending());
    }
}
