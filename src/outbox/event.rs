//! What an event says and how it is signed. The body is fixed when the event is queued; the
//! signature is made at each attempt, over a fresh timestamp, so receivers can refuse replays.

use serde::Serialize;

use crate::crypto::hmac_sha256;
use crate::domain::{
    EventId, EventKind, InvoiceRecord, InvoiceStatus, OutboxItem, PaidDetails, RelayUrl, Target,
    User, WebhookUrl,
};
use crate::invoices::AppInvoiceView;
use crate::net::{self, Reach};
use crate::nostr::{zap_receipt, NostrIdentity, ZapRequest};

pub const SIGNATURE_HEADER: &str = "Rayo-Signature";
pub const EVENT_ID_HEADER: &str = "Rayo-Event-Id";

#[derive(Serialize)]
struct Envelope<'a> {
    id: EventId,
    #[serde(rename = "type")]
    kind: EventKind,
    created_at: u64,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    invoice: &'a AppInvoiceView,
}

/// What signing and sending zap receipts needs.
#[derive(Clone)]
pub struct ZapContext {
    pub identity: NostrIdentity,
    /// Relays every receipt also goes to.
    pub fallback_relays: Vec<RelayUrl>,
    /// Where relays may be: public addresses only, unless the operator allows private ones.
    pub reach: Reach,
}

/// A signed zap receipt and the relays it goes to. Made before the ledger's write (signing
/// and re-checking the request cost tens of microseconds, which the store's single writer
/// should not spend).
#[derive(Debug, Clone)]
pub struct ZapReceipt {
    pub body: String,
    pub relays: Vec<RelayUrl>,
}

/// The receipt for `record` if it is a zap, once paid with `paid`.
pub fn prepare_zap_receipt(
    record: &InvoiceRecord,
    paid: &PaidDetails,
    zaps: &ZapContext,
) -> Option<ZapReceipt> {
    let raw = record.described_by.zap_request()?;
    // Checked when the invoice was made; parsed again for its relays and tags.
    let request = match ZapRequest::parse(raw, record.amount_msat.msat()) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(payment_hash = %record.payment_hash, error = %e, "stored zap request no longer parses; no receipt");
            return None;
        }
    };
    let preimage = paid.preimage.map(|p| p.0.to_hex());
    let body = match zap_receipt(
        &zaps.identity.keys(),
        &request,
        &record.bolt11,
        preimage.as_deref(),
        paid.paid_at,
    ) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(payment_hash = %record.payment_hash, error = %e, "could not sign a zap receipt");
            return None;
        }
    };
    let mut relays: Vec<RelayUrl> = Vec::new();
    for relay in request.relays.iter().chain(&zaps.fallback_relays) {
        // Names are checked again on the address connected to, when publishing.
        match net::check_url(relay.url(), zaps.reach) {
            Ok(()) if !relays.contains(relay) => relays.push(relay.clone()),
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(payment_hash = %record.payment_hash, error = %e, "skipping a zap request relay")
            }
        }
    }
    Some(ZapReceipt { body, relays })
}

/// The events an invoice's new status calls for: one per webhook that wants to hear of it
/// (the user's, and the one an app set on the invoice), and for a paid zap, its receipt for
/// each relay.
pub fn events_for(
    record: &InvoiceRecord,
    user: Option<&User>,
    now: u64,
    max_age: u64,
    receipt: Option<&ZapReceipt>,
) -> Vec<OutboxItem> {
    let mut events = webhook_events(record, user, now, max_age);
    if let (Some(receipt), InvoiceStatus::Paid(_)) = (receipt, &record.status) {
        events.extend(receipt.relays.iter().map(|url| {
            OutboxItem::new(
                EventKind::ZapReceipt,
                record.payment_hash,
                Target::NostrRelay { url: url.clone() },
                receipt.body.clone(),
                now,
                max_age,
            )
        }));
    }
    events
}

fn webhook_events(
    record: &InvoiceRecord,
    user: Option<&User>,
    now: u64,
    max_age: u64,
) -> Vec<OutboxItem> {
    let kind = match record.status {
        InvoiceStatus::Paid(_) => EventKind::InvoicePaid,
        InvoiceStatus::Expired => EventKind::InvoiceExpired,
        InvoiceStatus::Pending => return Vec::new(),
    };
    // (URL, set by the operator): the user's own webhook, then the one an app set.
    let mut urls: Vec<(&WebhookUrl, bool)> = Vec::new();
    if let Some(url) = user.and_then(|u| u.webhook_url.as_ref()) {
        urls.push((url, true));
    }
    if let Some(url) = record.app.as_ref().and_then(|a| a.webhook_url.as_ref()) {
        if !urls.iter().any(|(known, _)| *known == url) {
            urls.push((url, false));
        }
    }
    let invoice = AppInvoiceView::for_apps(record, now);
    urls.into_iter()
        .map(|(url, operator)| {
            let target = Target::Webhook {
                url: url.clone(),
                user: record.user.clone(),
                operator,
            };
            let id = EventId::derive(&record.payment_hash, kind, &target);
            let body = serde_json::to_string(&Envelope {
                id,
                kind,
                created_at: now,
                data: Data { invoice: &invoice },
            })
            .unwrap_or_default();
            OutboxItem::new(kind, record.payment_hash, target, body, now, max_age)
        })
        .collect()
}

/// A test delivery to `user`'s own webhook, signed and retried like every event. Its payment
/// hash is `nonce`, which names no invoice, so each test is an event of its own.
pub fn test_event(
    user: &User,
    nonce: crate::domain::Hash32,
    now: u64,
    max_age: u64,
) -> Option<OutboxItem> {
    let url = user.webhook_url.as_ref()?;
    let kind = EventKind::WebhookTest;
    let target = Target::Webhook {
        url: url.clone(),
        user: user.name.clone(),
        operator: true,
    };
    let id = EventId::derive(&nonce, kind, &target);
    let body = serde_json::json!({
        "id": id,
        "type": kind,
        "created_at": now,
        "data": {"user": user.name, "message": "A test delivery from rayo: this webhook works."},
    })
    .to_string();
    Some(OutboxItem::new(kind, nonce, target, body, now, max_age))
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let signed = format!("{timestamp}.{body}");
    format!(
        "t={timestamp},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), signed.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
