use std::path::Path;

use sled::Tree;

use super::{decode, encode, next_status, InvoiceFilter, Store, StoreError};
use crate::domain::{Hash32, InvoiceRecord, InvoiceStatus, User, Username};

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
///
///   A crash between these writes can only strand an invoice nobody was ever shown (the
///   callback answers after the flush). Readers skip entries whose record is missing.
///
/// - `meta`: key -> bytes (server keys and settings)
pub struct SledStore {
    db: sled::Db,
    users: Tree,
    metadata: Tree,
    invoices: Tree,
    meta: Tree,
}

const RECORD: u8 = b'r';
const BY_HASH: u8 = b'h';
const BY_USER: u8 = b'u';

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
        Ok(())
    }

    fn set_invoice_status(
        &self,
        hash: &Hash32,
        status: InvoiceStatus,
    ) -> Result<InvoiceRecord, StoreError> {
        let not_found = || StoreError::NotFound(format!("invoice {hash}"));
        let key = record_key(self.seq_for(hash)?.ok_or_else(not_found)?);
        loop {
            let current = self.invoices.get(key).map_err(io)?.ok_or_else(not_found)?;
            let mut record: InvoiceRecord = decode(&current)?;
            let Some(next) = next_status(record.status, status)? else {
                return Ok(record);
            };
            record.status = next;
            let swapped = self
                .invoices
                .compare_and_swap(key, Some(&current), Some(encode(&record)?))
                .map_err(io)?;
            // Lost a race with another writer: read again and re-decide.
            if swapped.is_ok() {
                return Ok(record);
            }
        }
    }

    fn invoices(
        &self,
        user: Option<&Username>,
        keep: InvoiceFilter<'_>,
        limit: usize,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let mut out = Vec::new();
        let mut take = |record: InvoiceRecord| {
            if keep(&record) {
                out.push(record);
            }
            out.len() < limit
        };
        match user {
            Some(name) => {
                for key in self.invoices.scan_prefix(user_prefix(name)).keys().rev() {
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
                for value in self.invoices.scan_prefix([RECORD]).values().rev() {
                    if !take(decode(&value.map_err(io)?)?) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value).map_err(io)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        Ok(())
    }
}
