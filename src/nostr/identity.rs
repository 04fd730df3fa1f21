//! The server's Nostr key, which signs zap receipts. Generated on first start and kept in the
//! store, or configured (`RAYO_NOSTR_SECRET_KEY`, hex or nsec); `rayo nostr rotate-key` makes
//! a new stored one.

use std::sync::{Arc, RwLock};

use nostr::{Keys, SecretKey};

use crate::clock::random_bytes;
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
fn fresh_secret() -> [u8; 32] {
    loop {
        let bytes = random_bytes();
        if SecretKey::from_slice(&bytes).is_ok() {
            return bytes;
        }
    }
}

fn stored_or_new(store: &dyn Store) -> Result<Keys, StoreError> {
    if let Some(bytes) = store.meta(META_KEY)? {
        return keys_from(&bytes);
    }
    let fresh = fresh_secret();
    store.put_meta(META_KEY, &fresh)?;
    keys_from(&fresh)
}

impl NostrIdentity {
    pub async fn load(db: &Db, configured: Option<&Secret>) -> Result<Self, String> {
        if let Some(secret) = configured {
            let keys = Keys::parse(secret.expose().trim())
                .map_err(|_| "RAYO_NOSTR_SECRET_KEY: not a hex or nsec secret key".to_owned())?;
            return Ok(Self {
                keys: Arc::new(RwLock::new(keys)),
                configured: true,
            });
        }
        let keys = db.commit(stored_or_new).await.map_err(|e| e.to_string())?;
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

    /// Replaces the stored key. Receipts signed from now on use the new one; wallets see the
    /// new `nostrPubkey` at once.
    pub async fn rotate(&self, db: &Db) -> Result<String, String> {
        if self.configured {
            return Err(
                "the Nostr key comes from RAYO_NOSTR_SECRET_KEY: change it there".to_owned(),
            );
        }
        let fresh = fresh_secret();
        db.commit(move |store| store.put_meta(META_KEY, &fresh))
            .await
            .map_err(|e| e.to_string())?;
        let keys = keys_from(&fresh).map_err(|e| e.to_string())?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(self.public_key_hex())
    }
}
