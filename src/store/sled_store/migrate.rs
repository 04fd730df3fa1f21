//! Stores written before layout 1 keep each invoice as JSON under `r` + sequence number, with
//! three indexes of their own (`h` by payment hash, `u` by user, `x` by expiry): about 2.9 KB
//! of disk per invoice, and start-up times that grow with them. Opening such a store converts
//! it: a new one is built beside it through the store API (every invoice re-encoded, the
//! finished ones sealed into chunks, users, events, keys and settings copied as they are),
//! then swapped in by `replace_sled`, so a crash midway leaves the old store as it was.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{io, open_db, LAYOUT_KEY};
use crate::domain::{ApiKey, InvoiceRecord, OutboxItem, User};
use crate::store::codec::{decode_json, invoice};
use crate::store::{replace_sled, Store, StoreError};

/// Invoices converted between two sealing passes. sled reuses the space of what was removed
/// well when little dies at once, badly when a lot does: 2000 at a time costs about a third of
/// the disk of 50000 at a time.
const SEAL_EVERY: usize = 2_000;

/// Whether the store in `db` predates layout 1.
pub fn is_legacy(db: &sled::Db) -> Result<bool, StoreError> {
    let marked = db
        .open_tree("meta")
        .map_err(io)?
        .contains_key(LAYOUT_KEY)
        .map_err(io)?;
    Ok(!marked && !db.open_tree("invoices").map_err(io)?.is_empty())
}

/// Converts the store at `path` to layout 1.
pub fn convert(path: &Path) -> Result<(), StoreError> {
    let old = open_db(path)?;
    tracing::info!(path = %path.display(), "converting the store to layout 1 (compact invoices); this runs once");
    let started = Instant::now();
    let invoices = replace_sled(path, move |new| {
        let copied = copy(&old, new);
        drop(old);
        copied
    })?;
    tracing::info!(
        invoices,
        seconds = started.elapsed().as_secs_f64(),
        "store converted to layout 1"
    );
    Ok(())
}

fn copy(old: &sled::Db, new: &dyn Store) -> Result<usize, StoreError> {
    let tree = |name: &str| old.open_tree(name).map_err(io);
    for value in tree("users")?.iter().values() {
        new.put_user(&decode_json::<User>(&value.map_err(io)?)?)?;
    }
    for value in tree("metadata")?.iter().values() {
        let value = value.map_err(io)?;
        new.put_metadata(
            std::str::from_utf8(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )?;
    }
    for value in tree("outbox")?.scan_prefix(b"e").values() {
        new.put_outbox_item(&decode_json::<OutboxItem>(&value.map_err(io)?)?)?;
    }
    for value in tree("api_keys")?.iter().values() {
        new.put_api_key(&decode_json::<ApiKey>(&value.map_err(io)?)?)?;
    }
    for entry in tree("meta")?.iter() {
        let (key, value) = entry.map_err(io)?;
        let key = String::from_utf8_lossy(&key);
        if key != LAYOUT_KEY {
            new.put_meta(&key, &value)?;
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut converted = 0;
    // Records in arrival order: they keep it in the new store.
    for value in tree("invoices")?.scan_prefix(b"r").values() {
        let record: InvoiceRecord = invoice::decode(&value.map_err(io)?)?;
        match new.insert_invoice(&record) {
            Ok(()) => converted += 1,
            Err(StoreError::Conflict(what)) => {
                tracing::warn!(%what, "skipped a duplicate invoice while converting");
            }
            Err(e) => return Err(e),
        }
        if converted % SEAL_EVERY == 0 {
            new.seal(now, usize::MAX)?;
            new.flush()?;
        }
        if converted % 100_000 == 0 {
            tracing::info!(converted, "converting the store");
        }
    }
    new.seal(now, usize::MAX)?;
    Ok(converted)
}
