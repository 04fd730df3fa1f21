//! The wallet-facing safety net: every invoice a backend returns is decoded and compared with
//! what was asked for before any wallet sees it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin_hashes::Hash;
use lightning_invoice::{Currency, SignedRawBolt11Invoice};

use crate::domain::{Hash32, Msat};

/// BOLT11: an invoice without an `x` field expires after an hour.
const DEFAULT_EXPIRY_SECS: u64 = 3600;

/// An invoice must leave the payer at least this long to pay it. Below the shortest expiry an
/// app may ask for (30 s), with room for the backend's round trip and second-rounded timestamps.
pub const MIN_REMAINING_VALIDITY: Duration = Duration::from_secs(20);

pub struct Expected<'a> {
    pub amount: Msat,
    /// `Some(h)`: must commit to `h`. `None`: a memo invoice, which must carry `memo`.
    pub description_hash: Option<Hash32>,
    pub memo: Option<&'a str>,
    pub network: Currency,
    pub payment_hash: Hash32,
    pub now: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceCheckError {
    #[error("not a valid signed BOLT11 invoice: {0}")]
    Undecodable(String),
    #[error("amount is {got:?} msat, {expected} msat was requested")]
    WrongAmount { expected: u64, got: Option<u64> },
    #[error("description hash does not match the metadata")]
    WrongDescriptionHash,
    #[error("description does not match the memo")]
    WrongMemo,
    #[error("invoice is for {got:?}, this server is set up for {expected:?}")]
    WrongNetwork { expected: Currency, got: Currency },
    #[error("payment hash differs from the one the backend reported")]
    WrongPaymentHash,
    #[error("invoice is expired or expires within {}s", MIN_REMAINING_VALIDITY.as_secs())]
    Expired,
}

/// What the checked invoice says about time, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedInvoice {
    pub created_at: u64,
    pub expires_at: u64,
}

pub fn check_invoice(
    bolt11: &str,
    expected: &Expected<'_>,
) -> Result<CheckedInvoice, InvoiceCheckError> {
    // The signed raw form, not `Bolt11Invoice`: that one also enforces feature bits, which some
    // upstreams omit (LNbits' FakeWallet) and wallets do not require. What decides whether a
    // payer can pay is checked below, the signature first.
    let signed: SignedRawBolt11Invoice = bolt11
        .parse()
        .map_err(|e| InvoiceCheckError::Undecodable(format!("{e}")))?;
    if !signed.check_signature() {
        return Err(InvoiceCheckError::Undecodable(
            "the signature does not verify".into(),
        ));
    }
    let raw = signed.raw_invoice();
    // Amounts are in pico-bitcoin: 10 per millisatoshi.
    let got = raw
        .amount_pico_btc()
        .filter(|p| p % 10 == 0)
        .map(|p| p / 10);
    if got != Some(expected.amount.msat()) {
        return Err(InvoiceCheckError::WrongAmount {
            expected: expected.amount.msat(),
            got,
        });
    }
    match (expected.description_hash, expected.memo) {
        (Some(want), _) => {
            if raw.description_hash().map(|h| h.0.to_byte_array()) != Some(want.0) {
                return Err(InvoiceCheckError::WrongDescriptionHash);
            }
        }
        (None, memo) => {
            if raw.description().map(|d| d.as_inner().0.as_str()) != memo || memo.is_none() {
                return Err(InvoiceCheckError::WrongMemo);
            }
        }
    }
    if raw.currency() != expected.network {
        return Err(InvoiceCheckError::WrongNetwork {
            expected: expected.network.clone(),
            got: raw.currency(),
        });
    }
    if raw.payment_hash().map(|h| h.0.to_byte_array()) != Some(expected.payment_hash.0) {
        return Err(InvoiceCheckError::WrongPaymentHash);
    }
    let created_at = raw.data.timestamp.as_unix_timestamp();
    let expiry = raw
        .expiry_time()
        .map_or(DEFAULT_EXPIRY_SECS, |e| e.as_seconds());
    let expires_at = created_at.saturating_add(expiry);
    let now = expected.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    if Duration::from_secs(expires_at) < now + MIN_REMAINING_VALIDITY {
        return Err(InvoiceCheckError::Expired);
    }
    Ok(CheckedInvoice {
        created_at,
        expires_at,
    })
}
