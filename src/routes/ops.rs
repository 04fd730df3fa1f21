//! For operators and their tools: liveness, readiness, metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::domain::Hash32;
use crate::lnurl::Payments;
use crate::metrics::{Metrics, RouteLabels, RouteOnly};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// How long a readiness answer is reused: probes come every few seconds, and each check
/// touches the disk and every backend.
const READY_CACHE: Duration = Duration::from_secs(5);
const BACKEND_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the last readiness check found, and when.
#[derive(Clone)]
struct Readiness {
    at: Instant,
    store: Result<(), String>,
    backends: Vec<(String, Result<(), String>)>,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.store.is_ok() && self.backends.iter().all(|(_, state)| state.is_ok())
    }

    /// The report: each part `ok` or what is wrong with it, or (for those who may not see
    /// an upstream's error text) just `failing`.
    fn report(&self, detailed: bool) -> serde_json::Value {
        let word = |state: &Result<(), String>| match state {
            Ok(()) => "ok".to_owned(),
            Err(e) if detailed => e.clone(),
            Err(_) => "failing".to_owned(),
        };
        let backends: serde_json::Map<String, serde_json::Value> = self
            .backends
            .iter()
            .map(|(name, state)| (name.clone(), word(state).into()))
            .collect();
        serde_json::json!({
            "status": if self.ready() { "ready" } else { "not ready" },
            "store": word(&self.store),
            "backends": backends,
        })
    }
}

/// The last readiness check, shared: one check runs at a time, and probes that arrive while
/// it runs wait for its result instead of starting their own.
#[derive(Default)]
pub struct ReadinessCache {
    last: Mutex<Option<Readiness>>,
    turn: tokio::sync::Mutex<()>,
}

impl ReadinessCache {
    fn fresh(&self) -> Option<Readiness> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|r| r.at.elapsed() < READY_CACHE)
    }

    async fn current(&self, payments: &Payments) -> Readiness {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _turn = self.turn.lock().await;
        // Whoever held the turn may have just checked.
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let checked = check_readiness(payments).await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(checked.clone());
        checked
    }
}

/// Readiness: the store takes a durable write and every backend answers an authenticated
/// lookup (of an invoice that does not exist: any answer but an error will do). What went
/// wrong is shown on the admin address, or to the admin token; elsewhere only which part.
async fn readyz(
    req: actix_web::HttpRequest,
    payments: web::Data<Payments>,
    cache: web::Data<ReadinessCache>,
) -> HttpResponse {
    let readiness = cache.current(&payments).await;
    let detailed = super::admin::has_admin_access(&req);
    let report = readiness.report(detailed);
    if readiness.ready() {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

async fn check_readiness(payments: &Payments) -> Readiness {
    let now = payments.clock.unix();
    let store = payments
        .db
        .commit(move |s| s.put_meta("ready.probe", &now.to_be_bytes()))
        .await
        .map_err(|e| e.to_string());
    let probe = Hash32(crate::clock::random_bytes());
    let checks = payments.backends.iter().map(|(name, backend)| async move {
        let answer =
            tokio::time::timeout(BACKEND_PROBE_TIMEOUT, backend.lookup_invoice(&probe)).await;
        let state = match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("did not answer in time".to_owned()),
        };
        (name.to_owned(), state)
    });
    let backends = futures_util::future::join_all(checks).await;
    for (name, state) in &backends {
        if let Err(e) = state {
            tracing::warn!(backend = %name, error = %e, "readiness: a backend is failing");
        }
    }
    Readiness {
        at: Instant::now(),
        store,
        backends,
    }
}

/// Liveness: the process answers HTTP.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Counts are business data: with an admin address of its own, metrics live there too.
async fn metrics(req: actix_web::HttpRequest, metrics: web::Data<Metrics>) -> HttpResponse {
    if !super::admin::on_admin_address(&req) {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

/// Counts every request by its route pattern (never the raw path: names and hashes would make
/// unbounded label sets) and status, and times it.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let status = response.status().as_u16();
        metrics
            .http_latency
            .get_or_create(&RouteOnly {
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        metrics
            .http_requests
            .get_or_create(&RouteLabels {
                route,
                method,
                status,
            })
            .inc();
    }
    Ok(response)
}

/// Request heads beyond this are refused (HTTP/1 parsing already stops at 128 KiB): no
/// wallet, browser or app needs more, and every byte is held while the request lives.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers add up to more than `MAX_HEADER_BYTES`, with 431.
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len();
    if size > MAX_HEADER_BYTES {
        let response = HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .json(serde_json::json!({"error": {"code": "too_large", "message": "request headers are too large"}}));
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
