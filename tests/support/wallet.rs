//! What a careful wallet does with an answer, written independently of rayo's own checks:
//! decode the BOLT11, verify its signature, compare amount and description hash.

use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef, Currency};

pub struct CheckedInvoice {
    pub invoice: Bolt11Invoice,
    pub payment_hash: String,
}

/// Panics with the reason a strict wallet would refuse the invoice.
pub fn check_invoice(pr: &str, amount_msat: u64, hashed: &str) -> CheckedInvoice {
    let invoice: Bolt11Invoice = pr
        .parse()
        .unwrap_or_else(|e| panic!("undecodable invoice {pr}: {e:?}"));
    invoice.check_signature().expect("signature verifies");
    assert_eq!(
        invoice.amount_milli_satoshis(),
        Some(amount_msat),
        "invoice amount"
    );
    let want = sha256::Hash::hash(hashed.as_bytes());
    match invoice.description() {
        Bolt11InvoiceDescriptionRef::Hash(h) => {
            assert_eq!(h.0, want, "description hash must be sha256 of {hashed:?}")
        }
        Bolt11InvoiceDescriptionRef::Direct(d) => {
            panic!("expected a description hash, got memo {d}")
        }
    }
    assert_eq!(invoice.currency(), Currency::Regtest);
    assert!(!invoice.is_expired());
    let payment_hash = hex::encode(invoice.payment_hash().to_byte_array());
    CheckedInvoice {
        invoice,
        payment_hash,
    }
}

/// LUD-21: a settled invoice's preimage must hash to its payment hash.
pub fn assert_preimage_matches(preimage_hex: &str, payment_hash_hex: &str) {
    let preimage = hex::decode(preimage_hex).expect("hex preimage");
    assert_eq!(
        hex::encode(sha256::Hash::hash(&preimage).to_byte_array()),
        payment_hash_hex
    );
}
