//! The kind 9735 zap receipt rayo signs once a zap invoice is paid.

use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};

use super::ZapRequest;

/// The receipt for a paid zap, as the JSON event to publish. `description` is the request
/// exactly as received, so its SHA-256 is the invoice's `h`.
pub fn zap_receipt(
    keys: &Keys,
    request: &ZapRequest,
    bolt11: &str,
    preimage: Option<&str>,
    paid_at: u64,
) -> Result<String, ReceiptError> {
    let mut tags: Vec<Tag> = Vec::new();
    for copied in &request.copied_tags {
        tags.push(Tag::parse(copied.iter().map(String::as_str))?);
    }
    tags.push(Tag::parse(["bolt11", bolt11])?);
    tags.push(Tag::parse(["description", request.raw.as_str()])?);
    if let Some(preimage) = preimage {
        tags.push(Tag::parse(["preimage", preimage])?);
    }
    let event = EventBuilder::new(Kind::from(9735), "")
        .tags(tags)
        .custom_created_at(Timestamp::from(paid_at))
        .sign_with_keys(keys)?;
    Ok(event.as_json())
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("a receipt tag: {0}")]
    Tag(#[from] nostr::event::tag::Error),
    #[error("signing: {0}")]
    Sign(#[from] nostr::event::builder::Error),
}
