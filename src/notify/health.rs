//! Which channels are broken: a channel whose message became a dead letter (it failed for a
//! whole delivery window) is marked, shown to its owner and the operator, and sent nothing
//! more until a test message gets through. Kept apart from the user record, so delivery
//! never writes over a change the person or the operator is making.

use serde::{Deserialize, Serialize};

use crate::domain::Username;
use crate::store::records::{RecordKind, Swap};
use crate::store::{Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelHealth {
    pub broken_at: u64,
    /// The last attempt's outcome.
    pub reason: String,
}

/// A channel as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    Ready,
    /// An email address not confirmed yet.
    Unconfirmed,
    Broken {
        since: u64,
        reason: String,
    },
}

/// Whose channels: a person's name, or `~operator` (no name has a tilde).
pub fn owner(user: Option<&Username>) -> String {
    user.map_or_else(|| "~operator".to_owned(), |u| u.to_string())
}

fn key(owner: &str, channel: &str) -> String {
    format!("{owner}/{channel}")
}

pub async fn read(
    db: &Db,
    owner: &str,
    channel: &str,
) -> Result<Option<ChannelHealth>, StoreError> {
    let key = key(owner, channel);
    let found = db
        .point(move |s| s.record(RecordKind::ChannelHealth, &key))
        .await?;
    Ok(found.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Every marked channel of `owner`, by channel key.
pub async fn of_owner(db: &Db, owner: &str) -> Result<Vec<(String, ChannelHealth)>, StoreError> {
    let prefix = format!("{owner}/");
    let rows = db
        .read(move |s| s.records(RecordKind::ChannelHealth, &prefix, 64))
        .await?;
    let skip = owner.len() + 1;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| Some((k.get(skip..)?.to_owned(), serde_json::from_slice(&v).ok()?)))
        .collect())
}

/// Every marked channel, for the operator: (owner, channel, health).
pub async fn all(
    db: &Db,
    limit: usize,
) -> Result<Vec<(String, String, ChannelHealth)>, StoreError> {
    let rows = db
        .read(move |s| s.records(RecordKind::ChannelHealth, "", limit))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| {
            let (owner, channel) = k.split_once('/')?;
            Some((
                owner.to_owned(),
                channel.to_owned(),
                serde_json::from_slice(&v).ok()?,
            ))
        })
        .collect())
}

pub async fn mark_broken(
    db: &Db,
    owner: &str,
    channel: &str,
    at: u64,
    reason: &str,
) -> Result<(), StoreError> {
    let key = key(owner, channel);
    let value = serde_json::to_vec(&ChannelHealth {
        broken_at: at,
        reason: reason.chars().take(300).collect(),
    })
    .unwrap_or_default();
    db.commit(move |s| {
        // The first mark stays: it says since when.
        if s.record(RecordKind::ChannelHealth, &key)?.is_none() {
            s.swap_record(Swap::create(RecordKind::ChannelHealth, &key, &value))?;
        }
        Ok(())
    })
    .await
}

pub async fn clear(db: &Db, owner: &str, channel: &str) -> Result<(), StoreError> {
    let key = key(owner, channel);
    db.commit(move |s| {
        if let Some(old) = s.record(RecordKind::ChannelHealth, &key)? {
            s.swap_record(Swap::remove(RecordKind::ChannelHealth, &key, &old))?;
        }
        Ok(())
    })
    .await
}

/// Forgets `owner`'s marks, as part of the caller's write (a removed user).
pub fn forget(store: &dyn crate::store::Store, owner: &str) -> Result<(), StoreError> {
    let prefix = format!("{owner}/");
    for (key, value) in store.records(RecordKind::ChannelHealth, &prefix, usize::MAX)? {
        store.swap_record(Swap::remove(RecordKind::ChannelHealth, &key, &value))?;
    }
    Ok(())
}
