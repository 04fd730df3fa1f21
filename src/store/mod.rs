//! Durable state: users, the metadata strings invoices commit to, invoices and their indexes,
//! and small server settings. `Store` is a synchronous key-value contract implemented by sled
//! (production) and by memory (unit tests); `Db` adds the async face the server uses: point
//! reads inline, scans off the async workers, and every write through one group-commit writer.

pub(crate) mod codec;
mod db;
mod memory;
pub mod offer_records;
pub mod postgres;
pub mod records;
mod replace;
pub mod retention;
mod shared;
mod sled_store;
pub mod upkeep;
mod writer;

use crate::domain::{
    ApiKey, EventId, Hash32, InvoiceRecord, InvoiceStatus, OutboxItem, User, Username,
};

pub use db::Db;
pub use memory::MemoryStore;
pub use postgres::PgStore;
pub use records::{RecordKind, Swap};
pub use replace::replace_sled;
pub use retention::{PruneCursor, PruneStep, Pruned, Retention};
pub use shared::{Change, Coordination, Lease};
pub use sled_store::SledStore;
pub use writer::StoreWriter;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is locked by another process: {0}")]
    Locked(String),
    #[error("storage failure: {0}")]
    Io(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invoice cannot go from {from} to {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
    #[error("the store writer has stopped")]
    Closed,
}

/// Picks which invoices a listing returns, newest first.
pub type InvoiceFilter<'a> = &'a mut dyn FnMut(&InvoiceRecord) -> bool;

/// A page of invoices, newest first: of one user or all, older than `before` if given,
/// those `keep` accepts (all, without one), at most `limit`.
pub struct InvoicePage<'a> {
    pub user: Option<&'a Username>,
    pub before: Option<&'a Hash32>,
    pub keep: Option<InvoiceFilter<'a>>,
    pub limit: usize,
}

impl<'a> InvoicePage<'a> {
    /// Every invoice, newest first, at most `limit`.
    pub fn newest(limit: usize) -> Self {
        Self {
            user: None,
            before: None,
            keep: None,
            limit,
        }
    }

    /// Only `user`'s.
    pub fn of(self, user: &'a Username) -> Self {
        Self {
            user: Some(user),
            ..self
        }
    }

    /// Only those older than the invoice `before` (the previous page's last).
    pub fn before(self, before: &'a Hash32) -> Self {
        Self {
            before: Some(before),
            ..self
        }
    }

    /// Only those `keep` accepts.
    pub fn keeping(self, keep: InvoiceFilter<'a>) -> Self {
        Self {
            keep: Some(keep),
            ..self
        }
    }

    /// Whether `record` belongs on the page (its user and its age are the store's to check).
    pub fn keeps(&mut self, record: &InvoiceRecord) -> bool {
        self.keep.as_mut().is_none_or(|keep| keep(record))
    }
}

/// One step of a pruning pass: remove, from `from` on, what `rules` let go of at `now`,
/// doing about `budget` records' work. A dry run counts what would go and changes nothing.
#[derive(Debug, Clone, Copy)]
pub struct PruneRequest<'a> {
    pub rules: &'a Retention,
    pub now: u64,
    pub from: &'a PruneCursor,
    pub budget: usize,
    pub dry_run: bool,
}

pub trait Store: Send + Sync + 'static {
    fn user(&self, name: &Username) -> Result<Option<User>, StoreError>;
    /// All users, by name.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// The first `limit` users, by name.
    fn first_users(&self, limit: usize) -> Result<Vec<User>, StoreError> {
        let mut users = self.users()?;
        users.truncate(limit);
        Ok(users)
    }
    /// Creates or replaces a user.
    fn put_user(&self, user: &User) -> Result<(), StoreError>;
    /// Removes a user; their invoices stay, as records of money received.
    fn remove_user(&self, name: &Username) -> Result<bool, StoreError>;

    /// Content-addressed metadata strings: invoices refer to them by hash.
    fn metadata(&self, hash: &Hash32) -> Result<Option<String>, StoreError>;
    fn put_metadata(&self, json: &str) -> Result<Hash32, StoreError>;

    fn invoice(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError>;
    /// Adds a new invoice and its indexes atomically; an existing payment hash is a conflict,
    /// reported here or, by a store that sends inserts ahead (PostgreSQL), by the flush that
    /// ends the group: that insert alone is left out (see `sent_ahead` and `Flushed`).
    fn insert_invoice(&self, invoice: &InvoiceRecord) -> Result<(), StoreError>;
    /// The inserts this store sent ahead since it was last asked, their answers not yet read.
    /// The writer asks after each write it applies, so that the flush's verdict on each insert
    /// reaches the one caller who made it. Stores that answer inserts at once send none ahead.
    fn sent_ahead(&self) -> Vec<SentAhead> {
        Vec::new()
    }
    /// One step of the ledger, as a single atomic write: invoices whose status moved (each
    /// the whole record afterwards, only ever forward: see `next_status`), the events that
    /// calls for (queued unless one with the same id already is), and meta values (a watcher's
    /// cursor). An error, or a crash, keeps all of it or none. Returns how many events were
    /// newly queued.
    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError>;
    /// A page of invoices, newest first.
    fn invoices(&self, page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError>;
    /// Pending invoices that expire at or before `until`, soonest first, at most `limit`.
    /// `until = u64::MAX` lists every pending invoice.
    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError>;

    fn outbox_item(&self, id: &EventId) -> Result<Option<OutboxItem>, StoreError>;
    /// Replaces a queued event (after a delivery attempt, or a manual retry).
    fn put_outbox_item(&self, item: &OutboxItem) -> Result<(), StoreError>;
    /// Pending events due at or before `now`, soonest first, at most `limit`.
    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
    /// Pending events due at or before `now`, taken by this process until `hold_until`: in a
    /// store several processes share, no other process is handed them before then (unless
    /// they are put back sooner). A store only one process opens hands out `outbox_due`.
    fn claim_due(
        &self,
        now: u64,
        _hold_until: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.outbox_due(now, limit)
    }
    /// Every event, newest first, those `keep` accepts, at most `limit`.
    fn outbox_items(
        &self,
        keep: &mut dyn FnMut(&OutboxItem) -> bool,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    fn api_key(&self, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError>;
    fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Every meta entry, by key (for backups).
    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Every metadata string (for backups).
    fn metadata_entries(&self) -> Result<Vec<String>, StoreError>;

    /// An account record (see `records`).
    fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The records of `kind` whose keys start with `prefix`, by key, at most `limit`.
    fn records(
        &self,
        kind: RecordKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// One compare-and-swap of an account record: whether it applied. Applied means part of
    /// the group the next flush makes durable, like every other write.
    fn swap_record(&self, swap: Swap<'_>) -> Result<bool, StoreError>;

    /// Moves up to `budget` finished invoices, past their expiry, into their long-term form
    /// (sled: chunks of invoices). Returns how many moved; stores with one form move none.
    fn seal(&self, _now: u64, _budget: usize) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// One step of a pruning pass (see `retention`), and where the pass goes on.
    fn prune(&self, step: &PruneRequest<'_>) -> Result<PruneStep, StoreError>;

    /// Keeps this process's claim on events it is still delivering until `hold_until`.
    fn hold_claims(&self, _ids: &[EventId], _hold_until: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes every write so far durable, as one unit: an error means none of the group was
    /// kept. An insert sent ahead whose payment hash was already stored is the exception: it
    /// alone is left out, and `Flushed` names it, so one bad insert fails only its own caller.
    fn flush(&self) -> Result<Flushed, StoreError>;

    /// How many bytes the store takes on disk, where it can say.
    fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

/// What only a store that several server processes share does, beside the `Store` contract
/// (PostgreSQL; sled is one process's, and its own lock says so).
pub trait SharedStore: Send + Sync + 'static {
    /// Claims the store for this server process for as long as it runs: the shared database
    /// counts its servers, and a restore waits for none.
    fn claim_for_server(&self) -> Result<(), StoreError>;
    /// The next number of the sequence `name`, at least `at_least` and above every number it
    /// gave before, whichever process asked.
    fn next_in_sequence(&self, name: &str, at_least: u64) -> Result<u64, StoreError>;
    /// The server processes on the store now, and who leads which job.
    fn cluster(&self) -> Result<ClusterView, StoreError>;
}

/// The server processes sharing a store, as the console shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterView {
    /// This process's id among them.
    pub this: String,
    pub instances: Vec<Instance>,
    pub leases: Vec<LeaseView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    pub id: String,
    /// Its address as the database sees it (`local` for a Unix socket).
    pub client: String,
    /// Since when it has been running, unix seconds.
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseView {
    pub role: String,
    /// The instance holding it.
    pub holder: String,
}

/// An insert sent ahead: a number of its own (one payment hash may be sent twice, and only the
/// second is refused) and the hash, to say which invoice a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentAhead {
    pub id: u64,
    pub payment_hash: Hash32,
}

/// What a flush made durable: every write of its group, except the inserts it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flushed {
    pub refused: Vec<SentAhead>,
}

impl Flushed {
    /// The verdict on a write that sent `sent` ahead: a conflict if the flush refused any of
    /// them.
    pub fn verdict(&self, sent: &[SentAhead]) -> Result<(), StoreError> {
        match sent.iter().find(|insert| self.refused.contains(insert)) {
            Some(insert) => Err(StoreError::Conflict(format!(
                "invoice {}",
                insert.payment_hash
            ))),
            None => Ok(()),
        }
    }
}

/// What one ledger step writes; see `Store::commit_transitions`.
#[derive(Debug, Clone, Default)]
pub struct Transitions {
    pub invoices: Vec<InvoiceRecord>,
    pub events: Vec<OutboxItem>,
    pub meta: Vec<(String, Vec<u8>)>,
}

impl Transitions {
    /// Only events: queued as one unit.
    pub fn events(events: Vec<OutboxItem>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }
}

/// The forward-only status rule, shared by every implementation.
pub fn next_status(
    current: InvoiceStatus,
    next: InvoiceStatus,
) -> Result<Option<InvoiceStatus>, StoreError> {
    use InvoiceStatus::*;
    match (current, next) {
        // Repeating a transition (a watcher replaying a stream) changes nothing.
        (Paid(_), Paid(_)) | (Expired, Expired) => Ok(None),
        (Pending, next @ (Paid(_) | Expired)) => Ok(Some(next)),
        // Funds that arrive after we gave up on an invoice did arrive: record them.
        (Expired, next @ Paid(_)) => Ok(Some(next)),
        (from, to) => Err(StoreError::Transition {
            from: from.name(),
            to: to.name(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
mod faulty;
#[cfg(test)]
mod group_story;
#[cfg(test)]
pub use faulty::FaultyStore;
