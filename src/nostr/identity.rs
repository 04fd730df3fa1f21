//! The server's Nostr key, which signs zap receipts. Generated on first start and kept in the
//! store, or configured (`RAYO_NOSTR_SECRET_KEY`, hex or nsec); `rayo nostr rotate-key` makes
//! a new stored one.

use std::sync::{Arc, RwLock};

use nostr::{Keys, SecretKey};

use crate::clock::Random;
use crate::domain::Secret;
use crate::store::{Db, Store, StoreError};

const META_KEY: &str = "key.nostr";

#[derive(Clone)]
pub struct NostrIdentity {
    keys: Arc<RwLock<Keys>>,
    /// A configured key cannot be rotated from here.
    configured: bool,
}

fn keys_from(bytes: &[u8]) -> Result<Keys, StoreError> {
    SecretKey::from_slice(bytes)
        .map(Keys::new)
        .map_err(|e| StoreError::Corrupt(format!("stored Nostr key: {e}")))
}

/// A fresh key (rejection-sampled: a random 32 bytes is out of range with probability ~2^-128).
fn fresh_secret(random: &dyn Random) -> [u8; 32] {
    loop {
        let bytes = random.bytes32();
        if SecretKey::from_slice(&bytes).is_ok() {
            return bytes;
        }
    }
}

fn stored_or_new(store: &dyn Store, fresh: [u8; 32]) -> Result<Keys, StoreError> {
    if let Some(bytes) = store.meta(META_KEY)? {
        return keys_from(&bytes);
    }
    store.put_meta(META_KEY, &fresh)?;
    keys_from(&fresh)
}

/// Why the Nostr identity cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("RAYO_NOSTR_SECRET_KEY: not a hex or nsec secret key")]
    BadConfiguredKey,
    #[error("the Nostr key comes from RAYO_NOSTR_SECRET_KEY: change it there")]
    Configured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NostrIdentity {
    pub async fn load(
        db: &Db,
        configured: Option<&Secret>,
        random: &dyn Random,
    ) -> Result<Self, IdentityError> {
        if let Some(secret) = configured {
            let keys =
                Keys::parse(secret.expose().trim()).map_err(|_| IdentityError::BadConfiguredKey)?;
            return Ok(Self {
                keys: Arc::new(RwLock::new(keys)),
                configured: true,
            });
        }
        let fresh = fresh_secret(random);
        let keys = db.commit(move |s| stored_or_new(s, fresh)).await?;
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            configured: false,
        })
    }

    pub fn keys(&self) -> Keys {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The x-only public key, lowercase hex: what `nostrPubkey` advertises.
    pub fn public_key_hex(&self) -> String {
        self.keys().public_key().to_hex()
    }

    /// Reads the stored key again (another instance rotated it); returns the public key if it
    /// changed.
    pub async fn reload(&self, db: &Db) -> Result<Option<String>, IdentityError> {
        if self.configured {
            return Ok(None);
        }
        let Some(bytes) = db.read(|s| s.meta(META_KEY)).await? else {
            return Ok(None);
        };
        let keys = keys_from(&bytes)?;
        if keys.public_key() == self.keys().public_key() {
            return Ok(None);
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(Some(self.public_key_hex()))
    }

    /// Is `key` where the identity is stored?
    pub fn stored_under(key: &str) -> bool {
        key == META_KEY
    }

    /// Replaces the stored key. Receipts signed from now on use the new one; wallets see the
    /// new `nostrPubkey` at once.
    pub async fn rotate(&self, db: &Db, random: &dyn Random) -> Result<String, IdentityError> {
        if self.configured {
            return Err(IdentityError::Configured);
        }
        let fresh = fresh_secret(random);
        db.commit(move |store| store.put_meta(META_KEY, &fresh))
            .await?;
        let keys = keys_from(&fresh)?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(self.public_key_hex())
    }
}
