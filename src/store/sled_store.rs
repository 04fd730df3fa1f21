use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

use super::{decode, encode, next_status, InvoiceFilter, Store, StoreError};
use crate::domain::{Hash32, InvoiceRecord, InvoiceStatus, User, Username};

/// Page cache size. Users and recent invoices fit easily; a larger cache only inflates RSS.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// sled, one tree per keyspace:
/// - `users`: name -> User
/// - `metadata`: sha256 -> metadata string
/// - `invoices`: payment hash -> InvoiceRecord
/// - `invoices_by_user`: name, 0x00, !seq, payment hash -> ()  (newest first per user)
/// - `invoices_by_time`: !seq, payment hash -> ()             (newest first overall)
/// - `meta`: key -> bytes (server keys and settings)
pub struct SledStore {
    db: sled::Db,
    users: Tree,
    metadata: Tree,
    invoices: Tree,
    by_user: Tree,
    by_time: Tree,
    meta: Tree,
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
            by_user: tree("invoices_by_user")?,
            by_time: tree("invoices_by_time")?,
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
    let mut key = name.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => io(e),
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
        self.invoices
            .get(hash.0)
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn insert_invoice(&self, invoice: &InvoiceRecord) -> Result<(), StoreError> {
        let value = encode(invoice)?;
        let newest_first = (!self.db.generate_id().map_err(io)?).to_be_bytes();
        let hash = invoice.payment_hash.0;
        let mut user_key = user_prefix(&invoice.user);
        user_key.extend_from_slice(&newest_first);
        user_key.extend_from_slice(&hash);
        let mut time_key = newest_first.to_vec();
        time_key.extend_from_slice(&hash);
        (&self.invoices, &self.by_user, &self.by_time)
            .transaction(|(invoices, by_user, by_time)| {
                if invoices.get(hash)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict(
                        format!("invoice {}", invoice.payment_hash),
                    )));
                }
                invoices.insert(&hash, value.as_slice())?;
                by_user.insert(user_key.as_slice(), &[])?;
                by_time.insert(time_key.as_slice(), &[])?;
                Ok(())
            })
            .map_err(tx_error)
    }

    fn set_invoice_status(
        &self,
        hash: &Hash32,
        status: InvoiceStatus,
    ) -> Result<InvoiceRecord, StoreError> {
        self.invoices
            .transaction(|invoices| {
                let abort = ConflictableTransactionError::Abort;
                let bytes = invoices
                    .get(hash.0)?
                    .ok_or_else(|| abort(StoreError::NotFound(format!("invoice {hash}"))))?;
                let mut record: InvoiceRecord = decode(&bytes).map_err(abort)?;
                if let Some(next) = next_status(record.status, status).map_err(abort)? {
                    record.status = next;
                    invoices.insert(&hash.0, encode(&record).map_err(abort)?)?;
                }
                Ok(record)
            })
            .map_err(tx_error)
    }

    fn invoices(
        &self,
        user: Option<&Username>,
        keep: InvoiceFilter<'_>,
        limit: usize,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let index = match user {
            Some(name) => self.by_user.scan_prefix(user_prefix(name)),
            None => self.by_time.iter(),
        };
        let mut out = Vec::new();
        for entry in index.keys() {
            if out.len() >= limit {
                break;
            }
            let key = entry.map_err(io)?;
            let hash = key.get(key.len().saturating_sub(32)..).unwrap_or_default();
            let Some(bytes) = self.invoices.get(hash).map_err(io)? else {
                continue;
            };
            let record: InvoiceRecord = decode(&bytes)?;
            if keep(&record) {
                out.push(record);
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
