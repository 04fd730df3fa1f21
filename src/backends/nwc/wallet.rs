//! One NWC connection: requests to the wallet service and its answers (NIP-47), over every
//! relay the connection names. A request is encrypted to the wallet (NIP-44 v2, or NIP-04
//! when the wallet's info event does not offer NIP-44), signed with the connection's key and
//! sent to each relay; the first answer that is signed by the wallet, addressed to us, names
//! our request and decrypts wins. Anything else is logged and ignored: a relay, or anyone
//! publishing to it, can send events, but only the wallet can sign them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nostr::nips::{nip04, nip44};
use nostr::{Event, EventBuilder, Keys, Kind, PublicKey, Tag, TagKind, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, RwLock};

use super::relays::{Inboxes, Incoming, Link, RelayPool};
use crate::domain::NwcUri;

pub const INFO: u16 = 13194;
pub const REQUEST: u16 = 23194;
pub const RESPONSE: u16 = 23195;
pub const NOTIFICATION_NIP04: u16 = 23196;
pub const NOTIFICATION_NIP44: u16 = 23197;

/// How long to wait for the relays to connect before a request.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// The wallet's info event is read again after this long.
const INFO_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    Nip44,
    Nip04,
}

impl Encryption {
    fn encrypt(self, keys: &Keys, to: &PublicKey, text: &str) -> Result<String, String> {
        match self {
            Self::Nip44 => nip44::encrypt(keys.secret_key(), to, text, nip44::Version::V2)
                .map_err(|e| e.to_string()),
            Self::Nip04 => nip04::encrypt(keys.secret_key(), to, text).map_err(|e| e.to_string()),
        }
    }

    fn decrypt(self, keys: &Keys, from: &PublicKey, text: &str) -> Result<String, String> {
        match self {
            Self::Nip44 => nip44::decrypt(keys.secret_key(), from, text).map_err(|e| e.to_string()),
            Self::Nip04 => nip04::decrypt(keys.secret_key(), from, text).map_err(|e| e.to_string()),
        }
    }
}

/// What the wallet's info event (kind 13194) says it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletInfo {
    pub methods: Vec<String>,
    pub notifications: Vec<String>,
    pub encryption: Encryption,
    /// Whether an info event was found at all (without one: NIP-04, as NIP-47 says).
    pub published: bool,
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NwcError {
    /// The wallet answered with an error.
    #[error("the wallet answered {code}: {message}")]
    Wallet { code: String, message: String },
    #[error("no NWC relay is reachable ({0})")]
    Unreachable(String),
    #[error("the wallet did not answer within {0} s")]
    Timeout(u64),
    #[error("{0}")]
    Protocol(String),
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    result_type: Option<String>,
    #[serde(default)]
    error: Option<WalletError>,
    #[serde(default)]
    result: Option<Value>,
}

#[derive(Deserialize)]
struct WalletError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

pub struct NwcWallet {
    uri: NwcUri,
    keys: Keys,
    links: Vec<Arc<Link>>,
    info: RwLock<Option<(std::time::Instant, WalletInfo)>>,
    /// Numbers subscriptions uniquely within this process.
    counter: AtomicU64,
    /// Events that are not the wallet's own are logged at most once a minute: a relay, or
    /// anyone publishing to it, can send as many as it likes.
    ignored: crate::log_throttle::LogThrottle,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The value of `event`'s first tag named `name`.
fn tag<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .tags
        .iter()
        .find(|t| t.as_slice().first().map(String::as_str) == Some(name))
        .and_then(|t| t.as_slice().get(1).map(String::as_str))
}

impl NwcWallet {
    pub fn new(uri: NwcUri, pool: &RelayPool) -> Self {
        let links = uri.relays.iter().map(|r| pool.link(r)).collect();
        Self {
            keys: uri.keys(),
            uri,
            links,
            info: RwLock::new(None),
            counter: AtomicU64::new(0),
            ignored: crate::log_throttle::LogThrottle::new(Duration::from_secs(60)),
        }
    }

    pub fn uri(&self) -> &NwcUri {
        &self.uri
    }

    fn subscription_id(&self, what: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let key = &self.keys.public_key().to_hex()[..12];
        format!("rayo-{what}-{key}-{n}")
    }

    /// Waits for the relays to connect; false if none did.
    async fn any_connected(&self) -> bool {
        let waits = self.links.iter().map(|l| l.connected(CONNECT_WAIT));
        futures_util::future::join_all(waits)
            .await
            .into_iter()
            .any(|up| up)
    }

    /// Is `event` from the wallet, correctly signed, and addressed to this connection?
    fn check_signed_by_wallet(&self, event: &Event) -> Result<(), String> {
        if event.pubkey != self.uri.wallet {
            return Err(format!(
                "signed by {}, not the wallet",
                event.pubkey.to_hex()
            ));
        }
        event
            .verify()
            .map_err(|e| format!("bad id or signature: {e}"))?;
        Ok(())
    }

    fn addressed_to_us(&self, event: &Event) -> bool {
        tag(event, "p") == Some(self.keys.public_key().to_hex().as_str())
    }

    /// The wallet's info event, read from the relays (kept `INFO_TTL`).
    pub async fn info(&self) -> Result<WalletInfo, NwcError> {
        if let Some((at, info)) = self.info.read().await.as_ref() {
            if at.elapsed() < INFO_TTL {
                return Ok(info.clone());
            }
        }
        let info = self.read_info().await?;
        *self.info.write().await = Some((std::time::Instant::now(), info.clone()));
        Ok(info)
    }

    /// Forgets the info event (the wallet refused our encryption: it may have changed).
    pub async fn forget_info(&self) {
        *self.info.write().await = None;
    }

    async fn read_info(&self) -> Result<WalletInfo, NwcError> {
        if !self.any_connected().await {
            return Err(NwcError::Unreachable(self.relay_names()));
        }
        let id = self.subscription_id("info");
        let filter = json!({"kinds": [INFO], "authors": [self.uri.wallet.to_hex()], "limit": 1});
        let mut received = Inboxes::subscribe(&self.links, &id, std::slice::from_ref(&filter), 16);
        let mut newest: Option<Event> = None;
        let mut waiting = self.links.len();
        let deadline = tokio::time::sleep(CONNECT_WAIT);
        tokio::pin!(deadline);
        while waiting > 0 {
            tokio::select! {
                incoming = received.recv() => match incoming {
                    Some(Incoming::Event(event)) if event.kind.as_u16() == INFO => {
                        match self.check_signed_by_wallet(&event) {
                            Ok(()) if newest.as_ref().is_none_or(|n| n.created_at < event.created_at) => newest = Some(*event),
                            Ok(()) => {}
                            Err(e) => tracing::warn!(wallet = %self.uri.wallet, problem = %e, "ignored an NWC info event"),
                        }
                    }
                    Some(Incoming::Stored | Incoming::Closed(_) | Incoming::Lost) => waiting -= 1,
                    Some(Incoming::Event(_)) => {}
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        for link in &self.links {
            link.unsubscribe(&id);
        }
        Ok(match newest {
            Some(event) => {
                let list = |name: &str| -> Vec<String> {
                    tag(&event, name)
                        .map(|v| v.split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default()
                };
                let encryption = if list("encryption").iter().any(|e| e == "nip44_v2") {
                    Encryption::Nip44
                } else {
                    Encryption::Nip04
                };
                WalletInfo {
                    methods: event
                        .content
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    notifications: list("notifications"),
                    encryption,
                    published: true,
                }
            }
            None => WalletInfo {
                methods: Vec::new(),
                notifications: Vec::new(),
                encryption: Encryption::Nip04,
                published: false,
            },
        })
    }

    fn relay_names(&self) -> String {
        self.uri
            .relays
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Sends `method` with `params` and waits up to `timeout` for the wallet's result.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, NwcError> {
        let started = tokio::time::Instant::now();
        let info = self.info().await?;
        let encryption = info.encryption;
        let content = json!({"method": method, "params": params}).to_string();
        let encrypted = encryption
            .encrypt(&self.keys, &self.uri.wallet, &content)
            .map_err(|e| NwcError::Protocol(format!("could not encrypt a request: {e}")))?;
        let mut tags = vec![
            Tag::public_key(self.uri.wallet),
            Tag::expiration(Timestamp::from(unix_now() + timeout.as_secs().max(1))),
        ];
        if encryption == Encryption::Nip44 {
            tags.push(Tag::custom(TagKind::custom("encryption"), ["nip44_v2"]));
        }
        let event = EventBuilder::new(Kind::from(REQUEST), encrypted)
            .tags(tags)
            .sign_with_keys(&self.keys)
            .map_err(|e| NwcError::Protocol(format!("could not sign a request: {e}")))?;

        // Listen for the answer before asking.
        let id = self.subscription_id("answer");
        let filter = json!({
            "kinds": [RESPONSE],
            "authors": [self.uri.wallet.to_hex()],
            "#e": [event.id.to_hex()],
        });
        let mut received = Inboxes::subscribe(&self.links, &id, std::slice::from_ref(&filter), 16);
        let outcome = tokio::time::timeout(
            timeout.saturating_sub(started.elapsed()),
            self.ask(&event, method, encryption, &mut received),
        )
        .await
        .unwrap_or(Err(NwcError::Timeout(timeout.as_secs())));
        for link in &self.links {
            link.unsubscribe(&id);
        }
        outcome
    }

    async fn ask(
        &self,
        event: &Event,
        method: &str,
        encryption: Encryption,
        received: &mut Inboxes,
    ) -> Result<Value, NwcError> {
        let published =
            futures_util::future::join_all(self.links.iter().map(|l| l.publish(event))).await;
        if published.iter().all(Result::is_err) {
            let why: Vec<String> = self
                .links
                .iter()
                .zip(&published)
                .filter_map(|(l, p)| p.as_ref().err().map(|e| format!("{}: {e}", l.url)))
                .collect();
            return Err(NwcError::Unreachable(why.join("; ")));
        }
        let request_id = event.id.to_hex();
        while let Some(incoming) = received.recv().await {
            let Incoming::Event(answer) = incoming else {
                continue;
            };
            match self.read_answer(&answer, &request_id, method, encryption) {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => {}
                Err(problem) => self.ignored_one("answer", &problem),
            }
        }
        // Every relay's subscription is gone: wait out the timeout like a silent wallet.
        std::future::pending().await
    }

    /// The answer `event` carries, if it is the wallet's answer to `request_id`.
    fn read_answer(
        &self,
        event: &Event,
        request_id: &str,
        method: &str,
        encryption: Encryption,
    ) -> Result<Option<Result<Value, NwcError>>, String> {
        if event.kind.as_u16() != RESPONSE || tag(event, "e") != Some(request_id) {
            return Ok(None);
        }
        self.check_signed_by_wallet(event)?;
        if !self.addressed_to_us(event) {
            return Err("not addressed to this connection".into());
        }
        let plain = encryption
            .decrypt(&self.keys, &self.uri.wallet, &event.content)
            .or_else(|first| {
                // A wallet may answer in the other scheme; NIP-44 payloads are versioned.
                let other = match encryption {
                    Encryption::Nip44 => Encryption::Nip04,
                    Encryption::Nip04 => Encryption::Nip44,
                };
                other
                    .decrypt(&self.keys, &self.uri.wallet, &event.content)
                    .map_err(|_| first)
            })
            .map_err(|e| format!("could not decrypt: {e}"))?;
        let answer: Answer =
            serde_json::from_str(&plain).map_err(|e| format!("not an NWC answer: {e}"))?;
        if let Some(error) = answer.error {
            return Ok(Some(Err(NwcError::Wallet {
                code: error.code.chars().take(40).collect(),
                message: error.message.chars().take(200).collect(),
            })));
        }
        if answer.result_type.as_deref().is_some_and(|t| t != method) {
            return Err(format!(
                "answers {} to {method}",
                answer.result_type.unwrap_or_default()
            ));
        }
        Ok(Some(answer.result.ok_or_else(|| {
            NwcError::Protocol(format!("the wallet's {method} answer has no result"))
        })))
    }

    /// Follows the wallet's notifications (both kinds) from now on, over every relay.
    pub fn notifications(self: &Arc<Self>) -> Notifications {
        let (inbox, received) = mpsc::channel(256);
        let (wallet, client) = (self.uri.wallet.to_hex(), self.keys.public_key().to_hex());
        let ids = self
            .links
            .iter()
            .map(|link| link.follow(&wallet, &client, inbox.clone()))
            .collect();
        Notifications {
            wallet: self.clone(),
            ids,
            received,
        }
    }

    /// Logs an event that was not the wallet's (at most once a minute, with how many were
    /// held back).
    fn ignored_one(&self, what: &str, problem: &str) {
        if let Some(held_back) = self.ignored.admit() {
            tracing::warn!(wallet = %self.uri.wallet, what, problem, held_back, "ignored an NWC event that is not the wallet's own");
        }
    }

    /// What a notification event says, if it is a real one from the wallet.
    fn read_notification(&self, event: &Event) -> Result<Option<(String, Value)>, String> {
        let encryption = match event.kind.as_u16() {
            NOTIFICATION_NIP44 => Encryption::Nip44,
            NOTIFICATION_NIP04 => Encryption::Nip04,
            _ => return Ok(None),
        };
        self.check_signed_by_wallet(event)?;
        if !self.addressed_to_us(event) {
            return Err("not addressed to this connection".into());
        }
        let plain = encryption
            .decrypt(&self.keys, &self.uri.wallet, &event.content)
            .map_err(|e| format!("could not decrypt: {e}"))?;
        let note: Value =
            serde_json::from_str(&plain).map_err(|e| format!("not a notification: {e}"))?;
        let kind = note["notification_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Some((kind, note["notification"].clone())))
    }
}

/// A live subscription to the wallet's notifications; unsubscribed when dropped.
pub struct Notifications {
    wallet: Arc<NwcWallet>,
    /// This follower's number on each link, in the wallet's link order.
    ids: Vec<u64>,
    received: mpsc::Receiver<Incoming>,
}

impl Notifications {
    /// The next notification as (type, body); `None` once a relay connection was lost (the
    /// caller reconciles and follows again).
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            match self.received.recv().await? {
                Incoming::Event(event) => match self.wallet.read_notification(&event) {
                    Ok(Some(note)) => return Some(note),
                    Ok(None) => {}
                    Err(problem) => self.wallet.ignored_one("notification", &problem),
                },
                Incoming::Lost => return None,
                Incoming::Closed(reason) => {
                    tracing::warn!(wallet = %self.wallet.uri.wallet, reason = %reason, "a relay closed the NWC notification subscription");
                    return None;
                }
                Incoming::Stored => {}
            }
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        let (wallet, client) = (
            self.wallet.uri.wallet.to_hex(),
            self.wallet.keys.public_key().to_hex(),
        );
        for (link, id) in self.wallet.links.iter().zip(&self.ids) {
            link.unfollow(&wallet, &client, *id);
        }
    }
}
