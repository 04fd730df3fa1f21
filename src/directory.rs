//! The users the LNURL routes serve, in memory. Loaded from the store at start and replaced
//! whenever the admin API changes a user; the store remains the source of truth.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::config::{Domains, PublicUrl};
use crate::domain::{BackendName, User, Username};
use crate::lnurl::PayProfile;

/// Whether zaps are advertised for a user: the server's Nostr public key, and which backends
/// can commit to a zap request's hash (`None` is the default backend).
pub struct ZapAdvert {
    pub public_key: RwLock<String>,
    pub capable: ZapCapable,
}

/// Whether the named backend (`None`: the default) can commit to a description hash.
pub type ZapCapable = Box<dyn Fn(Option<&BackendName>) -> bool + Send + Sync>;

/// Why an address takes no payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpayable {
    /// No such user (on the domain asked for).
    Unknown,
    Disabled,
}

pub struct Directory {
    domains: Domains,
    profiles: RwLock<HashMap<Username, Arc<PayProfile>>>,
    zaps: Option<ZapAdvert>,
}

impl Directory {
    pub fn new(domains: Domains, users: Vec<User>) -> Self {
        Self::with_zaps(domains, users, None)
    }

    pub fn with_zaps(domains: Domains, users: Vec<User>, zaps: Option<ZapAdvert>) -> Self {
        let directory = Self {
            domains,
            profiles: RwLock::new(HashMap::new()),
            zaps,
        };
        for user in users {
            directory.upsert(user);
        }
        directory
    }

    /// The primary domain's public URL.
    pub fn public_url(&self) -> &PublicUrl {
        self.domains.primary()
    }

    pub fn domains(&self) -> &Domains {
        &self.domains
    }

    /// The public URL of `user`'s domain.
    pub fn public_url_for(&self, user: &User) -> &PublicUrl {
        self.domains.for_user(user.domain.as_ref())
    }

    /// The user `name` as seen from a request for `host`. With one domain the host does not
    /// matter; with several, it must be a configured domain and the user must live on it.
    pub fn get_on(&self, host: Option<&str>, name: &Username) -> Option<Arc<PayProfile>> {
        let profile = self.get(name)?;
        if !self.domains.is_multi() {
            return Some(profile);
        }
        let asked = self.domains.for_host(host?)?;
        (self.public_url_for(&profile.user).domain() == asked.domain()).then_some(profile)
    }

    /// The user behind an address's local part (`alice`, `Alice+tips`) on the domain `host`
    /// asked for, if they take payments.
    pub fn payable(&self, host: Option<&str>, name: &str) -> Result<Arc<PayProfile>, Unpayable> {
        let profile = Username::from_address(name)
            .ok()
            .and_then(|name| self.get_on(host, &name))
            .ok_or(Unpayable::Unknown)?;
        if profile.user.disabled {
            return Err(Unpayable::Disabled);
        }
        Ok(profile)
    }

    pub fn get(&self, name: &Username) -> Option<Arc<PayProfile>> {
        self.profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn profiles(&self) -> Vec<Arc<PayProfile>> {
        self.profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The Nostr public key to advertise for `user`, if zaps can work for them.
    fn nostr_key_for(&self, user: &User) -> Option<String> {
        let zaps = self.zaps.as_ref()?;
        (zaps.capable)(user.backend.as_ref()).then(|| {
            zaps.public_key
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }

    /// Advertises a new Nostr key: every profile is rebuilt.
    pub fn set_nostr_key(&self, public_key: String) {
        if let Some(zaps) = &self.zaps {
            *zaps.public_key.write().unwrap_or_else(|p| p.into_inner()) = public_key;
        }
        for profile in self.profiles() {
            self.upsert(profile.user.clone());
        }
    }

    pub fn upsert(&self, user: User) -> Arc<PayProfile> {
        let nostr = self.nostr_key_for(&user);
        let public_url = self.public_url_for(&user).clone();
        let profile = Arc::new(PayProfile::build(user, &public_url, nostr.as_deref()));
        self.profiles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(profile.user.name.clone(), profile.clone());
        profile
    }

    pub fn remove(&self, name: &Username) {
        self.profiles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}
