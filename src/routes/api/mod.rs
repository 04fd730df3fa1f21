//! The invoice API for apps: create invoices for a user, read them, follow them live. Callers
//! authenticate with a user's API key (`rayo user api-key create`) or the admin token.

mod invoices;
mod live;
mod request;

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

pub use live::Followers;

use super::State;
use crate::metrics::Metrics;
use crate::net::Reach;
use crate::routes::errors::ApiError;

/// What the invoice API allows apps: the range `expiry_secs` is clamped to, and where the
/// webhook URLs they give may point.
#[derive(Debug, Clone)]
pub struct ApiPolicy {
    pub expiry_min: Duration,
    pub expiry_max: Duration,
    pub webhook_reach: Reach,
}

/// JSON bodies beyond this are refused.
const MAX_BODY: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(rate_limit))
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|e, _| {
                        use actix_web::error::JsonPayloadError;
                        match e {
                            JsonPayloadError::Overflow { .. }
                            | JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
                                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                                "too_large",
                                format!("request bodies are at most {MAX_BODY} bytes"),
                            ),
                            JsonPayloadError::Payload(actix_web::error::PayloadError::Io(e))
                                if e.kind() == std::io::ErrorKind::TimedOut =>
                            {
                                ApiError::new(
                                    actix_web::http::StatusCode::REQUEST_TIMEOUT,
                                    "timeout",
                                    "the request body did not arrive in time",
                                )
                            }
                            other => ApiError::invalid(format!("request body: {other}")),
                        }
                        .into()
                    }),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::invalid(format!("query: {e}")).into()),
            )
            .route("/invoices", web::post().to(invoices::create))
            .route("/invoices", web::get().to(invoices::list))
            .route("/invoices/{hash}", web::get().to(invoices::show))
            .route("/invoices/{hash}/ws", web::get().to(live::follow))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such API endpoint"))
            })),
    );
}

/// Refuses a client over its request rate with 429, before anything else: authenticated or
/// not, every request costs a key lookup at least.
async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<State>>();
    if let Some(state) = state.filter(|s| !s.services.limits.allow_api(s.client(req.request()))) {
        Metrics::route_limited(&state.services.metrics, "api");
        let refusal = ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; slow down",
        );
        return Ok(req.error_response(refusal));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
