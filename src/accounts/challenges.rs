//! Ceremonies in progress (a passkey registration or sign-in, an LNURL-auth `k1`): stored with
//! a deadline, taken once. Two instances taking the same one: one gets it.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{decode, encode, AccountError, Accounts, CHALLENGE_LIFETIME};
use crate::store::{RecordKind, Swap};

#[derive(Serialize, Deserialize)]
pub(super) struct Stored<T> {
    pub expires_at: u64,
    pub body: T,
}

/// How many expired ceremonies one sweep removes.
const SWEEP_BATCH: usize = 500;

impl Accounts {
    /// Stores `body` under a fresh id, for `CHALLENGE_LIFETIME`; the id.
    pub(super) async fn put_challenge<T: Serialize>(
        &self,
        body: T,
    ) -> Result<String, AccountError> {
        let id = hex::encode(&self.random.bytes32()[..16]);
        self.put_challenge_as(&id, body).await?;
        Ok(id)
    }

    pub(super) async fn put_challenge_as<T: Serialize>(
        &self,
        id: &str,
        body: T,
    ) -> Result<(), AccountError> {
        let stored = Stored {
            expires_at: self.now() + CHALLENGE_LIFETIME,
            body,
        };
        if !self
            .swap(RecordKind::Challenge, id, None, Some(encode(&stored)?))
            .await?
        {
            return Err(AccountError::Refused(
                "That sign-in is already under way.".into(),
            ));
        }
        Ok(())
    }

    /// Takes the ceremony `id` (once): `None` if there is none, it was taken, or it expired.
    pub(super) async fn take_challenge<T: DeserializeOwned + Send + 'static>(
        &self,
        id: &str,
    ) -> Result<Option<T>, AccountError> {
        if id.is_empty() || id.len() > 100 {
            return Ok(None);
        }
        let Some(read) = self.read::<Stored<T>>(RecordKind::Challenge, id).await? else {
            return Ok(None);
        };
        if !self
            .swap(RecordKind::Challenge, id, Some(read.bytes), None)
            .await?
        {
            return Ok(None);
        }
        Ok((read.value.expires_at >= self.now()).then_some(read.value.body))
    }

    /// Removes ceremonies past their deadline (nobody finished them); how many.
    pub async fn sweep(&self) -> Result<usize, AccountError> {
        let now = self.now();
        let found = self
            .db
            .read(|s| s.records(RecordKind::Challenge, "", SWEEP_BATCH * 4))
            .await?;
        let expired: Vec<(String, Vec<u8>)> = found
            .into_iter()
            .filter(|(_, bytes)| {
                decode::<Stored<serde::de::IgnoredAny>>(bytes).is_ok_and(|s| s.expires_at < now)
            })
            .take(SWEEP_BATCH)
            .collect();
        let swept = expired.len();
        if swept > 0 {
            self.db
                .commit(move |s| {
                    for (key, bytes) in &expired {
                        s.swap_record(Swap::remove(RecordKind::Challenge, key, bytes))?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{CountingRandom, HandClock};
    use crate::config::Settings;
    use crate::store::{Db, MemoryStore};

    #[tokio::test]
    async fn a_ceremony_is_taken_once_and_swept_when_nobody_finished_it() {
        let settings = Settings::defaults();
        let clock = Arc::new(HandClock::at(1_000));
        let accounts = Accounts::new(
            &settings,
            settings.domains().unwrap(),
            Db::new(Arc::new(MemoryStore::new())),
            clock.clone(),
            Arc::new(CountingRandom::new(7)),
        );
        let taken = accounts.put_challenge("first".to_owned()).await.unwrap();
        assert_eq!(
            accounts
                .take_challenge::<String>(&taken)
                .await
                .unwrap()
                .as_deref(),
            Some("first")
        );
        assert_eq!(
            accounts.take_challenge::<String>(&taken).await.unwrap(),
            None,
            "once"
        );

        let abandoned = accounts.put_challenge("second".to_owned()).await.unwrap();
        assert_eq!(accounts.sweep().await.unwrap(), 0, "not expired yet");
        clock.advance(CHALLENGE_LIFETIME + 1);
        assert_eq!(accounts.sweep().await.unwrap(), 1);
        assert_eq!(
            accounts.take_challenge::<String>(&abandoned).await.unwrap(),
            None
        );
    }
}
