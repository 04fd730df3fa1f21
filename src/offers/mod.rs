//! BOLT12 offers: one reusable offer per address, from backends that can make one, so the
//! address can be paid by its BIP-353 name (`₿alice@example.com`) as well as by LNURL.
//!
//! The keeper makes, checks and stores each user's offer and forgets those of users who went;
//! payments to an offer become that user's paid invoices through the ledger, like any other.

mod check;
mod keeper;
mod payment;

pub use check::{check_offer, CheckedOffer, ExpectedOffer, OfferCheckError};
pub use keeper::{Keeper, KeeperReport};
pub use payment::{record_offer_payment, OfferPayment};

use serde::{Deserialize, Serialize};

use crate::domain::{BackendName, Hash32, Username};
use crate::store::{RecordKind, Store, StoreError};

/// A user's published offer, stored by username (`RecordKind::Offer`); its owner is found by
/// the offer's id (`RecordKind::OfferOwner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferRecord {
    pub user: Username,
    /// The domain part of the address, as the offer's description names it.
    pub domain: String,
    /// `lno1…`, as checked.
    pub offer: String,
    pub offer_id: Hash32,
    pub description: String,
    /// The configured backend that made it.
    pub backend: BackendName,
    pub backend_kind: String,
    /// The backend's own handle for it (CLN's offer id), to disable it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    pub made_at: u64,
}

impl OfferRecord {
    /// The BIP-321 URI a BIP-353 record carries.
    pub fn uri(&self) -> String {
        format!("bitcoin:?lno={}", self.offer)
    }
}

/// What an address's offer describes: the address, so a payer's wallet shows whom it pays,
/// and a backend's offer for someone else is refused (see `check`).
pub fn description_for(user: &Username, domain: &str) -> String {
    format!("Payment to {user}@{domain}")
}

/// The stored offer of `user`, if any.
pub fn stored(store: &dyn Store, user: &Username) -> Result<Option<OfferRecord>, StoreError> {
    Ok(store
        .record(RecordKind::Offer, user.as_str())?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Every stored offer, by username.
pub fn all_stored(store: &dyn Store) -> Result<Vec<OfferRecord>, StoreError> {
    Ok(store
        .records(RecordKind::Offer, "", usize::MAX)?
        .into_iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect())
}

/// Whose offer `offer_id` is.
pub fn owner_of(store: &dyn Store, offer_id: &Hash32) -> Result<Option<Username>, StoreError> {
    Ok(store
        .record(RecordKind::OfferOwner, &offer_id.to_hex())?
        .and_then(|bytes| serde_json::from_slice::<String>(&bytes).ok())
        .and_then(|name| Username::parse(&name).ok()))
}
