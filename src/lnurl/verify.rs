//! LUD-21 verify. The URL carries the payment hash and a tag, `HMAC(key, payment hash)`, so
//! knowing a bolt11 (which is public once shared, e.g. in a zap receipt) is not enough to ask
//! for its preimage: only whoever received the callback's answer can.

use serde::{Deserialize, Serialize};

use crate::config::PublicUrl;
use crate::crypto::{hmac_sha256, secrets_match};
use crate::domain::{Hash32, InvoiceRecord, Username};

const TAG_BYTES: usize = 16;

#[derive(Clone)]
pub struct VerifyKey([u8; 32]);

impl VerifyKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn tag(&self, payment_hash: &Hash32) -> String {
        hex::encode(&hmac_sha256(&self.0, &payment_hash.0)[..TAG_BYTES])
    }

    pub fn url(&self, public_url: &PublicUrl, user: &Username, payment_hash: &Hash32) -> String {
        public_url.join(&format!(
            "/lnurlp/{user}/verify/{payment_hash}/{}",
            self.tag(payment_hash)
        ))
    }

    pub fn accepts(&self, payment_hash: &Hash32, tag: &str) -> bool {
        secrets_match(self.tag(payment_hash).as_bytes(), tag.as_bytes())
    }
}

/// Exactly LUD-21's fields: a strict client rejects any others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub status: String,
    pub settled: bool,
    pub preimage: Option<String>,
    pub pr: String,
}

impl VerifyResponse {
    pub fn of(invoice: &InvoiceRecord) -> Self {
        let paid = invoice.paid();
        Self {
            status: "OK".into(),
            settled: paid.is_some(),
            // A deposit credited without a preimage (Buda.com) is settled, with `null` for it.
            preimage: paid.and_then(|p| p.preimage).map(|p| p.0.to_hex()),
            pr: invoice.bolt11.clone(),
        }
    }
}
