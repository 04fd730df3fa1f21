//! What the services' errors become on the wire, in one place: a short reason for wallets
//! (LNURL), a status and a code for apps and operators (the JSON APIs).
//!
//! LNURL routes answer `{"status":"ERROR","reason"}` with HTTP 200, because many wallet
//! libraries discard the body of a non-2xx answer, and LUD-06 puts the reason in the body.
//! The admin and invoice APIs use ordinary statuses with `{"error": {"code", "message"}}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::invoices::IssueError;
use crate::lnurl::LnurlError;
use crate::operator::OperatorError;
use crate::store::StoreError;

/// The store failed: logged here, once, and a generic word for the caller.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "a request failed in the store");
        ApiError::internal("the store failed; see the server log")
    }
}

impl From<StoreError> for LnurlError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "a wallet's request failed in the store");
        LnurlError::new("Temporarily unavailable; try again later")
    }
}

impl From<crate::payments::OrderRefusal> for ApiError {
    fn from(refusal: crate::payments::OrderRefusal) -> Self {
        use crate::payments::OrderRefusal::*;
        match refusal {
            NoUser(user) => ApiError::not_found(format!("no user '{user}'")),
            Disabled(user) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("user '{user}' is disabled"),
            ),
            Issue(e) => e.into(),
        }
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError as E;
        match e {
            E::NotFound(m) => ApiError::not_found(m),
            E::Refused(m) => ApiError::invalid(m),
            E::RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; slow down",
            ),
            E::Store(e) => e.into(),
        }
    }
}

impl From<OperatorError> for ApiError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::NotFound(m) => ApiError::not_found(m),
            OperatorError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            OperatorError::Invalid(m) => ApiError::invalid(m),
            OperatorError::Store(e) => e.into(),
        }
    }
}

/// Why no invoice was made, in the words of a wallet (LNURL) and of an app (the invoice API):
/// one place for both.
impl From<IssueError> for LnurlError {
    fn from(e: IssueError) -> Self {
        use IssueError::*;
        LnurlError::new(match e {
            RateLimited => "Too many requests from your address; try again in a minute",
            TooManyPending => "This address has too many unpaid invoices right now; try again later",
            PayerShareUsed => {
                "You have too many unpaid invoices for this address; pay or let some expire first"
            }
            NoBackend => "This address cannot receive payments right now",
            WholeSatsOnly => {
                "Amount must be a whole number of satoshis (a multiple of 1000 msat) for this address"
            }
            CannotCommit => {
                "This address cannot receive zaps: its wallet cannot commit to a zap request"
            }
            AmountOutOfRange => "Amount out of range",
            Backend => "The recipient's wallet could not create an invoice; try again later",
            Timeout => "The recipient's wallet did not answer in time; try again later",
            BadInvoice => "The recipient's wallet returned an invalid invoice",
            Store => "The invoice could not be recorded; try again later",
        })
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        use IssueError::*;
        match e {
            RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many invoices asked for from this address; slow down",
            ),
            TooManyPending | PayerShareUsed => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_pending",
                "this user has as many unpaid invoices as the server allows; wait for some to be paid or expire",
            ),
            NoBackend => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                "the user's backend is not configured",
            ),
            WholeSatsOnly => ApiError::invalid(
                "amount: this user's backend makes whole-satoshi invoices only (a multiple of 1000 msat)",
            ),
            CannotCommit => ApiError::invalid(
                "description: this user's backend cannot commit to a description hash",
            ),
            AmountOutOfRange => ApiError::invalid(format!(
                "amount: must be between 1 msat and {} msat",
                crate::domain::Msat::MAX_MONEY.msat()
            )),
            Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "backend_timeout",
                "the backend did not answer in time",
            ),
            Backend => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_failed",
                "the backend could not create an invoice; see the server log",
            ),
            BadInvoice => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_invalid_invoice",
                "the backend returned an invoice that failed the checks; see the server log",
            ),
            Store => ApiError::internal("the invoice could not be recorded"),
        }
    }
}

#[derive(Serialize)]
struct LnurlErrorBody<'a> {
    status: &'static str,
    reason: &'a str,
}

impl ResponseError for LnurlError {
    fn status_code(&self) -> StatusCode {
        StatusCode::OK
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::Ok().json(LnurlErrorBody {
            status: "ERROR",
            reason: &self.reason,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(Serialize)]
struct ApiErrorBody<'a> {
    error: ApiErrorDetail<'a>,
}

#[derive(Serialize)]
struct ApiErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ApiErrorBody {
            error: ApiErrorDetail {
                code: self.code,
                message: &self.message,
            },
        })
    }
}
