//! BOLT12 offers as rayo keeps them: an address's offer, and a payment to one. The offers
//! themselves are made and checked in `offers`; here is only what lower layers (backends,
//! the store, the ledger) need to name them.

use serde::{Deserialize, Serialize};

use super::{BackendName, Hash32, Msat, Preimage, Username};

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

/// What a backend says was paid to one of its offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferPayment {
    pub offer_id: Hash32,
    pub payment_hash: Hash32,
    pub preimage: Option<Preimage>,
    pub amount: Msat,
    pub paid_at: u64,
    /// The payer's note (BOLT12 `invreq_payer_note`), shown as the payment's comment.
    pub payer_note: Option<String>,
    /// The BOLT12 invoice that was paid (`lni1…`), where the backend gives it.
    pub invoice: Option<String>,
}

/// Whether `host` can carry BIP-353 names: a DNS name, not an IP address.
pub fn can_have_names(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[') && host.contains('.')
}
