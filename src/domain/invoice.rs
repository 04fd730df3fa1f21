use serde::{Deserialize, Serialize};

use super::{BackendName, Comment, Hash32, HttpUrl, Memo, Msat, Preimage, Username, WebhookUrl};

/// One invoice handed to a payer, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub payment_hash: Hash32,
    pub user: Username,
    pub amount_msat: Msat,
    pub bolt11: String,
    /// The `h` tag the invoice commits to; `None` for memo invoices from backends without
    /// description-hash support.
    pub description_hash: Option<Hash32>,
    pub described_by: DescriptionSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
    pub status: InvoiceStatus,
    pub created_at: u64,
    pub expires_at: u64,
    /// The configured backend's name, and its kind (`dev`, `lnd`, ...) when the invoice was made.
    pub backend: BackendName,
    #[serde(default)]
    pub backend_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
    /// Present on invoices an app created through the invoice API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppFields>,
    /// Which payer asked for it (a keyed hash of their network, never the address itself), so
    /// the share of a user's unpaid invoices each payer holds survives a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<ClientTag>,
    /// Present when the amount was named in a currency: what, and at which rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat: Option<FiatAmount>,
}

/// An amount named in a currency, and the rate it was converted at. The rate holds for the
/// invoice's life: the payer pays the millisatoshis it was converted to, whatever the price
/// does before the invoice expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiatAmount {
    /// ISO 4217 code (or the code rayo offers it under, e.g. USDC).
    pub currency: String,
    /// The amount as a decimal string in the currency's unit ("5.00").
    pub value: String,
    /// The price of one bitcoin in the currency that was used, as a decimal string.
    pub rate: String,
    /// The sources the rate was the median of, comma-separated.
    pub source: String,
    /// When the oldest quote behind the rate was read, unix seconds.
    pub at: u64,
}

/// A payer's network (an IPv4 address or IPv6 /64) as a keyed hash: enough to count what one
/// payer holds, not enough to say who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientTag(pub u64);

/// What an app attached to an invoice it created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFields {
    /// Told about this invoice in addition to the user's own webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<WebhookUrl>,
    /// Opaque JSON the app gets back in the API and in webhooks (an order id, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Where the checkout page sends the customer once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<HttpUrl>,
}

/// What the description hash was computed over. The metadata string is stored once, content
/// addressed by its hash, rather than in every invoice: with an image it can be tens of
/// kilobytes, and the callback is the hot write path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DescriptionSource {
    /// `h = sha256(metadata)`
    Metadata { metadata_hash: Hash32 },
    /// `h = sha256(metadata + payer_data)` (LUD-18), payer data exactly as received.
    MetadataAndPayerData {
        metadata_hash: Hash32,
        payer_data: String,
    },
    /// No hash: the invoice carries this memo in its `d` field.
    Memo { memo: Memo },
    /// `h = sha256(request)`: a NIP-57 zap request, exactly as received.
    ZapRequest { request: String },
    /// Paid through the address's BOLT12 offer (BIP-353): the BOLT12 invoice commits to the
    /// offer, not to a description hash.
    Offer { offer_id: Hash32 },
}

impl DescriptionSource {
    pub fn metadata_hash(&self) -> Option<Hash32> {
        match self {
            Self::Metadata { metadata_hash } | Self::MetadataAndPayerData { metadata_hash, .. } => {
                Some(*metadata_hash)
            }
            Self::Memo { .. } | Self::ZapRequest { .. } | Self::Offer { .. } => None,
        }
    }

    pub fn zap_request(&self) -> Option<&str> {
        match self {
            Self::ZapRequest { request } => Some(request),
            _ => None,
        }
    }

    pub fn payer_data(&self) -> Option<&str> {
        match self {
            Self::MetadataAndPayerData { payer_data, .. } => Some(payer_data),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidDetails {
    pub paid_at: u64,
    /// `None` only where the upstream never reveals it (Buda.com credits a deposit without one).
    pub preimage: Option<Preimage>,
    pub amount_received_msat: Msat,
}

/// Moves only forward: pending -> paid, or pending -> expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum InvoiceStatus {
    Pending,
    Paid(PaidDetails),
    Expired,
}

impl InvoiceStatus {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid(_) => "paid",
            Self::Expired => "expired",
        }
    }
}

impl InvoiceRecord {
    /// The status as of `now`: a pending invoice past its expiry can no longer be paid.
    pub fn status_at(&self, now: u64) -> InvoiceStatus {
        match self.status {
            InvoiceStatus::Pending if now >= self.expires_at => InvoiceStatus::Expired,
            status => status,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.status == InvoiceStatus::Pending
    }

    pub fn paid(&self) -> Option<&PaidDetails> {
        match &self.status {
            InvoiceStatus::Paid(details) => Some(details),
            _ => None,
        }
    }
}
