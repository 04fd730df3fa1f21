//! Nostr: NIP-57 zap requests checked at the callback, zap receipts signed and published to
//! relays once paid, and the server's Nostr identity. (NIP-05 lives in the routes.)

pub mod connect;
mod identity;
mod receipt;
mod relay;
mod zap_request;

pub use identity::{IdentityError, NostrIdentity};
pub use receipt::zap_receipt;
pub use relay::{latest_event, publish, PublishError};
pub use zap_request::{ZapError, ZapRequest, MAX_RELAYS, MAX_ZAP_REQUEST_BYTES};
