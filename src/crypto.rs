//! The few cryptographic helpers rayo's own code calls directly (the rest lives in
//! `bitcoin_hashes`, `secp256k1`, `lightning-invoice` and `nostr`).

use bitcoin_hashes::{hmac, sha256, Hash, HashEngine};

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(data);
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// Compares two secrets without leaking, through timing, how much of them matched. Hashing
/// first makes the comparison fixed-length whatever the inputs' lengths.
pub fn secrets_match(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (sha256::Hash::hash(a), sha256::Hash::hash(b));
    bitcoin_hashes::cmp::fixed_time_eq(a.as_byte_array(), b.as_byte_array())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match(b"token", b"token"));
        assert!(!secrets_match(b"token", b"token2"));
        assert!(!secrets_match(b"", b"token"));
    }
}
