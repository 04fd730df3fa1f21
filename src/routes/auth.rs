//! Who a request is: the operator (the admin token, on the admin address when there is one),
//! an app (one user's API key), or anyone.

use std::future::{ready, Ready};
use std::net::SocketAddr;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use super::State;
use crate::crypto::secrets_match;
use crate::domain::{ApiKey, Secret, Username, API_KEY_PREFIX};
use crate::routes::errors::ApiError;

/// The admin token, and the address operator endpoints live on when they have one of their
/// own (elsewhere they do not exist).
pub struct AdminAccess {
    pub token: Secret,
    pub address: Option<SocketAddr>,
    /// Where operators open the console (its passkeys' origin).
    pub console_url: crate::config::PublicUrl,
}

impl AdminAccess {
    /// Whether `req` came in where operator endpoints live: the admin address if there is
    /// one, else anywhere.
    pub fn reachable_from(&self, req: &HttpRequest) -> bool {
        self.address
            .is_none_or(|admin| req.app_config().local_addr() == admin)
    }

    /// Whether `req` carries the admin token (compared in constant time).
    fn presented_by(&self, req: &HttpRequest) -> bool {
        bearer(req)
            .is_some_and(|token| secrets_match(token.as_bytes(), self.token.expose().as_bytes()))
    }

    /// Whether `req` may see what operators see: on the admin address (when there is one, it
    /// is private), or anywhere with the admin token.
    pub fn grants(&self, req: &HttpRequest) -> bool {
        self.reachable_from(req) && (self.address.is_some() || self.presented_by(req))
    }
}

/// The bearer token a request carries, if any.
fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn state(req: &HttpRequest) -> Result<&web::Data<State>, ApiError> {
    req.app_data::<web::Data<State>>()
        .ok_or_else(|| ApiError::internal("no application state"))
}

/// Proof that the request came in on the admin address with the admin token, and where from
/// (for the audit log).
pub struct Admin {
    from: String,
}

/// Who the audit log says acted through the admin API (and the CLI that calls it).
pub const ADMIN_TOKEN: &str = "admin token";

impl Admin {
    /// Writes one line of the operators' audit log (a failure to is logged: the action is done).
    pub async fn audit(&self, state: &State, what: &str) {
        if let Err(e) = state
            .services
            .accounts
            .audit(ADMIN_TOKEN, what, &self.from)
            .await
        {
            tracing::error!(error = %e, what, "could not write the audit log");
        }
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|state| {
            if !state.admin.reachable_from(req) {
                return Err(ApiError::not_found("no such endpoint"));
            }
            if !state.admin.presented_by(req) {
                return Err(ApiError::unauthorized());
            }
            let from = super::client_ip(req, state.services.settings.client_ip_header.as_deref())
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            Ok(Admin { from })
        }))
    }
}

/// Who is calling the invoice API: the operator (admin token, any user) or an app holding one
/// user's API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator,
    /// An app with `key` (the key's public id), acting for `user`.
    App {
        user: Username,
        key: String,
    },
}

impl Caller {
    /// May this caller act for `user`? Apps only for their own.
    pub fn may_act_for(&self, user: &Username) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::App { user: own, .. } if own == user => Ok(()),
            Self::App { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key belongs to another user",
            )),
        }
    }

    /// The user an app acts for; `None` for the operator.
    pub fn own_user(&self) -> Option<&Username> {
        match self {
            Self::App { user, .. } => Some(user),
            Self::Operator => None,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            authenticate(&req, state).await
        })
    }
}

async fn authenticate(req: &HttpRequest, state: &State) -> Result<Caller, ApiError> {
    let token = bearer(req).ok_or_else(ApiError::unauthorized)?;
    if token.starts_with(API_KEY_PREFIX) {
        // Looked up by its hash: the key itself is never stored or compared.
        let hash = ApiKey::hash(token);
        let key = state.services.db.point(move |s| s.api_key(&hash)).await?;
        return match key {
            Some(key) if key.is_active() => Ok(Caller::App {
                user: key.user,
                key: key.id,
            }),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API key was revoked",
            )),
            None => Err(ApiError::unauthorized()),
        };
    }
    // With an admin address of its own, the admin token works there and nowhere else: the
    // public port must not become a second door to every user's invoices.
    if state.admin.reachable_from(req) && state.admin.presented_by(req) {
        Ok(Caller::Operator)
    } else {
        Err(ApiError::unauthorized())
    }
}
