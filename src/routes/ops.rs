//! For operators and their tools: liveness, readiness, metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};

use super::State;
use crate::domain::Hash32;
use crate::services::Services;

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
pub(super) struct Readiness {
    at: Instant,
    store: Result<(), String>,
    backends: Vec<(crate::domain::BackendName, Result<(), String>)>,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.store.is_ok() && self.backends.iter().all(|(_, state)| state.is_ok())
    }

    /// The report: for the operator, each part `ok` or what is wrong with it, backend by
    /// backend; for anyone else, `ok` or `failing` for the store and for the backends as a
    /// whole, so that their names and errors stay the operator's.
    fn report(&self, detailed: bool) -> serde_json::Value {
        let word = |state: &Result<(), String>| match state {
            Ok(()) => "ok".to_owned(),
            Err(e) if detailed => e.clone(),
            Err(_) => "failing".to_owned(),
        };
        let backends: serde_json::Value = if detailed {
            self.backends
                .iter()
                .map(|(name, state)| (name.to_string(), word(state).into()))
                .collect::<serde_json::Map<String, serde_json::Value>>()
                .into()
        } else if self.backends.iter().all(|(_, state)| state.is_ok()) {
            "ok".into()
        } else {
            "failing".into()
        };
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

    pub(super) async fn current(&self, services: &Services) -> Readiness {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _turn = self.turn.lock().await;
        // Whoever held the turn may have just checked.
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let checked = check_readiness(services).await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(checked.clone());
        checked
    }
}

/// Asks every backend now (or takes a check at most a few seconds old): what the operator's
/// alerts see when nobody pays.
pub async fn probe_backends(state: &State) {
    state.readiness.current(&state.services).await;
}

/// Readiness: the store takes a durable write and every backend answers an authenticated
/// lookup (of an invoice that does not exist: any answer but an error will do). What went
/// wrong is shown on the admin address, or to the admin token; elsewhere only which part.
async fn readyz(req: actix_web::HttpRequest, state: web::Data<State>) -> HttpResponse {
    let readiness = state.readiness.current(&state.services).await;
    let detailed = state.admin.grants(&req);
    let report = readiness.report(detailed);
    if readiness.ready() {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

async fn check_readiness(services: &Services) -> Readiness {
    let now = services.clock.unix();
    let store = services
        .db
        .commit(move |s| s.put_meta("ready.probe", &now.to_be_bytes()))
        .await
        .map_err(|e| e.to_string());
    let probe = Hash32(services.random.bytes32());
    let checks = services
        .backends()
        .iter()
        .map(|(name, backend)| async move {
            let started = Instant::now();
            let answer =
                tokio::time::timeout(BACKEND_PROBE_TIMEOUT, backend.lookup_invoice(&probe)).await;
            let state = match answer {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("did not answer in time".to_owned()),
            };
            services.metrics.health.record(
                name.as_str(),
                crate::metrics::HealthEntry {
                    at: services.clock.unix(),
                    latency_ms: started.elapsed().as_millis() as u64,
                    asked: "readiness",
                    error: state.clone().err(),
                    failing_since: None,
                },
            );
            (name.clone(), state)
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
async fn metrics(req: actix_web::HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !state.admin.reachable_from(&req) {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.services.metrics.render())
}
