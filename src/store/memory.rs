use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{
    next_status, Flushed, InvoicePage, PruneRequest, PruneStep, Pruned, RecordKind, Store,
    StoreError, Swap, Transitions,
};
use crate::domain::{
    ApiKey, Delivery, EventId, Hash32, InvoiceRecord, InvoiceStatus, OutboxItem, User, Username,
};

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
    outbox: BTreeMap<EventId, OutboxItem>,
    api_keys: BTreeMap<Hash32, ApiKey>,
    meta: BTreeMap<String, Vec<u8>>,
    records: BTreeMap<(RecordKind, String), Vec<u8>>,
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

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        let mut state = self.state();
        // Everything is checked before anything changes: all or nothing.
        for record in &step.invoices {
            let stored = state
                .invoices
                .get(&record.payment_hash)
                .ok_or_else(|| StoreError::NotFound(format!("invoice {}", record.payment_hash)))?;
            if next_status(stored.status, record.status)?.is_none() {
                return Err(StoreError::Transition {
                    from: stored.status.name(),
                    to: record.status.name(),
                });
            }
        }
        for record in &step.invoices {
            state.invoices.insert(record.payment_hash, record.clone());
        }
        let mut queued = 0;
        for item in &step.events {
            if let std::collections::btree_map::Entry::Vacant(slot) = state.outbox.entry(item.id) {
                slot.insert(item.clone());
                queued += 1;
            }
        }
        for (key, value) in &step.meta {
            state.meta.insert(key.clone(), value.clone());
        }
        Ok(queued)
    }

    fn invoices(&self, mut page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError> {
        let state = self.state();
        let (user, limit) = (page.user, page.limit);
        let end = match page.before {
            Some(hash) => state
                .order
                .iter()
                .position(|h| h == hash)
                .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?,
            None => state.order.len(),
        };
        Ok(state.order[..end]
            .iter()
            .rev()
            .filter_map(|hash| state.invoices.get(hash))
            .filter(|r| user.is_none_or(|u| &r.user == u))
            .filter(|r| page.keeps(r))
            .take(limit)
            .cloned()
            .collect())
    }

    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        let state = self.state();
        let mut due: Vec<InvoiceRecord> = state
            .order
            .iter()
            .filter_map(|hash| state.invoices.get(hash))
            .filter(|r| r.is_pending() && r.expires_at <= until)
            .cloned()
            .collect();
        due.sort_by_key(|r| r.expires_at);
        due.truncate(limit);
        Ok(due)
    }

    fn outbox_item(&self, id: &EventId) -> Result<Option<OutboxItem>, StoreError> {
        Ok(self.state().outbox.get(id).cloned())
    }

    fn put_outbox_item(&self, item: &OutboxItem) -> Result<(), StoreError> {
        self.state().outbox.insert(item.id, item.clone());
        Ok(())
    }

    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let mut due: Vec<OutboxItem> = self
            .state()
            .outbox
            .values()
            .filter(|i| i.delivery == Delivery::Pending && i.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|i| (i.next_attempt_at, i.id));
        due.truncate(limit);
        Ok(due)
    }

    fn outbox_items(
        &self,
        keep: &mut dyn FnMut(&OutboxItem) -> bool,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out: Vec<OutboxItem> = self
            .state()
            .outbox
            .values()
            .filter(|i| keep(i))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    fn api_key(&self, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.state().api_keys.get(key_hash).cloned())
    }

    fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.state().api_keys.insert(key.key_hash, key.clone());
        Ok(())
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.state().api_keys.values().cloned().collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.state().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .state()
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn metadata_entries(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.state().metadata.values().cloned().collect())
    }

    fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().records.get(&(kind, key.to_owned())).cloned())
    }

    fn records(
        &self,
        kind: RecordKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .state()
            .records
            .range((kind, prefix.to_owned())..)
            .take_while(|((k, key), _)| *k == kind && key.starts_with(prefix))
            .take(limit)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect())
    }

    fn swap_record(&self, swap: Swap<'_>) -> Result<bool, StoreError> {
        let mut state = self.state();
        let slot = (swap.kind, swap.key.to_owned());
        if state.records.get(&slot).map(Vec::as_slice) != swap.old {
            return Ok(false);
        }
        match swap.new {
            Some(new) => state.records.insert(slot, new.to_vec()),
            None => state.records.remove(&slot),
        };
        Ok(true)
    }

    /// The whole pass in one step: a test's store is small.
    fn prune(&self, step: &PruneRequest<'_>) -> Result<PruneStep, StoreError> {
        let (rules, now, dry_run) = (step.rules, step.now, step.dry_run);
        let mut state = self.state();
        let mut pruned = Pruned::default();
        let mut gone = Vec::new();
        for record in state.invoices.values() {
            match &record.status {
                InvoiceStatus::Expired if rules.drops_unpaid(record.expires_at, now) => {
                    pruned.unpaid_invoices += 1;
                }
                InvoiceStatus::Paid(paid) if rules.drops_paid(paid.paid_at, now) => {
                    pruned.paid_invoices += 1;
                }
                _ => continue,
            }
            gone.push(record.payment_hash);
        }
        let mut events = Vec::new();
        for item in state.outbox.values() {
            match item.delivery {
                Delivery::Delivered { at } if at <= rules.events_until(now) => pruned.events += 1,
                Delivery::Dead { at } if at <= rules.dead_letters_until(now) => {
                    pruned.dead_letters += 1;
                }
                _ => continue,
            }
            events.push(item.id);
        }
        if !dry_run {
            for hash in &gone {
                state.invoices.remove(hash);
            }
            let gone: std::collections::HashSet<Hash32> = gone.into_iter().collect();
            state.order.retain(|hash| !gone.contains(hash));
            for id in &events {
                state.outbox.remove(id);
            }
        }
        Ok(PruneStep { pruned, next: None })
    }

    fn flush(&self) -> Result<Flushed, StoreError> {
        Ok(Flushed::default())
    }
}
