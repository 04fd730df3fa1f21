//! `rayo backup` and `rayo restore`: the whole store as one versioned JSON document, readable
//! by any later rayo whatever sled's on-disk format becomes.

use base64::Engine;
use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use crate::config::Domains;
use crate::domain::{ApiKey, InvoiceRecord, OutboxItem, User};
use crate::store::{InvoicePage, RecordKind, Store, StoreError, Swap};

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
    /// Server keys, watcher cursors and settings, base64. Never the admin token a shared
    /// database keeps: a backup must not be an admin credential (a restored database makes a
    /// new token when its first server starts).
    pub meta: Vec<(String, String)>,
    /// People's account records that outlive a restore (accounts with their passkeys and
    /// linked wallets, invites, held-back names), values in base64. Sessions and sign-ins in
    /// progress are left out: after a restore, people sign in again. Absent from backups made
    /// before accounts existed.
    #[serde(default)]
    pub records: Vec<BackupRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub kind: String,
    pub key: String,
    pub value: String,
}

/// The kinds of account record a backup carries.
const CARRIED: [RecordKind; 8] = [
    RecordKind::Account,
    RecordKind::Handle,
    RecordKind::LinkingKey,
    RecordKind::Invite,
    RecordKind::Quarantine,
    RecordKind::Operator,
    RecordKind::OperatorHandle,
    RecordKind::Audit,
];

/// Meta entries that never travel in a backup.
/// (The key that seals what instances tell each other is the database's own: a restored
/// database makes a new one.)
fn kept_out(key: &str) -> bool {
    key == crate::keys::STORED_ADMIN_TOKEN || key == crate::store::postgres::SEAL_KEY
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("not a rayo backup (format {0:?})")]
    NotABackup(String),
    #[error("backup version {0} is newer than this rayo understands ({VERSION})")]
    TooNew(u32),
    #[error("the store already holds {users} users and {invoices} invoices; restore with --force to replace them")]
    NotEmpty { users: usize, invoices: usize },
    #[error("the backup is not valid, nothing was changed: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything in `store`, now.
pub fn export(store: &dyn Store, now: u64) -> Result<Backup, StoreError> {
    let mut invoices = store.invoices(InvoicePage::newest(usize::MAX))?;
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
            .filter(|(k, _)| !kept_out(k))
            .map(|(k, v)| (k, b64.encode(v)))
            .collect(),
        records: CARRIED
            .iter()
            .map(|kind| {
                Ok(store
                    .records(*kind, "", usize::MAX)?
                    .into_iter()
                    .map(|(key, value)| BackupRecord {
                        kind: kind.name().to_owned(),
                        key,
                        value: b64.encode(value),
                    }))
            })
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .flatten()
            .collect(),
    })
}

/// A backup whose every part was decoded and checked: loading it cannot fail on its contents.
#[derive(Debug)]
pub struct CheckedBackup {
    backup: Backup,
    meta: Vec<(String, Vec<u8>)>,
    records: Vec<(RecordKind, String, Vec<u8>)>,
}

impl CheckedBackup {
    pub fn users(&self) -> usize {
        self.backup.users.len()
    }

    pub fn invoices(&self) -> usize {
        self.backup.invoices.len()
    }
}

/// Decodes and checks everything in `backup` before anything is touched: its format, every
/// base64 value, every user against the rules `user add` applies (on the domain they live
/// on), and that no user, invoice, event or API key appears twice.
pub fn check(backup: Backup, domains: &Domains) -> Result<CheckedBackup, RestoreError> {
    if backup.format != FORMAT {
        return Err(RestoreError::NotABackup(backup.format));
    }
    if backup.version > VERSION {
        return Err(RestoreError::TooNew(backup.version));
    }
    let invalid = RestoreError::Invalid;
    let b64 = base64::engine::general_purpose::STANDARD;
    let meta = backup
        .meta
        .iter()
        // An older backup may hold the admin token: it is not brought back.
        .filter(|(key, _)| !kept_out(key))
        .map(|(key, value)| {
            b64.decode(value)
                .map(|bytes| (key.clone(), bytes))
                .map_err(|e| invalid(format!("meta {key}: not base64: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = HashSet::new();
    for user in &backup.users {
        if !names.insert(&user.name) {
            return Err(invalid(format!("user {} appears twice", user.name)));
        }
        let domain = domains.for_user(user.domain.as_ref()).domain();
        user.check(domain.as_str())
            .map_err(|e| invalid(format!("user {}: {e}", user.name)))?;
    }
    let mut hashes = HashSet::new();
    for invoice in &backup.invoices {
        if !hashes.insert(invoice.payment_hash) {
            return Err(invalid(format!(
                "invoice {} appears twice",
                invoice.payment_hash
            )));
        }
    }
    let mut events = HashSet::new();
    for item in &backup.outbox {
        if !events.insert(item.id) {
            return Err(invalid(format!("event {} appears twice", item.id)));
        }
    }
    let mut keys = HashSet::new();
    for key in &backup.api_keys {
        if !keys.insert(key.key_hash) {
            return Err(invalid(format!("API key {} appears twice", key.id)));
        }
    }
    let mut seen = HashSet::new();
    let records = backup
        .records
        .iter()
        .map(|record| {
            let kind = RecordKind::from_name(&record.kind)
                .filter(|kind| CARRIED.contains(kind))
                .ok_or_else(|| {
                    invalid(format!("account record of unknown kind {:?}", record.kind))
                })?;
            if !seen.insert((kind, record.key.clone())) {
                return Err(invalid(format!(
                    "{} {} appears twice",
                    record.kind, record.key
                )));
            }
            let value = b64
                .decode(&record.value)
                .map_err(|e| invalid(format!("{} {}: not base64: {e}", record.kind, record.key)))?;
            Ok((kind, record.key.clone(), value))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CheckedBackup {
        backup,
        meta,
        records,
    })
}

/// Whether `store` holds users or invoices (a restore then needs `--force`).
pub fn refuse_unless_empty(store: &dyn Store) -> Result<(), RestoreError> {
    let users = store.users()?.len();
    let invoices = store.invoices(InvoicePage::newest(1))?.len();
    if users > 0 || invoices > 0 {
        return Err(RestoreError::NotEmpty {
            users,
            invoices: store.invoices(InvoicePage::newest(usize::MAX))?.len(),
        });
    }
    Ok(())
}

/// Loads a checked backup into an empty `store` (one being built aside: see
/// `store::replace_sled`) and makes it durable.
pub fn load(store: &dyn Store, checked: &CheckedBackup) -> Result<(), StoreError> {
    let backup = &checked.backup;
    for (key, bytes) in &checked.meta {
        store.put_meta(key, bytes)?;
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
    for (kind, key, value) in &checked.records {
        store.swap_record(Swap::create(*kind, key, value))?;
    }
    let sent = store.sent_ahead();
    store.flush()?.verdict(&sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_backup_never_carries_the_admin_token() {
        let store = MemoryStore::new();
        store
            .put_meta(
                crate::keys::STORED_ADMIN_TOKEN,
                b"the-operators-admin-token",
            )
            .unwrap();
        store.put_meta("key.verify", b"verify-key").unwrap();
        let backup = export(&store, 1).unwrap();
        let keys: Vec<&str> = backup.meta.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["key.verify"]);

        // One written before this rule still restores, without its token.
        let mut old = backup;
        old.meta.push((
            crate::keys::STORED_ADMIN_TOKEN.into(),
            base64::engine::general_purpose::STANDARD.encode(b"old-token"),
        ));
        let domains =
            Domains::single(crate::config::PublicUrl::parse("https://example.com").unwrap());
        let checked = check(old, &domains).unwrap();
        let restored = MemoryStore::new();
        load(&restored, &checked).unwrap();
        assert_eq!(
            restored.meta(crate::keys::STORED_ADMIN_TOKEN).unwrap(),
            None
        );
        assert_eq!(
            restored.meta("key.verify").unwrap(),
            Some(b"verify-key".to_vec())
        );
    }

    #[test]
    fn a_backup_carries_accounts_but_not_sessions() {
        let store = MemoryStore::new();
        for (kind, key) in [
            (RecordKind::Account, "alice"),
            (RecordKind::Handle, "00ff"),
            (RecordKind::Invite, "abc"),
            (RecordKind::Session, "s1"),
            (RecordKind::Challenge, "c1"),
        ] {
            store
                .swap_record(Swap::create(kind, key, b"\x00value"))
                .unwrap();
        }
        let backup = export(&store, 1).unwrap();
        let kinds: Vec<&str> = backup.records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["account", "handle", "invite"]);
        let domains =
            Domains::single(crate::config::PublicUrl::parse("https://example.com").unwrap());
        let restored = MemoryStore::new();
        load(&restored, &check(backup, &domains).unwrap()).unwrap();
        assert_eq!(
            restored
                .record(RecordKind::Account, "alice")
                .unwrap()
                .as_deref(),
            Some(&b"\x00value"[..])
        );
        assert_eq!(restored.record(RecordKind::Session, "s1").unwrap(), None);

        // A record of a kind a backup never carries is refused, and nothing changes.
        let mut forged = export(&store, 1).unwrap();
        forged.records.push(BackupRecord {
            kind: "session".into(),
            key: "planted".into(),
            value: String::new(),
        });
        assert!(matches!(
            check(forged, &domains),
            Err(RestoreError::Invalid(_))
        ));
    }
}
