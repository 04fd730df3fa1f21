//! BIP-353 names: `₿alice@example.com` is the TXT record
//! `alice.user._bitcoin-payment.example.com`, holding `bitcoin:?lno=<the address's offer>`.
//!
//! The records are printed for a DNS host to serve (`records`), or served by rayo itself with
//! online DNSSEC signing (`server`, `zone`, `keys`); `check` reads one back as a payer would.

pub mod check;
pub mod keys;
pub mod providers;
pub mod publish;
pub mod server;
pub mod sync;
pub mod zone;

use serde::{Deserialize, Serialize};

use crate::offers::OfferRecord;

/// The label under each domain that BIP-353 names live in, and the zone rayo can serve.
pub const ZONE_LABELS: &str = "user._bitcoin-payment";
/// A DNS character-string holds at most this many bytes; longer URIs take several.
pub const STRING_MAX: usize = 255;
/// How long resolvers may keep a record, at most (shorter when the offer expires sooner).
pub const RECORD_TTL: u32 = 3600;

/// The zone a domain's names are in: `user._bitcoin-payment.example.com` (no trailing dot).
pub fn zone_for(domain_host: &str) -> String {
    format!("{ZONE_LABELS}.{}", domain_host.trim_end_matches('.'))
}

pub use crate::domain::can_have_names;

/// One record, as every way of publishing it needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bip353Record {
    /// `alice.user._bitcoin-payment.example.com.`
    pub name: String,
    /// What payers show: `₿alice@example.com`.
    pub address: String,
    pub ttl: u32,
    /// The URI split into character-strings of at most 255 bytes, in order.
    pub strings: Vec<String>,
    pub uri: String,
}

impl Bip353Record {
    pub fn of(offer: &OfferRecord, now: u64) -> Self {
        let uri = offer.uri();
        Self {
            name: format!("{}.{}.", offer.user, zone_for(&offer.domain)),
            address: format!("₿{}@{}", offer.user, offer.domain),
            ttl: ttl_for(offer.expires_at, now),
            strings: split_strings(&uri),
            uri,
        }
    }

    /// The record in zone-file form: one line, strings quoted.
    pub fn zone_line(&self) -> String {
        let strings: Vec<String> = self.strings.iter().map(|s| format!("\"{s}\"")).collect();
        format!("{} {} IN TXT {}", self.name, self.ttl, strings.join(" "))
    }
}

/// Shorter than what is left of the offer's life, so no resolver keeps a dead offer.
pub fn ttl_for(expires_at: Option<u64>, now: u64) -> u32 {
    match expires_at {
        Some(at) => {
            let left = at.saturating_sub(now) / 2;
            RECORD_TTL
                .min(u32::try_from(left).unwrap_or(u32::MAX))
                .max(60)
        }
        None => RECORD_TTL,
    }
}

/// Splits `uri` into strings of at most 255 bytes. The URI is ASCII (an offer is bech32), so
/// no character is ever cut in two; a non-ASCII URI is cut at character boundaries anyway.
pub fn split_strings(uri: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut current = String::new();
    for c in uri.chars() {
        if current.len() + c.len_utf8() > STRING_MAX {
            strings.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() || strings.is_empty() {
        strings.push(current);
    }
    strings
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_live_under_the_domains_payment_zone() {
        assert_eq!(zone_for("example.com"), "user._bitcoin-payment.example.com");
        assert!(can_have_names("pay.example.com"));
        assert!(!can_have_names("127.0.0.1"));
        assert!(!can_have_names("localhost"));
        assert!(!can_have_names("[::1]"));
    }

    #[test]
    fn a_long_uri_is_split_into_strings_of_one_record() {
        let uri = format!("bitcoin:?lno=lno1{}", "q".repeat(600));
        let strings = split_strings(&uri);
        assert_eq!(strings.len(), 3);
        assert!(strings.iter().all(|s| s.len() <= STRING_MAX));
        assert_eq!(strings[0].len(), STRING_MAX);
        assert_eq!(strings.concat(), uri);
    }

    #[test]
    fn the_ttl_is_shorter_than_the_offers_life() {
        assert_eq!(ttl_for(None, 0), RECORD_TTL);
        assert_eq!(ttl_for(Some(1000), 0), 500);
        assert_eq!(ttl_for(Some(1_000_000), 0), RECORD_TTL);
        assert_eq!(ttl_for(Some(10), 20), 60);
    }

    proptest! {
        #[test]
        fn splitting_keeps_every_byte_in_order_within_the_limit(uri in "\\PC{0,900}") {
            let strings = split_strings(&uri);
            prop_assert_eq!(strings.concat(), uri);
            prop_assert!(strings.iter().all(|s| s.len() <= STRING_MAX));
        }
    }
}
