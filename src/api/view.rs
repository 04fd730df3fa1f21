use serde::{Deserialize, Serialize};

use crate::domain::{DescriptionSource, InvoiceRecord};

/// An invoice as apps see it: in the invoice API, on the live stream and in webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInvoiceView {
    pub payment_hash: String,
    pub user: String,
    pub amount_msat: u64,
    /// `pending`, `paid` or `expired`.
    pub status: String,
    pub bolt11: String,
    /// The memo in the invoice's `d` field, for invoices that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// LUD-18 payer data exactly as the wallet sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_data: Option<String>,
    /// The NIP-57 zap request the invoice commits to, exactly as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zap_request: Option<String>,
    /// What the app attached when creating the invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_received_msat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
}

impl AppInvoiceView {
    pub fn of(record: &InvoiceRecord, now: u64) -> Self {
        let paid = record.paid();
        Self {
            payment_hash: record.payment_hash.to_hex(),
            user: record.user.to_string(),
            amount_msat: record.amount_msat.msat(),
            status: record.status_at(now).name().to_owned(),
            bolt11: record.bolt11.clone(),
            description: match &record.described_by {
                DescriptionSource::Memo { memo } => Some(memo.clone()),
                _ => None,
            },
            comment: record.comment.as_ref().map(|c| c.as_str().to_owned()),
            payer_data: record.described_by.payer_data().map(str::to_owned),
            zap_request: record.described_by.zap_request().map(str::to_owned),
            metadata: record.app.as_ref().and_then(|a| a.metadata.clone()),
            created_at: record.created_at,
            expires_at: record.expires_at,
            paid_at: paid.map(|p| p.paid_at),
            preimage: paid.and_then(|p| p.preimage).map(|p| p.0.to_hex()),
            amount_received_msat: paid.map(|p| p.amount_received_msat.msat()),
            verify_url: None,
            checkout_url: None,
        }
    }

    /// Whether this is the invoice's last word: paid or expired.
    pub fn is_final(&self) -> bool {
        self.status != "pending"
    }
}
