//! Events waiting to be delivered, as stored in the durable outbox.

use std::fmt;
use std::str::FromStr;

use bitcoin_hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};

use super::{Hash32, RelayUrl, Username, WebhookUrl};

/// An event's identity, `evt_` and 32 hex digits. Derived from what the event is about, so a
/// transition recorded twice (a stream replayed after a crash) enqueues the same event once,
/// and every delivery of it carries the same idempotency key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(pub [u8; 16]);

impl EventId {
    pub fn derive(payment_hash: &Hash32, kind: EventKind, target: &Target) -> Self {
        let mut engine = sha256::Hash::engine();
        bitcoin_hashes::HashEngine::input(&mut engine, b"rayo event v1\0");
        bitcoin_hashes::HashEngine::input(&mut engine, &payment_hash.0);
        bitcoin_hashes::HashEngine::input(&mut engine, kind.as_str().as_bytes());
        bitcoin_hashes::HashEngine::input(&mut engine, b"\0");
        bitcoin_hashes::HashEngine::input(&mut engine, target.identity().as_bytes());
        let digest = sha256::Hash::from_engine(engine).to_byte_array();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "evt_{}", hex::encode(self.0))
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not an event id (evt_ and 32 hex digits)");
        let digits = s.strip_prefix("evt_").ok_or_else(bad)?;
        let mut id = [0u8; 16];
        hex::decode_to_slice(digits, &mut id).map_err(|_| bad())?;
        Ok(Self(id))
    }
}

impl TryFrom<String> for EventId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<EventId> for String {
    fn from(value: EventId) -> Self {
        value.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
    #[serde(rename = "invoice.expired")]
    InvoiceExpired,
    /// A signed NIP-57 kind 9735 receipt, published to a relay.
    #[serde(rename = "zap.receipt")]
    ZapReceipt,
    /// A delivery the user asked for, to try their webhook; about no invoice.
    #[serde(rename = "webhook.test")]
    WebhookTest,
    /// A message to a person that they were paid.
    #[serde(rename = "notify.paid")]
    NotifyPaid,
    /// One message summing up the payments of a period.
    #[serde(rename = "notify.digest")]
    NotifyDigest,
    /// A message the person asked for, to try a channel.
    #[serde(rename = "notify.test")]
    NotifyTest,
    /// The link that confirms an email address, mailed to it.
    #[serde(rename = "notify.confirm")]
    NotifyConfirm,
    /// Something the operator should look at.
    #[serde(rename = "notify.alert")]
    NotifyAlert,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvoicePaid => "invoice.paid",
            Self::InvoiceExpired => "invoice.expired",
            Self::ZapReceipt => "zap.receipt",
            Self::WebhookTest => "webhook.test",
            Self::NotifyPaid => "notify.paid",
            Self::NotifyDigest => "notify.digest",
            Self::NotifyTest => "notify.test",
            Self::NotifyConfirm => "notify.confirm",
            Self::NotifyAlert => "notify.alert",
        }
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// An HTTPS endpoint, signed with `user`'s webhook secret as it is at delivery time (so a
    /// rotation takes effect for events still queued). `operator`: the operator set this URL
    /// (the user's own webhook), rather than an app through the invoice API; only such URLs
    /// may be allowed to reach private addresses.
    Webhook {
        url: WebhookUrl,
        user: Username,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        operator: bool,
    },
    /// A Nostr relay (`ws://` or `wss://`), sent the event in `body`.
    NostrRelay { url: RelayUrl },
    /// One of a person's notification channels (by its key, as set when delivered), or
    /// with no `user`, one of the operator's.
    Notify {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<Username>,
        channel: String,
    },
}

impl Target {
    fn identity(&self) -> String {
        match self {
            Self::Webhook { url, .. } => format!("webhook {url}"),
            Self::NostrRelay { url } => format!("relay {url}"),
            Self::Notify { user, channel } => match user {
                Some(user) => format!("notify {user} {channel}"),
                None => format!("notify operator {channel}"),
            },
        }
    }

    /// Where it goes, as shown to operators: a URL, or a notification channel.
    pub fn destination(&self) -> String {
        match self {
            Self::Webhook { url, .. } => url.to_string(),
            Self::NostrRelay { url } => url.to_string(),
            Self::Notify { channel, .. } => channel.clone(),
        }
    }

    /// Deliveries to one endpoint (scheme, host, port; a notification channel's kind) share
    /// a concurrency limit.
    pub fn endpoint(&self) -> String {
        let url = match self {
            Self::Webhook { url, .. } => url.url(),
            Self::NostrRelay { url } => url.url(),
            Self::Notify { channel, .. } => {
                return format!("notify {}", channel.split(':').next().unwrap_or_default())
            }
        };
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    /// The person the event is for, if it is one person's.
    pub fn user(&self) -> Option<&Username> {
        match self {
            Self::Webhook { user, .. } => Some(user),
            Self::Notify { user, .. } => user.as_ref(),
            Self::NostrRelay { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// Waiting for `next_attempt_at`.
    Pending,
    Delivered {
        at: u64,
    },
    /// Gave up at `at`; `rayo webhook retry` brings it back.
    Dead {
        at: u64,
    },
}

impl Delivery {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered { .. } => "delivered",
            Self::Dead { .. } => "dead",
        }
    }
}

/// One delivery attempt, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: u64,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `ok`, or what went wrong in words.
    pub outcome: String,
    pub duration_ms: u64,
}

/// Attempts kept in an item's log; older ones are dropped (the count stays in `attempts`).
pub const MAX_LOG: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: EventId,
    pub kind: EventKind,
    pub payment_hash: Hash32,
    pub target: Target,
    /// The exact bytes sent: fixed at enqueue time so every retry is the same event.
    pub body: String,
    pub created_at: u64,
    /// Retries stop after this.
    pub deadline: u64,
    pub attempts: u32,
    pub next_attempt_at: u64,
    pub delivery: Delivery,
    #[serde(default)]
    pub log: Vec<Attempt>,
}

impl OutboxItem {
    /// A new event about `payment_hash`, due now, retried until `now + window` (seconds). Its
    /// id comes from what it is about, so queueing it again changes nothing.
    pub fn new(
        kind: EventKind,
        payment_hash: Hash32,
        target: Target,
        body: String,
        now: u64,
        window: u64,
    ) -> Self {
        Self {
            id: EventId::derive(&payment_hash, kind, &target),
            kind,
            payment_hash,
            target,
            body,
            created_at: now,
            deadline: now.saturating_add(window),
            attempts: 0,
            next_attempt_at: now,
            delivery: Delivery::Pending,
            log: Vec::new(),
        }
    }

    pub fn record(&mut self, attempt: Attempt) {
        self.attempts = self.attempts.saturating_add(1);
        self.log.push(attempt);
        if self.log.len() > MAX_LOG {
            let excess = self.log.len() - MAX_LOG;
            self.log.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_depend_on_invoice_kind_and_target_only() {
        let hash = Hash32::sha256(b"x");
        let target = Target::Webhook {
            url: WebhookUrl::parse("https://a.example/hook").unwrap(),
            user: Username::parse("alice").unwrap(),
            operator: true,
        };
        let id = EventId::derive(&hash, EventKind::InvoicePaid, &target);
        assert_eq!(id, EventId::derive(&hash, EventKind::InvoicePaid, &target));
        assert_ne!(
            id,
            EventId::derive(&hash, EventKind::InvoiceExpired, &target)
        );
        assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        assert!("evt_zz".parse::<EventId>().is_err());
    }

    #[test]
    fn endpoints_group_by_origin() {
        let target = |url: &str| Target::Webhook {
            url: WebhookUrl::parse(url).unwrap(),
            user: Username::parse("alice").unwrap(),
            operator: false,
        };
        assert_eq!(
            target("https://a.example/x?y").endpoint(),
            "https://a.example:443"
        );
        assert_eq!(
            target("http://a.example:81/x").endpoint(),
            "http://a.example:81"
        );
    }
}
