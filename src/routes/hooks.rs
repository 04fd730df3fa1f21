//! `/hooks/{backend}`: webhooks upstreams send us (phoenixd's signed `payment_received`). The
//! backend checks the signature over the raw body; the watcher then confirms by lookup.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::lnurl::Payments;
use crate::watch::Hints;

const MAX_HOOK_BODY: usize = 64 * 1024;

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
    payments: web::Data<Payments>,
    hints: web::Data<Hints>,
) -> Result<HttpResponse, ApiError> {
    let name = backend.into_inner();
    let Some((name, upstream)) = payments
        .backends
        .iter()
        .find(|(configured, _)| *configured == name)
    else {
        return Err(ApiError::not_found("no such backend"));
    };
    let header = |key: &str| {
        req.headers()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match upstream.webhook_payment(&header, &body) {
        Ok(payment_hash) => {
            if !hints.send(name, payment_hash) {
                tracing::warn!(
                    backend = name,
                    "webhook hint dropped: the watcher is busy; reconciling will catch up"
                );
            }
            Ok(HttpResponse::Ok().finish())
        }
        Err(e) => {
            tracing::warn!(backend = name, error = %e, "refused a backend webhook");
            Err(ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "webhook refused",
            ))
        }
    }
}
