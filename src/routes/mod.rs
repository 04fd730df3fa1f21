//! Thin HTTP handlers, grouped by audience. Each turns the request into domain calls and the
//! result into a response; the rules live elsewhere.

mod admin;
mod hooks;
mod lnurl;
mod nostr;
mod ops;
mod slow_clients;

use actix_web::web;

pub use admin::{on_admin_address, AdminAddress, AdminToken};
pub use hooks::HookRefusals;
pub use ops::{limit_headers, record_request, ReadinessCache};
pub use slow_clients::{limit_body_time, BodyDeadline};

pub fn configure(cfg: &mut web::ServiceConfig) {
    lnurl::configure(cfg);
    nostr::configure(cfg);
    admin::configure(cfg);
    hooks::configure(cfg);
    crate::api::configure(cfg);
    crate::pages::configure(cfg);
    ops::configure(cfg);
    // Last: `/{name}` must not shadow any endpoint above.
    crate::pages::configure_short_names(cfg);
}

/// The domain a request asked for: its `Host` header (or HTTP/2 authority). Used only to pick
/// among configured domains, never to build URLs.
pub fn request_host(req: &actix_web::HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}
