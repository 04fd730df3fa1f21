//! A store that fails on demand, for tests of what callers do when writes go wrong.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    Flushed, InvoicePage, MemoryStore, PruneRequest, PruneStep, RecordKind, Store, StoreError,
    Swap, Transitions,
};
use crate::domain::{ApiKey, EventId, Hash32, InvoiceRecord, OutboxItem, User, Username};

#[derive(Default)]
pub struct FaultyStore {
    inner: MemoryStore,
    full_disk: AtomicBool,
    failing_transitions: AtomicBool,
}

impl FaultyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While full, writes apply in memory but nothing can be made durable.
    pub fn fill_the_disk(&self, full: bool) {
        self.full_disk.store(full, Ordering::SeqCst);
    }

    /// While set, every ledger step fails (after any partial work a real disk could do).
    pub fn fail_transitions(&self, failing: bool) {
        self.failing_transitions.store(failing, Ordering::SeqCst);
    }
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { self.inner.$name($($arg),*) })*
    };
}

impl Store for FaultyStore {
    delegate! {
        user(name: &Username) -> Result<Option<User>, StoreError>;
        users() -> Result<Vec<User>, StoreError>;
        put_user(user: &User) -> Result<(), StoreError>;
        remove_user(name: &Username) -> Result<bool, StoreError>;
        metadata(hash: &Hash32) -> Result<Option<String>, StoreError>;
        put_metadata(json: &str) -> Result<Hash32, StoreError>;
        invoice(hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError>;
        insert_invoice(invoice: &InvoiceRecord) -> Result<(), StoreError>;
        invoices(page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError>;
        expiring(until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError>;
        outbox_item(id: &EventId) -> Result<Option<OutboxItem>, StoreError>;
        put_outbox_item(item: &OutboxItem) -> Result<(), StoreError>;
        outbox_due(now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
        outbox_items(keep: &mut dyn FnMut(&OutboxItem) -> bool, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
        api_key(key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError>;
        put_api_key(key: &ApiKey) -> Result<(), StoreError>;
        api_keys() -> Result<Vec<ApiKey>, StoreError>;
        meta(key: &str) -> Result<Option<Vec<u8>>, StoreError>;
        put_meta(key: &str, value: &[u8]) -> Result<(), StoreError>;
        meta_entries() -> Result<Vec<(String, Vec<u8>)>, StoreError>;
        metadata_entries() -> Result<Vec<String>, StoreError>;
        record(kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
        records(kind: RecordKind, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
        swap_record(swap: Swap<'_>) -> Result<bool, StoreError>;
        prune(request: &PruneRequest<'_>) -> Result<PruneStep, StoreError>;
    }

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        if self.failing_transitions.load(Ordering::SeqCst) {
            return Err(StoreError::Io("the disk failed mid-write".into()));
        }
        self.inner.commit_transitions(step)
    }

    fn flush(&self) -> Result<Flushed, StoreError> {
        if self.full_disk.load(Ordering::SeqCst) {
            return Err(StoreError::Io(
                "No space left on device (os error 28)".into(),
            ));
        }
        Ok(Flushed::default())
    }
}
