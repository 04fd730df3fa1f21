//! `rayo backup` and `rayo restore`: the whole store as one versioned JSON document, readable
//! by any later rayo whatever sled's on-disk format becomes.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::{ApiKey, InvoiceRecord, OutboxItem, User};
use crate::store::{Store, StoreError};

pub const FORMAT: &str = "rayo-backup";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Backup {
    pub format: String,
    pub version: u32,
    pub exported_at: u64,
    pub users: Vec<User>,
    /// The metadata strings invoices commit to (content addressed).
    pub metadata: Vec<String>,
    /// Oldest first, so a restore keeps their order.
    pub invoices: Vec<InvoiceRecord>,
    pub outbox: Vec<OutboxItem>,
    pub api_keys: Vec<ApiKey>,
    /// Server keys, watcher cursors and settings, base64.
    pub meta: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("not a rayo backup (format {0:?})")]
    NotABackup(String),
    #[error("backup version {0} is newer than this rayo understands ({VERSION})")]
    TooNew(u32),
    #[error("the store already holds {users} users and {invoices} invoices; restore with --force to replace them")]
    NotEmpty { users: usize, invoices: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything in `store`, now.
pub fn export(store: &dyn Store, now: u64) -> Result<Backup, StoreError> {
    let mut invoices = store.invoices(None, None, &mut |_| true, usize::MAX)?;
    invoices.reverse();
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Backup {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: now,
        users: store.users()?,
        metadata: store.metadata_entries()?,
        invoices,
        outbox: store.outbox_items(&mut |_| true, usize::MAX)?,
        api_keys: store.api_keys()?,
        meta: store
            .meta_entries()?
            .into_iter()
            .map(|(k, v)| (k, b64.encode(v)))
            .collect(),
    })
}

/// Loads `backup` into `store`: refused if the store has users or invoices, unless `force`,
/// which empties it first. Returns how many users and invoices were restored.
pub fn restore(
    store: &dyn Store,
    backup: &Backup,
    force: bool,
) -> Result<(usize, usize), RestoreError> {
    if backup.format != FORMAT {
        return Err(RestoreError::NotABackup(backup.format.clone()));
    }
    if backup.version > VERSION {
        return Err(RestoreError::TooNew(backup.version));
    }
    let users = store.users()?.len();
    let invoices = store.invoices(None, None, &mut |_| true, 1)?.len();
    if (users > 0 || invoices > 0) && !force {
        return Err(RestoreError::NotEmpty {
            users,
            invoices: store.invoices(None, None, &mut |_| true, usize::MAX)?.len(),
        });
    }
    store.clear()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (key, value) in &backup.meta {
        let bytes = b64
            .decode(value)
            .map_err(|e| StoreError::Corrupt(format!("meta {key}: {e}")))?;
        store.put_meta(key, &bytes)?;
    }
    for user in &backup.users {
        store.put_user(user)?;
    }
    for metadata in &backup.metadata {
        store.put_metadata(metadata)?;
    }
    for invoice in &backup.invoices {
        store.insert_invoice(invoice)?;
    }
    for item in &backup.outbox {
        store.put_outbox_item(item)?;
    }
    for key in &backup.api_keys {
        store.put_api_key(key)?;
    }
    store.flush()?;
    Ok((backup.users.len(), backup.invoices.len()))
}
