//! The PostgreSQL store: the same contract as sled, in a database that any number of rayo
//! processes share. `Store` is synchronous (sled answers in microseconds); here each call is a
//! round trip, made by tokio-postgres clients whose connections run on a small runtime of the
//! store's own, and awaited on the calling thread (`group::block_on`, the one place that
//! waits). Reads share one pipelined connection; writes take the other, grouped into one
//! transaction per flush.
//!
//! Where things are: opening, status and restores here; the write connection and group commit
//! in `group`; a file per table (`invoices`, `outbox`, `records` for the small ones); the
//! servers' claim on the database in `servers`; the schema and its migrations in `schema`; TLS
//! in `tls`; what several processes on one database tell each other in `changes`, and their
//! leases in `cluster`.

mod changes;
mod coordination;
mod group;
mod invoices;
mod outbox;
mod records;
mod schema;
mod servers;
mod session;
/// Test support (a throwaway cluster), shared by the unit and integration tests.
#[doc(hidden)]
pub mod testing;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake};

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::codec::{decode_json, encode_json, invoice};
use super::{
    next_status, Flushed, InvoicePage, PruneCursor, PruneRequest, PruneStep, Pruned, RecordKind,
    SentAhead, SharedStore, Store, StoreError, Swap, Transitions,
};
use crate::domain::{
    ApiKey, Delivery, EventId, Hash32, InvoiceRecord, InvoiceStatus, OutboxItem, User, Username,
};

use group::{block_on, connect, OpenGroup, Writer};
use records::seal_key;
use servers::{lock_not_available, SERVERS_RUNNING};

pub use changes::{Change, Sender, SEAL_KEY};
pub use coordination::{Lease, PgCoordination};
pub use schema::VERSION as SCHEMA_VERSION;

/// What `rayo db status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbStatus {
    pub schema_version: i32,
    pub known_version: i32,
    /// Servers running on the database now.
    pub servers: i64,
    pub server_running: bool,
    /// Who leads each job that one process does at a time (watching a backend, sweeping).
    pub leases: Vec<LeaseHolder>,
    /// What every role (PUBLIC) may still do on the database: any of them can disturb the
    /// instances (see `PUBLIC_ACCESS_ADVICE`).
    pub public_can: Vec<String>,
}

/// What to do when PUBLIC keeps its default rights on rayo's database.
pub const PUBLIC_ACCESS_ADVICE: &str = "every role may connect to this database (PostgreSQL's default): any of them can send notifications and watch activity; run REVOKE CONNECT, TEMPORARY ON DATABASE <name> FROM PUBLIC, and GRANT CONNECT to rayo's role";

#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseHolder {
    pub role: String,
    /// The holder's address as the database sees it (`local` for a Unix socket).
    pub client: String,
    pub pid: i32,
}

pub struct PgStore {
    /// Drives the connections (nothing else runs on it); they end when it drops.
    /// Taken only by `drop`, which may run on an async worker (a runtime must not be dropped
    /// there, only shut down in the background).
    runtime: Option<tokio::runtime::Runtime>,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Replaced by a new connection when the database closed it (a restart, a failover).
    reads: std::sync::RwLock<Arc<Client>>,
    writer: Mutex<Writer>,
    /// This process's name among those sharing the database.
    origin: Sender,
    /// Seals what this process tells the others (see `changes`); set by `open`.
    seal: OnceLock<changes::Seal>,
    coordination: OnceLock<Arc<PgCoordination>>,
    /// The thread writing the open group, if any: kept apart from `writer` so that other
    /// threads' reads never wait behind a write in flight to find out they are not it.
    group_thread: Mutex<Option<std::thread::ThreadId>>,
}

/// A database error with its causes: tokio-postgres keeps the useful part (which certificate
/// check failed, what the server said) in the source chain.
fn db(e: tokio_postgres::Error) -> StoreError {
    let mut message = format!("database: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    StoreError::Io(message)
}

/// Seconds and counts are u64 in rayo and BIGINT in the database.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or key=value string, with libpq's `sslmode` and
    /// `sslrootcert`: see `tls`) and brings the schema up to date.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut store = Self::open_unmigrated(url)?;
        let writer = store.writer.get_mut().unwrap_or_else(|p| p.into_inner());
        let client = Arc::get_mut(&mut writer.client)
            .ok_or_else(|| StoreError::Io("the write connection is shared".into()))?;
        block_on(schema::migrate(client))?;
        let key = block_on(seal_key(client))?;
        let _ = store.seal.set(changes::Seal::new(&key));
        Ok(store)
    }

    /// Connected, the schema as it is.
    fn open_unmigrated(url: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rayo-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("database runtime: {e}")))?;
        let target = tls::Connection::parse(url)?;
        let connector = target.connector()?;
        let reads = connect(&runtime, &target, &connector)?;
        let writes = connect(&runtime, &target, &connector)?;
        Ok(Self {
            runtime: Some(runtime),
            target,
            connector,
            reads: std::sync::RwLock::new(Arc::new(reads)),
            writer: Mutex::new(Writer {
                client: Arc::new(writes),
                open: None,
                unclaimed: Vec::new(),
                next_insert: 0,
            }),
            origin: {
                use crate::clock::Random;
                let mut bytes = [0u8; 8];
                crate::clock::OsRandom.fill(&mut bytes);
                Sender(u64::from_be_bytes(bytes))
            },
            seal: OnceLock::new(),
            coordination: OnceLock::new(),
            group_thread: Mutex::new(None),
        })
    }

    /// The coordination with the other processes on this database.
    pub fn coordination(&self) -> Arc<PgCoordination> {
        self.coordination
            .get_or_init(|| {
                Arc::new(PgCoordination::new(
                    self.runtime().handle().clone(),
                    self.target.clone(),
                    self.connector.clone(),
                    self.origin,
                    self.seal().clone(),
                ))
            })
            .clone()
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .unwrap_or_else(|| unreachable!("the runtime is taken only when the store drops"))
    }

    /// The seal of a store made by `open`; a store opened only to be looked at (`status`)
    /// tells nobody anything, and gets a key nobody has.
    fn seal(&self) -> &changes::Seal {
        self.seal.get_or_init(|| {
            use crate::clock::Random;
            let mut key = [0u8; 32];
            crate::clock::OsRandom.fill(&mut key);
            changes::Seal::new(&key)
        })
    }

    fn reconnect(&self) -> Result<Client, StoreError> {
        let client = connect(self.runtime(), &self.target, &self.connector)?;
        tracing::info!("reconnected to the database");
        Ok(client)
    }

    /// The schema version, the servers running and who leads what, without changing anything.
    pub fn status(url: &str) -> Result<DbStatus, StoreError> {
        let store = Self::open_unmigrated(url)?;
        let schema_version = block_on(schema::version(&store.reads()))?;
        let row = block_on(store.reads().query_one(SERVERS_RUNNING, &[])).map_err(db)?;
        let servers = row.get::<_, i64>(0);
        let leases = if schema_version >= 3 {
            block_on(store.reads().query(coordination::LEASES_HELD, &[]))
                .map_err(db)?
                .iter()
                .map(|row| LeaseHolder {
                    role: row.get(0),
                    client: row.get(1),
                    pid: row.get(2),
                })
                .collect()
        } else {
            Vec::new()
        };
        let public_access = block_on(store.reads().query_one(
            "SELECT has_database_privilege('public', current_database(), 'CONNECT'),
                    has_database_privilege('public', current_database(), 'TEMP')",
            &[],
        ))
        .map_err(db)?;
        let public_can = [("CONNECT", 0), ("TEMP", 1)]
            .into_iter()
            .filter(|(_, column)| public_access.get::<_, bool>(*column))
            .map(|(name, _)| name.to_owned())
            .collect();
        Ok(DbStatus {
            schema_version,
            known_version: SCHEMA_VERSION,
            servers,
            server_running: servers > 0,
            leases,
            public_can,
        })
    }

    /// Whether a server holds the database now.
    pub fn server_running(url: &str) -> Result<bool, StoreError> {
        Ok(Self::status(url)?.server_running)
    }

    /// Replaces everything the database holds with what `fill` writes, in one transaction: a
    /// failure anywhere leaves the database as it was (a restore).
    pub fn replace<T>(
        &self,
        fill: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        {
            let mut writer = self.writer_connection();
            if writer.open.is_some() {
                return Err(StoreError::Io(
                    "a restore needs the database to itself".into(),
                ));
            }
            // Alone on the database: no server may start while the restore runs.
            block_on(writer.client.batch_execute("BEGIN")).map_err(db)?;
            let alone = block_on(
                writer
                    .client
                    .batch_execute("LOCK TABLE servers_running IN ACCESS EXCLUSIVE MODE NOWAIT"),
            );
            if let Err(e) = alone {
                let _ = block_on(writer.client.batch_execute("ROLLBACK"));
                return Err(if lock_not_available(&e) {
                    StoreError::Locked(
                        "a server runs on this database: stop every one first, a restore needs the database to itself".into(),
                    )
                } else {
                    db(e)
                });
            }
            block_on(writer.client.batch_execute(
                "TRUNCATE users, metadata, invoices, outbox, api_keys, meta, sequences, account_records",
            ))
            .map_err(db)?;
            writer.open = Some(OpenGroup::new(true));
            *self.group_thread() = Some(std::thread::current().id());
        }
        let filled = fill(self);
        let mut writer = self.writer_connection();
        let group = writer.open.take();
        writer.unclaimed.clear();
        *self.group_thread() = None;
        let refused = group
            .as_ref()
            .and_then(|group| group.refused.first().copied());
        let aborted = group.is_some_and(|group| group.aborted);
        let filled = match (filled, refused) {
            (Ok(_), Some(insert)) => Err(StoreError::Conflict(format!(
                "invoice {} (twice in the backup)",
                insert.payment_hash
            ))),
            (filled, _) => filled,
        };
        match filled {
            Ok(value) if !aborted => {
                block_on(writer.client.batch_execute("COMMIT")).map_err(db)?;
                Ok(value)
            }
            outcome => {
                let _ = block_on(writer.client.batch_execute("ROLLBACK"));
                Err(outcome.err().unwrap_or_else(|| {
                    StoreError::Io("a write failed; the restore was rolled back".into())
                }))
            }
        }
    }
}

impl Store for PgStore {
    fn user(&self, name: &Username) -> Result<Option<User>, StoreError> {
        records::user(self, name)
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        records::users(self)
    }

    fn first_users(&self, limit: usize) -> Result<Vec<User>, StoreError> {
        records::first_users(self, limit)
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        records::put_user(self, user)
    }

    fn remove_user(&self, name: &Username) -> Result<bool, StoreError> {
        records::remove_user(self, name)
    }

    fn metadata(&self, hash: &Hash32) -> Result<Option<String>, StoreError> {
        records::metadata(self, hash)
    }

    fn put_metadata(&self, json: &str) -> Result<Hash32, StoreError> {
        records::put_metadata(self, json)
    }

    fn invoice(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
        invoices::invoice(self, hash)
    }

    fn insert_invoice(&self, record: &InvoiceRecord) -> Result<(), StoreError> {
        invoices::insert_invoice(self, record)
    }

    fn sent_ahead(&self) -> Vec<SentAhead> {
        invoices::sent_ahead(self)
    }

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        invoices::commit_transitions(self, step)
    }

    fn invoices(&self, page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError> {
        invoices::invoices(self, page)
    }

    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        invoices::expiring(self, until, limit)
    }

    fn outbox_item(&self, id: &EventId) -> Result<Option<OutboxItem>, StoreError> {
        outbox::outbox_item(self, id)
    }

    fn put_outbox_item(&self, item: &OutboxItem) -> Result<(), StoreError> {
        outbox::put_outbox_item(self, item)
    }

    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::outbox_due(self, now, limit)
    }

    fn outbox_items(
        &self,
        keep: &mut dyn FnMut(&OutboxItem) -> bool,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::outbox_items(self, keep, limit)
    }

    fn api_key(&self, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError> {
        records::api_key(self, key_hash)
    }

    fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        records::put_api_key(self, key)
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        records::api_keys(self)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        records::meta(self, key)
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        records::put_meta(self, key, value)
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        records::meta_entries(self)
    }

    fn metadata_entries(&self) -> Result<Vec<String>, StoreError> {
        records::metadata_entries(self)
    }

    fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        records::record(self, kind, key)
    }

    fn records(
        &self,
        kind: RecordKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        records::records(self, kind, prefix, limit)
    }

    fn swap_record(&self, swap: Swap<'_>) -> Result<bool, StoreError> {
        records::swap_record(self, swap)
    }

    fn prune(&self, request: &PruneRequest<'_>) -> Result<PruneStep, StoreError> {
        invoices::prune(self, request)
    }

    fn claim_due(
        &self,
        now: u64,
        hold_until: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::claim_due(self, now, hold_until, limit)
    }

    fn hold_claims(&self, ids: &[EventId], hold_until: u64) -> Result<(), StoreError> {
        outbox::hold_claims(self, ids, hold_until)
    }

    fn flush(&self) -> Result<Flushed, StoreError> {
        group::flush(self)
    }

    fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        let row = block_on(
            self.reads()
                .query_one("SELECT pg_database_size(current_database())", &[]),
        )
        .map_err(db)?;
        Ok(Some(uint(row.get(0))))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl SharedStore for PgStore {
    fn claim_for_server(&self) -> Result<(), StoreError> {
        servers::claim_for_server(self)
    }

    fn next_in_sequence(&self, name: &str, at_least: u64) -> Result<u64, StoreError> {
        records::next_in_sequence(self, name, at_least)
    }

    fn cluster(&self) -> Result<crate::store::ClusterView, StoreError> {
        servers::cluster(self)
    }
}

#[cfg(test)]
mod shared_tests;

#[cfg(test)]
mod tests;
