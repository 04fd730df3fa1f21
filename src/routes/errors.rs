//! What the services' errors become on the wire, in one place: a short reason for wallets
//! (LNURL), a status and a code for apps and operators (the JSON APIs).

use actix_web::http::StatusCode;

use crate::error::{ApiError, LnurlError};
use crate::invoices::IssueError;
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
