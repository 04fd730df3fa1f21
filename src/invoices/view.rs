//! One view of an invoice, with what each audience adds: apps (the invoice API, live status,
//! webhook bodies) and operators (the admin API and the CLI).

use serde::{Deserialize, Serialize};

use crate::domain::{DescriptionSource, FiatAmount, InvoiceRecord, StatusName};

/// What every audience sees of an invoice, and `E`, what one audience adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView<E> {
    pub payment_hash: String,
    pub user: String,
    pub amount_msat: u64,
    /// As of when the view was made: a pending invoice past its expiry is `expired`.
    pub status: StatusName,
    pub bolt11: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// LUD-18 payer data exactly as the wallet sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_data: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_received_msat: Option<u64>,
    /// The currency amount the invoice was named in, and the rate used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat: Option<FiatAmount>,
    #[serde(flatten)]
    pub more: E,
}

/// What apps see besides: in the invoice API, on the live stream and in webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForApps {
    /// The memo in the invoice's `d` field, for invoices that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The NIP-57 zap request the invoice commits to, exactly as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zap_request: Option<String>,
    /// What the app attached when creating the invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
}

/// What operators see besides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForOperators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_hash: Option<String>,
    /// The exact string `description_hash` is the SHA-256 of (single-invoice views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The configured backend's name, and what kind of backend it was.
    pub backend: String,
    #[serde(default)]
    pub backend_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
}

pub type AppInvoiceView = InvoiceView<ForApps>;
pub type OperatorInvoiceView = InvoiceView<ForOperators>;

fn memo_of(record: &InvoiceRecord) -> Option<String> {
    match &record.described_by {
        DescriptionSource::Memo { memo } => Some(memo.to_string()),
        _ => None,
    }
}

impl<E> InvoiceView<E> {
    fn of(record: &InvoiceRecord, now: u64, more: E) -> Self {
        let paid = record.paid();
        Self {
            payment_hash: record.payment_hash.to_hex(),
            user: record.user.to_string(),
            amount_msat: record.amount_msat.msat(),
            status: StatusName::of(&record.status_at(now)),
            bolt11: record.bolt11.clone(),
            comment: record.comment.as_ref().map(|c| c.as_str().to_owned()),
            payer_data: record.described_by.payer_data().map(str::to_owned),
            created_at: record.created_at,
            expires_at: record.expires_at,
            paid_at: paid.map(|p| p.paid_at),
            preimage: paid.and_then(|p| p.preimage).map(|p| p.0.to_hex()),
            amount_received_msat: paid.map(|p| p.amount_received_msat.msat()),
            fiat: record.fiat.clone(),
            more,
        }
    }

    /// Whether this is the invoice's last word: paid or expired.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

impl AppInvoiceView {
    /// Without the URLs: a webhook's body (the receiver has them already).
    pub fn for_apps(record: &InvoiceRecord, now: u64) -> Self {
        let more = ForApps {
            description: memo_of(record),
            zap_request: record.described_by.zap_request().map(str::to_owned),
            metadata: record.app.as_ref().and_then(|a| a.metadata.clone()),
            verify_url: None,
            checkout_url: None,
        };
        Self::of(record, now, more)
    }
}

impl OperatorInvoiceView {
    /// `hashed_description`: the exact string the description hash commits to, where known.
    pub fn for_operators(
        record: &InvoiceRecord,
        now: u64,
        hashed_description: Option<String>,
    ) -> Self {
        let more = ForOperators {
            description_hash: record.description_hash.map(|h| h.to_hex()),
            hashed_description,
            memo: memo_of(record),
            backend: record.backend.to_string(),
            backend_kind: record.backend_kind.clone(),
            backend_ref: record.backend_ref.clone(),
        };
        Self::of(record, now, more)
    }
}
