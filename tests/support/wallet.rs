//! What a careful wallet does with an answer, written independently of rayo's own checks:
//! decode the BOLT11, verify its signature, compare amount and description hash.

use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, SignedRawBolt11Invoice};

pub struct CheckedInvoice {
    pub payment_hash: String,
}

/// Panics with the reason a strict wallet would refuse the invoice (a regtest one).
pub fn check_invoice(pr: &str, amount_msat: u64, hashed: &str) -> CheckedInvoice {
    check_invoice_on(Currency::Regtest, pr, amount_msat, hashed)
}

pub fn check_invoice_on(
    network: Currency,
    pr: &str,
    amount_msat: u64,
    hashed: &str,
) -> CheckedInvoice {
    // Like python's and npm's `bolt11`, this does not insist on feature bits (FakeWallet omits them).
    let invoice: SignedRawBolt11Invoice = pr
        .parse()
        .unwrap_or_else(|e| panic!("undecodable invoice {pr}: {e:?}"));
    assert!(invoice.check_signature(), "signature verifies");
    let raw = invoice.raw_invoice();
    assert_eq!(
        raw.amount_pico_btc(),
        Some(amount_msat * 10),
        "invoice amount"
    );
    let want = sha256::Hash::hash(hashed.as_bytes());
    let h = raw
        .description_hash()
        .unwrap_or_else(|| panic!("expected a description hash in {pr}"));
    assert_eq!(h.0, want, "description hash must be sha256 of {hashed:?}");
    assert_eq!(raw.currency(), network);
    let expiry = raw.expiry_time().map_or(3600, |e| e.as_seconds());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        raw.data.timestamp.as_unix_timestamp() + expiry > now,
        "not expired"
    );
    let payment_hash = hex::encode(raw.payment_hash().expect("payment hash").0.to_byte_array());
    CheckedInvoice { payment_hash }
}

/// LUD-21: a settled invoice's preimage must hash to its payment hash.
pub fn assert_preimage_matches(preimage_hex: &str, payment_hash_hex: &str) {
    let preimage = hex::decode(preimage_hex).expect("hex preimage");
    assert_eq!(
        hex::encode(sha256::Hash::hash(&preimage).to_byte_array()),
        payment_hash_hex
    );
}
