//! The wallet-facing safety net: every invoice a backend returns is decoded and compared with
//! what was asked for before any wallet sees it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin_hashes::Hash;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef, Currency};

use crate::domain::{Hash32, Msat};

/// An invoice must leave the payer at least this long to pay it.
pub const MIN_REMAINING_VALIDITY: Duration = Duration::from_secs(30);

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
    // Parsing verifies the signature as well as the encoding.
    let invoice: Bolt11Invoice = bolt11
        .parse()
        .map_err(|e| InvoiceCheckError::Undecodable(format!("{e}")))?;
    let got = invoice.amount_milli_satoshis();
    if got != Some(expected.amount.msat()) {
        return Err(InvoiceCheckError::WrongAmount {
            expected: expected.amount.msat(),
            got,
        });
    }
    match (
        invoice.description(),
        expected.description_hash,
        expected.memo,
    ) {
        (Bolt11InvoiceDescriptionRef::Hash(h), Some(want), _) if h.0.to_byte_array() == want.0 => {}
        (Bolt11InvoiceDescriptionRef::Direct(d), None, Some(memo)) if d.as_inner().0 == memo => {}
        (_, Some(_), _) => return Err(InvoiceCheckError::WrongDescriptionHash),
        (_, None, _) => return Err(InvoiceCheckError::WrongMemo),
    }
    if invoice.currency() != expected.network {
        return Err(InvoiceCheckError::WrongNetwork {
            expected: expected.network.clone(),
            got: invoice.currency(),
        });
    }
    if invoice.payment_hash().to_byte_array() != expected.payment_hash.0 {
        return Err(InvoiceCheckError::WrongPaymentHash);
    }
    let now = expected.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let expires_at = invoice.expires_at().ok_or(InvoiceCheckError::Expired)?;
    if expires_at < now + MIN_REMAINING_VALIDITY {
        return Err(InvoiceCheckError::Expired);
    }
    Ok(CheckedInvoice {
        created_at: invoice.duration_since_epoch().as_secs(),
        expires_at: expires_at.as_secs(),
    })
}
