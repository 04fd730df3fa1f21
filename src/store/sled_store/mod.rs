//! The embedded store: sled, in the data directory.

mod cold;
mod hot;
mod invoices;
mod migrate;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::Tree;

use super::codec::{decode_json as decode, encode_json as encode};
use super::{
    Flushed, InvoicePage, PruneCursor, PruneRequest, PruneStep, RecordKind, Store, StoreError,
    Swap, Transitions,
};
use crate::domain::{ApiKey, Delivery, EventId, Hash32, InvoiceRecord, OutboxItem, User, Username};
use invoices::InvoiceTable;

/// Page cache size. Users and recent invoices fit easily; a larger cache only inflates RSS.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// The layout this code writes, kept in `meta` under `LAYOUT_KEY`. Stores without it and with
/// invoices were written by rayo before layout 1 (JSON invoices, per-invoice indexes) and are
/// converted when opened (see `migrate`).
const LAYOUT_KEY: &str = "store.layout";
const LAYOUT: &[u8] = b"1";

/// sled trees:
/// - `users`: name -> User
/// - `metadata`: sha256 -> metadata string
/// - `invoices`: see `invoices.rs` (hot records, chunks and their summaries)
/// - `outbox`: `e` event id -> OutboxItem, and one index entry per event by its state:
///   `d` next_attempt_at, event id -> () while pending, `v` delivery time, id once delivered,
///   `x` time given up, id once dead (so pruning reads only what it removes).
/// - `api_keys`: sha256 of the key -> ApiKey
/// - `meta`: key -> bytes (server keys, settings, watcher cursors, the layout)
/// - `records`: account records, `<kind name> 0x00 <key>` -> bytes (see `records`)
pub struct SledStore {
    db: sled::Db,
    users: Tree,
    metadata: Tree,
    invoices: InvoiceTable,
    outbox: Tree,
    api_keys: Tree,
    meta: Tree,
    records: Tree,
}

/// An account record's sled key: its kind's name, a zero byte (never in a name), its key.
fn record_key(kind: RecordKind, key: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(kind.name().len() + 1 + key.len());
    bytes.extend_from_slice(kind.name().as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

const EVENT: u8 = b'e';
const DUE: u8 = b'd';
const DELIVERED: u8 = b'v';
const DEAD: u8 = b'x';

fn event_key(id: &EventId) -> [u8; 17] {
    let mut key = [EVENT; 17];
    key[1..].copy_from_slice(&id.0);
    key
}

fn timed_key(space: u8, at: u64, id: &EventId) -> [u8; 25] {
    let mut key = [space; 25];
    key[1..9].copy_from_slice(&at.to_be_bytes());
    key[9..].copy_from_slice(&id.0);
    key
}

/// The index entry of an event in its state.
fn state_key(item: &OutboxItem) -> [u8; 25] {
    match item.delivery {
        Delivery::Pending => timed_key(DUE, item.next_attempt_at, &item.id),
        Delivery::Delivered { at } => timed_key(DELIVERED, at, &item.id),
        Delivery::Dead { at } => timed_key(DEAD, at, &item.id),
    }
}

/// Pruning phases after the invoices: delivered events, then dead letters.
const PRUNE_INVOICES: u8 = 0;
const PRUNE_DELIVERED: u8 = 1;
const PRUNE_DEAD: u8 = 2;

/// Where a ledger step waits while it is applied (see `commit_transitions`).
const JOURNAL_KEY: &str = "store.journal";

/// A ledger step, written as one key before any of its parts: sled recovers a prefix of its
/// log, so after a crash either the entry is there (and is applied again at the next open, or
/// before the next step) or nothing of the step is. Every part applies idempotently. This
/// stands in for sled's transactions, which hold a lock that stops sled's flusher while they
/// commit; under heavy rewriting, sled 0.34.7 can then deadlock.
#[derive(Serialize, Deserialize)]
struct JournalEntry {
    invoices: Vec<InvoiceRecord>,
    events: Vec<OutboxItem>,
    meta: Vec<(String, Vec<u8>)>,
}

impl JournalEntry {
    fn of(step: &Transitions) -> Self {
        Self {
            invoices: step.invoices.clone(),
            events: step.events.clone(),
            meta: step.meta.clone(),
        }
    }
}

impl SledStore {
    /// Applies a step's parts, each idempotently. `places`: where `check_step` found the
    /// invoices; without them (a replay), each is found again, and one that cannot move (it
    /// already did, or moved further) is left as it is.
    fn apply(
        &self,
        step: &Transitions,
        places: Option<&[invoices::Place]>,
    ) -> Result<usize, StoreError> {
        for (n, record) in step.invoices.iter().enumerate() {
            match places.and_then(|p| p.get(n)) {
                Some(place) => self.invoices.apply(record, *place)?,
                None => match self.invoices.check_step(std::slice::from_ref(record)) {
                    Ok(found) => self.invoices.apply(record, found[0])?,
                    Err(e) => {
                        tracing::info!(payment_hash = %record.payment_hash, outcome = %e, "a replayed status change was already applied");
                    }
                },
            }
        }
        let mut queued = 0;
        for item in &step.events {
            let key = event_key(&item.id);
            if self.outbox.contains_key(key).map_err(io)? {
                continue;
            }
            self.outbox.insert(state_key(item), &[]).map_err(io)?;
            self.outbox.insert(key, encode(item)?).map_err(io)?;
            queued += 1;
        }
        for (key, value) in &step.meta {
            self.meta
                .insert(key.as_bytes(), value.as_slice())
                .map_err(io)?;
        }
        Ok(queued)
    }

    /// Finishes a step a crash (or a failed write) interrupted.
    fn replay_journal(&self) -> Result<(), StoreError> {
        let Some(entry) = self.meta.get(JOURNAL_KEY).map_err(io)? else {
            return Ok(());
        };
        let entry: JournalEntry = decode(&entry)?;
        let step = Transitions {
            invoices: entry.invoices,
            events: entry.events,
            meta: entry.meta,
        };
        self.apply(&step, None)?;
        self.meta.remove(JOURNAL_KEY).map_err(io)?;
        tracing::info!(
            invoices = step.invoices.len(),
            events = step.events.len(),
            "finished a ledger step that a stop interrupted"
        );
        Ok(())
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A restore a crash interrupted is finished (or undone) first.
        super::replace::recover(path)?;
        let db = open_db(path)?;
        if migrate::is_legacy(&db)? {
            drop(db);
            migrate::convert(path)?;
            return Self::open(path);
        }
        let tree = |name: &str| db.open_tree(name).map_err(io);
        let meta = tree("meta")?;
        if meta.get(LAYOUT_KEY).map_err(io)?.is_none() {
            meta.insert(LAYOUT_KEY, LAYOUT).map_err(io)?;
        }
        let store = Self {
            users: tree("users")?,
            metadata: tree("metadata")?,
            invoices: InvoiceTable::open(db.clone(), tree("invoices")?)?,
            outbox: tree("outbox")?,
            api_keys: tree("api_keys")?,
            meta,
            records: tree("records")?,
            db,
        };
        store.replay_journal()?;
        Ok(store)
    }

    /// (hot invoices, of which pending, memory the invoice indexes hold in bytes).
    pub fn invoice_stats(&self) -> (usize, usize, usize) {
        self.invoices.stats()
    }
}

fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        // Durability comes from our own group commits; sled's timer flush is a backstop.
        .flush_every_ms(Some(1000))
        .open()
        .map_err(open_error)
}

fn open_error(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(io.to_string())
        }
        other => io(other),
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl Store for SledStore {
    fn user(&self, name: &Username) -> Result<Option<User>, StoreError> {
        self.users
            .get(name.as_str())
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.users
            .iter()
            .values()
            .map(|v| decode(&v.map_err(io)?))
            .collect()
    }

    fn first_users(&self, limit: usize) -> Result<Vec<User>, StoreError> {
        self.users
            .iter()
            .values()
            .take(limit)
            .map(|v| decode(&v.map_err(io)?))
            .collect()
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.users
            .insert(user.name.as_str(), encode(user)?)
            .map_err(io)?;
        Ok(())
    }

    fn remove_user(&self, name: &Username) -> Result<bool, StoreError> {
        Ok(self.users.remove(name.as_str()).map_err(io)?.is_some())
    }

    fn metadata(&self, hash: &Hash32) -> Result<Option<String>, StoreError> {
        self.metadata
            .get(hash.0)
            .map_err(io)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    fn put_metadata(&self, json: &str) -> Result<Hash32, StoreError> {
        let hash = Hash32::sha256(json.as_bytes());
        if !self.metadata.contains_key(hash.0).map_err(io)? {
            self.metadata.insert(hash.0, json.as_bytes()).map_err(io)?;
        }
        Ok(hash)
    }

    fn invoice(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
        self.invoices.get(hash)
    }

    fn insert_invoice(&self, invoice: &InvoiceRecord) -> Result<(), StoreError> {
        self.invoices.insert(invoice)
    }

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        self.replay_journal()?;
        // Checked whole before anything is written: a refused step leaves no trace.
        let places = self.invoices.check_step(&step.invoices)?;
        self.meta
            .insert(JOURNAL_KEY, encode(&JournalEntry::of(step))?)
            .map_err(io)?;
        let queued = self.apply(step, Some(&places))?;
        self.meta.remove(JOURNAL_KEY).map_err(io)?;
        Ok(queued)
    }

    fn invoices(&self, page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError> {
        self.invoices.list(page)
    }

    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        self.invoices.expiring(until, limit)
    }

    fn seal(&self, now: u64, budget: usize) -> Result<usize, StoreError> {
        self.invoices.seal(now, budget)
    }

    fn prune(&self, request: &PruneRequest<'_>) -> Result<PruneStep, StoreError> {
        let PruneRequest {
            rules,
            now,
            from,
            budget,
            dry_run,
        } = *request;
        let mut step = PruneStep::default();
        let mut phase = from.phase;
        let mut key = from.key.clone();
        if phase == PRUNE_INVOICES {
            let start = key
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            let (pruned, next) = self.invoices.prune(rules, now, start, budget, dry_run)?;
            step.pruned = pruned;
            if let Some(next) = next {
                step.next = Some(PruneCursor {
                    phase,
                    key: next.to_be_bytes().to_vec(),
                });
                return Ok(step);
            }
            phase = PRUNE_DELIVERED;
            key.clear();
        }
        let spaces = [
            (PRUNE_DELIVERED, DELIVERED, rules.events_until(now)),
            (PRUNE_DEAD, DEAD, rules.dead_letters_until(now)),
        ];
        let mut spent = step.pruned.total() as usize;
        for (this_phase, space, until) in spaces {
            if phase != this_phase {
                continue;
            }
            let start = if key.is_empty() {
                vec![space]
            } else {
                key.clone()
            };
            let end = timed_key(space, until, &EventId([0xff; 16]));
            for index_key in self.outbox.range(start..=end.to_vec()).keys() {
                let index_key = index_key.map_err(io)?;
                if spent >= budget {
                    step.next = Some(PruneCursor {
                        phase,
                        key: index_key.to_vec(),
                    });
                    return Ok(step);
                }
                spent += 1;
                let Some(id) = index_key.get(9..25).and_then(|b| b.try_into().ok()) else {
                    continue;
                };
                let event = event_key(&EventId(id));
                let exists = self.outbox.contains_key(event).map_err(io)?;
                if exists {
                    match space {
                        DELIVERED => step.pruned.events += 1,
                        _ => step.pruned.dead_letters += 1,
                    }
                }
                if !dry_run {
                    // The event first: an index entry left alone by a crash is removed next time.
                    self.outbox.remove(event).map_err(io)?;
                    self.outbox.remove(&index_key).map_err(io)?;
                }
            }
            phase += 1;
            key.clear();
        }
        Ok(step)
    }

    fn outbox_item(&self, id: &EventId) -> Result<Option<OutboxItem>, StoreError> {
        self.outbox
            .get(event_key(id))
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn put_outbox_item(&self, item: &OutboxItem) -> Result<(), StoreError> {
        let previous = self
            .outbox
            .insert(event_key(&item.id), encode(item)?)
            .map_err(io)?;
        let state = state_key(item);
        if let Some(previous) = previous {
            let previous = state_key(&decode::<OutboxItem>(&previous)?);
            if previous != state {
                self.outbox.remove(previous).map_err(io)?;
            }
        }
        self.outbox.insert(state, &[]).map_err(io)?;
        Ok(())
    }

    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let start = [DUE];
        let end = timed_key(DUE, now, &EventId([0xff; 16]));
        let mut out = Vec::new();
        for key in self.outbox.range(&start[..]..=&end[..]).keys() {
            if out.len() >= limit {
                break;
            }
            let key = key.map_err(io)?;
            let Some(id) = key.get(9..25).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            if let Some(item) = self.outbox_item(&EventId(id))? {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn outbox_items(
        &self,
        keep: &mut dyn FnMut(&OutboxItem) -> bool,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out = Vec::new();
        for value in self.outbox.scan_prefix([EVENT]).values() {
            let item: OutboxItem = decode(&value.map_err(io)?)?;
            if keep(&item) {
                out.push(item);
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    fn api_key(&self, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError> {
        self.api_keys
            .get(key_hash.0)
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.api_keys
            .insert(key.key_hash.0, encode(key)?)
            .map_err(io)?;
        Ok(())
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.api_keys
            .iter()
            .values()
            .map(|v| decode(&v.map_err(io)?))
            .collect()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value).map_err(io)?;
        Ok(())
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.meta
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(io)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), value.to_vec()))
            })
            .collect()
    }

    fn metadata_entries(&self) -> Result<Vec<String>, StoreError> {
        self.metadata
            .iter()
            .values()
            .map(|v| {
                String::from_utf8(v.map_err(io)?.to_vec())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .records
            .get(record_key(kind, key))
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn records(
        &self,
        kind: RecordKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let skip = kind.name().len() + 1;
        self.records
            .scan_prefix(record_key(kind, prefix))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(io)?;
                let key = String::from_utf8(key[skip..].to_vec())
                    .map_err(|e| StoreError::Corrupt(format!("an account record's key: {e}")))?;
                Ok((key, value.to_vec()))
            })
            .collect()
    }

    fn swap_record(&self, swap: Swap<'_>) -> Result<bool, StoreError> {
        let swapped = self
            .records
            .compare_and_swap(record_key(swap.kind, swap.key), swap.old, swap.new)
            .map_err(io)?;
        Ok(swapped.is_ok())
    }

    fn flush(&self) -> Result<Flushed, StoreError> {
        self.db.flush().map_err(io)?;
        Ok(Flushed::default())
    }

    fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        self.db.size_on_disk().map(Some).map_err(io)
    }
}

#[cfg(test)]
mod tests;
