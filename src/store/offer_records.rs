//! Where the addresses' BOLT12 offers are kept (`RecordKind::Offer`, by username) and who
//! owns each (`RecordKind::OfferOwner`, by offer id): read by the keeper, the pages, the DNS
//! zones and the ledger that records payments to them.

use super::{RecordKind, Store, StoreError};
use crate::domain::{Hash32, OfferRecord, Username};

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
