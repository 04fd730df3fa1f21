//! Passkeys (WebAuthn), through webauthn-rs: registering one when joining or later, and
//! signing in with a discoverable credential (no name typed: the passkey says whose it is).
//! Each configured domain is its own relying party, so a passkey made on one domain's pages
//! is used on that domain's.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::account::{clean_label, StoredPasskey};
use super::join::FirstWay;
use super::{refused, AccountError, Accounts, SessionStarted};
use crate::config::{Domains, PublicUrl};
use crate::domain::Username;
use crate::limits::ClientKey;
use crate::operator::Operator;

/// One relying party per domain, and the console's (its origin is known once the admin
/// address is bound).
pub struct Relying {
    parties: Vec<(String, Webauthn)>,
    console: std::sync::OnceLock<Webauthn>,
}

impl Relying {
    pub fn for_domains(domains: &Domains) -> Self {
        let parties = domains
            .all()
            .filter_map(|url| {
                let origin = Url::parse(url.base()).ok()?;
                let party = WebauthnBuilder::new(url.host(), &origin)
                    .ok()?
                    .rp_name(url.domain().as_str())
                    .build();
                match party {
                    Ok(party) => Some((url.domain().to_string(), party)),
                    Err(e) => {
                        tracing::warn!(domain = %url.domain(), error = %e, "passkeys are unavailable on this domain");
                        None
                    }
                }
            })
            .collect();
        Self {
            parties,
            console: std::sync::OnceLock::new(),
        }
    }

    /// Makes `url` the console's origin (once; later calls change nothing). Passkeys need a
    /// secure context: https, or `localhost`.
    pub fn set_console(&self, url: &PublicUrl) -> Result<(), String> {
        let origin = Url::parse(url.base()).map_err(|e| e.to_string())?;
        let party = WebauthnBuilder::new(url.host(), &origin)
            .and_then(|b| b.rp_name("rayo console").build())
            .map_err(|e| format!("passkeys cannot work at {}: {e}", url.base()))?;
        let _ = self.console.set(party);
        Ok(())
    }

    pub(super) fn console(&self) -> Result<&Webauthn, AccountError> {
        self.console.get().ok_or_else(|| {
            refused("Passkeys are not available on this console address: set RAYO_ADMIN_URL to the https (or localhost) URL you open it at.")
        })
    }

    fn party(&self, domain: &str) -> Result<&Webauthn, AccountError> {
        self.parties
            .iter()
            .find(|(d, _)| d == domain)
            .map(|(_, party)| party)
            .ok_or_else(|| refused("Passkeys are not available on this domain."))
    }
}

/// A passkey ceremony in progress, stored between its two requests.
#[derive(Serialize, Deserialize)]
pub enum PasskeyCeremony {
    Join {
        /// The invite's key (`None`: open sign-up).
        invite: Option<String>,
        name: Username,
        domain: String,
        handle: String,
        state: PasskeyRegistration,
    },
    Add {
        user: Username,
        domain: String,
        state: PasskeyRegistration,
    },
    SignIn {
        domain: String,
        state: DiscoverableAuthentication,
    },
    OperatorJoin {
        /// The operator invite's key, and its id for the audit log.
        invite: String,
        invite_id: String,
        name: Username,
        handle: String,
        state: PasskeyRegistration,
    },
    OperatorSignIn {
        state: DiscoverableAuthentication,
    },
}

/// Asks for a discoverable credential (a passkey the authenticator keeps, so signing in needs
/// no name), verified by the person.
pub(super) fn discoverable(mut options: CreationChallengeResponse) -> CreationChallengeResponse {
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    options
}

pub(super) fn ceremony_failed(e: impl std::fmt::Display) -> AccountError {
    tracing::info!(error = %e, "a passkey ceremony failed");
    refused("The passkey could not be checked. Try again.")
}

impl Accounts {
    pub(super) fn handle(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.random.fill(&mut bytes);
        Uuid::from_bytes(bytes)
    }

    /// Starts registering the first passkey of a new account named `typed` (or the invite's
    /// name), by invite or, where sign-up is open, without one.
    pub async fn start_join(
        &self,
        invite_token: Option<&str>,
        typed: &str,
        url: &PublicUrl,
        client: Option<ClientKey>,
    ) -> Result<(String, CreationChallengeResponse), AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let (invite, name, domain) = self.joining(invite_token, typed, url, client).await?;
        let handle = self.handle();
        let party = self.relying.party(&domain)?;
        let (options, state) = party
            .start_passkey_registration(handle, name.as_str(), &format!("{name}@{domain}"), None)
            .map_err(ceremony_failed)?;
        let id = self
            .put_challenge(PasskeyCeremony::Join {
                invite,
                name,
                domain,
                handle: handle.simple().to_string(),
                state,
            })
            .await?;
        Ok((id, discoverable(options)))
    }

    /// Finishes joining: the invite is used, the address made (through the operator's
    /// services) or handed over, the passkey kept, and a session started.
    pub async fn finish_join(
        &self,
        operator: &Operator,
        id: &str,
        credential: &RegisterPublicKeyCredential,
        agent: &str,
    ) -> Result<SessionStarted, AccountError> {
        let Some(PasskeyCeremony::Join {
            invite,
            name,
            domain,
            handle,
            state,
        }) = self.take_challenge::<PasskeyCeremony>(id).await?
        else {
            return Err(refused("That sign-up has expired. Start again."));
        };
        let passkey = self
            .relying
            .party(&domain)?
            .finish_passkey_registration(credential, &state)
            .map_err(ceremony_failed)?;
        let used = match &invite {
            Some(key) => Some(self.use_invite(key).await?),
            None => None,
        };
        let joined = self
            .join_with(
                operator,
                used.as_ref(),
                &name,
                &domain,
                handle,
                FirstWay::Passkey(Box::new(passkey)),
            )
            .await;
        if joined.is_err() {
            if let Some(key) = &invite {
                self.give_back_invite(key).await?;
            }
        }
        joined?;
        self.start_session(&name, agent).await
    }

    /// Starts adding a passkey to `user`'s account.
    pub async fn start_add_passkey(
        &self,
        user: &Username,
        url: &PublicUrl,
    ) -> Result<(String, CreationChallengeResponse), AccountError> {
        let account = self
            .account(user)
            .await?
            .ok_or_else(|| AccountError::NotFound("no such account".into()))?;
        if account.passkeys.len() >= 20 {
            return Err(refused("An account may have at most 20 passkeys."));
        }
        let domain = url.domain().to_string();
        let handle = Uuid::try_parse(&account.handle)
            .map_err(|_| refused("This account cannot take passkeys."))?;
        let exclude = account
            .passkeys
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect();
        let (options, state) = self
            .relying
            .party(&domain)?
            .start_passkey_registration(
                handle,
                user.as_str(),
                &format!("{user}@{domain}"),
                Some(exclude),
            )
            .map_err(ceremony_failed)?;
        let id = self
            .put_challenge(PasskeyCeremony::Add {
                user: user.clone(),
                domain,
                state,
            })
            .await?;
        Ok((id, discoverable(options)))
    }

    pub async fn finish_add_passkey(
        &self,
        user: &Username,
        id: &str,
        credential: &RegisterPublicKeyCredential,
        label: &str,
    ) -> Result<StoredPasskey, AccountError> {
        let label = clean_label(label)?;
        let Some(PasskeyCeremony::Add {
            user: owner,
            domain,
            state,
        }) = self.take_challenge::<PasskeyCeremony>(id).await?
        else {
            return Err(refused(
                "That passkey registration has expired. Start again.",
            ));
        };
        // A ceremony started by another person's session is not this person's to finish.
        if &owner != user {
            return Err(refused(
                "That passkey registration has expired. Start again.",
            ));
        }
        let passkey = self
            .relying
            .party(&domain)?
            .finish_passkey_registration(credential, &state)
            .map_err(ceremony_failed)?;
        let key = StoredPasskey::labelled(passkey, label, self.now());
        self.change_account(user, |account| {
            if account.passkeys.iter().any(|p| p.id == key.id) {
                return Err(refused("That passkey is already on this account."));
            }
            account.passkeys.push(key.clone());
            Ok(())
        })
        .await?;
        Ok(key)
    }

    /// Starts a sign-in with whichever passkey the person's authenticator offers.
    pub async fn start_sign_in(
        &self,
        url: &PublicUrl,
        client: Option<ClientKey>,
    ) -> Result<(String, RequestChallengeResponse), AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let domain = url.domain().to_string();
        let (mut options, state) = self
            .relying
            .party(&domain)?
            .start_discoverable_authentication()
            .map_err(ceremony_failed)?;
        // A button press asks at once; the browser's autofill (conditional) UI is optional.
        options.mediation = None;
        let id = self
            .put_challenge(PasskeyCeremony::SignIn { domain, state })
            .await?;
        Ok((id, options))
    }

    pub async fn finish_sign_in(
        &self,
        id: &str,
        credential: &PublicKeyCredential,
        client: Option<ClientKey>,
        agent: &str,
    ) -> Result<SessionStarted, AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let Some(PasskeyCeremony::SignIn { domain, state }) =
            self.take_challenge::<PasskeyCeremony>(id).await?
        else {
            return Err(refused("That sign-in has expired. Try again."));
        };
        let party = self.relying.party(&domain)?;
        let (handle, credential_id) = party
            .identify_discoverable_authentication(credential)
            .map_err(ceremony_failed)?;
        let unknown = || refused("That passkey is not registered here.");
        let account = self
            .account_by_handle(&handle.simple().to_string())
            .await?
            .ok_or_else(unknown)?;
        if !self.limits.allow_account(account.name.as_str()) {
            return Err(AccountError::RateLimited);
        }
        let key_id = super::account::passkey_id(credential_id);
        let known = account
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
        self.change_account(&account.name, |account| {
            if let Some(passkey) = account.passkeys.iter_mut().find(|p| p.id == key_id) {
                passkey.passkey.update_credential(&result);
                passkey.last_used_at = Some(now);
            }
            Ok(())
        })
        .await?;
        self.start_session(&account.name, agent).await
    }
}
