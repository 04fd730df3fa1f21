//! Payment alerts for the people behind the addresses (and alerts for the operator): Nostr
//! private messages, email, ntfy and Telegram. Messages are outbox events like webhooks:
//! queued in the write that marks an invoice paid, then delivered, retried, claimed once
//! across instances and dead-lettered by the outbox. This module decides what each says, and
//! sends it.

mod digest;
mod email;
mod failure;
mod health;
mod limits;
mod links;
pub mod message;
mod nostr_dm;
mod ntfy;
pub mod telegram;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::{
    Channel, EventKind, Hash32, InvoiceRecord, OutboxItem, Secret, Target, User, Username,
};
use crate::net::{self, Reach};
use crate::store::{Db, StoreError, Transitions};

pub use digest::DigestWindow;
pub use failure::Failure;
pub use health::{ChannelHealth, Health};

/// The marks on `user`'s channels (the operator's, with `None`), by channel key.
pub async fn health_of(
    db: &Db,
    user: Option<&Username>,
) -> Result<Vec<(String, ChannelHealth)>, StoreError> {
    health::of_owner(db, &health::owner(user)).await
}

/// Every channel marked broken: (owner, channel key, mark), the operator's as `~operator`.
pub async fn broken_channels(
    db: &Db,
    limit: usize,
) -> Result<Vec<(String, String, ChannelHealth)>, StoreError> {
    health::all(db, limit).await
}

/// Forgets the mark on one of `user`'s channels (set again: it starts afresh).
pub async fn forget_channel_health(
    db: &Db,
    user: &Username,
    channel: &str,
) -> Result<(), StoreError> {
    health::clear(db, &health::owner(Some(user)), channel).await
}

/// Forgets the marks on a removed user's channels, in the caller's write.
pub fn forget_health(store: &dyn crate::store::Store, user: &Username) -> Result<(), StoreError> {
    health::forget(store, &health::owner(Some(user)))
}
pub use links::{LinkError, Links};
pub use message::{Composer, Message, TemplateError};
pub use nostr_dm::Dms;

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Delivered; the receiver's status if it gave one.
    Sent(Option<u16>),
    /// Nothing to send, by design (a channel marked broken, a digest folding it in): done,
    /// with the reason in the log.
    Settled(String),
    /// Failed this time; the outbox retries it.
    Failed(Failure),
    /// Can never be sent (the channel was removed): a dead letter now.
    GiveUp(String),
    /// Not attempted: a shared allowance is spent. Tried again after this long, uncounted.
    Later(Duration),
}

/// `RAYO_SMTP_URL`, `RAYO_SMTP_FROM`, an extra root certificate and the attempt timeout.
pub struct MailSettings {
    pub url: Secret,
    pub from: String,
    pub extra_root: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// What sending notifications needs, from the settings.
pub struct NotifyParts {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub composer: Arc<Composer>,
    pub links: Links,
    pub dms: Dms,
    /// How email goes out, when it is set up.
    pub mail: Option<MailSettings>,
    /// `RAYO_TELEGRAM_BOT_TOKEN` and the API's URL.
    pub telegram: Option<(Secret, String)>,
    /// Whether ntfy servers may be on private addresses (`RAYO_NOTIFY_ALLOW_PRIVATE`).
    pub ntfy_reach: Reach,
    /// The operator's own channels (`RAYO_OPERATOR_NOTIFY`).
    pub operator: Vec<Channel>,
    /// Messages to one person (all channels) allowed per hour, after a burst of as many.
    pub per_person_hourly: u32,
    /// Retries of one message stop this long after it was queued.
    pub window: Duration,
}

pub struct Notifier {
    db: Db,
    clock: Arc<dyn Clock>,
    composer: Arc<Composer>,
    links: Links,
    dms: Dms,
    mailer: Option<email::Mailer>,
    telegram: Option<telegram::Bot>,
    client: reqwest::Client,
    ntfy_reach: Reach,
    operator: Vec<Channel>,
    limits: limits::Limits,
    window: Duration,
}

impl Notifier {
    pub fn new(parts: NotifyParts) -> Result<Self, String> {
        let client = net::http_client_builder(parts.ntfy_reach)
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("rayo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let hello = parts.composer.server().to_owned();
        let mailer = parts
            .mail
            .map(|mail| {
                email::Mailer::new(
                    &mail.url,
                    &mail.from,
                    mail.extra_root.as_deref(),
                    &hello,
                    mail.timeout,
                )
            })
            .transpose()?;
        let telegram = parts.telegram.map(|(token, api)| {
            // Telegram's API is on the public internet, or a mirror the operator named.
            let client = net::http_client_builder(Reach::Anywhere)
                .user_agent(concat!("rayo/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default();
            telegram::Bot::new(&api, token, client)
        });
        Ok(Self {
            db: parts.db,
            clock: parts.clock,
            composer: parts.composer,
            links: parts.links,
            dms: parts.dms,
            mailer,
            telegram,
            client,
            ntfy_reach: parts.ntfy_reach,
            operator: parts.operator,
            limits: limits::Limits::new(parts.per_person_hourly),
            window: parts.window,
        })
    }

    pub fn composer(&self) -> &Composer {
        &self.composer
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn telegram(&self) -> Option<&telegram::Bot> {
        self.telegram.as_ref()
    }

    pub fn has_mail(&self) -> bool {
        self.mailer.is_some()
    }

    pub fn operator_channels(&self) -> &[Channel] {
        &self.operator
    }

    /// Whether a channel of this kind can be used on this server (email needs SMTP settings,
    /// Telegram a bot), and if not, why.
    pub fn refuses(&self, channel: &Channel) -> Option<String> {
        match channel {
            Channel::Email { .. } if self.mailer.is_none() => {
                Some("email: this server sends no mail (its operator has not set RAYO_SMTP_URL)".into())
            }
            Channel::Telegram { .. } if self.telegram.is_none() => Some(
                "telegram: this server has no Telegram bot (RAYO_TELEGRAM_BOT_TOKEN)".into(),
            ),
            Channel::Ntfy { url, .. } => url::Url::parse(url)
                .ok()
                .and_then(|u| net::check_url(&u, self.ntfy_reach).err())
                .map(|e| {
                    format!("ntfy: {e}; for an ntfy server on this machine or network, set RAYO_NOTIFY_ALLOW_PRIVATE=true")
                }),
            _ => None,
        }
    }

    /// The messages a paid invoice calls for: one per ready channel of its user, or, for a
    /// user who chose digests, a place in the current period's digest (queued once).
    /// Runs in the write that marks the invoice paid: rendering only, no I/O.
    pub fn paid_events(&self, record: &InvoiceRecord, user: &User, now: u64) -> Vec<OutboxItem> {
        let settings = &user.notify;
        if settings.channels.is_empty() || user.disabled {
            return Vec::new();
        }
        let window = self.window.as_secs();
        let message = match settings.digest_minutes {
            None => Some(self.composer.paid(record, user, now)),
            Some(_) => None,
        };
        settings
            .channels
            .iter()
            .filter(|c| c.is_ready())
            .map(|channel| {
                let target = Target::Notify {
                    user: Some(user.name.clone()),
                    channel: channel.key(),
                };
                match (&message, settings.digest_minutes) {
                    (Some(message), _) => OutboxItem::new(
                        EventKind::NotifyPaid,
                        record.payment_hash,
                        target,
                        serde_json::to_string(message).unwrap_or_default(),
                        now,
                        window,
                    ),
                    (None, minutes) => {
                        DigestWindow::around(now, minutes.unwrap_or(10)).item(target, window)
                    }
                }
            })
            .collect()
    }

    /// A test message to `channel` of `user`, or to every channel of theirs.
    pub fn test_events(
        &self,
        user: &User,
        channel: Option<&str>,
        nonce: Hash32,
    ) -> Vec<OutboxItem> {
        let now = self.clock.unix();
        let message = serde_json::to_string(&self.composer.test(user)).unwrap_or_default();
        user.notify
            .channels
            .iter()
            .filter(|c| channel.is_none_or(|key| c.key() == key))
            .map(|c| {
                OutboxItem::new(
                    EventKind::NotifyTest,
                    nonce,
                    Target::Notify {
                        user: Some(user.name.clone()),
                        channel: c.key(),
                    },
                    message.clone(),
                    now,
                    self.window.as_secs(),
                )
            })
            .collect()
    }

    /// The confirmation mail for each of `user`'s addresses not yet confirmed, except those in
    /// `already` (asked before this change).
    pub fn confirm_events(
        &self,
        user: &User,
        already: &[String],
        nonce: Hash32,
    ) -> Vec<OutboxItem> {
        let now = self.clock.unix();
        user.notify
            .channels
            .iter()
            .filter_map(|c| match c {
                Channel::Email {
                    address,
                    verified: false,
                } if !already.contains(&c.key()) => Some((c, address)),
                _ => None,
            })
            .map(|(channel, address)| {
                let link =
                    self.links
                        .confirm_url(self.composer.base_for(user), &user.name, address, now);
                let message =
                    self.composer
                        .confirm(user, address, &link, links::CONFIRM_VALID_FOR_WORDS);
                OutboxItem::new(
                    EventKind::NotifyConfirm,
                    nonce,
                    Target::Notify {
                        user: Some(user.name.clone()),
                        channel: channel.key(),
                    },
                    serde_json::to_string(&message).unwrap_or_default(),
                    now,
                    self.window.as_secs(),
                )
            })
            .collect()
    }

    /// Queues `items` in the outbox.
    pub async fn queue(&self, items: Vec<OutboxItem>) -> Result<usize, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        self.db
            .commit(move |s| s.commit_transitions(&Transitions::events(items)))
            .await
    }

    /// One attempt at `item`.
    pub async fn deliver(&self, item: &OutboxItem) -> Outcome {
        let Target::Notify { user, channel: key } = &item.target else {
            return Outcome::GiveUp("not a notification".into());
        };
        let (user, channel) = match self.resolve(user.as_ref(), key).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let owner = health::owner(user.as_ref().map(|u| &u.name));
        if !matches!(item.kind, EventKind::NotifyTest | EventKind::NotifyConfirm) {
            match health::read(&self.db, &owner, key).await {
                Ok(Some(broken)) => {
                    return Outcome::Settled(format!(
                    "not sent: the channel is marked broken ({}); a test message tries it again",
                    broken.reason
                ))
                }
                Ok(None) => {}
                Err(e) => {
                    return Outcome::Failed(Failure::now(format!(
                        "could not read the channel's health: {e}"
                    )))
                }
            }
        }
        if !channel.is_ready() && item.kind != EventKind::NotifyConfirm {
            return Outcome::Settled("not sent: the address is not confirmed".into());
        }
        let message = match self.message_for(item, user.as_ref()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Outcome::Settled("no payments in the period".into()),
            Err(outcome) => return outcome,
        };
        if item.kind == EventKind::NotifyPaid {
            if let Some(user) = user.as_ref() {
                if !self.limits.person_allows(&user.name) {
                    return self.fold_into_digest(item, user).await;
                }
            }
        }
        if let Some(wait) = self.limits.shared_wait(channel.kind()) {
            return Outcome::Later(wait);
        }
        let sent = self.send(&channel, user.as_ref(), item, &message).await;
        match sent {
            Ok(status) => Outcome::Sent(Some(status)),
            Err(failure) => match failure.retry_after {
                Some(wait) if wait < Duration::from_secs(3600) => {
                    Outcome::Later(wait.max(Duration::from_secs(1)))
                }
                _ => Outcome::Failed(failure),
            },
        }
    }

    /// Called once an item is final: a dead letter marks its channel broken (it failed for a
    /// whole delivery window), a delivery clears that mark.
    pub async fn settled(&self, item: &OutboxItem, delivered: bool) {
        let Target::Notify { user, channel } = &item.target else {
            return;
        };
        // A channel removed meanwhile is not marked: if it is set again, it starts afresh.
        if !delivered && self.resolve(user.as_ref(), channel).await.is_err() {
            return;
        }
        let owner = health::owner(user.as_ref());
        let reason = item
            .log
            .last()
            .map(|a| a.outcome.clone())
            .unwrap_or_default();
        let result = if delivered {
            health::clear(&self.db, &owner, channel).await
        } else {
            let at = self.clock.unix();
            health::mark_broken(&self.db, &owner, channel, at, &reason).await
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record a channel's health");
        }
        if !delivered {
            tracing::warn!(owner = %owner, channel = %channel.split(':').next().unwrap_or_default(), "a notification channel is marked broken after a dead letter");
        }
    }

    async fn resolve(
        &self,
        user: Option<&Username>,
        key: &str,
    ) -> Result<(Option<User>, Channel), Outcome> {
        match user {
            None => self
                .operator
                .iter()
                .find(|c| c.key() == key)
                .cloned()
                .map(|c| (None, c))
                .ok_or_else(|| {
                    Outcome::GiveUp("the operator's channel is no longer configured".into())
                }),
            Some(name) => {
                let wanted = name.clone();
                let found = self.db.point(move |s| s.user(&wanted)).await.map_err(|e| {
                    Outcome::Failed(Failure::now(format!("could not read the user: {e}")))
                })?;
                let Some(user) = found else {
                    return Err(Outcome::GiveUp(format!("user '{name}' was removed")));
                };
                let channel = user
                    .notify
                    .channel(key)
                    .cloned()
                    .ok_or_else(|| Outcome::GiveUp("the channel was removed".into()))?;
                Ok((Some(user), channel))
            }
        }
    }

    async fn message_for(
        &self,
        item: &OutboxItem,
        user: Option<&User>,
    ) -> Result<Option<Message>, Outcome> {
        if item.kind != EventKind::NotifyDigest {
            return serde_json::from_str(&item.body)
                .map(Some)
                .map_err(|e| Outcome::GiveUp(format!("the stored message does not read: {e}")));
        }
        let (Some(user), Ok(window)) = (user, serde_json::from_str::<DigestWindow>(&item.body))
        else {
            return Err(Outcome::GiveUp("the stored digest does not read".into()));
        };
        let paid = window.payments(&self.db, &user.name).await.map_err(|e| {
            Outcome::Failed(Failure::now(format!("could not read the payments: {e}")))
        })?;
        if paid.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.composer.digest(
            user,
            &paid,
            window.from,
            window.until,
        )))
    }

    /// A person over their allowance: this payment is told in the digest of the current
    /// period instead (queued once per period and channel).
    async fn fold_into_digest(&self, item: &OutboxItem, user: &User) -> Outcome {
        let now = self.clock.unix();
        let digest = DigestWindow::around(now, user.notify.digest_minutes.unwrap_or(10));
        let until = digest.until;
        let queued = digest.item(item.target.clone(), self.window.as_secs());
        match self.queue(vec![queued]).await {
            Ok(_) => Outcome::Settled(format!(
                "over the person's rate limit: told in the digest at {}",
                crate::clock::when(until)
            )),
            Err(e) => Outcome::Failed(Failure::now(format!("could not queue the digest: {e}"))),
        }
    }

    async fn send(
        &self,
        channel: &Channel,
        user: Option<&User>,
        item: &OutboxItem,
        message: &Message,
    ) -> Result<u16, Failure> {
        match channel {
            Channel::Ntfy { url, token } => {
                if let Some(why) = self.refuses(channel) {
                    return Err(Failure::now(why));
                }
                ntfy::publish(&self.client, url, token.as_ref(), message).await
            }
            Channel::Email { address, .. } => {
                let Some(mailer) = &self.mailer else {
                    return Err(Failure::now(
                        "this server sends no mail (RAYO_SMTP_URL is not set)".into(),
                    ));
                };
                // What a person asked for has an unsubscribe link; the confirmation does not
                // (nothing is subscribed yet).
                let unsubscribe = match (user, item.kind) {
                    (Some(user), kind) if kind != EventKind::NotifyConfirm => {
                        Some(self.links.unsubscribe_url(
                            self.composer.base_for(user),
                            &user.name,
                            &channel.key(),
                        ))
                    }
                    _ => None,
                };
                mailer
                    .send(
                        address,
                        message,
                        &item.id.to_string(),
                        unsubscribe.as_deref(),
                    )
                    .await
            }
            Channel::Nostr { pubkey } => {
                let known = user.map(|u| u.nostr_relays.as_slice()).unwrap_or_default();
                self.dms.send(pubkey, known, message, item.created_at).await
            }
            Channel::Telegram { chat_id } => {
                let Some(bot) = &self.telegram else {
                    return Err(Failure::now(
                        "this server has no Telegram bot (RAYO_TELEGRAM_BOT_TOKEN)".into(),
                    ));
                };
                bot.send(*chat_id, message).await
            }
        }
    }
}
