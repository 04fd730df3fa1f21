//! LNURL-pay: the payRequest a wallet discovers, the callback that hands out invoices, and
//! LUD-21 verify.

pub mod bech32;
mod callback;
pub mod invoice_check;
mod pay_request;
mod verify;

pub use callback::{
    memo_for, parse_callback_query, CallbackParams, Issue, IssueError, PayResponse, Payments,
    MAX_QUERY_BYTES, RATE_LIMITED,
};
pub use pay_request::PayProfile;
pub use verify::{VerifyKey, VerifyResponse};
