//! `/metrics` in Prometheus text format: HTTP requests and latency by route, invoices created,
//! paid and expired by backend, backend calls and their latency, and the outbox's backlog and
//! delivery failures.

use std::borrow::Cow;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Cow<'static, str>,
    pub method: Cow<'static, str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    pub route: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendOutcome {
    pub backend: String,
    /// `ok`, `error` or `timeout`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `invoice.paid`, `invoice.expired`, `zap.receipt`.
    pub kind: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_latency: Family<RouteOnly, Histogram, fn() -> Histogram>,
    pub invoices_created: Family<BackendLabels, Counter>,
    pub invoices_paid: Family<BackendLabels, Counter>,
    pub invoices_expired: Family<BackendLabels, Counter>,
    pub backend_calls: Family<BackendOutcome, Counter>,
    pub backend_latency: Family<BackendLabels, Histogram, fn() -> Histogram>,
    pub outbox_backlog: Gauge<i64, AtomicI64>,
    pub deliveries: Family<EventLabels, Counter>,
    pub delivery_failures: Family<EventLabels, Counter>,
    pub rate_limited: Family<RouteOnly, Counter>,
    pub live_followers: Gauge,
    pub node_keys_learned: Family<BackendLabels, Counter>,
    pub payment_channels_open: Family<BackendLabels, Gauge>,
    /// The last word from each backend, for the console (not exported: it has error text).
    pub health: BackendHealth,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rayo");
        let m = Self {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram),
            invoices_created: Family::default(),
            invoices_paid: Family::default(),
            invoices_expired: Family::default(),
            backend_calls: Family::default(),
            backend_latency: Family::new_with_constructor(latency_histogram),
            outbox_backlog: Gauge::default(),
            deliveries: Family::default(),
            delivery_failures: Family::default(),
            rate_limited: Family::default(),
            live_followers: Gauge::default(),
            node_keys_learned: Family::default(),
            payment_channels_open: Family::default(),
            health: BackendHealth::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern",
            m.http_latency.clone(),
        );
        registry.register(
            "invoices_created",
            "Invoices handed out, by backend",
            m.invoices_created.clone(),
        );
        registry.register(
            "invoices_paid",
            "Invoices seen paid, by backend",
            m.invoices_paid.clone(),
        );
        registry.register(
            "invoices_expired",
            "Invoices that expired unpaid, by backend",
            m.invoices_expired.clone(),
        );
        registry.register(
            "backend_invoice_requests",
            "Invoice requests to backends, by outcome",
            m.backend_calls.clone(),
        );
        registry.register(
            "backend_invoice_request_duration_seconds",
            "Latency of invoice requests to backends",
            m.backend_latency.clone(),
        );
        registry.register(
            "outbox_backlog",
            "Events waiting for delivery (webhooks, zap receipts)",
            m.outbox_backlog.clone(),
        );
        registry.register(
            "outbox_deliveries",
            "Events delivered, by kind",
            m.deliveries.clone(),
        );
        registry.register(
            "outbox_delivery_failures",
            "Failed delivery attempts, by kind",
            m.delivery_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by route",
            m.rate_limited.clone(),
        );
        registry.register(
            "live_followers",
            "Live status followers (WebSocket and event streams) open now",
            m.live_followers.clone(),
        );
        registry.register(
            "backend_node_keys_learned",
            "Answers from a backend about its node key (at start, and after an invoice signed by another key)",
            m.node_keys_learned.clone(),
        );
        registry.register(
            "payment_channels_open",
            "Push channels open to backends for payment news, by backend (0: rayo polls or waits to reconnect)",
            m.payment_channels_open.clone(),
        );
        Self { registry, ..m }
    }

    pub fn backend_call(&self, backend: &str, outcome: &str, took: Duration) {
        self.backend_calls
            .get_or_create(&BackendOutcome {
                backend: backend.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.backend_latency
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn count(family: &Family<BackendLabels, Counter>, backend: &str) {
        family
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .inc();
    }

    /// Counts a payment channel to `backend` as open until the guard drops (the channel
    /// closed, or its watcher was stopped).
    pub fn channel_open(&self, backend: &str) -> OpenChannel {
        let gauge = self
            .payment_channels_open
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .clone();
        gauge.inc();
        OpenChannel(gauge)
    }

    pub fn event(family: &Family<EventLabels, Counter>, kind: &str) {
        family
            .get_or_create(&EventLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn route_limited(metrics: &Metrics, route: &str) {
        metrics
            .rate_limited
            .get_or_create(&RouteOnly {
                route: Cow::Owned(route.to_owned()),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The last word from each backend this instance spoke to: configured backends by name,
/// people's own wallets as `wallet of <name>`. When, how long it took, what went wrong.
#[derive(Default)]
pub struct BackendHealth(std::sync::Mutex<std::collections::BTreeMap<String, HealthEntry>>);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthEntry {
    pub at: u64,
    pub latency_ms: u64,
    /// What was asked: `invoice`, `readiness` or `check`.
    pub asked: &'static str,
    /// `None` when it answered well.
    pub error: Option<String>,
    /// Since when it has failed without a good answer between (kept by `record`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<u64>,
}

/// People's wallets are many: at most this many are remembered (configured backends always).
const HEALTH_ENTRIES: usize = 10_000;

impl BackendHealth {
    /// Called on every invoice request: an entry already there is updated in place.
    pub fn record(&self, backend: &str, mut entry: HealthEntry) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let before = entries.get(backend).and_then(|last| last.failing_since);
        entry.failing_since = entry.error.as_ref().map(|_| before.unwrap_or(entry.at));
        if let Some(last) = entries.get_mut(backend) {
            *last = entry;
        } else if entries.len() < HEALTH_ENTRIES {
            entries.insert(backend.to_owned(), entry);
        }
    }

    pub fn snapshot(&self) -> Vec<(String, HealthEntry)> {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// See [`Metrics::channel_open`].
pub struct OpenChannel(Gauge);

impl Drop for OpenChannel {
    fn drop(&mut self) {
        self.0.dec();
    }
}
