//! The users the LNURL routes serve, in memory. Loaded from the store at start and replaced
//! whenever the admin API changes a user; the store remains the source of truth.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::config::PublicUrl;
use crate::domain::{User, Username};
use crate::lnurl::PayProfile;

pub struct Directory {
    public_url: PublicUrl,
    profiles: RwLock<HashMap<Username, Arc<PayProfile>>>,
}

impl Directory {
    pub fn new(public_url: PublicUrl, users: Vec<User>) -> Self {
        let directory = Self {
            public_url,
            profiles: RwLock::new(HashMap::new()),
        };
        for user in users {
            directory.upsert(user);
        }
        directory
    }

    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
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

    pub fn upsert(&self, user: User) -> Arc<PayProfile> {
        let profile = Arc::new(PayProfile::build(user, &self.public_url));
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
