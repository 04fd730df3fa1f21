//! A person's notification channels, beyond setting them: a test through each, confirming an
//! email address from the mailed link, turning a channel off from an email's unsubscribe
//! link, and how each channel is doing.

use super::{no_user, Operator, OperatorError};
use crate::domain::{Channel, Hash32, Username};
use crate::notify::{Health, LinkError};

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
        let items = self
            .notifier
            .test_events(&user, channel, Hash32(self.random.bytes32()));
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
        Ok(())
    }
}

fn refused(e: LinkError) -> OperatorError {
    OperatorError::Invalid(e.to_string())
}

impl ChannelView {
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
