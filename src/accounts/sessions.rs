//! Sessions: a random token in a cookie, stored only as its hash, with an idle and an
//! absolute lifetime, a CSRF token of its own, and an index by person so they can be listed
//! and ended. They live in the store, so every instance on PostgreSQL knows them.

use serde::{Deserialize, Serialize};

use super::{encode, key_of, AccountError, Accounts};
use crate::domain::Username;
use crate::store::{RecordKind, Swap};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: Username,
    pub created_at: u64,
    pub seen_at: u64,
    /// What every form of this session must carry.
    pub csrf: String,
    /// The browser, as its user agent said, shortened: to tell sessions apart on the page.
    pub agent: String,
}

/// A session just started: the token goes into the cookie, once.
pub struct SessionStarted {
    pub token: String,
    pub session: Session,
}

/// A session as the account page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// What forms name it by: the start of its key (never the token).
    pub id: String,
    pub created_at: u64,
    pub seen_at: u64,
    /// When it was last used, as people read it.
    pub seen: String,
    pub agent: String,
    pub current: bool,
}

/// Whose sessions: people's (the account page) or operators' (the console). Each has its own
/// records, so a session of one never opens the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    People,
    Console,
}

impl Realm {
    /// The sessions' kind, and their index by owner.
    fn kinds(self) -> (RecordKind, RecordKind) {
        match self {
            Realm::People => (RecordKind::Session, RecordKind::SessionOf),
            Realm::Console => (RecordKind::ConsoleSession, RecordKind::ConsoleSessionOf),
        }
    }
}

/// A person may have this many sessions; signing in once more ends the oldest.
const MAX_SESSIONS: usize = 20;
/// Seen-at is written at most this often per session, not on every request.
const TOUCH_EVERY: u64 = 60;
/// How much of a session's key names it on the page.
const ID_LEN: usize = 16;

fn index_key(user: &Username, session_key: &str) -> String {
    format!("{}/{session_key}", user.as_str())
}

fn short_agent(agent: &str) -> String {
    let agent: String = agent.chars().filter(|c| !c.is_control()).take(80).collect();
    if agent.is_empty() {
        "an unnamed browser".into()
    } else {
        agent
    }
}

impl Accounts {
    /// Starts a new session for `user`: always a new token (a session id is never carried over
    /// from before sign-in).
    pub async fn start_session_in(
        &self,
        realm: Realm,
        user: &Username,
        agent: &str,
    ) -> Result<SessionStarted, AccountError> {
        let (kind, index_kind) = realm.kinds();
        let token = self.token();
        let now = self.now();
        let session = Session {
            user: user.clone(),
            created_at: now,
            seen_at: now,
            csrf: self.token(),
            agent: short_agent(agent),
        };
        let key = key_of(&token);
        let record = encode(&session)?;
        let index = index_key(user, &key);
        let mut older = self.sessions_of_keys(realm, user).await?;
        self.db
            .commit(move |s| {
                s.swap_record(Swap::create(kind, &key, &record))?;
                s.swap_record(Swap::create(index_kind, &index, b""))
            })
            .await?;
        // Beyond the cap, the oldest go.
        if older.len() + 1 > MAX_SESSIONS {
            let mut dated = Vec::new();
            for (key, _) in older.drain(..) {
                if let Some(read) = self.read::<Session>(kind, &key).await? {
                    dated.push((read.value.created_at, key));
                }
            }
            dated.sort();
            let excess = (dated.len() + 1).saturating_sub(MAX_SESSIONS);
            for (_, key) in dated.into_iter().take(excess) {
                self.end_session_key(realm, user, &key).await?;
            }
        }
        Ok(SessionStarted { token, session })
    }

    /// The live session `token` opens, if any: an ended, idle or too old one opens nothing
    /// (and is removed).
    pub async fn session_in(
        &self,
        realm: Realm,
        token: &str,
    ) -> Result<Option<Session>, AccountError> {
        let (kind, _) = realm.kinds();
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let key = key_of(token);
        let Some(read) = self.read::<Session>(kind, &key).await? else {
            return Ok(None);
        };
        let now = self.now();
        let session = read.value;
        let idle = now.saturating_sub(session.seen_at) > self.session_idle;
        let old = now.saturating_sub(session.created_at) > self.session_lifetime;
        if idle || old {
            self.end_session_key(realm, &session.user, &key).await?;
            return Ok(None);
        }
        if now.saturating_sub(session.seen_at) >= TOUCH_EVERY {
            let seen = Session {
                seen_at: now,
                ..session.clone()
            };
            // Another request may have touched it meanwhile: either write is as good.
            self.swap(kind, &key, Some(read.bytes), Some(encode(&seen)?))
                .await?;
        }
        Ok(Some(session))
    }

    /// Ends the session `token` opens (signing out).
    pub async fn end_session_in(&self, realm: Realm, token: &str) -> Result<(), AccountError> {
        let key = key_of(token);
        if let Some(read) = self.read::<Session>(realm.kinds().0, &key).await? {
            self.end_session_key(realm, &read.value.user, &key).await?;
        }
        Ok(())
    }

    async fn end_session_key(
        &self,
        realm: Realm,
        user: &Username,
        key: &str,
    ) -> Result<(), AccountError> {
        let (kind, index_kind) = realm.kinds();
        let key = key.to_owned();
        let index = index_key(user, &key);
        self.db
            .commit(move |s| {
                if let Some(bytes) = s.record(kind, &key)? {
                    s.swap_record(Swap::remove(kind, &key, &bytes))?;
                }
                s.swap_record(Swap::remove(index_kind, &index, b""))
            })
            .await?;
        Ok(())
    }

    /// The keys of `user`'s sessions, each with its index record's bytes.
    pub(super) async fn sessions_of_keys(
        &self,
        realm: Realm,
        user: &Username,
    ) -> Result<Vec<(String, Vec<u8>)>, AccountError> {
        let prefix = format!("{}/", user.as_str());
        let skip = prefix.len();
        let found = self
            .db
            .read(move |s| s.records(realm.kinds().1, &prefix, MAX_SESSIONS * 4))
            .await?;
        Ok(found
            .into_iter()
            .map(|(key, bytes)| (key[skip..].to_owned(), bytes))
            .collect())
    }

    /// `user`'s sessions, newest first; `current` is the token of the one asking.
    pub async fn sessions_in(
        &self,
        realm: Realm,
        user: &Username,
        current: &str,
    ) -> Result<Vec<SessionView>, AccountError> {
        let current = key_of(current);
        let mut views = Vec::new();
        for (key, _) in self.sessions_of_keys(realm, user).await? {
            if let Some(read) = self.read::<Session>(realm.kinds().0, &key).await? {
                let session = read.value;
                views.push(SessionView {
                    id: key[..ID_LEN].to_owned(),
                    created_at: session.created_at,
                    seen_at: session.seen_at,
                    seen: super::when(session.seen_at),
                    agent: session.agent,
                    current: key == current,
                });
            }
        }
        views.sort_by_key(|v| std::cmp::Reverse(v.seen_at));
        Ok(views)
    }

    /// Ends one of `user`'s sessions by the id the page shows; another person's id finds
    /// nothing.
    pub async fn end_session_by_id_in(
        &self,
        realm: Realm,
        user: &Username,
        id: &str,
    ) -> Result<(), AccountError> {
        let found = self
            .sessions_of_keys(realm, user)
            .await?
            .into_iter()
            .find(|(key, _)| id.len() == ID_LEN && key.starts_with(id));
        match found {
            Some((key, _)) => self.end_session_key(realm, user, &key).await,
            None => Err(AccountError::NotFound("no such session".into())),
        }
    }

    /// Ends every session of `user` but the one `keep` opens (if given).
    pub async fn end_sessions_in(
        &self,
        realm: Realm,
        user: &Username,
        keep: Option<&str>,
    ) -> Result<usize, AccountError> {
        let keep = keep.map(key_of);
        let mut ended = 0;
        for (key, _) in self.sessions_of_keys(realm, user).await? {
            if Some(&key) != keep.as_ref() {
                self.end_session_key(realm, user, &key).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    // A person's sessions: the account page's.

    pub async fn start_session(
        &self,
        user: &Username,
        agent: &str,
    ) -> Result<SessionStarted, AccountError> {
        self.start_session_in(Realm::People, user, agent).await
    }

    pub async fn session(&self, token: &str) -> Result<Option<Session>, AccountError> {
        self.session_in(Realm::People, token).await
    }

    pub async fn end_session(&self, token: &str) -> Result<(), AccountError> {
        self.end_session_in(Realm::People, token).await
    }

    pub async fn sessions(
        &self,
        user: &Username,
        current: &str,
    ) -> Result<Vec<SessionView>, AccountError> {
        self.sessions_in(Realm::People, user, current).await
    }

    pub async fn end_session_by_id(&self, user: &Username, id: &str) -> Result<(), AccountError> {
        self.end_session_by_id_in(Realm::People, user, id).await
    }

    pub async fn end_sessions(
        &self,
        user: &Username,
        keep: Option<&str>,
    ) -> Result<usize, AccountError> {
        self.end_sessions_in(Realm::People, user, keep).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::{CountingRandom, HandClock};
    use crate::config::Settings;
    use crate::store::{Db, MemoryStore};

    fn accounts(clock: Arc<HandClock>) -> Accounts {
        let mut settings = Settings::defaults();
        settings.session_idle = Duration::from_secs(3600);
        settings.session_lifetime = Duration::from_secs(5 * 3600);
        Accounts::new(
            &settings,
            settings.domains().unwrap(),
            Db::new(Arc::new(MemoryStore::new())),
            clock,
            Arc::new(CountingRandom::new(1)),
        )
    }

    #[tokio::test]
    async fn a_session_ends_when_idle_and_when_old_however_busy() {
        let clock = Arc::new(HandClock::at(1_000_000));
        let accounts = accounts(clock.clone());
        let alice = Username::parse("alice").unwrap();
        let idle = accounts.start_session(&alice, "A").await.unwrap();
        let busy = accounts.start_session(&alice, "B").await.unwrap();
        assert_ne!(
            idle.token, busy.token,
            "every sign-in makes a new session id"
        );
        assert_eq!(
            accounts.sessions(&alice, &busy.token).await.unwrap().len(),
            2
        );

        // Used every 50 minutes: the busy one lives on, the idle one ends after an hour.
        for _ in 0..2 {
            clock.advance(50 * 60);
            assert!(accounts.session(&busy.token).await.unwrap().is_some());
        }
        assert!(accounts.session(&idle.token).await.unwrap().is_none());
        assert_eq!(
            accounts.sessions(&alice, &busy.token).await.unwrap().len(),
            1,
            "and is gone"
        );

        // However busy, five hours after sign-in it ends.
        for _ in 0..4 {
            clock.advance(50 * 60);
            assert!(accounts.session(&busy.token).await.unwrap().is_some());
        }
        clock.advance(50 * 60 + 1);
        assert!(accounts.session(&busy.token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_person_has_at_most_twenty_sessions_and_can_end_all_but_this_one() {
        let clock = Arc::new(HandClock::at(1_000_000));
        let accounts = accounts(clock.clone());
        let alice = Username::parse("alice").unwrap();
        let mut tokens = Vec::new();
        for _ in 0..22 {
            clock.advance(1);
            tokens.push(accounts.start_session(&alice, "x").await.unwrap().token);
        }
        let this = tokens.last().unwrap();
        assert_eq!(
            accounts.sessions(&alice, this).await.unwrap().len(),
            MAX_SESSIONS
        );
        assert!(
            accounts.session(&tokens[0]).await.unwrap().is_none(),
            "the oldest went"
        );
        assert_eq!(
            accounts.end_sessions(&alice, Some(this)).await.unwrap(),
            MAX_SESSIONS - 1
        );
        let left = accounts.sessions(&alice, this).await.unwrap();
        assert_eq!((left.len(), left[0].current), (1, true));
        assert!(accounts.session("").await.unwrap().is_none());
        assert!(accounts.session(&"x".repeat(500)).await.unwrap().is_none());
    }
}
