use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Cursor, Ledger};
use crate::backends::{AnyBackend, Backend};
use crate::backends::{InvoiceBackend, InvoiceState, PaymentEvent, PaymentNotice, PendingInvoice};
use crate::clock::{Clock, Random};
use crate::cluster::Cluster;
use crate::domain::{BackendName, Hash32, InvoiceRecord, InvoiceStatus, PaidDetails, Username};
use crate::retry::Backoff;
use crate::store::Db;

/// Channels without a cursor (websockets) can miss a message without noticing: for those
/// backends every pending invoice is also looked up this often. Streams with a cursor replay
/// what they missed, so they are reconciled only at start.
const RECONCILE_EVERY: Duration = Duration::from_secs(30 * 60);
/// Lookups are made this many at a time while reconciling.
const RECONCILE_CONCURRENCY: usize = 4;
/// While nothing is pending, a polled backend is not asked; the store is checked this often.
const IDLE_POLL_CHECK: Duration = Duration::from_secs(1);
/// Hints waiting for their lookup; beyond this they are dropped (reconciling catches up).
const HINT_QUEUE: usize = 1024;

/// Watches one backend for payments, by its best channel, and feeds the ledger.
#[derive(Clone)]
pub struct Watcher {
    pub name: BackendName,
    /// Watches only this user's invoices (a user's own wallet serves nobody else).
    only: Option<Username>,
    backend: AnyBackend,
    ledger: Arc<Ledger>,
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

/// The running watchers' hint inboxes, for webhooks that upstreams send us.
#[derive(Clone, Default)]
pub struct Hints {
    inboxes: BTreeMap<BackendName, mpsc::Sender<Hash32>>,
}

impl Hints {
    /// Passes a hint to the watcher of `backend`; false if there is none or it is swamped.
    pub fn send(&self, backend: &BackendName, payment_hash: Hash32) -> bool {
        self.inboxes
            .get(backend)
            .is_some_and(|inbox| inbox.try_send(payment_hash).is_ok())
    }
}

/// Starts one watcher per backend; returns their hint inboxes and tasks. With other instances
/// on the store, a backend is watched by the one leading it; hints are confirmed by whichever
/// instance gets them.
pub fn start_all(
    watchers: Vec<Watcher>,
    cluster: &Cluster,
) -> (Hints, Vec<tokio::task::JoinHandle<()>>) {
    let mut hints = Hints::default();
    let mut tasks = Vec::new();
    for watcher in watchers {
        let (inbox, queue) = mpsc::channel(HINT_QUEUE);
        hints.inboxes.insert(watcher.name.clone(), inbox);
        let w = watcher.clone();
        tasks.push(tokio::spawn(async move { w.confirm_hints(queue).await }));
        let (w, cluster) = (watcher.clone(), cluster.clone());
        tasks.push(tokio::spawn(async move {
            let role = format!("watch {}", w.name);
            cluster.lead(&role, || w.clone().run()).await
        }));
    }
    (hints, tasks)
}

impl Watcher {
    pub fn new(
        name: &BackendName,
        backend: AnyBackend,
        ledger: Arc<Ledger>,
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            name: name.clone(),
            only: None,
            backend,
            ledger,
            db,
            clock,
            random,
        }
    }

    /// Watches `user`'s invoices only: those their own wallet made.
    pub fn only_for(mut self, user: Username) -> Self {
        self.only = Some(user);
        self
    }

    /// Is `record` one this watcher looks after?
    fn watches(&self, record: &InvoiceRecord) -> bool {
        record.backend == self.name && self.only.as_ref().is_none_or(|user| &record.user == user)
    }

    /// How long after expiry the sweeper leaves this backend's invoices to the watcher.
    pub fn expiry_grace(backend: &Backend<dyn InvoiceBackend>) -> Duration {
        match backend.capabilities().payments {
            PaymentNotice::Poll(every) => every * 2 + Duration::from_secs(2),
            PaymentNotice::Push | PaymentNotice::Manual => Duration::from_secs(2),
        }
    }

    pub async fn run(self) {
        match self.backend.capabilities().payments {
            PaymentNotice::Push if self.backend.resumes() => self.follow_pushes().await,
            PaymentNotice::Push => {
                let reconciler = self.clone();
                let _periodic = AbortOnDrop(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(RECONCILE_EVERY).await;
                        reconciler.reconcile().await;
                    }
                }));
                self.follow_pushes().await
            }
            PaymentNotice::Poll(every) => self.poll(every).await,
            PaymentNotice::Manual => {}
        }
    }

    /// Catches up by lookup (whatever was paid while rayo was down), then follows the push
    /// channel, reconnecting with backoff and resuming from the stored cursor.
    async fn follow_pushes(&self) {
        self.reconcile().await;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut first = true;
        loop {
            let cursor = self.ledger.cursor(&self.name).await.unwrap_or_else(|e| {
                tracing::error!(backend = %self.name, error = %e, "could not read the watcher's cursor");
                None
            });
            match self.backend.subscribe(cursor).await {
                Ok(mut stream) => {
                    tracing::info!(backend = %self.name, cursor, "payment channel open");
                    let _open = self.ledger.metrics().channel_open(self.name.as_str());
                    // Without a cursor, what happened while disconnected is only found by lookup.
                    if !first && !self.backend.resumes() {
                        self.reconcile().await;
                    }
                    loop {
                        match stream.next().await {
                            Ok(Some(event)) => {
                                backoff.reset();
                                self.handle(event).await;
                            }
                            Ok(None) => {
                                tracing::info!(backend = %self.name, "payment channel closed by the backend");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(backend = %self.name, error = %e, "payment channel failed");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(backend = %self.name, error = %e, "could not open the payment channel");
                }
            }
            first = false;
            tokio::time::sleep(backoff.next_delay(self.random.as_ref())).await;
        }
    }

    async fn handle(&self, event: PaymentEvent) {
        match event {
            PaymentEvent::Settled {
                payment_hash,
                state,
                cursor,
            } => {
                let changes = self.status_for(state).map(|s| (payment_hash, s));
                let cursor = cursor.map(|position| Cursor {
                    backend: &self.name,
                    position,
                });
                if let Err(e) = self
                    .ledger
                    .record(changes.into_iter().collect(), cursor)
                    .await
                {
                    tracing::error!(backend = %self.name, payment_hash = %payment_hash, error = %e, "could not record a payment");
                }
            }
            PaymentEvent::Hint(payment_hash) => self.confirm(payment_hash).await,
            PaymentEvent::OfferPaid { payment, cursor } => {
                let payment_hash = payment.payment_hash;
                let recorded = super::record_offer_payment(
                    &self.db,
                    &self.ledger,
                    payment,
                    &self.name,
                    self.backend.kind(),
                )
                .await;
                let cursor = cursor.map(|position| Cursor {
                    backend: &self.name,
                    position,
                });
                // The cursor moves only once the payment is kept: a crash replays it.
                let saved = match recorded {
                    Ok(_) => self.ledger.record(Vec::new(), cursor).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = saved {
                    tracing::error!(backend = %self.name, payment_hash = %payment_hash, error = %e, "could not record a payment to an offer");
                }
            }
        }
    }

    /// Looks up an invoice a push mentioned, if it is one of ours and still open.
    async fn confirm(&self, payment_hash: Hash32) {
        let ours = match self.db.point(move |s| s.invoice(&payment_hash)).await {
            Ok(Some(record)) => self.watches(&record) && record.paid().is_none(),
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "could not read an invoice");
                false
            }
        };
        if !ours {
            return;
        }
        match self.backend.lookup_invoice(&payment_hash).await {
            Ok(state) => {
                if let Some(status) = self.status_for(state) {
                    if let Err(e) = self.ledger.record(vec![(payment_hash, status)], None).await {
                        tracing::error!(backend = %self.name, error = %e, "could not record a payment");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(backend = %self.name, payment_hash = %payment_hash, error = %e, "could not confirm a pushed payment")
            }
        }
    }

    async fn confirm_hints(self, mut queue: mpsc::Receiver<Hash32>) {
        while let Some(payment_hash) = queue.recv().await {
            self.confirm(payment_hash).await;
        }
    }

    /// This backend's pending invoices.
    async fn pending(&self) -> Vec<InvoiceRecord> {
        let me = self.clone();
        match self
            .db
            .read(move |s| {
                Ok(s.expiring(u64::MAX, usize::MAX)?
                    .into_iter()
                    .filter(|r| me.watches(r))
                    .collect::<Vec<_>>())
            })
            .await
        {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(backend = %self.name, error = %e, "could not list pending invoices");
                Vec::new()
            }
        }
    }

    /// Looks up every pending invoice of this backend and records what was paid or cancelled.
    pub async fn reconcile(&self) {
        if self.backend.capabilities().payments == PaymentNotice::Manual {
            return;
        }
        let pending = self.pending().await;
        if pending.is_empty() {
            return;
        }
        let mut found = 0usize;
        for chunk in pending.chunks(RECONCILE_CONCURRENCY) {
            let lookups = chunk.iter().map(|r| {
                let backend = self.backend.clone();
                let hash = r.payment_hash;
                async move { (hash, backend.lookup_invoice(&hash).await) }
            });
            let mut changes = Vec::new();
            for (hash, answer) in futures_util::future::join_all(lookups).await {
                match answer {
                    Ok(state) => changes.extend(self.status_for(state).map(|s| (hash, s))),
                    Err(e) => {
                        tracing::warn!(backend = %self.name, payment_hash = %hash, error = %e, "lookup failed while reconciling")
                    }
                }
            }
            found += changes.len();
            if !changes.is_empty() {
                if let Err(e) = self.ledger.record(changes, None).await {
                    tracing::error!(backend = %self.name, error = %e, "could not record reconciled invoices");
                }
            }
        }
        tracing::info!(backend = %self.name, pending = pending.len(), settled = found, "reconciled pending invoices");
    }

    /// Asks a backend without pushes about its pending invoices, as long as there are any:
    /// at once when the first one appears, then every `every`.
    async fn poll(&self, every: Duration) {
        let mut backoff = Backoff::new(every, Duration::from_secs(10 * 60));
        loop {
            let pending: Vec<PendingInvoice> = self
                .pending()
                .await
                .into_iter()
                .map(|r| PendingInvoice {
                    payment_hash: r.payment_hash,
                    bolt11: r.bolt11,
                    created_at: r.created_at,
                })
                .collect();
            if pending.is_empty() {
                tokio::time::sleep(IDLE_POLL_CHECK.min(every)).await;
                continue;
            }
            let wait = match self.backend.find_paid(&pending).await {
                Ok(found) => {
                    backoff.reset();
                    let changes: Vec<_> = found
                        .into_iter()
                        .filter_map(|(hash, state)| self.status_for(state).map(|s| (hash, s)))
                        .collect();
                    if !changes.is_empty() {
                        if let Err(e) = self.ledger.record(changes, None).await {
                            tracing::error!(backend = %self.name, error = %e, "could not record polled payments");
                        }
                    }
                    every
                }
                Err(e) => {
                    tracing::warn!(backend = %self.name, error = %e, "polling for payments failed");
                    backoff.next_delay(self.random.as_ref()).max(every)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The status a backend's answer calls for, if any.
    fn status_for(&self, state: InvoiceState) -> Option<InvoiceStatus> {
        match state {
            InvoiceState::Paid {
                preimage,
                paid_at,
                amount_received,
            } => Some(InvoiceStatus::Paid(PaidDetails {
                // Some upstreams omit the time; when we heard of it is the next best thing.
                paid_at: if paid_at == 0 {
                    self.clock.unix()
                } else {
                    paid_at
                },
                preimage,
                amount_received_msat: amount_received,
            })),
            InvoiceState::Expired => Some(InvoiceStatus::Expired),
            InvoiceState::Pending | InvoiceState::Unknown => None,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
