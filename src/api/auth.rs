use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use crate::clock::secrets_match;
use crate::domain::{ApiKey, Username, API_KEY_PREFIX};
use crate::error::ApiError;
use crate::lnurl::Payments;
use crate::routes::AdminToken;

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
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    if token.starts_with(API_KEY_PREFIX) {
        // Looked up by its hash: the key itself is never stored or compared.
        let payments = req
            .app_data::<web::Data<Payments>>()
            .ok_or_else(|| ApiError::internal("invoice API is not configured"))?;
        let key = payments
            .db
            .store()
            .api_key(&ApiKey::hash(token))
            .map_err(|e| {
                tracing::error!(error = %e, "could not read API keys");
                ApiError::internal("the store failed; see the server log")
            })?;
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
    if !crate::routes::on_admin_address(req) {
        return Err(ApiError::unauthorized());
    }
    let admin = req.app_data::<web::Data<AdminToken>>();
    match admin {
        Some(expected) if secrets_match(token.as_bytes(), expected.0.expose().as_bytes()) => {
            Ok(Caller::Operator)
        }
        _ => Err(ApiError::unauthorized()),
    }
}
