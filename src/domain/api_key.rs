//! Keys apps use to create and read one user's invoices. Only a hash is stored: the key itself
//! is shown once, when created.

use serde::{Deserialize, Serialize};

use super::{Hash32, Username};

pub const API_KEY_PREFIX: &str = "rk_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public handle for listing and revoking: `key_` and the first 12 hex digits of the hash.
    pub id: String,
    pub user: Username,
    pub key_hash: Hash32,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
}

impl ApiKey {
    /// A new key for `user` from 32 random bytes: the record to store, and the key to show.
    pub fn issue(user: Username, random: [u8; 32], now: u64) -> (Self, String) {
        let token = format!("{API_KEY_PREFIX}{}", hex::encode(random));
        let key_hash = Self::hash(&token);
        let record = Self {
            id: format!("key_{}", &key_hash.to_hex()[..12]),
            user,
            key_hash,
            created_at: now,
            revoked_at: None,
        };
        (record, token)
    }

    pub fn hash(token: &str) -> Hash32 {
        Hash32::sha256(token.as_bytes())
    }

    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}
