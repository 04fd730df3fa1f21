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
) -> Result<String, String> {
    let mut tags: Vec<Tag> = Vec::new();
    for copied in &request.copied_tags {
        tags.push(Tag::parse(copied.iter().map(String::as_str)).map_err(|e| e.to_string())?);
    }
    tags.push(Tag::parse(["bolt11", bolt11]).map_err(|e| e.to_string())?);
    tags.push(Tag::parse(["description", request.raw.as_str()]).map_err(|e| e.to_string())?);
    if let Some(preimage) = preimage {
        tags.push(Tag::parse(["preimage", preimage]).map_err(|e| e.to_string())?);
    }
    let event = EventBuilder::new(Kind::from(9735), "")
        .tags(tags)
        .custom_created_at(Timestamp::from(paid_at))
        .sign_with_keys(keys)
        .map_err(|e| e.to_string())?;
    Ok(event.as_json())
}
