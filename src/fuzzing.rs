//! The entry points fuzz targets (`fuzz/`) drive, shared with the test that replays their
//! corpora on every `cargo test`. Each takes arbitrary bytes and must never panic.

use crate::domain::{Comment, Msat, PayerData, PayerDataSpec, Username};
use crate::invoices::{check_invoice, Expected};
use crate::lnurl::{bech32, parse_callback_query};
use crate::nostr::ZapRequest;

fn text(data: &[u8]) -> &str {
    std::str::from_utf8(data).unwrap_or("")
}

/// The callback's query string, then each parameter's own parser.
pub fn callback_query(data: &[u8]) {
    let Ok(params) = parse_callback_query(text(data)) else {
        return;
    };
    if let Some(amount) = params.amount.as_deref() {
        let _ = Msat::parse(amount);
    }
    if let Some(comment) = params.comment.as_deref() {
        let _ = Comment::parse(comment, 255);
    }
    if let Some(payer_data) = params.payer_data.as_deref() {
        let spec =
            PayerDataSpec::parse_list("name,pubkey,identifier,email:mandatory").unwrap_or_default();
        let _ = PayerData::parse(payer_data, &spec);
    }
    if let Some(nostr) = params.nostr.as_deref() {
        let _ = ZapRequest::parse(nostr, 1000);
    }
}

pub fn zap_request(data: &[u8]) {
    let _ = ZapRequest::parse(text(data), 21_000);
}

pub fn username(data: &[u8]) {
    let raw = text(data);
    let _ = Username::parse(raw);
    let _ = Username::parse_new(raw);
    let _ = Username::from_address(raw);
}

pub fn lnurl(data: &[u8]) {
    if let Ok(url) = bech32::decode(text(data)) {
        // What decodes must encode again to the same URL.
        if let Some(encoded) = bech32::encode(&url) {
            assert_eq!(bech32::decode(&encoded).ok(), Some(url));
        }
    }
}

/// What backends answer: their JSON decoders, and the invoice check on whatever bolt11 comes.
pub fn backend_response(data: &[u8]) {
    crate::backends::decode_any_response(data);
    let expected = Expected {
        amount: Msat::from_msat(1000),
        description_hash: None,
        memo: Some(""),
        network: lightning_invoice::Currency::Regtest,
        payment_hash: Some(crate::domain::Hash32([0; 32])),
        node: None,
        now: std::time::UNIX_EPOCH,
    };
    let _ = check_invoice(text(data), &expected);
}

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` call them.
pub const TARGETS: [(&str, Target); 5] = [
    ("callback_query", callback_query),
    ("zap_request", zap_request),
    ("username", username),
    ("lnurl", lnurl),
    ("backend_response", backend_response),
];
