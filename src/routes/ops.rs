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

#[derive(Default)]
pub struct ReadinessCache(Mutex<Option<(Instant, bool, serde_json::Value)>>);

/// Readiness: the store takes a durable write and every backend answers an authenticated
/// lookup (of an invoice that does not exist: any answer but an error will do).
async fn readyz(payments: web::Data<Payments>, cache: web::Data<ReadinessCache>) -> HttpResponse {
    let cached = cache
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .filter(|(at, _, _)| at.elapsed() < READY_CACHE);
    let (ready, report) = match cached {
        Some((_, ready, report)) => (ready, report),
        None => {
            let (ready, report) = check_readiness(&payments).await;
            *cache.0.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), ready, report.clone()));
            (ready, report)
        }
    };
    if ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

async fn check_readiness(payments: &Payments) -> (bool, serde_json::Value) {
    let now = payments.clock.unix();
    let store = match payments
        .db
        .commit(move |s| s.put_meta("ready.probe", &now.to_be_bytes()))
        .await
    {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let mut ready = store == "ok";
    let probe = Hash32(crate::clock::random_bytes());
    let checks = payments.backends.iter().map(|(name, backend)| async move {
        let answer =
            tokio::time::timeout(BACKEND_PROBE_TIMEOUT, backend.lookup_invoice(&probe)).await;
        let state = match answer {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "did not answer in time".to_owned(),
        };
        (name.to_owned(), state)
    });
    let mut backends = serde_json::Map::new();
    for (name, state) in futures_util::future::join_all(checks).await {
        ready &= state == "ok";
        backends.insert(name, state.into());
    }
    let report = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "store": store,
        "backends": backends,
    });
    (ready, report)
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
