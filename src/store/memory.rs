use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{next_status, InvoiceFilter, Store, StoreError};
use crate::domain::{Hash32, InvoiceRecord, InvoiceStatus, User, Username};

/// An in-memory store for unit tests; it obeys the same contract as sled.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<Username, User>,
    metadata: BTreeMap<Hash32, String>,
    invoices: BTreeMap<Hash32, InvoiceRecord>,
    /// Insertion order; listing walks it backwards for newest first.
    order: Vec<Hash32>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn user(&self, name: &Username) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(name).cloned())
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.state().users.values().cloned().collect())
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.state().users.insert(user.name.clone(), user.clone());
        Ok(())
    }

    fn remove_user(&self, name: &Username) -> Result<bool, StoreError> {
        Ok(self.state().users.remove(name).is_some())
    }

    fn metadata(&self, hash: &Hash32) -> Result<Option<String>, StoreError> {
        Ok(self.state().metadata.get(hash).cloned())
    }

    fn put_metadata(&self, json: &str) -> Result<Hash32, StoreError> {
        let hash = Hash32::sha256(json.as_bytes());
        self.state()
            .metadata
            .entry(hash)
            .or_insert_with(|| json.to_owned());
        Ok(hash)
    }

    fn invoice(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
        Ok(self.state().invoices.get(hash).cloned())
    }

    fn insert_invoice(&self, invoice: &InvoiceRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.invoices.contains_key(&invoice.payment_hash) {
            return Err(StoreError::Conflict(format!(
                "invoice {}",
                invoice.payment_hash
            )));
        }
        state.invoices.insert(invoice.payment_hash, invoice.clone());
        state.order.push(invoice.payment_hash);
        Ok(())
    }

    fn set_invoice_status(
        &self,
        hash: &Hash32,
        status: InvoiceStatus,
    ) -> Result<InvoiceRecord, StoreError> {
        let mut state = self.state();
        let record = state
            .invoices
            .get_mut(hash)
            .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?;
        if let Some(next) = next_status(record.status, status)? {
            record.status = next;
        }
        Ok(record.clone())
    }

    fn invoices(
        &self,
        user: Option<&Username>,
        keep: InvoiceFilter<'_>,
        limit: usize,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let state = self.state();
        Ok(state
            .order
            .iter()
            .rev()
            .filter_map(|hash| state.invoices.get(hash))
            .filter(|r| user.is_none_or(|u| &r.user == u))
            .filter(|r| keep(r))
            .take(limit)
            .cloned()
            .collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.state().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
