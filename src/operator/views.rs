//! What operators see: users, API keys, the Nostr key, outbox events (invoices have theirs
//! in `invoices::view`). The admin API sends these and the CLI reads them back.

use serde::{Deserialize, Serialize};

use crate::config::Domains;
use crate::domain::{
    blank_is_none, ApiKey, Attempt, Delivery, DeliveryName, Hash32, ListLimit, OutboxItem,
    SuccessAction, User,
};

/// A user as the admin API and CLI show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub address: String,
    /// The domain the address lives on.
    #[serde(default)]
    pub domain: String,
    pub lnurl: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub min_sendable: u64,
    pub max_sendable: u64,
    pub comment_allowed: u16,
    pub payer_data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_action: Option<SuccessAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Shown once, when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The currency the user thinks in, and limits in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiat_max: Option<String>,
    /// The user's own NWC wallet, its secret left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr_pubkey: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nostr_relays: Vec<String>,
    /// Where the user hears of payments, and how each channel is doing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::ChannelView>,
    /// One summary per this period, e.g. "10m"; absent: a message per payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_digest: Option<String>,
    /// Whether comments and payer data appear in notifications.
    #[serde(default = "yes")]
    pub notify_details: bool,
    pub disabled: bool,
    pub created_at: u64,
    /// Why payers cannot pay the user now, if they cannot (limits in a currency without a
    /// price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_payable: Option<String>,
    /// The BIP-353 name (`₿alice@example.com`), where the address has an offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bip353: Option<String>,
    /// Why the address is payable by LNURL only, where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lnurl_only: Option<String>,
}

fn yes() -> bool {
    true
}

impl UserView {
    pub fn of(user: &User, domains: &Domains, reveal_secret: bool) -> Self {
        let public_url = domains.for_user(user.domain.as_ref());
        Self {
            name: user.name.to_string(),
            address: crate::lnurl::address(public_url, &user.name),
            domain: public_url.domain().to_string(),
            lnurl: crate::lnurl::lnurl(public_url, &user.name),
            description: user.description.clone(),
            long_description: user.long_description.clone(),
            image: user.image.as_ref().map(|i| i.mime.clone()),
            min_sendable: user.min_sendable.msat(),
            max_sendable: user.max_sendable.msat(),
            comment_allowed: user.comment_allowed,
            payer_data: user.payer_data.to_list(),
            success_action: user.success_action.clone(),
            webhook_url: user.webhook_url.as_ref().map(|u| u.to_string()),
            webhook_secret: user
                .webhook_secret
                .as_ref()
                .filter(|_| reveal_secret)
                .map(|s| s.expose().to_owned()),
            backend: user.backend.as_ref().map(|b| b.to_string()),
            currency: user.currency.as_ref().map(|c| c.to_string()),
            fiat_min: user.fiat_min.as_ref().map(|v| v.to_string()),
            fiat_max: user.fiat_max.as_ref().map(|v| v.to_string()),
            nwc: user.nwc.as_ref().map(|uri| uri.redacted()),
            nostr_pubkey: user.nostr_pubkey.clone(),
            nostr_relays: user.nostr_relays.iter().map(|r| r.to_string()).collect(),
            notify: user
                .notify
                .channels
                .iter()
                .map(|c| super::ChannelView::of(c, &[]))
                .collect(),
            notify_digest: user.notify.digest_minutes.map(|m| format!("{m}m")),
            notify_details: user.notify.details,
            disabled: user.disabled,
            created_at: user.created_at,
            not_payable: None,
            bip353: None,
            lnurl_only: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub user: String,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
}

impl ApiKeyView {
    pub fn of(key: &ApiKey) -> Self {
        Self {
            id: key.id.clone(),
            user: key.user.to_string(),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A new key: the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub key: String,
    #[serde(flatten)]
    pub view: ApiKeyView,
}

/// The server's Nostr identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NostrView {
    /// x-only, lowercase hex: what `nostrPubkey` advertises.
    pub pubkey: String,
    pub npub: String,
}

impl NostrView {
    pub fn of(hex: &str) -> Self {
        use nostr::ToBech32;
        let npub = nostr::PublicKey::from_hex(hex)
            .ok()
            .and_then(|k| k.to_bech32().ok())
            .unwrap_or_default();
        Self {
            pubkey: hex.to_owned(),
            npub,
        }
    }
}

/// A queued event as the admin API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payment_hash: String,
    pub url: String,
    pub state: DeliveryName,
    pub attempts: u32,
    pub created_at: u64,
    pub next_attempt_at: u64,
    pub deadline: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// The delivery log and exact body (single-event views only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WebhookView {
    pub fn of(item: &OutboxItem, detailed: bool) -> Self {
        Self {
            id: item.id.to_string(),
            kind: item.kind.as_str().to_owned(),
            payment_hash: item.payment_hash.to_hex(),
            url: item.target.destination(),
            state: DeliveryName::of(&item.delivery),
            attempts: item.attempts,
            created_at: item.created_at,
            next_attempt_at: item.next_attempt_at,
            deadline: item.deadline,
            finished_at: match item.delivery {
                Delivery::Delivered { at } | Delivery::Dead { at } => Some(at),
                Delivery::Pending => None,
            },
            last_outcome: item.log.last().map(|a| a.outcome.clone()),
            log: if detailed {
                item.log.clone()
            } else {
                Vec::new()
            },
            body: detailed.then(|| item.body.clone()),
        }
    }
}

/// How a listing of outbox events is narrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookQuery {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "blank_is_none"
    )]
    pub state: Option<DeliveryName>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "blank_is_none"
    )]
    pub invoice: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl WebhookQuery {
    pub fn limit(&self) -> ListLimit {
        ListLimit::new(self.limit)
    }
}
