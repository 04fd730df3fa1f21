//! `/hooks/{backend}`: webhooks upstreams send us (phoenixd's signed `payment_received`). The
//! backend checks the signature over the raw body; the watcher then confirms by lookup.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::State;
use crate::log_throttle::LogThrottle;
use crate::metrics::Metrics;
use crate::routes::errors::ApiError;

const MAX_HOOK_BODY: usize = 64 * 1024;
/// Refused webhooks are logged at most this often: anyone can send one.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Throttles the log lines of refused webhooks.
pub struct HookRefusals(LogThrottle);

impl Default for HookRefusals {
    fn default() -> Self {
        Self(LogThrottle::new(REFUSAL_LOG_EVERY))
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/hooks/{backend}")
            .app_data(web::PayloadConfig::new(MAX_HOOK_BODY))
            .route(web::post().to(receive)),
    );
}

async fn receive(
    req: HttpRequest,
    backend: web::Path<String>,
    body: web::Bytes,
    state: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    // The same per-client rate as the invoice API: an upstream's webhooks are hints (its
    // push channel and reconciling are the main ways), and checking each costs an HMAC.
    if !services.limits.allow_api(state.client(&req)) {
        Metrics::route_limited(&services.metrics, "hooks");
        return Err(ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; slow down",
        ));
    }
    // An unknown name is refused as a bad signature is: the answer tells nobody which
    // backends exist.
    let refused = || {
        ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "webhook refused",
        )
    };
    let Some((name, upstream)) = crate::domain::BackendName::parse(&backend)
        .ok()
        .and_then(|name| services.backends().get(Some(&name)))
    else {
        return Err(refused());
    };
    let header = |key: &str| {
        req.headers()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match upstream.webhook_payment(&header, &body) {
        Ok(payment_hash) => {
            if !state.hints.send(name, payment_hash) {
                tracing::warn!(
                    backend = %name,
                    "webhook hint dropped: the watcher is busy; reconciling will catch up"
                );
            }
            Ok(HttpResponse::Ok().finish())
        }
        Err(e) => {
            if let Some(held_back) = state.hook_refusals.0.admit() {
                tracing::warn!(backend = %name, error = %e, held_back, "refused a backend webhook (refusals are logged at most once a minute; held_back counts the others)");
            }
            Err(refused())
        }
    }
}
