//! LNURL-pay, the protocol only: the payRequest a wallet discovers, its callback's query
//! checked into a typed payment request, LUD-21 verify, and LUD-01 bech32.

pub mod bech32;
mod callback;
mod currencies;
mod error;
mod pay_request;
mod sendable;
mod verify;

pub use callback::{
    parse_callback_query, CallbackParams, FormAmount, PayResponse, PaymentRequest, MAX_QUERY_BYTES,
};
pub use currencies::currencies;
pub use error::LnurlError;
pub use pay_request::{address, lnurl, PayProfile};
pub use sendable::Sendable;
pub use verify::{VerifyKey, VerifyResponse};
