//! The invoice API for apps: create invoices for a user, read them, follow them live. Callers
//! authenticate with a user's API key (`rayo user api-key create`) or the admin token.

mod auth;
mod invoices;
mod live;
mod view;

use actix_web::web;

pub use auth::Caller;
pub use invoices::ExpiryRange;
pub use live::Followers;
pub use view::AppInvoiceView;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::ApiError;
use crate::limits::RateLimits;
use crate::metrics::Metrics;

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
    let limits = req.app_data::<web::Data<RateLimits>>();
    if limits.is_some_and(|l| !l.allow_api(req.request())) {
        if let Some(metrics) = req.app_data::<web::Data<Metrics>>() {
            Metrics::route_limited(metrics, "api");
        }
        let refusal = ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; slow down",
        );
        return Ok(req.error_response(refusal));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
