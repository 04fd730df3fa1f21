//! The console's operators: people who run the server, each with passkeys of their own, signed
//! in to the console with a session of its own kind (see `Realm`). The first is made from a
//! one-time invite printed by `rayo operator invite`; operators invite operators. Nothing
//! here is reachable with a person's account, and the admin token opens none of it.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableKey, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use super::account::{passkey_id, StoredPasskey};
use super::passkeys::{ceremony_failed, discoverable, PasskeyCeremony};
use super::{encode, key_of, refused, AccountError, Accounts, Realm, Session, SessionStarted};
use crate::domain::Username;
use crate::limits::ClientKey;
use crate::store::records::owner_value;
use crate::store::{RecordKind, Swap};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorAccount {
    pub name: Username,
    /// The passkeys' user handle: random.
    pub handle: String,
    pub created_at: u64,
    /// Who invited them: an operator's name, or `the command line`.
    pub invited_by: String,
    #[serde(default)]
    pub passkeys: Vec<StoredPasskey>,
}

/// An invite to become an operator: single use, short-lived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInvite {
    pub id: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub created_by: String,
    #[serde(default)]
    pub used_at: Option<u64>,
    #[serde(default)]
    pub used_by: Option<Username>,
}

impl OperatorInvite {
    pub fn status(&self, now: u64) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.expires_at < now {
            "expired"
        } else {
            "active"
        }
    }
}

/// An invite just made: its token is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorInviteCreated {
    pub id: String,
    pub token: String,
    pub expires_at: u64,
}

/// An operator invite as handed out: its id, its one-time URL on the console, and its end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorInviteUrl {
    pub id: String,
    pub url: String,
    pub expires_at: u64,
}

impl OperatorInviteUrl {
    /// The URL of `created` on the console at `console` (its base URL).
    pub fn of(console: &str, created: &OperatorInviteCreated) -> Self {
        Self {
            id: created.id.clone(),
            url: format!("{console}/admin/join/{}", created.token),
            expires_at: created.expires_at,
        }
    }
}

/// An operator as the console lists them.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub name: Username,
    pub created_at: u64,
    pub invited_by: String,
    pub passkeys: usize,
    pub last_used_at: Option<u64>,
}

/// Invites to operate live at most this long: they hand over the whole server.
pub const MAX_OPERATOR_INVITE: u64 = 7 * 24 * 3600;
/// And this long unless asked otherwise.
pub const OPERATOR_INVITE_LIFETIME: u64 = 24 * 3600;

impl Accounts {
    /// Makes a single-use invite to become an operator, valid for `lifetime` seconds.
    pub async fn create_operator_invite(
        &self,
        by: &str,
        lifetime: u64,
    ) -> Result<OperatorInviteCreated, AccountError> {
        if lifetime == 0 || lifetime > MAX_OPERATOR_INVITE {
            return Err(refused(format!(
                "an operator invite lives between a second and {} days",
                MAX_OPERATOR_INVITE / 86_400
            )));
        }
        let token = self.token();
        let key = key_of(&token);
        let now = self.now();
        let invite = OperatorInvite {
            id: key[..12].to_owned(),
            created_at: now,
            expires_at: now + lifetime,
            created_by: by.to_owned(),
            used_at: None,
            used_by: None,
        };
        self.swap(
            RecordKind::OperatorInvite,
            &key,
            None,
            Some(encode(&invite)?),
        )
        .await?;
        Ok(OperatorInviteCreated {
            id: invite.id,
            token,
            expires_at: invite.expires_at,
        })
    }

    /// Every operator invite, newest first.
    pub async fn operator_invites(&self) -> Result<Vec<OperatorInvite>, AccountError> {
        let found = self
            .db
            .read(|s| s.records(RecordKind::OperatorInvite, "", 1000))
            .await?;
        let mut invites = found
            .iter()
            .filter_map(|(_, bytes)| super::decode::<OperatorInvite>(bytes).ok())
            .collect::<Vec<_>>();
        invites.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        Ok(invites)
    }

    /// The invite `token` opens, if it is still usable.
    async fn usable_operator_invite(&self, token: &str) -> Result<OperatorInvite, AccountError> {
        let gone = || refused("This invite has been used or has expired: ask for a new one.");
        if token.is_empty() || token.len() > 128 {
            return Err(gone());
        }
        let invite = self
            .read::<OperatorInvite>(RecordKind::OperatorInvite, &key_of(token))
            .await?
            .ok_or_else(gone)?
            .value;
        match invite.status(self.now()) {
            "active" => Ok(invite),
            _ => Err(gone()),
        }
    }

    /// Whether `token` is an operator invite that can still be used (the join page asks).
    pub async fn operator_invite_is_usable(&self, token: &str) -> bool {
        self.usable_operator_invite(token).await.is_ok()
    }

    pub async fn operator(&self, name: &Username) -> Result<Option<OperatorAccount>, AccountError> {
        Ok(self
            .read::<OperatorAccount>(RecordKind::Operator, name.as_str())
            .await?
            .map(|r| r.value))
    }

    pub async fn operators(&self) -> Result<Vec<OperatorView>, AccountError> {
        let found = self
            .db
            .read(|s| s.records(RecordKind::Operator, "", 10_000))
            .await?;
        Ok(found
            .iter()
            .filter_map(|(_, bytes)| super::decode::<OperatorAccount>(bytes).ok())
            .map(|o| OperatorView {
                last_used_at: o.passkeys.iter().filter_map(|p| p.last_used_at).max(),
                passkeys: o.passkeys.len(),
                name: o.name,
                created_at: o.created_at,
                invited_by: o.invited_by,
            })
            .collect())
    }

    /// Starts registering the passkey of a new operator named `typed`, by invite.
    pub async fn start_operator_join(
        &self,
        token: &str,
        typed: &str,
        client: Option<ClientKey>,
    ) -> Result<(String, CreationChallengeResponse), AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let invite = self.usable_operator_invite(token).await?;
        let name = Username::parse_new(typed.trim())
            .map_err(|e| refused(format!("That name does not work: {e}.")))?;
        if self.operator(&name).await?.is_some() {
            return Err(refused("There is an operator of that name already."));
        }
        let handle = self.handle();
        let party = self.relying.console()?;
        let (options, state) = party
            .start_passkey_registration(
                handle,
                name.as_str(),
                &format!("{name} (rayo operator)"),
                None,
            )
            .map_err(ceremony_failed)?;
        let id = self
            .put_challenge(PasskeyCeremony::OperatorJoin {
                invite: key_of(token),
                invite_id: invite.id,
                name,
                handle: handle.simple().to_string(),
                state,
            })
            .await?;
        Ok((id, discoverable(options)))
    }

    /// Finishes becoming an operator: the invite is used (once, whoever else tries), the
    /// operator and their passkey kept, and a console session started.
    pub async fn finish_operator_join(
        &self,
        id: &str,
        credential: &RegisterPublicKeyCredential,
        agent: &str,
    ) -> Result<(OperatorAccount, SessionStarted), AccountError> {
        let Some(PasskeyCeremony::OperatorJoin {
            invite,
            name,
            handle,
            state,
            ..
        }) = self.take_challenge::<PasskeyCeremony>(id).await?
        else {
            return Err(refused("That sign-up has expired. Start again."));
        };
        let passkey = self
            .relying
            .console()?
            .finish_passkey_registration(credential, &state)
            .map_err(ceremony_failed)?;
        let now = self.now();
        let used = self.use_operator_invite(&invite, &name).await?;
        let operator = OperatorAccount {
            name: name.clone(),
            handle: handle.clone(),
            created_at: now,
            invited_by: used.created_by,
            passkeys: vec![StoredPasskey::labelled(
                passkey,
                "first passkey".into(),
                now,
            )],
        };
        let record = encode(&operator)?;
        let owner = owner_value(&name);
        let made = self
            .db
            .commit(move |s| {
                if !s.swap_record(Swap::create(
                    RecordKind::Operator,
                    operator_key(&name),
                    &record,
                ))? {
                    return Ok(false);
                }
                s.swap_record(Swap::create(RecordKind::OperatorHandle, &handle, &owner))
            })
            .await?;
        if !made {
            // The name went to someone else meanwhile: the invite can be used again.
            self.give_back_operator_invite(&invite).await?;
            return Err(refused("There is an operator of that name already."));
        }
        let session = self
            .start_session_in(Realm::Console, &operator.name, agent)
            .await?;
        Ok((operator, session))
    }

    async fn use_operator_invite(
        &self,
        key: &str,
        by: &Username,
    ) -> Result<OperatorInvite, AccountError> {
        let now = self.now();
        self.update::<OperatorInvite, OperatorInvite>(RecordKind::OperatorInvite, key, |current| {
            let gone = || refused("This invite has been used or has expired: ask for a new one.");
            let invite = current.ok_or_else(gone)?;
            if invite.status(now) != "active" {
                return Err(gone());
            }
            let used = OperatorInvite {
                used_at: Some(now),
                used_by: Some(by.clone()),
                ..invite.clone()
            };
            Ok((Some(used.clone()), used))
        })
        .await
    }

    async fn give_back_operator_invite(&self, key: &str) -> Result<(), AccountError> {
        self.update::<OperatorInvite, ()>(RecordKind::OperatorInvite, key, |current| {
            Ok((
                current.map(|i| OperatorInvite {
                    used_at: None,
                    used_by: None,
                    ..i.clone()
                }),
                (),
            ))
        })
        .await
    }

    /// Starts an operator's sign-in with whichever passkey their authenticator offers.
    pub async fn start_operator_sign_in(
        &self,
        client: Option<ClientKey>,
    ) -> Result<(String, RequestChallengeResponse), AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let (mut options, state) = self
            .relying
            .console()?
            .start_discoverable_authentication()
            .map_err(ceremony_failed)?;
        options.mediation = None;
        let id = self
            .put_challenge(PasskeyCeremony::OperatorSignIn { state })
            .await?;
        Ok((id, options))
    }

    pub async fn finish_operator_sign_in(
        &self,
        id: &str,
        credential: &PublicKeyCredential,
        client: Option<ClientKey>,
        agent: &str,
    ) -> Result<(OperatorAccount, SessionStarted), AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let Some(PasskeyCeremony::OperatorSignIn { state }) =
            self.take_challenge::<PasskeyCeremony>(id).await?
        else {
            return Err(refused("That sign-in has expired. Try again."));
        };
        let party = self.relying.console()?;
        let (handle, credential_id) = party
            .identify_discoverable_authentication(credential)
            .map_err(ceremony_failed)?;
        // Only operators' handles are looked up: a person's passkey opens nothing here.
        let unknown = || refused("That passkey is not an operator's.");
        let name = self
            .read::<String>(RecordKind::OperatorHandle, &handle.simple().to_string())
            .await?
            .ok_or_else(unknown)?
            .value;
        let name = Username::parse(&name).map_err(|_| unknown())?;
        if !self.limits.allow_account(&format!("operator:{name}")) {
            return Err(AccountError::RateLimited);
        }
        let operator = self.operator(&name).await?.ok_or_else(unknown)?;
        let key_id = passkey_id(credential_id);
        let known = operator
            .passkeys
            .iter()
            .find(|p| p.id == key_id)
            .ok_or_else(unknown)?;
        let result = party
            .finish_discoverable_authentication_v2(
                credential,
                state,
                DiscoverableKey::from(&known.passkey),
            )
            .map_err(ceremony_failed)?;
        let now = self.now();
        let operator = self
            .update::<OperatorAccount, OperatorAccount>(
                RecordKind::Operator,
                operator_key(&name),
                |current| {
                    let mut operator = current.cloned().ok_or_else(unknown)?;
                    if let Some(passkey) = operator.passkeys.iter_mut().find(|p| p.id == key_id) {
                        passkey.passkey.update_credential(&result);
                        passkey.last_used_at = Some(now);
                    }
                    Ok((Some(operator.clone()), operator))
                },
            )
            .await?;
        let session = self
            .start_session_in(Realm::Console, &operator.name, agent)
            .await?;
        Ok((operator, session))
    }

    /// The live console session `token` opens, if its operator still is one.
    pub async fn console_session(&self, token: &str) -> Result<Option<Session>, AccountError> {
        let Some(session) = self.session_in(Realm::Console, token).await? else {
            return Ok(None);
        };
        if self.operator(&session.user).await?.is_none() {
            self.end_session_in(Realm::Console, token).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Removes operator `name`: their passkeys stop opening the console and their sessions
    /// end. The last operator stays (the console would be locked for good otherwise; the
    /// command line can always invite a new one).
    pub async fn remove_operator(&self, name: &Username) -> Result<(), AccountError> {
        let operators = self.operators().await?;
        if !operators.iter().any(|o| &o.name == name) {
            return Err(AccountError::NotFound(format!("no operator '{name}'")));
        }
        if operators.len() == 1 {
            return Err(refused("The last operator cannot be removed."));
        }
        let Some(read) = self
            .read::<OperatorAccount>(RecordKind::Operator, name.as_str())
            .await?
        else {
            return Ok(());
        };
        let handle = read.value.handle.clone();
        let owner = owner_value(name);
        let key = name.as_str().to_owned();
        self.db
            .commit(move |s| {
                s.swap_record(Swap::remove(RecordKind::Operator, &key, &read.bytes))?;
                s.swap_record(Swap::remove(RecordKind::OperatorHandle, &handle, &owner))
            })
            .await?;
        self.end_sessions_in(Realm::Console, name, None).await?;
        Ok(())
    }
}

fn operator_key(name: &Username) -> &str {
    name.as_str()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, CountingRandom, HandClock};
    use crate::config::Settings;
    use crate::store::{Db, MemoryStore};

    fn accounts(clock: Arc<HandClock>) -> Accounts {
        let settings = Settings::defaults();
        Accounts::new(
            &settings,
            settings.domains().unwrap(),
            Db::new(Arc::new(MemoryStore::new())),
            clock,
            Arc::new(CountingRandom::new(5)),
        )
    }

    #[tokio::test]
    async fn an_operator_invite_is_used_once_whoever_tries_second() {
        let clock = Arc::new(HandClock::at(1_000));
        let accounts = accounts(clock.clone());
        let created = accounts
            .create_operator_invite("command line", 3600)
            .await
            .unwrap();
        let key = key_of(&created.token);
        assert!(accounts.operator_invite_is_usable(&created.token).await);
        let ana = Username::parse("ana").unwrap();
        let used = accounts.use_operator_invite(&key, &ana).await.unwrap();
        assert_eq!(used.used_by, Some(ana.clone()));
        let eve = Username::parse("eve").unwrap();
        assert!(matches!(
            accounts.use_operator_invite(&key, &eve).await,
            Err(AccountError::Refused(_))
        ));
        assert!(!accounts.operator_invite_is_usable(&created.token).await);
        assert_eq!(
            accounts.operator_invites().await.unwrap()[0].status(clock.unix()),
            "used"
        );

        // Given back (the name was taken meanwhile), it works again; expired, never.
        accounts.give_back_operator_invite(&key).await.unwrap();
        assert!(accounts.operator_invite_is_usable(&created.token).await);
        clock.advance(3601);
        assert!(!accounts.operator_invite_is_usable(&created.token).await);
        assert!(accounts.use_operator_invite(&key, &eve).await.is_err());
    }

    #[tokio::test]
    async fn operator_invites_live_a_bounded_time_and_unknown_tokens_open_nothing() {
        let accounts = accounts(Arc::new(HandClock::at(1_000)));
        assert!(accounts.create_operator_invite("x", 0).await.is_err());
        assert!(accounts
            .create_operator_invite("x", MAX_OPERATOR_INVITE + 1)
            .await
            .is_err());
        for token in ["", "nope", &"a".repeat(500)] {
            assert!(!accounts.operator_invite_is_usable(token).await);
        }
        // Without a console origin, no ceremony starts.
        let invite = accounts.create_operator_invite("x", 60).await.unwrap();
        assert!(accounts
            .start_operator_join(&invite.token, "ana", None)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn the_last_operator_stays_and_a_removed_one_is_gone_with_their_sessions() {
        let accounts = accounts(Arc::new(HandClock::at(1_000)));
        let (ana, bo) = (
            Username::parse("ana").unwrap(),
            Username::parse("bo").unwrap(),
        );
        for (name, handle) in [(&ana, "h1"), (&bo, "h2")] {
            let operator = OperatorAccount {
                name: name.clone(),
                handle: handle.into(),
                created_at: 1,
                invited_by: "command line".into(),
                passkeys: Vec::new(),
            };
            accounts
                .swap(
                    RecordKind::Operator,
                    name.as_str(),
                    None,
                    Some(encode(&operator).unwrap()),
                )
                .await
                .unwrap();
        }
        let session = accounts
            .start_session_in(Realm::Console, &bo, "browser")
            .await
            .unwrap();
        assert!(accounts
            .console_session(&session.token)
            .await
            .unwrap()
            .is_some());
        // A console session is no person's session, and the other way round.
        assert!(accounts.session(&session.token).await.unwrap().is_none());
        accounts.remove_operator(&bo).await.unwrap();
        assert!(accounts
            .console_session(&session.token)
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            accounts.remove_operator(&ana).await,
            Err(AccountError::Refused(_))
        ));
        assert!(matches!(
            accounts.remove_operator(&bo).await,
            Err(AccountError::NotFound(_))
        ));
    }
}
