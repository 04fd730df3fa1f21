use std::path::Path;

use sled::Tree;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{decode, encode, next_status, InvoiceFilter, Store, StoreError, Transitions};
use crate::domain::{ApiKey, Delivery, EventId, Hash32, InvoiceRecord, OutboxItem, User, Username};

/// Page cache size. Users and recent invoices fit easily; a larger cache only inflates RSS.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// sled trees:
/// - `users`: name -> User
/// - `metadata`: sha256 -> metadata string
/// - `invoices`, three keyspaces:
///   - `r` seq -> InvoiceRecord: records in arrival order. sled appends to the last leaf for
///     increasing keys, which costs half the time and a quarter of the memory of inserting
///     under random keys (payment hashes); iterating backwards lists newest first.
///   - `h` payment hash -> seq: written first, with an insert-if-absent that doubles as the
///     duplicate check.
///   - `u` name, 0x00, seq -> (): one user's invoices.
///   - `x` expires_at, seq -> payment hash: pending invoices by expiry, for the sweeper and
///     for reconciling with backends; removed when an invoice leaves `pending`.
///
///   A crash between these writes can only strand an invoice nobody was ever shown (the
///   callback answers after the flush). Readers skip entries whose record is missing.
///
/// - `outbox`: `e` event id -> OutboxItem, and `d` next_attempt_at, event id -> () for the
///   pending ones.
/// - `api_keys`: sha256 of the key -> ApiKey
/// - `meta`: key -> bytes (server keys, settings, watcher cursors)
pub struct SledStore {
    db: sled::Db,
    users: Tree,
    metadata: Tree,
    invoices: Tree,
    outbox: Tree,
    api_keys: Tree,
    meta: Tree,
}

const RECORD: u8 = b'r';
const BY_HASH: u8 = b'h';
const BY_USER: u8 = b'u';
const BY_EXPIRY: u8 = b'x';
const EVENT: u8 = b'e';
const DUE: u8 = b'd';

fn expiry_key(expires_at: u64, seq: [u8; 8]) -> [u8; 17] {
    let mut key = [BY_EXPIRY; 17];
    key[1..9].copy_from_slice(&expires_at.to_be_bytes());
    key[9..].copy_from_slice(&seq);
    key
}

fn event_key(id: &EventId) -> [u8; 17] {
    let mut key = [EVENT; 17];
    key[1..].copy_from_slice(&id.0);
    key
}

fn due_key(at: u64, id: &EventId) -> [u8; 25] {
    let mut key = [DUE; 25];
    key[1..9].copy_from_slice(&at.to_be_bytes());
    key[9..].copy_from_slice(&id.0);
    key
}

fn record_key(seq: [u8; 8]) -> [u8; 9] {
    let mut key = [RECORD; 9];
    key[1..].copy_from_slice(&seq);
    key
}

fn hash_key(hash: &Hash32) -> [u8; 33] {
    let mut key = [BY_HASH; 33];
    key[1..].copy_from_slice(&hash.0);
    key
}

fn seq_of(bytes: &[u8]) -> Option<[u8; 8]> {
    bytes.get(bytes.len().checked_sub(8)?..)?.try_into().ok()
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A restore a crash interrupted is finished (or undone) first.
        super::replace::recover(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            // Durability comes from our own group commits; sled's timer flush is a backstop.
            .flush_every_ms(Some(1000))
            .open()
            .map_err(open_error)?;
        let tree = |name: &str| db.open_tree(name).map_err(io);
        Ok(Self {
            users: tree("users")?,
            metadata: tree("metadata")?,
            invoices: tree("invoices")?,
            outbox: tree("outbox")?,
            api_keys: tree("api_keys")?,
            meta: tree("meta")?,
            db,
        })
    }
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

fn user_prefix(name: &Username) -> Vec<u8> {
    let mut key = vec![BY_USER];
    key.extend_from_slice(name.as_str().as_bytes());
    key.push(0);
    key
}

impl SledStore {
    /// The record key of an invoice, from its payment hash.
    fn seq_for(&self, hash: &Hash32) -> Result<Option<[u8; 8]>, StoreError> {
        Ok(self
            .invoices
            .get(hash_key(hash))
            .map_err(io)?
            .as_deref()
            .and_then(seq_of))
    }

    fn record_at(&self, seq: [u8; 8]) -> Result<Option<InvoiceRecord>, StoreError> {
        self.invoices
            .get(record_key(seq))
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }
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
        match self.seq_for(hash)? {
            Some(seq) => self.record_at(seq),
            None => Ok(None),
        }
    }

    fn insert_invoice(&self, invoice: &InvoiceRecord) -> Result<(), StoreError> {
        let seq = self.db.generate_id().map_err(io)?.to_be_bytes();
        let claimed = self
            .invoices
            .compare_and_swap(
                hash_key(&invoice.payment_hash),
                None::<&[u8]>,
                Some(&seq[..]),
            )
            .map_err(io)?;
        if claimed.is_err() {
            return Err(StoreError::Conflict(format!(
                "invoice {}",
                invoice.payment_hash
            )));
        }
        self.invoices
            .insert(record_key(seq), encode(invoice)?)
            .map_err(io)?;
        let mut user_key = user_prefix(&invoice.user);
        user_key.extend_from_slice(&seq);
        self.invoices.insert(user_key, &[]).map_err(io)?;
        if invoice.is_pending() {
            self.invoices
                .insert(
                    expiry_key(invoice.expires_at, seq),
                    &invoice.payment_hash.0[..],
                )
                .map_err(io)?;
        }
        Ok(())
    }

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        // Encoded once, outside the transaction, which sled may run again on a conflict.
        let records = step
            .invoices
            .iter()
            .map(|r| Ok((r, encode(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = step
            .events
            .iter()
            .map(|e| Ok((e, encode(e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let abort = ConflictableTransactionError::Abort;
        let outcome =
            (&self.invoices, &self.outbox, &self.meta).transaction(|(invoices, outbox, meta)| {
                for (record, bytes) in &records {
                    let not_found = || {
                        abort(StoreError::NotFound(format!(
                            "invoice {}",
                            record.payment_hash
                        )))
                    };
                    let seq = invoices
                        .get(hash_key(&record.payment_hash))?
                        .as_deref()
                        .and_then(seq_of)
                        .ok_or_else(not_found)?;
                    let stored = invoices.get(record_key(seq))?.ok_or_else(not_found)?;
                    let stored: InvoiceRecord = decode(&stored).map_err(abort)?;
                    if next_status(stored.status, record.status)
                        .map_err(abort)?
                        .is_none()
                    {
                        return Err(abort(StoreError::Transition {
                            from: stored.status.name(),
                            to: record.status.name(),
                        }));
                    }
                    invoices.insert(&record_key(seq)[..], bytes.as_slice())?;
                    if stored.is_pending() && !record.is_pending() {
                        invoices.remove(&expiry_key(stored.expires_at, seq)[..])?;
                    }
                }
                let mut queued = 0;
                for (item, bytes) in &events {
                    let key = event_key(&item.id);
                    if outbox.get(key)?.is_some() {
                        continue;
                    }
                    outbox.insert(&key[..], bytes.as_slice())?;
                    if item.delivery == Delivery::Pending {
                        outbox.insert(&due_key(item.next_attempt_at, &item.id)[..], &[][..])?;
                    }
                    queued += 1;
                }
                for (key, value) in &step.meta {
                    meta.insert(key.as_bytes(), value.as_slice())?;
                }
                Ok(queued)
            });
        match outcome {
            Ok(queued) => Ok(queued),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn invoices(
        &self,
        user: Option<&Username>,
        before: Option<&Hash32>,
        keep: InvoiceFilter<'_>,
        limit: usize,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let before = match before {
            Some(hash) => Some(
                self.seq_for(hash)?
                    .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?,
            ),
            None => None,
        };
        let mut out = Vec::new();
        let mut take = |record: InvoiceRecord| {
            if keep(&record) {
                out.push(record);
            }
            out.len() < limit
        };
        match user {
            Some(name) => {
                let prefix = user_prefix(name);
                let end = match before {
                    Some(seq) => [prefix.as_slice(), &seq].concat(),
                    None => [prefix.as_slice(), &[0xff; 9]].concat(),
                };
                for key in self.invoices.range(prefix..end).keys().rev() {
                    let Some(seq) = seq_of(&key.map_err(io)?) else {
                        continue;
                    };
                    let Some(record) = self.record_at(seq)? else {
                        continue;
                    };
                    if !take(record) {
                        break;
                    }
                }
            }
            None => {
                let end = match before {
                    Some(seq) => record_key(seq).to_vec(),
                    None => vec![RECORD + 1],
                };
                for value in self.invoices.range(vec![RECORD]..end).values().rev() {
                    if !take(decode(&value.map_err(io)?)?) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        let start = [BY_EXPIRY];
        let end = expiry_key(until, [0xff; 8]);
        let mut out = Vec::new();
        for entry in self.invoices.range(&start[..]..=&end[..]) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(io)?;
            let Some(record) = seq_of(&key).map(|seq| self.record_at(seq)).transpose()? else {
                continue;
            };
            if let Some(record) = record.filter(InvoiceRecord::is_pending) {
                out.push(record);
            }
        }
        Ok(out)
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
        if let Some(previous) = previous {
            let previous: OutboxItem = decode(&previous)?;
            if previous.delivery == Delivery::Pending {
                self.outbox
                    .remove(due_key(previous.next_attempt_at, &previous.id))
                    .map_err(io)?;
            }
        }
        if item.delivery == Delivery::Pending {
            self.outbox
                .insert(due_key(item.next_attempt_at, &item.id), &[])
                .map_err(io)?;
        }
        Ok(())
    }

    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let start = [DUE];
        let end = due_key(now, &EventId([0xff; 16]));
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

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        Ok(())
    }
}
