//! Every HTTP handler, grouped by audience, each thin: parse the request into domain types,
//! call a service, map the error. Handlers share one typed state.

mod account;
mod admin;
mod api;
mod auth;
mod console;
mod errors;
mod hooks;
mod lnurl;
mod middleware;
mod nostr;
mod ops;
mod pages;

use std::sync::Arc;

use actix_web::web;

pub use api::{ApiPolicy, Followers};
pub use auth::{AdminAccess, Caller};
pub use hooks::HookRefusals;
pub use middleware::{limit_body_time, limit_headers, record_request, RequestSpan, RoutePattern};
pub use ops::ReadinessCache;

use crate::limits::ClientKey;
use crate::services::Services;
use crate::watch::Hints;

/// What handlers share: the services, and what only HTTP needs.
pub struct State {
    pub services: Arc<Services>,
    pub admin: AdminAccess,
    /// The watchers' inboxes for backends' webhooks.
    pub hints: Hints,
    pub api: ApiPolicy,
    pub followers: Arc<Followers>,
    pub readiness: ReadinessCache,
    pub hook_refusals: HookRefusals,
    /// What the operator console keeps beside the services.
    pub console: Arc<crate::console::ConsoleState>,
}

impl State {
    pub fn new(services: Arc<Services>, admin: AdminAccess, hints: Hints) -> Self {
        let settings = &services.settings;
        let api = ApiPolicy {
            expiry_min: settings.api_expiry_min,
            expiry_max: settings.api_expiry_max,
            webhook_reach: settings.webhook_allow_private.reach(false),
        };
        let followers = Arc::new(Followers::new(
            settings.max_followers_per_client,
            services.metrics.live_followers.clone(),
        ));
        let console = Arc::new(crate::console::ConsoleState::new(services.clock.unix()));
        Self {
            services,
            admin,
            hints,
            api,
            followers,
            readiness: ReadinessCache::default(),
            hook_refusals: HookRefusals::default(),
            console,
        }
    }

    /// The client a request comes from, as limits count clients: see `client_ip`.
    pub fn client(&self, req: &actix_web::HttpRequest) -> Option<ClientKey> {
        client_ip(req, self.services.settings.client_ip_header.as_deref()).map(ClientKey::of)
    }
}

pub use ops::probe_backends;

pub fn configure(cfg: &mut web::ServiceConfig) {
    lnurl::configure(cfg);
    nostr::configure(cfg);
    admin::configure(cfg);
    hooks::configure(cfg);
    api::configure(cfg);
    pages::configure(cfg);
    account::configure(cfg);
    console::configure(cfg);
    ops::configure(cfg);
    // Last: `/{name}` must not shadow any endpoint above.
    pages::configure_short_names(cfg);
}

/// The client's address: the configured proxy header (e.g. `Fly-Client-IP`) when one is set
/// and parses, else the socket's peer. Headers are never trusted unless configured.
pub fn client_ip(req: &actix_web::HttpRequest, header: Option<&str>) -> Option<std::net::IpAddr> {
    if let Some(header) = header.filter(|h| !h.is_empty()) {
        let forwarded = req
            .headers()
            .get(header)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
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
