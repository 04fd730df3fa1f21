//! Secrets the server makes for itself on first start and keeps in the store.

use std::io;
use std::path::{Path, PathBuf};

use crate::clock::Random;
use crate::config::ConfigError;
use crate::domain::Secret;
use crate::store::{Db, StoreError};

pub struct ServerKeys {
    /// Seeds the dev backend's node key and preimages.
    pub dev_seed: [u8; 32],
    /// Keys LUD-21 verify URLs.
    pub verify_key: [u8; 32],
    /// Keys the links in notifications (confirming an address, unsubscribing).
    pub notify_key: [u8; 32],
}

impl ServerKeys {
    pub async fn load_or_create(db: &Db, random: &dyn Random) -> Result<Self, StoreError> {
        Ok(Self {
            dev_seed: key(db, "key.dev_seed", random.bytes32()).await?,
            verify_key: key(db, "key.verify", random.bytes32()).await?,
            notify_key: key(db, "key.notify", random.bytes32()).await?,
        })
    }
}

/// The key stored as `name`, or `fresh`, stored now, if there is none.
async fn key(db: &Db, name: &'static str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
    db.commit(move |store| {
        if let Some(existing) = store.meta(name)? {
            return existing
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("{name} is not 32 bytes")));
        }
        store.put_meta(name, &fresh)?;
        Ok(fresh)
    })
    .await
}

/// Where a shared database keeps the admin token when `RAYO_ADMIN_TOKEN` is not set.
pub const STORED_ADMIN_TOKEN: &str = "key.admin_token";

/// The admin token kept in the store, made now if there is none: with a database, every
/// server and the CLI find the same one there.
pub async fn load_or_create_stored_admin_token(
    db: &Db,
    random: &dyn Random,
) -> Result<Secret, StoreError> {
    let fresh = hex::encode(random.bytes32());
    db.commit(move |store| {
        if let Some(existing) = store.meta(STORED_ADMIN_TOKEN)? {
            return String::from_utf8(existing)
                .map(Secret::new)
                .map_err(|_| StoreError::Corrupt(format!("{STORED_ADMIN_TOKEN} is not text")));
        }
        store.put_meta(STORED_ADMIN_TOKEN, fresh.as_bytes())?;
        Ok(Secret::new(fresh))
    })
    .await
}

/// Where the generated admin token lives when `RAYO_ADMIN_TOKEN` is not set.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// Admin tokens shorter than this are refused: an empty or guessable token would open every
/// user's invoices and keys.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Refuses an admin token too short to be a secret.
pub fn check_admin_token(token: &Secret, source: &str) -> Result<(), ConfigError> {
    let length = token.expose().trim().chars().count();
    if length < MIN_ADMIN_TOKEN_CHARS {
        return Err(ConfigError::new(
            source,
            format!(
                "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters (it has {length}); \
                 make one with `openssl rand -hex 32`, or leave RAYO_ADMIN_TOKEN unset to have one generated"
            ),
        ));
    }
    Ok(())
}

/// Reads the admin token file, creating it (mode 0600, written whole or not at all) with a
/// fresh token if there is none.
pub fn load_or_create_admin_token(data_dir: &Path, random: &dyn Random) -> io::Result<Secret> {
    if let Some(token) = read_admin_token(data_dir)? {
        return Ok(token);
    }
    let token = hex::encode(random.bytes32());
    crate::data_dir::write_private(&admin_token_path(data_dir), token.as_bytes())?;
    Ok(Secret::new(token))
}

pub fn read_admin_token(data_dir: &Path) -> io::Result<Option<Secret>> {
    match std::fs::read_to_string(admin_token_path(data_dir)) {
        Ok(token) => Ok(Some(Secret::new(token.trim()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
