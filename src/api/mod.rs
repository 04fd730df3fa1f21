//! The invoice API for apps: create invoices for a user, read them, follow them live. Callers
//! authenticate with a user's API key (`rayo user api-key create`) or the admin token.

mod auth;
mod invoices;
mod live;
mod view;

use actix_web::web;

pub use auth::Caller;
pub use invoices::ExpiryRange;
pub use view::AppInvoiceView;

use crate::error::ApiError;

/// JSON bodies beyond this are refused.
const MAX_BODY: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
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
