//! Stored invoices. The first byte names the form: `1` is version 1, a compact binary record
//! (postcard) defined here, field by field, apart from the domain type's JSON shape, so the API
//! can change without touching what is on disk; `2` is version 1 followed by the fiat amount
//! the invoice was named in (only such invoices take the extra bytes). A `{` is the JSON of
//! stores written before version 1; it is still read.

use serde::{Deserialize, Serialize};

use super::bolt11::{Known, StoredBolt11};
use crate::domain::{
    AppFields, BackendName, ClientTag, Comment, DescriptionSource, FiatAmount, Hash32, HttpUrl,
    InvoiceRecord, InvoiceStatus, Memo, Msat, PaidDetails, Preimage, Username, WebhookUrl,
};
use crate::store::StoreError;

pub const V1: u8 = 1;
pub const V2: u8 = 2;
const JSON: u8 = b'{';

#[derive(Serialize, Deserialize)]
struct InvoiceV1<'a> {
    payment_hash: [u8; 32],
    user: &'a str,
    amount_msat: u64,
    #[serde(borrow)]
    bolt11: StoredBolt11<'a>,
    #[serde(borrow)]
    described_by: DescribedV1<'a>,
    /// The description hash where `described_by` does not imply it (`None`: it does).
    description_hash: Option<Option<[u8; 32]>>,
    comment: Option<&'a str>,
    status: StatusV1,
    created_at: u64,
    expires_at: u64,
    backend: &'a str,
    backend_kind: &'a str,
    backend_ref: Option<&'a str>,
    #[serde(borrow)]
    app: Option<AppV1<'a>>,
    payer: Option<u64>,
}

/// What version 2 adds after a version 1 record.
#[derive(Serialize, Deserialize)]
struct FiatV2<'a> {
    currency: &'a str,
    value: &'a str,
    rate: &'a str,
    source: &'a str,
    at: u64,
}

#[derive(Serialize, Deserialize)]
enum DescribedV1<'a> {
    /// Implies `h` = the metadata's hash.
    Metadata([u8; 32]),
    MetadataAndPayerData {
        metadata_hash: [u8; 32],
        payer_data: &'a str,
    },
    /// Implies no `h`.
    Memo(&'a str),
    ZapRequest(&'a str),
    /// Implies no `h`. Appended: postcard numbers variants in order.
    Offer([u8; 32]),
}

#[derive(Serialize, Deserialize)]
enum StatusV1 {
    Pending,
    Paid {
        paid_at: u64,
        preimage: Option<[u8; 32]>,
        amount_received_msat: u64,
    },
    Expired,
}

#[derive(Serialize, Deserialize)]
struct AppV1<'a> {
    webhook_url: Option<&'a str>,
    /// JSON text.
    metadata: Option<String>,
    return_url: Option<&'a str>,
}

/// What `described_by` says the description hash is, where it says.
fn implied_hash(described_by: &DescriptionSource) -> Option<Option<Hash32>> {
    match described_by {
        DescriptionSource::Metadata { metadata_hash } => Some(Some(*metadata_hash)),
        DescriptionSource::Memo { .. } | DescriptionSource::Offer { .. } => Some(None),
        DescriptionSource::MetadataAndPayerData { .. } | DescriptionSource::ZapRequest { .. } => {
            None
        }
    }
}

pub fn encode(record: &InvoiceRecord) -> Result<Vec<u8>, StoreError> {
    let described_by = match &record.described_by {
        DescriptionSource::Metadata { metadata_hash } => DescribedV1::Metadata(metadata_hash.0),
        DescriptionSource::MetadataAndPayerData {
            metadata_hash,
            payer_data,
        } => DescribedV1::MetadataAndPayerData {
            metadata_hash: metadata_hash.0,
            payer_data,
        },
        DescriptionSource::Memo { memo } => DescribedV1::Memo(memo.as_str()),
        DescriptionSource::ZapRequest { request } => DescribedV1::ZapRequest(request),
        DescriptionSource::Offer { offer_id } => DescribedV1::Offer(offer_id.0),
    };
    let description_hash = match implied_hash(&record.described_by) {
        Some(implied) if implied == record.description_hash => None,
        _ => Some(record.description_hash.map(|h| h.0)),
    };
    let status = match record.status {
        InvoiceStatus::Pending => StatusV1::Pending,
        InvoiceStatus::Paid(paid) => StatusV1::Paid {
            paid_at: paid.paid_at,
            preimage: paid.preimage.map(|p| p.0 .0),
            amount_received_msat: paid.amount_received_msat.msat(),
        },
        InvoiceStatus::Expired => StatusV1::Expired,
    };
    let stored = InvoiceV1 {
        payment_hash: record.payment_hash.0,
        user: record.user.as_str(),
        amount_msat: record.amount_msat.msat(),
        bolt11: StoredBolt11::pack(
            &record.bolt11,
            Known {
                payment_hash: &record.payment_hash.0,
                description_hash: record.description_hash.as_ref().map(|h| &h.0),
            },
        ),
        described_by,
        description_hash,
        comment: record.comment.as_ref().map(Comment::as_str),
        status,
        created_at: record.created_at,
        expires_at: record.expires_at,
        backend: record.backend.as_str(),
        backend_kind: &record.backend_kind,
        backend_ref: record.backend_ref.as_deref(),
        app: record.app.as_ref().map(|app| AppV1 {
            webhook_url: app.webhook_url.as_ref().map(WebhookUrl::as_str),
            metadata: app.metadata.as_ref().map(|m| m.to_string()),
            return_url: app.return_url.as_ref().map(HttpUrl::as_str),
        }),
        payer: record.payer.map(|tag| tag.0),
    };
    let Some(fiat) = &record.fiat else {
        return postcard::to_extend(&stored, vec![V1]).map_err(corrupt);
    };
    let bytes = postcard::to_extend(&stored, vec![V2]).map_err(corrupt)?;
    let fiat = FiatV2 {
        currency: &fiat.currency,
        value: &fiat.value,
        rate: &fiat.rate,
        source: &fiat.source,
        at: fiat.at,
    };
    postcard::to_extend(&fiat, bytes).map_err(corrupt)
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored invoice: {what}"))
}

pub fn decode(bytes: &[u8]) -> Result<InvoiceRecord, StoreError> {
    match bytes.first() {
        Some(&V1) => {
            let stored: InvoiceV1<'_> = postcard::from_bytes(&bytes[1..]).map_err(corrupt)?;
            from_v1(stored)
        }
        Some(&V2) => {
            let (stored, rest): (InvoiceV1<'_>, _) =
                postcard::take_from_bytes(&bytes[1..]).map_err(corrupt)?;
            let fiat: FiatV2<'_> = postcard::from_bytes(rest).map_err(corrupt)?;
            let mut record = from_v1(stored)?;
            record.fiat = Some(FiatAmount {
                currency: fiat.currency.to_owned(),
                value: fiat.value.to_owned(),
                rate: fiat.rate.to_owned(),
                source: fiat.source.to_owned(),
                at: fiat.at,
            });
            Ok(record)
        }
        Some(&JSON) => super::decode_json(bytes),
        Some(other) => Err(corrupt(format!("unknown form {other}"))),
        None => Err(corrupt("empty")),
    }
}

/// Whether an invoice is `name`'s, without decoding the rest of it (listings by user skip
/// most).
pub fn is_for(bytes: &[u8], name: &str) -> Result<bool, StoreError> {
    match bytes.split_first() {
        Some((&(V1 | V2), rest)) => Ok(user_v1(rest)? == name),
        _ => decode(bytes).map(|record| record.user.as_str() == name),
    }
}

fn user_v1(rest: &[u8]) -> Result<&str, StoreError> {
    let ((_hash, user), _rest): (([u8; 32], &str), _) =
        postcard::take_from_bytes(rest).map_err(corrupt)?;
    Ok(user)
}

fn from_v1(stored: InvoiceV1<'_>) -> Result<InvoiceRecord, StoreError> {
    let described_by = match stored.described_by {
        DescribedV1::Metadata(hash) => DescriptionSource::Metadata {
            metadata_hash: Hash32(hash),
        },
        DescribedV1::MetadataAndPayerData {
            metadata_hash,
            payer_data,
        } => DescriptionSource::MetadataAndPayerData {
            metadata_hash: Hash32(metadata_hash),
            payer_data: payer_data.to_owned(),
        },
        DescribedV1::Memo(memo) => DescriptionSource::Memo {
            memo: Memo::parse(memo).map_err(corrupt)?,
        },
        DescribedV1::ZapRequest(request) => DescriptionSource::ZapRequest {
            request: request.to_owned(),
        },
        DescribedV1::Offer(offer_id) => DescriptionSource::Offer {
            offer_id: Hash32(offer_id),
        },
    };
    let description_hash = match stored.description_hash {
        Some(stated) => stated.map(Hash32),
        None => implied_hash(&described_by).ok_or_else(|| corrupt("no description hash"))?,
    };
    let status = match stored.status {
        StatusV1::Pending => InvoiceStatus::Pending,
        StatusV1::Paid {
            paid_at,
            preimage,
            amount_received_msat,
        } => InvoiceStatus::Paid(PaidDetails {
            paid_at,
            preimage: preimage.map(|p| Preimage(Hash32(p))),
            amount_received_msat: Msat::from_msat(amount_received_msat),
        }),
        StatusV1::Expired => InvoiceStatus::Expired,
    };
    let app = match stored.app {
        Some(app) => Some(AppFields {
            webhook_url: app
                .webhook_url
                .map(WebhookUrl::parse)
                .transpose()
                .map_err(corrupt)?,
            metadata: app
                .metadata
                .map(|m| serde_json::from_str(&m))
                .transpose()
                .map_err(corrupt)?,
            return_url: app
                .return_url
                .map(HttpUrl::parse)
                .transpose()
                .map_err(corrupt)?,
        }),
        None => None,
    };
    Ok(InvoiceRecord {
        payment_hash: Hash32(stored.payment_hash),
        user: Username::parse(stored.user).map_err(corrupt)?,
        amount_msat: Msat::from_msat(stored.amount_msat),
        bolt11: stored
            .bolt11
            .unpack(Known {
                payment_hash: &stored.payment_hash,
                description_hash: description_hash.as_ref().map(|h| &h.0),
            })
            .ok_or_else(|| corrupt("bolt11"))?,
        description_hash,
        described_by,
        comment: stored.comment.map(|c| Comment::stored(c.to_owned())),
        status,
        created_at: stored.created_at,
        expires_at: stored.expires_at,
        backend: BackendName::parse(stored.backend).map_err(corrupt)?,
        backend_kind: stored.backend_kind.to_owned(),
        backend_ref: stored.backend_ref.map(str::to_owned),
        app,
        payer: stored.payer.map(ClientTag),
        fiat: None,
    })
}
