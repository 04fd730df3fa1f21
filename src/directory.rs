//! The users the LNURL routes serve: read from the store when first asked for, kept in a
//! bounded cache, and replaced whenever the operator changes a user; the store remains the
//! source of truth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::{Domains, PublicUrl};
use crate::domain::{BackendName, User, Username};
use crate::lnurl::PayProfile;
use crate::store::Db;

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

/// Profiles kept in memory: the addresses being paid right now. A store of 100,000 users
/// costs nothing at start and a few hundred kilobytes while serving.
const CACHED_PROFILES: usize = 1024;

pub struct Directory {
    domains: Domains,
    db: Db,
    cache: RwLock<ProfileCache>,
    zaps: Option<ZapAdvert>,
    /// Told of every change, for what follows users (their BOLT12 offers).
    changed: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct ProfileCache {
    profiles: HashMap<Username, (Arc<PayProfile>, AtomicU64)>,
    /// Counts uses, for evicting the least recently used.
    clock: AtomicU64,
    /// Bumped by every change: a profile read from the store before a change is not cached.
    generation: u64,
}

impl ProfileCache {
    fn get(&self, name: &Username) -> Option<Arc<PayProfile>> {
        let (profile, used) = self.profiles.get(name)?;
        used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(profile.clone())
    }

    fn insert(&mut self, profile: Arc<PayProfile>) {
        if self.profiles.len() >= CACHED_PROFILES && !self.profiles.contains_key(&profile.user.name)
        {
            self.evict();
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        self.profiles
            .insert(profile.user.name.clone(), (profile, AtomicU64::new(now)));
    }

    /// Drops the least recently used eighth, so evicting is rare and cheap.
    fn evict(&mut self) {
        let mut uses: Vec<u64> = self
            .profiles
            .values()
            .map(|(_, used)| used.load(Ordering::Relaxed))
            .collect();
        let cut = uses.len() / 8;
        let (_, &mut threshold, _) = uses.select_nth_unstable(cut);
        self.profiles
            .retain(|_, (_, used)| used.load(Ordering::Relaxed) > threshold);
    }
}

impl Directory {
    pub fn new(domains: Domains, db: Db, zaps: Option<ZapAdvert>) -> Self {
        Self {
            domains,
            db,
            cache: RwLock::new(ProfileCache::default()),
            zaps,
            changed: std::sync::Arc::default(),
        }
    }

    /// Notified after users change, here or (on a shared store) elsewhere.
    pub fn changes(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.changed.clone()
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
    pub async fn get_on(&self, host: Option<&str>, name: &Username) -> Option<Arc<PayProfile>> {
        let profile = self.get(name).await?;
        if !self.domains.is_multi() {
            return Some(profile);
        }
        let asked = self.domains.for_host(host?)?;
        (self.public_url_for(&profile.user).domain() == asked.domain()).then_some(profile)
    }

    /// The user behind an address's local part (`alice`, `Alice+tips`) on the domain `host`
    /// asked for, if they take payments.
    pub async fn payable(
        &self,
        host: Option<&str>,
        name: &str,
    ) -> Result<Arc<PayProfile>, Unpayable> {
        let name = Username::from_address(name).map_err(|_| Unpayable::Unknown)?;
        taking_payments(self.get_on(host, &name).await)
    }

    /// The user `name`, on whichever domain, if they take payments (an app or the operator
    /// ordering an invoice for them).
    pub async fn payable_user(&self, name: &Username) -> Result<Arc<PayProfile>, Unpayable> {
        taking_payments(self.get(name).await)
    }

    /// `name`'s profile: from memory, or read from the store (a point read sled answers from
    /// its cache or one page, a database off the async workers) and kept. Unknown names are
    /// not kept: asking for random names costs a read each and fills nothing.
    pub async fn get(&self, name: &Username) -> Option<Arc<PayProfile>> {
        let generation = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some(profile) = cache.get(name) {
                return Some(profile);
            }
            cache.generation
        };
        let read = name.clone();
        let user = match self.db.point(move |s| s.user(&read)).await {
            Ok(user) => user?,
            Err(e) => {
                tracing::error!(user = %name, error = %e, "could not read a user from the store");
                return None;
            }
        };
        let profile = self.build(user);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.generation == generation {
            cache.insert(profile.clone());
        }
        Some(profile)
    }

    /// Up to `limit` users, by name, for the landing page.
    pub async fn first_users(&self, limit: usize) -> Vec<User> {
        match self.db.read(move |s| s.first_users(limit)).await {
            Ok(users) => users,
            Err(e) => {
                tracing::error!(error = %e, "could not list users");
                Vec::new()
            }
        }
    }

    /// The Nostr public key to advertise for `user`, if zaps can work for them.
    fn nostr_key_for(&self, user: &User) -> Option<String> {
        let zaps = self.zaps.as_ref()?;
        (user.nwc.is_some() || (zaps.capable)(user.backend.as_ref())).then(|| {
            zaps.public_key
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }

    /// Advertises a new Nostr key: every profile is built again when next asked for.
    pub fn set_nostr_key(&self, public_key: String) {
        if let Some(zaps) = &self.zaps {
            *zaps.public_key.write().unwrap_or_else(|p| p.into_inner()) = public_key;
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.profiles.clear();
        cache.generation += 1;
    }

    fn build(&self, user: User) -> Arc<PayProfile> {
        let nostr = self.nostr_key_for(&user);
        let public_url = self.public_url_for(&user).clone();
        Arc::new(PayProfile::build(user, &public_url, nostr.as_deref()))
    }

    /// A user the store now holds (added or changed).
    pub fn upsert(&self, user: User) -> Arc<PayProfile> {
        let profile = self.build(user);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.insert(profile.clone());
        self.changed.notify_one();
        profile
    }

    /// Forgets every cached profile (users may have changed unseen): each is read again when
    /// next asked for.
    pub fn forget_all(&self) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.profiles.clear();
        self.changed.notify_one();
    }

    /// A user the store no longer holds, or one changed elsewhere: read again when next
    /// asked for.
    pub fn remove(&self, name: &Username) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.profiles.remove(name);
        self.changed.notify_one();
    }
}

/// The one rule for who can be paid: a user who exists and is not disabled.
fn taking_payments(profile: Option<Arc<PayProfile>>) -> Result<Arc<PayProfile>, Unpayable> {
    let profile = profile.ok_or(Unpayable::Unknown)?;
    if profile.user.disabled {
        return Err(Unpayable::Disabled);
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Store};

    fn directory() -> (Directory, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let domains =
            Domains::new(PublicUrl::parse("https://example.com").unwrap(), vec![]).unwrap();
        let zaps = ZapAdvert {
            public_key: RwLock::new("aa".repeat(32)),
            capable: Box::new(|_| true),
        };
        (
            Directory::new(domains, Db::new(store.clone()), Some(zaps)),
            store,
        )
    }

    fn user(name: &str) -> User {
        crate::store::contract::user(name)
    }

    #[tokio::test]
    async fn users_in_the_store_are_found_without_loading_them_at_start() {
        let (directory, store) = directory();
        assert!(directory
            .get(&Username::parse("alice").unwrap())
            .await
            .is_none());
        store.put_user(&user("alice")).unwrap();
        let alice = directory
            .get(&Username::parse("alice").unwrap())
            .await
            .unwrap();
        assert_eq!(alice.user.name.as_str(), "alice");
        assert_eq!(
            directory
                .payable(None, "Alice+tips")
                .await
                .unwrap()
                .user
                .name,
            alice.user.name
        );
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_however_many_users_are_paid() {
        let (directory, store) = directory();
        for n in 0..3 * CACHED_PROFILES {
            store.put_user(&user(&format!("user{n}"))).unwrap();
        }
        for n in 0..3 * CACHED_PROFILES {
            assert!(directory
                .get(&Username::parse(&format!("user{n}")).unwrap())
                .await
                .is_some());
        }
        let cached = directory.cache.read().unwrap().profiles.len();
        assert!(cached <= CACHED_PROFILES, "{cached} profiles cached");
        // Random unknown names cost a read each and are not kept.
        for n in 0..100 {
            assert!(directory
                .get(&Username::parse(&format!("nobody{n}")).unwrap())
                .await
                .is_none());
        }
        assert!(directory.cache.read().unwrap().profiles.len() <= cached);
    }

    #[tokio::test]
    async fn changes_by_the_operator_are_served_at_once() {
        let (directory, store) = directory();
        let name = Username::parse("bob").unwrap();
        store.put_user(&user("bob")).unwrap();
        assert!(!directory.get(&name).await.unwrap().user.disabled);
        let mut disabled = user("bob");
        disabled.disabled = true;
        store.put_user(&disabled).unwrap();
        directory.upsert(disabled);
        assert!(directory.get(&name).await.unwrap().user.disabled);
        let before = directory.get(&name).await.unwrap().pay_request.clone();
        directory.set_nostr_key("bb".repeat(32));
        let after = directory.get(&name).await.unwrap().pay_request.clone();
        assert_ne!(before, after, "profiles advertise the new Nostr key");
        assert!(String::from_utf8_lossy(&after).contains(&"bb".repeat(32)));
        store.remove_user(&name).unwrap();
        directory.remove(&name);
        assert!(directory.get(&name).await.is_none());
    }
}
