//! A person's notification channels, beyond setting them: a test through each, confirming an
//! email address from the mailed link, turning a channel off from an email's unsubscribe
//! link, and how each channel is doing.

use super::{no_user, Operator, OperatorError};
use crate::domain::{Channel, Hash32, Username};
use crate::notify::{Health, LinkError};
use crate::store::records::{RecordKind, Swap};

/// One channel as the person and the operator see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelView {
    /// `kind:value`, a token hidden.
    pub channel: String,
    pub key: String,
    pub kind: String,
    #[serde(flatten)]
    pub health: Health,
}

impl Operator {
    /// `name`'s channels and their health.
    pub async fn channels(&self, name: &Username) -> Result<Vec<ChannelView>, OperatorError> {
        let wanted = name.clone();
        let user = self
            .db
            .point(move |s| s.user(&wanted))
            .await?
            .ok_or_else(|| no_user(name))?;
        let marks = crate::notify::health_of(&self.db, Some(name)).await?;
        Ok(user
            .notify
            .channels
            .iter()
            .map(|channel| ChannelView::of(channel, &marks))
            .collect())
    }

    /// Adds one channel (`kind:value`) to `name`'s, checked as `user update --notify` checks
    /// it; an email address is sent its confirmation link.
    pub async fn add_channel(&self, name: &Username, raw: &str) -> Result<(), OperatorError> {
        let settings = crate::domain::UserSettings {
            notify: Some(vec![raw.to_owned()]),
            ..Default::default()
        };
        self.vet(&settings).await?;
        let channel =
            Channel::parse(raw).map_err(|e| OperatorError::Invalid(format!("notify: {e}")))?;
        let key = channel.key();
        let wanted = name.clone();
        let (user, asked) = self
            .write_user(move |store| {
                let Some(mut user) = store.user(&wanted)? else {
                    return Ok(Err(no_user(&wanted)));
                };
                let asked: Vec<String> = user.notify.channels.iter().map(|c| c.key()).collect();
                if asked.contains(&channel.key()) {
                    return Ok(Err(OperatorError::Conflict(
                        "That channel is set already.".into(),
                    )));
                }
                let mut all: Vec<String> = user
                    .notify
                    .channels
                    .iter()
                    .map(|c| c.to_setting())
                    .collect();
                all.push(channel.to_setting());
                if let Err(e) = user.notify.set_channels(&all) {
                    return Ok(Err(OperatorError::Invalid(e.to_string())));
                }
                Ok(Ok((user, asked)))
            })
            .await?;
        crate::notify::forget_channel_health(&self.db, name, &key).await?;
        self.ask_to_confirm(&user, &asked).await;
        Ok(())
    }

    /// Removes the channel `key` from `name`'s.
    pub async fn remove_channel(&self, name: &Username, key: &str) -> Result<(), OperatorError> {
        let (wanted, removed) = (name.clone(), key.to_owned());
        self.write_user(move |store| {
            let Some(mut user) = store.user(&wanted)? else {
                return Ok(Err(no_user(&wanted)));
            };
            let before = user.notify.channels.len();
            user.notify.channels.retain(|c| c.key() != removed);
            if user.notify.channels.len() == before {
                return Ok(Err(OperatorError::NotFound("No such channel.".into())));
            }
            Ok(Ok((user, ())))
        })
        .await?;
        crate::notify::forget_channel_health(&self.db, name, key).await?;
        Ok(())
    }

    /// Queues a test message through `channel` (a key) of `name`'s, or through each. A test
    /// goes even through a channel marked broken: getting through clears the mark.
    pub async fn notify_test(
        &self,
        name: &Username,
        channel: Option<&str>,
    ) -> Result<usize, OperatorError> {
        let wanted = name.clone();
        let user = self
            .db
            .point(move |s| s.user(&wanted))
            .await?
            .ok_or_else(|| no_user(name))?;
        if user.notify.channels.is_empty() {
            return Err(OperatorError::Invalid(
                "no notification channel to test: add one first".into(),
            ));
        }
        let nonce = Hash32(self.random.bytes32());
        // An address not confirmed yet is sent its link again, not a test.
        let waiting: Vec<String> = user
            .notify
            .channels
            .iter()
            .filter(|c| !c.is_ready())
            .map(|c| c.key())
            .collect();
        let already: Vec<String> = waiting
            .iter()
            .filter(|key| channel.is_some_and(|wanted| wanted != key.as_str()))
            .cloned()
            .collect();
        let mut items = self.notifier.confirm_events(&user, &already, nonce);
        items.extend(
            self.notifier
                .test_events(&user, channel, nonce)
                .into_iter()
                .filter(|item| {
                    !matches!(&item.target, crate::domain::Target::Notify { channel, .. } if waiting.contains(channel))
                }),
        );
        if items.is_empty() {
            return Err(OperatorError::NotFound(format!(
                "user '{name}' has no such channel"
            )));
        }
        let count = items.len();
        let queued = self.notifier.queue(items).await?;
        self.ledger.metrics().outbox_backlog.inc_by(queued as i64);
        self.ledger.outbox_wake().notify_one();
        Ok(count)
    }

    /// Confirms `address` for `name`, from the link mailed to it.
    pub async fn confirm_email(
        &self,
        name: &Username,
        address: &str,
        until: u64,
        tag: &str,
    ) -> Result<(), OperatorError> {
        self.notifier
            .links()
            .check_confirm(name, address, until, tag, self.clock.unix())
            .map_err(refused)?;
        let key = format!("email:{address}");
        let wanted = name.clone();
        self.write_user(move |store| {
            let Some(mut user) = store.user(&wanted)? else {
                return Ok(Err(no_user(&wanted)));
            };
            let Some(Channel::Email {
                ref mut verified, ..
            }) = user.notify.channels.iter_mut().find(|c| c.key() == key)
            else {
                return Ok(Err(OperatorError::NotFound(
                    "This address is no longer set for payment alerts.".into(),
                )));
            };
            *verified = true;
            Ok(Ok((user, ())))
        })
        .await?;
        Ok(())
    }

    /// Removes `channel` from `name`'s, from an unsubscribe link. Removing one already gone
    /// is no error: the link was followed twice.
    pub async fn unsubscribe(
        &self,
        name: &Username,
        channel: &str,
        tag: &str,
    ) -> Result<(), OperatorError> {
        self.notifier
            .links()
            .check_unsubscribe(name, channel, tag)
            .map_err(refused)?;
        let (wanted, key) = (name.clone(), channel.to_owned());
        self.write_user(move |store| {
            let Some(mut user) = store.user(&wanted)? else {
                return Ok(Err(no_user(&wanted)));
            };
            user.notify.channels.retain(|c| c.key() != key);
            Ok(Ok((user, ())))
        })
        .await?;
        crate::notify::forget_channel_health(&self.db, name, channel).await?;
        Ok(())
    }
}

/// How long a Telegram linking code works.
pub const TELEGRAM_CODE_LIFETIME: u64 = 15 * 60;

/// A code that links a Telegram chat to a person: they send `/start <code>` to the bot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TelegramLinkCode {
    pub code: String,
    /// `https://t.me/<bot>?start=<code>`: opens the chat with the code ready to send.
    pub link: String,
    pub bot: String,
    pub expires_at: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PendingLink {
    user: Username,
    expires_at: u64,
}

/// What the bot answers a chat.
pub enum TelegramReply {
    Linked(String),
    Unlinked(usize),
    Refused(&'static str),
}

impl Operator {
    /// A one-time code for `name` to link a Telegram chat, with the bot's link.
    pub async fn telegram_link_code(
        &self,
        name: &Username,
    ) -> Result<TelegramLinkCode, OperatorError> {
        let Some(bot) = self.notifier.telegram() else {
            return Err(OperatorError::Invalid(
                "this server has no Telegram bot (RAYO_TELEGRAM_BOT_TOKEN)".into(),
            ));
        };
        let wanted = name.clone();
        self.db
            .point(move |s| s.user(&wanted))
            .await?
            .ok_or_else(|| no_user(name))?;
        let username = bot.username().await.map_err(|e| {
            OperatorError::Invalid(format!(
                "could not ask Telegram for the bot's name: {}",
                e.reason
            ))
        })?;
        // 24 characters of base64url: within Telegram's 64 for a start parameter, and
        // unguessable for the quarter hour it works.
        let code = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &self.random.bytes32()[..18],
        );
        let expires_at = self.clock.unix() + TELEGRAM_CODE_LIFETIME;
        let value = serde_json::to_vec(&PendingLink {
            user: name.clone(),
            expires_at,
        })
        .unwrap_or_default();
        let key = Hash32::sha256(code.as_bytes()).to_hex();
        self.db
            .commit(move |s| {
                s.swap_record(Swap::create(RecordKind::TelegramLink, &key, &value))
                    .map(|_| ())
            })
            .await?;
        Ok(TelegramLinkCode {
            link: format!("https://t.me/{username}?start={code}"),
            code,
            bot: username,
            expires_at,
        })
    }

    /// What the bot heard from `chat`: `/start <code>` links it to the code's person (once,
    /// within its lifetime); `/stop` removes it from everyone who has it.
    pub async fn telegram_message(
        &self,
        chat: i64,
        text: &str,
    ) -> Result<TelegramReply, OperatorError> {
        let mut words = text.split_whitespace();
        let command = words.next().unwrap_or_default();
        // `/start@botname` is how commands look in groups.
        let command = command.split('@').next().unwrap_or_default();
        match command {
            "/start" => {}
            "/stop" => return self.telegram_unlink(chat).await.map(TelegramReply::Unlinked),
            _ => return Ok(TelegramReply::Refused("Send the /start code from your account page to get payment alerts here, or /stop to end them.")),
        }
        let Some(code) = words.next().filter(|c| c.len() <= 64) else {
            return Ok(TelegramReply::Refused(
                "Open the link on your account page: it sends /start with your code.",
            ));
        };
        let key = Hash32::sha256(code.as_bytes()).to_hex();
        let now = self.clock.unix();
        // Single use: whoever removes the record links the chat.
        let taken = self
            .db
            .commit(move |s| {
                let Some(bytes) = s.record(RecordKind::TelegramLink, &key)? else {
                    return Ok(None);
                };
                if !s.swap_record(Swap::remove(RecordKind::TelegramLink, &key, &bytes))? {
                    return Ok(None);
                }
                Ok(serde_json::from_slice::<PendingLink>(&bytes).ok())
            })
            .await?;
        let Some(pending) = taken.filter(|p| p.expires_at >= now) else {
            return Ok(TelegramReply::Refused(
                "This code is not valid or has expired. Get a new one on your account page.",
            ));
        };
        let channel = Channel::Telegram { chat_id: chat };
        let name = pending.user.clone();
        let (user, ()) = self
            .write_user(move |store| {
                let Some(mut user) = store.user(&name)? else {
                    return Ok(Err(no_user(&name)));
                };
                if user.notify.channel(&channel.key()).is_none() {
                    if user.notify.channels.len() >= crate::domain::MAX_CHANNELS {
                        return Ok(Err(OperatorError::Invalid("too many channels".into())));
                    }
                    user.notify.channels.push(channel);
                }
                Ok(Ok((user, ())))
            })
            .await?;
        Ok(TelegramReply::Linked(format!(
            "Linked. Payments to {} will be told here. Send /stop to end it.",
            self.notifier.composer().address(&user)
        )))
    }

    async fn telegram_unlink(&self, chat: i64) -> Result<usize, OperatorError> {
        let key = Channel::Telegram { chat_id: chat }.key();
        let holders: Vec<Username> = self
            .db
            .read(|s| s.users())
            .await?
            .into_iter()
            .filter(|u| u.notify.channel(&key).is_some())
            .map(|u| u.name)
            .collect();
        for name in &holders {
            let (wanted, key) = (name.clone(), key.clone());
            self.write_user(move |store| {
                let Some(mut user) = store.user(&wanted)? else {
                    return Ok(Err(no_user(&wanted)));
                };
                user.notify.channels.retain(|c| c.key() != key);
                Ok(Ok((user, ())))
            })
            .await?;
        }
        Ok(holders.len())
    }
}

fn refused(e: LinkError) -> OperatorError {
    OperatorError::Invalid(e.to_string())
}

impl ChannelView {
    /// ready, unconfirmed or broken: a class for the page.
    pub fn state(&self) -> &'static str {
        match self.health {
            Health::Ready => "ready",
            Health::Unconfirmed => "unconfirmed",
            Health::Broken { .. } => "broken",
        }
    }

    /// The state in words.
    pub fn words(&self) -> String {
        match &self.health {
            Health::Ready => "working".into(),
            Health::Unconfirmed => "waiting: open the link we mailed to confirm it".into(),
            Health::Broken { since, reason } => format!(
                "not working since {}: {reason}. Nothing is sent until a test gets through.",
                crate::clock::when(*since)
            ),
        }
    }

    pub fn of(channel: &Channel, marks: &[(String, crate::notify::ChannelHealth)]) -> Self {
        let key = channel.key();
        let health = match marks.iter().find(|(k, _)| *k == key) {
            Some((_, mark)) => Health::Broken {
                since: mark.broken_at,
                reason: mark.reason.clone(),
            },
            None if !channel.is_ready() => Health::Unconfirmed,
            None => Health::Ready,
        };
        Self {
            channel: channel.to_string(),
            key,
            kind: channel.kind().to_owned(),
            health,
        }
    }
}
