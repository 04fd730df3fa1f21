//! Invites: one-time (or few-times) URLs the operator hands out, to claim a new address or to
//! take over an existing one (recovery, hand-over). Stored by the hash of their token; used
//! by compare-and-swap, so the last use is had once.

use serde::{Deserialize, Serialize};

use super::{encode, key_of, refused, AccountError, Accounts};
use crate::config::Signup;
use crate::domain::Username;
use crate::store::RecordKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    /// The name the invite gives; `None`: the person picks a free one.
    pub name: Option<Username>,
    /// An existing address the invite hands over.
    pub for_user: Option<Username>,
    /// One of the server's domains; `None`: the primary one.
    pub domain: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    pub uses_left: u32,
    pub used: u32,
    pub revoked_at: Option<u64>,
}

impl Invite {
    pub fn status(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.uses_left == 0 {
            "used"
        } else if self.expires_at < now {
            "expired"
        } else {
            "active"
        }
    }

    fn usable(&self, now: u64) -> Result<(), AccountError> {
        match self.status(now) {
            "active" => Ok(()),
            "revoked" => Err(refused("This invite was revoked.")),
            "used" => Err(refused("This invite has been used.")),
            _ => Err(refused("This invite has expired: ask for a new one.")),
        }
    }

    /// The name this invite claims, given what the person typed.
    pub fn name_for(&self, typed: &str, accounts: &Accounts) -> Result<Username, AccountError> {
        match (&self.for_user, &self.name) {
            (Some(user), _) | (None, Some(user)) => Ok(user.clone()),
            (None, None) => accounts.names.claimable(typed),
        }
    }
}

/// What the operator asks for (the admin API's body, and the CLI's flags).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Seconds until it expires (default: 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// How many people may use it (default: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteView {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "for")]
    pub for_user: Option<String>,
    pub domain: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    pub uses_left: u32,
    pub used: u32,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteCreated {
    #[serde(flatten)]
    pub invite: InviteView,
    /// The one-time URL: shown this once, stored only as a hash.
    pub url: String,
}

const DEFAULT_EXPIRY: u64 = 7 * 24 * 3600;
const MAX_EXPIRY: u64 = 365 * 24 * 3600;
const MAX_USES: u32 = 1000;
const MAX_INVITES_LISTED: usize = 1000;

impl Accounts {
    fn view(&self, invite: &Invite) -> InviteView {
        InviteView {
            id: invite.id.clone(),
            name: invite.name.as_ref().map(ToString::to_string),
            for_user: invite.for_user.as_ref().map(ToString::to_string),
            domain: invite.domain.clone(),
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            uses_left: invite.uses_left,
            used: invite.used,
            status: invite.status(self.now()).to_owned(),
        }
    }

    pub async fn create_invite(
        &self,
        request: InviteRequest,
    ) -> Result<InviteCreated, AccountError> {
        let parse = |raw: &str| Username::parse(raw.trim()).map_err(|e| refused(format!("{e}.")));
        let for_user = request.for_user.as_deref().map(parse).transpose()?;
        let name = match request.name.as_deref() {
            Some(raw) => {
                Some(Username::parse_new(raw.trim()).map_err(|e| refused(format!("{e}.")))?)
            }
            None => None,
        };
        if for_user.is_some() && name.is_some() {
            return Err(refused(
                "An invite either names a new address or hands over an existing one, not both.",
            ));
        }
        let existing = |name: Username| async move { self.db.point(move |s| s.user(&name)).await };
        if let Some(user) = &for_user {
            if existing(user.clone()).await?.is_none() {
                return Err(AccountError::NotFound(format!("no user '{user}'")));
            }
        }
        if let Some(name) = &name {
            if existing(name.clone()).await?.is_some() {
                return Err(refused(format!(
                    "'{name}' is taken: invite with --for {name} to hand it over."
                )));
            }
        }
        let public_url = match request.domain.as_deref() {
            Some(domain) => self.domains.for_host(domain).ok_or_else(|| {
                refused(format!("'{domain}' is not one of this server's domains."))
            })?,
            None => self.domains.primary(),
        };
        let expires_in = request.expires_in.unwrap_or(DEFAULT_EXPIRY);
        if expires_in == 0 || expires_in > MAX_EXPIRY {
            return Err(refused("An invite expires in a minute to a year."));
        }
        let uses = request.uses.unwrap_or(1);
        if uses == 0 || uses > MAX_USES {
            return Err(refused(format!(
                "An invite may be used 1 to {MAX_USES} times."
            )));
        }
        if for_user.is_some() && uses != 1 {
            return Err(refused(
                "An invite to an existing address is for one person.",
            ));
        }
        let token = self.token();
        let key = key_of(&token);
        let now = self.now();
        let invite = Invite {
            id: key[..12].to_owned(),
            name,
            for_user,
            domain: request
                .domain
                .as_ref()
                .map(|_| public_url.domain().to_string()),
            created_at: now,
            expires_at: now + expires_in,
            uses_left: uses,
            used: 0,
            revoked_at: None,
        };
        if !self
            .swap(RecordKind::Invite, &key, None, Some(encode(&invite)?))
            .await?
        {
            return Err(refused("an invite with that token exists; try again"));
        }
        Ok(InviteCreated {
            invite: self.view(&invite),
            url: public_url.join(&format!("/join/{token}")),
        })
    }

    async fn all_invites(&self) -> Result<Vec<(String, Invite)>, AccountError> {
        let found = self
            .db
            .read(|s| s.records(RecordKind::Invite, "", MAX_INVITES_LISTED))
            .await?;
        found
            .into_iter()
            .map(|(key, bytes)| Ok((key, super::decode(&bytes)?)))
            .collect()
    }

    /// Every invite, newest first.
    pub async fn invites(&self) -> Result<Vec<InviteView>, AccountError> {
        let mut invites: Vec<Invite> = self
            .all_invites()
            .await?
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        invites.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        Ok(invites.iter().map(|i| self.view(i)).collect())
    }

    pub async fn revoke_invite(&self, id: &str) -> Result<InviteView, AccountError> {
        let key = self
            .all_invites()
            .await?
            .into_iter()
            .find(|(_, invite)| invite.id == id)
            .map(|(key, _)| key)
            .ok_or_else(|| AccountError::NotFound(format!("no invite {id}")))?;
        let now = self.now();
        let revoked = self
            .update::<Invite, Invite>(RecordKind::Invite, &key, |current| {
                let mut invite = current
                    .cloned()
                    .ok_or_else(|| AccountError::NotFound(format!("no invite {id}")))?;
                invite.revoked_at.get_or_insert(now);
                Ok((Some(invite.clone()), invite))
            })
            .await?;
        Ok(self.view(&revoked))
    }

    /// The invite `token` opens, if it can be used now.
    pub async fn invite(&self, token: &str) -> Result<Invite, AccountError> {
        if self.signup == Signup::Closed {
            return Err(refused("Joining is turned off on this server."));
        }
        let invite = self
            .read::<Invite>(RecordKind::Invite, &key_of(token))
            .await?
            .map(|r| r.value)
            .ok_or_else(|| {
                refused("This invite does not exist. Check the link, or ask for a new one.")
            })?;
        invite.usable(self.now())?;
        Ok(invite)
    }

    /// Uses the invite stored under `key` once.
    pub(super) async fn use_invite(&self, key: &str) -> Result<Invite, AccountError> {
        let now = self.now();
        self.update::<Invite, Invite>(RecordKind::Invite, key, |current| {
            let mut invite = current
                .cloned()
                .ok_or_else(|| refused("This invite does not exist."))?;
            invite.usable(now)?;
            invite.uses_left -= 1;
            invite.used += 1;
            Ok((Some(invite.clone()), invite))
        })
        .await
    }

    /// Gives back a use taken by a join that then failed.
    pub(super) async fn give_back_invite(&self, key: &str) -> Result<(), AccountError> {
        self.update::<Invite, ()>(RecordKind::Invite, key, |current| {
            let Some(invite) = current else {
                return Ok((None, ()));
            };
            let mut invite = invite.clone();
            invite.uses_left += 1;
            invite.used = invite.used.saturating_sub(1);
            Ok((Some(invite), ()))
        })
        .await
    }
}

pub(super) fn invite_key(token: &str) -> String {
    key_of(token)
}
