use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::event::{signature, EVENT_ID_HEADER, SIGNATURE_HEADER};
use crate::clock::{Clock, Random};
use crate::domain::{Attempt, Delivery, EventKind, OutboxItem, Target, WebhookUrl};
use crate::metrics::Metrics;
use crate::net::{self, PrivateWebhooks, Reach};
use crate::notify::{Notifier, Outcome as NotifyOutcome};
use crate::retry::delay_after;
use crate::store::Db;

/// How events are retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Retries stop this long after the event was queued; the event is then dead-lettered.
    pub window: Duration,
    /// The first retry waits about this long; each later one about twice as long as the last.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// One attempt may take this long, connecting included.
    pub timeout: Duration,
    /// Attempts in flight to one endpoint (scheme, host, port) at once.
    pub per_endpoint: usize,
    /// Where relays may be (private addresses only for a relay on the same host, and tests).
    pub relay_reach: Reach,
    /// Which webhook URLs may reach private addresses.
    pub private_webhooks: PrivateWebhooks,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            per_endpoint: 4,
            relay_reach: Reach::Public,
            private_webhooks: PrivateWebhooks::None,
        }
    }
}

/// Events taken from the store per scan; also the most attempts in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// The store is scanned at least this often, for retries that came due.
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// Due events are taken for this long: longer than any attempt takes, so another instance on
/// a shared store takes them over only when this one stopped (crashed) before recording the
/// outcome.
const CLAIM_HOLD: Duration = Duration::from_secs(60);
/// Receivers' answers are quoted in the delivery log up to this many characters, and read no
/// further than the bytes those can take.
const MAX_ANSWER_QUOTE: usize = 200;
const MAX_ANSWER_BYTES: usize = MAX_ANSWER_QUOTE * 4;

/// Delivers due events from the outbox. The store is the queue: nothing is held in memory
/// beyond the attempts in flight, so a restart (or a crash) loses nothing.
pub struct Deliverer {
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// For webhooks that must stay on public addresses, and for those that need not.
    public_client: reqwest::Client,
    any_client: reqwest::Client,
    policy: DeliveryPolicy,
    wake: Arc<Notify>,
    in_flight: Mutex<BTreeSet<crate::domain::EventId>>,
    /// Per-endpoint slots, only for endpoints with a delivery in flight: endpoints are named by
    /// payers (relays) and apps (webhook URLs), so the table must not grow with them.
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
    metrics: Arc<Metrics>,
    /// Sends notifications (Nostr DMs, email, ntfy, Telegram), when they are set up.
    notifier: Option<Arc<Notifier>>,
}

/// What one attempt came to.
enum Outcome {
    /// Delivered (`ok`, or why nothing needed sending).
    Done(String),
    /// Failed; retried with backoff until the window closes.
    Failed(String),
    /// Can never succeed: a dead letter now.
    GiveUp(String),
    /// Not attempted (a shared allowance is spent): due again after this many seconds, and
    /// not counted as an attempt.
    Later(u64),
}

impl Deliverer {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        policy: DeliveryPolicy,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        // No redirects (a receiver that moved must be reconfigured; following could send
        // events anywhere), no proxy from the environment.
        let client = |reach| {
            net::http_client_builder(reach)
                .timeout(policy.timeout)
                .connect_timeout(policy.timeout)
                .user_agent(concat!("rayo/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Ok(Self {
            db,
            clock,
            random,
            public_client: client(Reach::Public)?,
            any_client: client(Reach::Anywhere)?,
            policy,
            wake,
            in_flight: Mutex::new(BTreeSet::new()),
            endpoints: Mutex::new(HashMap::new()),
            metrics,
            notifier: None,
        })
    }

    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub async fn run(self: Arc<Self>) {
        let mut renewed = self.clock.unix();
        loop {
            let now = self.clock.unix();
            let hold = now.saturating_add(CLAIM_HOLD.as_secs());
            // Claims on events still in flight (queued behind a slow endpoint) are renewed
            // long before they lapse.
            if now >= renewed.saturating_add(CLAIM_HOLD.as_secs() / 3) {
                renewed = now;
                let ids: Vec<_> = self.in_flight().iter().copied().collect();
                if !ids.is_empty() {
                    if let Err(e) = self.db.read(move |s| s.hold_claims(&ids, hold)).await {
                        tracing::error!(error = %e, "could not renew the claims on events in flight");
                    }
                }
            }
            let room = MAX_IN_FLIGHT.saturating_sub(self.in_flight().len());
            if room > 0 {
                match self.db.read(move |s| s.claim_due(now, hold, room)).await {
                    Ok(due) => {
                        for item in due {
                            if self.in_flight().insert(item.id) {
                                let me = self.clone();
                                tokio::spawn(async move { me.deliver(item).await });
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not read the outbox"),
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(SCAN_EVERY) => {}
            }
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, BTreeSet<crate::domain::EventId>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn endpoints(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn endpoint_limit(&self, endpoint: String) -> Arc<Semaphore> {
        self.endpoints()
            .entry(endpoint)
            .or_insert_with(|| Arc::new(Semaphore::new(self.policy.per_endpoint)))
            .clone()
    }

    /// Endpoints with a delivery in flight or waiting for a slot.
    pub fn endpoints_in_use(&self) -> usize {
        self.endpoints().len()
    }

    /// Drops the slots of endpoints nobody is delivering to (the table holds the only handle).
    fn forget_idle_endpoints(&self) {
        self.endpoints()
            .retain(|_, slots| Arc::strong_count(slots) > 1);
    }

    async fn deliver(self: Arc<Self>, item: OutboxItem) {
        let limit = self.endpoint_limit(item.target.endpoint());
        let outcome = self.attempt_within(&limit, &item).await;
        drop(limit);
        self.forget_idle_endpoints();
        match outcome {
            Some(outcome) => self.record_attempt(item, outcome).await,
            None => {
                self.in_flight().remove(&item.id);
            }
        }
    }

    async fn attempt_within(
        &self,
        limit: &Semaphore,
        item: &OutboxItem,
    ) -> Option<(Attempt, Outcome)> {
        match limit.acquire().await {
            Ok(_permit) => {
                let started = Instant::now();
                let (status, outcome) = self.attempt(item).await;
                let words = match &outcome {
                    Outcome::Done(words) | Outcome::Failed(words) | Outcome::GiveUp(words) => {
                        words.clone()
                    }
                    Outcome::Later(secs) => format!("deferred {secs} s"),
                };
                Some((
                    Attempt {
                        at: self.clock.unix(),
                        status,
                        outcome: words,
                        duration_ms: u64::try_from(started.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                    },
                    outcome,
                ))
            }
            Err(_) => None,
        }
    }

    async fn record_attempt(&self, item: OutboxItem, (outcome, verdict): (Attempt, Outcome)) {
        let id = item.id;
        let policy = self.policy.clone();
        let random = self.random.clone();
        let recorded = self
            .db
            .commit(move |store| {
                // The operator may have changed it meanwhile (a retry); start from what is stored.
                let Some(mut item) = store.outbox_item(&id)? else {
                    return Ok(None);
                };
                if item.delivery != Delivery::Pending {
                    return Ok(None);
                }
                let now = outcome.at;
                if let Outcome::Later(secs) = verdict {
                    // Not an attempt: the item waits its turn, its log untouched.
                    item.next_attempt_at = now.saturating_add(secs.max(1));
                    store.put_outbox_item(&item)?;
                    return Ok(None);
                }
                let delivered = matches!(verdict, Outcome::Done(_));
                let given_up = matches!(verdict, Outcome::GiveUp(_));
                item.record(outcome);
                item.delivery = if delivered {
                    Delivery::Delivered { at: now }
                } else if given_up || now >= item.deadline {
                    Delivery::Dead { at: now }
                } else {
                    let delay = delay_after(
                        policy.first_retry,
                        policy.max_retry,
                        item.attempts.saturating_sub(1),
                        random.as_ref(),
                    );
                    item.next_attempt_at = now.saturating_add(delay.as_secs().max(1));
                    Delivery::Pending
                };
                store.put_outbox_item(&item)?;
                Ok(Some(item))
            })
            .await;
        // A channel's health: a dead letter marks it broken; a message that got through after
        // a failure, or a test that got through, clears the mark. One that was not sent (the
        // channel was broken already) says nothing either way.
        if let (Ok(Some(item)), Some(notifier)) = (&recorded, &self.notifier) {
            let sent = item.log.last().is_some_and(|a| a.outcome == "ok");
            if matches!(item.target, Target::Notify { .. }) {
                match item.delivery {
                    Delivery::Dead { .. } => notifier.settled(item, false).await,
                    Delivery::Delivered { .. }
                        if sent && (item.attempts > 1 || item.kind == EventKind::NotifyTest) =>
                    {
                        notifier.settled(item, true).await
                    }
                    _ => {}
                }
            }
        }
        match recorded {
            Ok(Some(item)) => {
                let last = item.log.last();
                let kind = item.kind.as_str();
                match item.delivery {
                    Delivery::Delivered { .. } => {
                        Metrics::event(&self.metrics.deliveries, kind);
                        self.metrics.outbox_backlog.dec();
                    }
                    Delivery::Dead { .. } => {
                        Metrics::event(&self.metrics.delivery_failures, kind);
                        self.metrics.outbox_backlog.dec();
                    }
                    Delivery::Pending => Metrics::event(&self.metrics.delivery_failures, kind),
                }
                match item.delivery {
                    Delivery::Delivered { .. } => {
                        tracing::info!(event = %item.id, kind = item.kind.as_str(), attempts = item.attempts, "webhook delivered")
                    }
                    Delivery::Dead { .. } => {
                        tracing::error!(event = %item.id, attempts = item.attempts, outcome = last.map(|a| a.outcome.as_str()), "webhook given up after its delivery window; `rayo webhook retry` sends it again")
                    }
                    Delivery::Pending => {
                        tracing::warn!(event = %item.id, attempts = item.attempts, outcome = last.map(|a| a.outcome.as_str()), next_attempt_at = item.next_attempt_at, "webhook delivery failed; will retry")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(event = %id, error = %e, "could not record a delivery attempt")
            }
        }
        self.in_flight().remove(&id);
    }

    /// One delivery: the receiver's status (an HTTP or SMTP code), and what it came to.
    async fn attempt(&self, item: &OutboxItem) -> (Option<u16>, Outcome) {
        let plain = |(status, result): (Option<u16>, Result<(), String>)| {
            (
                status,
                match result {
                    Ok(()) => Outcome::Done("ok".into()),
                    Err(e) => Outcome::Failed(e),
                },
            )
        };
        match &item.target {
            Target::Webhook {
                url,
                user,
                operator,
            } => {
                let reach = self.policy.private_webhooks.reach(*operator);
                plain(self.post_webhook(item, url, user, reach).await)
            }
            Target::NostrRelay { url } => plain((
                None,
                crate::nostr::publish(url, &item.body, self.policy.relay_reach)
                    .await
                    .map_err(|e| e.to_string()),
            )),
            Target::Notify { .. } => {
                let Some(notifier) = &self.notifier else {
                    return (
                        None,
                        Outcome::Failed("notifications are not set up on this instance".into()),
                    );
                };
                match notifier.deliver(item).await {
                    NotifyOutcome::Sent(status) => (status, Outcome::Done("ok".into())),
                    NotifyOutcome::Settled(why) => (None, Outcome::Done(why)),
                    NotifyOutcome::Failed(failure) => {
                        (failure.status, Outcome::Failed(failure.reason))
                    }
                    NotifyOutcome::GiveUp(why) => (None, Outcome::GiveUp(why)),
                    NotifyOutcome::Later(wait) => (None, Outcome::Later(wait.as_secs())),
                }
            }
        }
    }

    async fn post_webhook(
        &self,
        item: &OutboxItem,
        url: &WebhookUrl,
        user: &crate::domain::Username,
        reach: Reach,
    ) -> (Option<u16>, Result<(), String>) {
        // IP literals are connected to without resolving: check them here. Names are checked by
        // the public client's resolver on the addresses it connects to.
        if let Err(e) = net::check_url(url.url(), reach) {
            return (None, Err(format!("refused: {e}")));
        }
        let client = match reach {
            Reach::Public => &self.public_client,
            Reach::Anywhere => &self.any_client,
        };
        let name = user.clone();
        let secret = match self.db.point(move |s| s.user(&name)).await {
            Ok(Some(u)) => u.webhook_secret,
            Ok(None) => None,
            Err(e) => return (None, Err(format!("could not read the user: {e}"))),
        };
        let Some(secret) = secret else {
            return (
                None,
                Err(format!("user '{user}' has no webhook secret to sign with")),
            );
        };
        let now = self.clock.unix();
        let sent = client
            .post(url.url().clone())
            .header("Content-Type", "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(secret.expose(), now, &item.body),
            )
            .header(EVENT_ID_HEADER, item.id.to_string())
            .body(item.body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) => {
                let status = answer.status();
                if status.is_success() {
                    (Some(status.as_u16()), Ok(()))
                } else if status.is_redirection() {
                    (
                        Some(status.as_u16()),
                        Err(format!(
                            "redirected ({status}); rayo does not follow redirects"
                        )),
                    )
                } else {
                    let body = net::read_at_most(answer, MAX_ANSWER_BYTES).await;
                    let quoted: String = String::from_utf8_lossy(&body)
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_ANSWER_QUOTE)
                        .collect();
                    (
                        Some(status.as_u16()),
                        Err(format!("HTTP {status}: {quoted}")),
                    )
                }
            }
            Err(e) if e.is_timeout() => (None, Err("no answer in time".into())),
            Err(e) if e.is_connect() => (
                None,
                Err(format!("could not connect: {}", net::root_cause(&e))),
            ),
            Err(e) => (
                None,
                Err(format!("request failed: {}", net::root_cause(&e))),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{EventId, EventKind, Hash32, Username};
    use crate::store::MemoryStore;

    fn event_to(n: u8) -> OutboxItem {
        let target = Target::Webhook {
            url: WebhookUrl::parse(&format!("http://host-{n}.invalid/hook")).unwrap(),
            user: Username::parse("alice").unwrap(),
            operator: false,
        };
        OutboxItem {
            id: EventId::derive(&Hash32([n; 32]), EventKind::InvoicePaid, &target),
            kind: EventKind::InvoicePaid,
            payment_hash: Hash32([n; 32]),
            target,
            body: "{}".into(),
            created_at: 0,
            deadline: u64::MAX,
            attempts: 0,
            next_attempt_at: 0,
            delivery: Delivery::Pending,
            log: Vec::new(),
        }
    }

    #[tokio::test]
    async fn endpoints_are_forgotten_once_nothing_is_in_flight_to_them() {
        let db = Db::new(Arc::new(MemoryStore::new()));
        let deliverer = Arc::new(
            Deliverer::new(
                db.clone(),
                Arc::new(SystemClock),
                Arc::new(crate::clock::OsRandom),
                DeliveryPolicy::default(),
                Arc::new(Notify::new()),
                Arc::new(Metrics::new()),
            )
            .unwrap(),
        );
        // Payers and apps name endpoints; a hundred different ones come and go.
        let deliveries = (0..100).map(|n| {
            let item = event_to(n);
            let db = db.clone();
            let deliverer = deliverer.clone();
            async move {
                let queued = item.clone();
                db.commit(move |s| {
                    s.commit_transitions(&crate::store::Transitions::events(vec![queued]))
                })
                .await
                .unwrap();
                deliverer.in_flight().insert(item.id);
                deliverer.deliver(item).await;
            }
        });
        futures_util::future::join_all(deliveries).await;
        assert_eq!(deliverer.endpoints_in_use(), 0);
        assert!(deliverer.in_flight().is_empty());
    }
}
