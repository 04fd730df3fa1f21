//! The PostgreSQL store: the same contract as sled, in a database that any number of rayo
//! processes share. `Store` is synchronous (sled answers in microseconds);
//! here each call is a round trip, made by tokio-postgres clients whose connections run on a
//! small runtime of the store's own, and awaited on the calling thread. Reads share one
//! pipelined connection; writes take the other, grouped into one transaction per flush (see
//! `Writer`).
//!
//! What is here: the schema and its migrations, every part of the store contract (the contract
//! stories run against a real PostgreSQL), grouped commits, TLS (see `tls`), reconnecting
//! after the database closed a connection, restores in one transaction, and what several
//! processes on one database need: claims on due events (`claim_due`), sequences, the changes
//! each tells the others about (`changes`), and leases (`cluster`).

mod changes;
mod cluster;
mod schema;
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
    next_status, Flushed, InvoiceFilter, PruneCursor, PruneStep, Pruned, Retention, SentAhead,
    Store, StoreError, Transitions,
};
use crate::domain::{
    ApiKey, Delivery, EventId, Hash32, InvoiceRecord, InvoiceStatus, OutboxItem, User, Username,
};

pub use changes::{Change, Origin, SEAL_KEY};
pub use cluster::{Lease, PgCluster};
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

/// Servers running on the database: the sessions holding `servers_running` (see
/// `claim_for_server`).
const SERVERS_RUNNING: &str = "
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'relation' AND granted AND mode = 'RowShareLock'
      AND relation = to_regclass('servers_running')::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseHolder {
    pub role: String,
    /// The holder's address as the database sees it (`local` for a Unix socket).
    pub client: String,
    pub pid: i32,
}

pub struct PgStore {
    /// Drives the connections (nothing else runs on it); they end when it drops.
    runtime: tokio::runtime::Runtime,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Replaced by a new connection when the database closed it (a restart, a failover).
    reads: std::sync::RwLock<Arc<Client>>,
    writer: Mutex<Writer>,
    /// This process's name among those sharing the database.
    origin: Origin,
    /// Seals what this process tells the others (see `changes`); set by `open`.
    seal: OnceLock<changes::Seal>,
    cluster: OnceLock<Arc<PgCluster>>,
    /// The thread writing the open group, if any: kept apart from `writer` so that other
    /// threads' reads never wait behind a write in flight to find out they are not it.
    group_thread: Mutex<Option<std::thread::ThreadId>>,
}

/// The write connection, and the transaction the writes since the last flush are in. The
/// store's writer applies a group of writes and then flushes: here the group shares one
/// transaction, and the flush commits it, so a group costs one commit (one WAL flush), not
/// one per write.
struct Writer {
    client: Arc<Client>,
    open: Option<OpenGroup>,
    /// Inserts sent ahead that no write has claimed yet (see `Store::sent_ahead`).
    unclaimed: Vec<SentAhead>,
    /// The number of the next insert sent ahead.
    next_insert: u64,
}

/// The thread writing into a group reads through the same connection, so it sees what the
/// group wrote (a ledger step reads the invoice a callback just stored): see `group_thread`.
struct OpenGroup {
    /// A statement failed outside a savepoint: the transaction can only roll back.
    aborted: bool,
    /// Opened by `replace`, which commits it itself.
    held: bool,
    /// What the group tells the other processes when it commits (see `changes`).
    told: Vec<String>,
    /// Inserts sent ahead, their answers not yet read (see `insert_invoice`).
    sent: Vec<SentInsert>,
    /// Inserts that found their payment hash already stored: left out, the group goes on.
    refused: Vec<SentAhead>,
}

impl OpenGroup {
    fn new(held: bool) -> Self {
        Self {
            aborted: false,
            held,
            told: Vec::new(),
            sent: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Reads the answers to the inserts sent ahead: the connection answers in order, so
    /// nothing sent after them can be answered before they are read.
    fn settle(&mut self) {
        if self.sent.is_empty() {
            return;
        }
        let sent = std::mem::take(&mut self.sent);
        let answers = block_on(futures_util::future::join_all(sent.into_iter().map(
            |insert| async move {
                let outcome = match insert.answer {
                    Answer::Waiting(answer) => answer.await,
                    Answer::Done(outcome) => outcome,
                };
                (insert.ticket, insert.told, outcome)
            },
        )));
        for (ticket, told, outcome) in answers {
            match outcome {
                // `ON CONFLICT DO NOTHING` inserted nothing and left the transaction whole:
                // only this insert's caller is told (see `Flushed`).
                Ok(0) => {
                    tracing::warn!(payment_hash = %ticket.payment_hash, "an invoice's payment hash was already stored; refused it");
                    self.refused.push(ticket);
                }
                Ok(_) => self.told.extend(told),
                Err(e) => {
                    tracing::error!(error = %db(e), "an invoice insert failed");
                    self.aborted = true;
                }
            }
        }
    }
}

type Pending<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An insert whose statement is on its way (or answered already).
struct SentInsert {
    ticket: SentAhead,
    /// What to tell the other processes if it is kept.
    told: Option<String>,
    answer: Answer,
}

enum Answer {
    Waiting(Pending<Result<u64, tokio_postgres::Error>>),
    Done(Result<u64, tokio_postgres::Error>),
}

impl Writer {
    fn settle(&mut self) {
        if let Some(group) = self.open.as_mut() {
            group.settle();
        }
    }
}

/// The write connection inside the group's transaction.
struct WriteGuard<'a>(std::sync::MutexGuard<'a, Writer>);

impl WriteGuard<'_> {
    fn client(&self) -> &Client {
        &self.0.client
    }

    /// Marks the group failed when `outcome` is a database error.
    fn check<T>(&mut self, outcome: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        if outcome.is_err() {
            if let Some(group) = self.0.open.as_mut() {
                group.aborted = true;
            }
        }
        outcome.map_err(db)
    }

    /// Tells the other processes about `change` when the group commits.
    fn tell(&mut self, origin: Origin, change: Change) {
        if let Some(group) = self.0.open.as_mut() {
            group.told.push(change.encode(origin));
        }
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let outcome = block_on(self.0.client.execute(sql, params));
        self.check(outcome)
    }
}

/// What reads go through: the shared read connection, or the writer's, for the thread
/// writing a group.
enum ReadClient<'a> {
    Shared(Arc<Client>),
    Writer(std::sync::MutexGuard<'a, Writer>),
}

impl std::ops::Deref for ReadClient<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        match self {
            Self::Shared(client) => client,
            Self::Writer(writer) => &writer.client,
        }
    }
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

/// A new connection to `target`, driven by `runtime`. Connecting needs the runtime's reactor:
/// it runs there, and any thread (one of an async runtime too) waits for it.
fn connect(
    runtime: &tokio::runtime::Runtime,
    target: &tls::Connection,
    connector: &Option<tokio_postgres_rustls::MakeRustlsConnect>,
) -> Result<Client, StoreError> {
    let (target, connector) = (target.clone(), connector.clone());
    block_on(runtime.spawn(async move { session::open(&target, connector, None).await }))
        .map_err(|e| StoreError::Io(format!("database: {e}")))?
        .map(|session| session.client)
}

/// Runs `future` to completion on this thread. tokio-postgres' client futures only talk to
/// their connection (which runs on the store's runtime) through channels, so any thread can
/// wait on them, in or out of an async runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            Poll::Pending => std::thread::park(),
        }
    }
}

fn outbox_state(item: &OutboxItem) -> (&'static str, u64) {
    match item.delivery {
        Delivery::Pending => ("pending", item.next_attempt_at),
        Delivery::Delivered { at } => ("delivered", at),
        Delivery::Dead { at } => ("dead", at),
    }
}

fn paid_at(record: &InvoiceRecord) -> Option<i64> {
    match &record.status {
        InvoiceStatus::Paid(paid) => Some(int(paid.paid_at)),
        _ => None,
    }
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
            runtime,
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
                Origin(u64::from_be_bytes(bytes))
            },
            seal: OnceLock::new(),
            cluster: OnceLock::new(),
            group_thread: Mutex::new(None),
        })
    }

    /// The coordination with the other processes on this database.
    pub fn cluster(&self) -> Arc<PgCluster> {
        self.cluster
            .get_or_init(|| {
                Arc::new(PgCluster::new(
                    self.runtime.handle().clone(),
                    self.target.clone(),
                    self.connector.clone(),
                    self.origin,
                    self.seal().clone(),
                ))
            })
            .clone()
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
        let client = connect(&self.runtime, &self.target, &self.connector)?;
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
            block_on(store.reads().query(cluster::LEASES_HELD, &[]))
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
                "TRUNCATE users, metadata, invoices, outbox, api_keys, meta, sequences",
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

    /// The write connection, connected again first if the database closed it. Writes of a
    /// group the lost connection held are gone: the group is marked failed, so its flush says
    /// so.
    fn writer_connection(&self) -> std::sync::MutexGuard<'_, Writer> {
        let mut writer = self.writer_connection_ahead();
        writer.settle();
        writer
    }

    /// The write connection, with inserts sent ahead possibly still unanswered: only for
    /// sending another one.
    fn writer_connection_ahead(&self) -> std::sync::MutexGuard<'_, Writer> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if writer.client.is_closed() {
            match self.reconnect() {
                Ok(client) => {
                    writer.settle();
                    writer.client = Arc::new(client);
                    if let Some(group) = writer.open.as_mut() {
                        group.aborted = true;
                        // The new connection has no transaction to roll back: open one.
                        let _ = block_on(writer.client.batch_execute("BEGIN"));
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not reconnect to the database"),
            }
        }
        writer
    }

    /// The write connection, inside the current group's transaction (begun here if none is
    /// open).
    fn writes(&self) -> Result<WriteGuard<'_>, StoreError> {
        self.open_group(self.writer_connection())
    }

    /// `writes`, without reading the answers to inserts sent ahead first.
    fn writes_ahead(&self) -> Result<WriteGuard<'_>, StoreError> {
        self.open_group(self.writer_connection_ahead())
    }

    fn open_group<'a>(
        &'a self,
        mut writer: std::sync::MutexGuard<'a, Writer>,
    ) -> Result<WriteGuard<'a>, StoreError> {
        if writer.open.is_none() {
            block_on(writer.client.batch_execute("BEGIN")).map_err(db)?;
            writer.open = Some(OpenGroup::new(false));
            *self.group_thread() = Some(std::thread::current().id());
        }
        Ok(WriteGuard(writer))
    }

    fn reads(&self) -> ReadClient<'_> {
        let here = std::thread::current().id();
        if *self.group_thread() == Some(here) {
            return ReadClient::Writer(self.writer_connection());
        }
        ReadClient::Shared(self.reads_outside_group())
    }

    /// The shared read connection, even on the thread writing a group: for statements that
    /// must commit on their own, at once.
    fn reads_outside_group(&self) -> Arc<Client> {
        let shared = self.reads.read().unwrap_or_else(|p| p.into_inner()).clone();
        if !shared.is_closed() {
            return shared;
        }
        let mut slot = self.reads.write().unwrap_or_else(|p| p.into_inner());
        if slot.is_closed() {
            match self.reconnect() {
                Ok(client) => *slot = Arc::new(client),
                Err(e) => tracing::error!(error = %e, "could not reconnect to the database"),
            }
        }
        slot.clone()
    }

    fn group_thread(&self) -> std::sync::MutexGuard<'_, Option<std::thread::ThreadId>> {
        self.group_thread.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn one(
        &self,
        sql: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = block_on(self.reads().query_opt(sql, &[key])).map_err(db)?;
        Ok(row.map(|row| row.get(0)))
    }

    fn all(&self, sql: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = block_on(self.reads().query(sql, &[])).map_err(db)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Deletes up to `budget` rows `query` (a `SELECT` of keys with `$1` = the cut-off)
    /// picks from `table`; in a dry run, counts them all.
    fn prune_rows(
        &self,
        table: &str,
        key: &str,
        query: &str,
        cutoff: i64,
        budget: usize,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        if dry_run {
            let sql = format!("SELECT count(*) FROM ({query}) AS due");
            let row = block_on(self.reads().query_one(&sql, &[&cutoff])).map_err(db)?;
            return Ok(uint(row.get(0)));
        }
        let sql = format!("DELETE FROM {table} WHERE {key} IN ({query} LIMIT $2)");
        let deleted = self
            .writes()?
            .execute(&sql, &[&cutoff, &int(budget as u64)])?;
        Ok(deleted)
    }
}

impl Store for PgStore {
    fn user(&self, name: &Username) -> Result<Option<User>, StoreError> {
        self.one("SELECT record FROM users WHERE name = $1", &name.as_str())?
            .map(|v| decode_json(&v))
            .transpose()
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.all("SELECT record FROM users ORDER BY name")?
            .iter()
            .map(|v| decode_json(v))
            .collect()
    }

    fn first_users(&self, limit: usize) -> Result<Vec<User>, StoreError> {
        let rows = block_on(self.reads().query(
            "SELECT record FROM users ORDER BY name LIMIT $1",
            &[&int(limit as u64)],
        ))
        .map_err(db)?;
        rows.iter().map(|row| decode_json(row.get(0))).collect()
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let mut w = self.writes()?;
        w.execute(
            "INSERT INTO users (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            &[&user.name.as_str(), &encode_json(user)?],
        )?;
        w.tell(self.origin, Change::User(user.name.clone()));
        Ok(())
    }

    fn remove_user(&self, name: &Username) -> Result<bool, StoreError> {
        let mut w = self.writes()?;
        let removed = w.execute("DELETE FROM users WHERE name = $1", &[&name.as_str()])?;
        w.tell(self.origin, Change::User(name.clone()));
        Ok(removed > 0)
    }

    fn metadata(&self, hash: &Hash32) -> Result<Option<String>, StoreError> {
        let row = block_on(self.reads().query_opt(
            "SELECT text FROM metadata WHERE hash = $1",
            &[&hash.0.as_slice()],
        ))
        .map_err(db)?;
        Ok(row.map(|row| row.get(0)))
    }

    fn put_metadata(&self, json: &str) -> Result<Hash32, StoreError> {
        let hash = Hash32::sha256(json.as_bytes());
        self.writes()?.execute(
            "INSERT INTO metadata (hash, text) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&hash.0.as_slice(), &json],
        )?;
        Ok(hash)
    }

    fn invoice(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
        self.one(
            "SELECT record FROM invoices WHERE payment_hash = $1",
            &hash.0.as_slice(),
        )?
        .map(|v| invoice::decode(&v))
        .transpose()
    }

    /// Sent ahead: the statement goes out now, and its answer is read when the connection is
    /// next needed (at the latest by the flush), so a group of callbacks' inserts costs one
    /// round trip, not one each. A payment hash already stored (a broken or hostile backend
    /// reusing someone's invoice) inserts nothing and leaves the transaction whole: the flush
    /// refuses that insert alone, and the rest of the group commits.
    fn insert_invoice(&self, record: &InvoiceRecord) -> Result<(), StoreError> {
        let mut w = self.writes_ahead()?;
        let client = w.0.client.clone();
        let ticket = SentAhead {
            id: w.0.next_insert,
            payment_hash: record.payment_hash,
        };
        w.0.next_insert += 1;
        let told = record.is_pending().then(|| {
            Change::Added {
                payment_hash: record.payment_hash,
                user: record.user.clone(),
                payer: record.payer,
            }
            .encode(self.origin)
        });
        let writer = &mut *w.0;
        let Some(group) = writer.open.as_mut() else {
            return Err(StoreError::Io("no transaction is open".into()));
        };
        let (hash, user, status, expires_at, paid_at, encoded) = (
            record.payment_hash.0.to_vec(),
            record.user.as_str().to_owned(),
            record.status.name(),
            int(record.expires_at),
            paid_at(record),
            invoice::encode(record)?,
        );
        let mut answer: Pending<_> = Box::pin(async move {
            client
                .execute_typed(
                    "INSERT INTO invoices
                         (payment_hash, username, status, expires_at, paid_at, record)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        (&hash, Type::BYTEA),
                        (&user, Type::TEXT),
                        (&status, Type::TEXT),
                        (&expires_at, Type::INT8),
                        (&paid_at, Type::INT8),
                        (&encoded, Type::BYTEA),
                    ],
                )
                .await
        });
        // The first poll sends the statement (tokio-postgres queues it on the connection
        // before awaiting anything); the answer is awaited later, with a real waker.
        let answer = match answer
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(outcome) => Answer::Done(outcome),
            Poll::Pending => Answer::Waiting(answer),
        };
        group.sent.push(SentInsert {
            ticket,
            told,
            answer,
        });
        writer.unclaimed.push(ticket);
        Ok(())
    }

    fn sent_ahead(&self) -> Vec<SentAhead> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut writer.unclaimed)
    }

    fn commit_transitions(&self, step: &Transitions) -> Result<usize, StoreError> {
        let mut w = self.writes()?;
        // A savepoint around the step: a refused step leaves the rest of the group as it was.
        let opened = block_on(w.client().batch_execute("SAVEPOINT step"));
        w.check(opened)?;
        let outcome = apply_step(&mut w, step);
        let outcome = outcome.map(|(queued, told)| {
            for change in told {
                w.tell(self.origin, change);
            }
            queued
        });
        let closing = match &outcome {
            Ok(_) => "RELEASE SAVEPOINT step",
            Err(_) => "ROLLBACK TO SAVEPOINT step",
        };
        let closed = block_on(w.client().batch_execute(closing));
        if closed.is_ok() && outcome.is_err() {
            // Whatever failed inside the step was rolled back with it.
            if let Some(group) = w.0.open.as_mut() {
                group.aborted = false;
            }
        }
        w.check(closed)?;
        outcome
    }

    fn invoices(
        &self,
        user: Option<&Username>,
        before: Option<&Hash32>,
        keep: InvoiceFilter<'_>,
        limit: usize,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        const PAGE: i64 = 256;
        let mut below = match before {
            Some(hash) => {
                let row = block_on(self.reads().query_opt(
                    "SELECT seq FROM invoices WHERE payment_hash = $1",
                    &[&hash.0.as_slice()],
                ))
                .map_err(db)?
                .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?;
                row.get::<_, i64>(0)
            }
            None => i64::MAX,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let rows = match user {
                Some(name) => block_on(self.reads().query(
                    "SELECT seq, record FROM invoices WHERE username = $1 AND seq < $2
                     ORDER BY seq DESC LIMIT $3",
                    &[&name.as_str(), &below, &PAGE],
                )),
                None => block_on(self.reads().query(
                    "SELECT seq, record FROM invoices WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                    &[&below, &PAGE],
                )),
            }
            .map_err(db)?;
            for row in &rows {
                below = row.get(0);
                let record = invoice::decode(row.get(1))?;
                if keep(&record) {
                    out.push(record);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        Ok(out)
    }

    fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        let rows = block_on(self.reads().query(
            "SELECT record FROM invoices WHERE status = 'pending' AND expires_at <= $1
             ORDER BY expires_at, seq LIMIT $2",
            &[&int(until), &int(limit as u64)],
        ))
        .map_err(db)?;
        rows.iter().map(|row| invoice::decode(row.get(0))).collect()
    }

    fn outbox_item(&self, id: &EventId) -> Result<Option<OutboxItem>, StoreError> {
        self.one("SELECT item FROM outbox WHERE id = $1", &id.0.as_slice())?
            .map(|v| decode_json(&v))
            .transpose()
    }

    fn put_outbox_item(&self, item: &OutboxItem) -> Result<(), StoreError> {
        let (state, at) = outbox_state(item);
        self.writes()?.execute(
            "INSERT INTO outbox (id, state, at, created_at, item) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at,
                 item = EXCLUDED.item, claimed_until = 0",
            &[
                &item.id.0.as_slice(),
                &state,
                &int(at),
                &int(item.created_at),
                &encode_json(item)?,
            ],
        )?;
        Ok(())
    }

    fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = block_on(self.reads().query(
            "SELECT item FROM outbox WHERE state = 'pending' AND at <= $1 ORDER BY at, id LIMIT $2",
            &[&int(now), &int(limit as u64)],
        ))
        .map_err(db)?;
        rows.iter().map(|row| decode_json(row.get(0))).collect()
    }

    fn outbox_items(
        &self,
        keep: &mut dyn FnMut(&OutboxItem) -> bool,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out = Vec::new();
        for bytes in self.all("SELECT item FROM outbox ORDER BY created_at DESC, id DESC")? {
            let item: OutboxItem = decode_json(&bytes)?;
            if keep(&item) {
                out.push(item);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn api_key(&self, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError> {
        self.one(
            "SELECT record FROM api_keys WHERE key_hash = $1",
            &key_hash.0.as_slice(),
        )?
        .map(|v| decode_json(&v))
        .transpose()
    }

    fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.writes()?.execute(
            "INSERT INTO api_keys (key_hash, record) VALUES ($1, $2)
             ON CONFLICT (key_hash) DO UPDATE SET record = EXCLUDED.record",
            &[&key.key_hash.0.as_slice(), &encode_json(key)?],
        )?;
        Ok(())
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.all("SELECT record FROM api_keys ORDER BY key_hash")?
            .iter()
            .map(|v| decode_json(v))
            .collect()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.one("SELECT value FROM meta WHERE key = $1", &key)
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut w = self.writes()?;
        w.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )?;
        w.tell(self.origin, Change::Meta(key.to_owned()));
        Ok(())
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = block_on(
            self.reads()
                .query("SELECT key, value FROM meta ORDER BY key", &[]),
        )
        .map_err(db)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    fn metadata_entries(&self) -> Result<Vec<String>, StoreError> {
        let rows = block_on(
            self.reads()
                .query("SELECT text FROM metadata ORDER BY hash", &[]),
        )
        .map_err(db)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Each kind in turn, `budget` rows at a time: a step that removed a full budget of any
    /// kind says to go on.
    fn prune(
        &self,
        rules: &Retention,
        now: u64,
        _from: &PruneCursor,
        budget: usize,
        dry_run: bool,
    ) -> Result<PruneStep, StoreError> {
        let unpaid = self.prune_rows(
            "invoices",
            "payment_hash",
            "SELECT payment_hash FROM invoices WHERE status = 'expired' AND expires_at <= $1",
            int(now.saturating_sub(rules.unpaid)),
            budget,
            dry_run,
        )?;
        let paid = match rules.paid {
            Some(keep) => self.prune_rows(
                "invoices",
                "payment_hash",
                "SELECT payment_hash FROM invoices WHERE status = 'paid' AND paid_at <= $1",
                int(now.saturating_sub(keep)),
                budget,
                dry_run,
            )?,
            None => 0,
        };
        let events = self.prune_rows(
            "outbox",
            "id",
            "SELECT id FROM outbox WHERE state = 'delivered' AND at <= $1",
            int(rules.events_until(now)),
            budget,
            dry_run,
        )?;
        let dead_letters = self.prune_rows(
            "outbox",
            "id",
            "SELECT id FROM outbox WHERE state = 'dead' AND at <= $1",
            int(rules.dead_letters_until(now)),
            budget,
            dry_run,
        )?;
        let pruned = Pruned {
            unpaid_invoices: unpaid,
            paid_invoices: paid,
            events,
            dead_letters,
        };
        let full = [unpaid, paid, events, dead_letters]
            .iter()
            .any(|n| *n >= budget as u64);
        Ok(PruneStep {
            pruned,
            next: (full && !dry_run).then(PruneCursor::default),
        })
    }

    /// Claims up to `limit` due events for this process until `hold_until`: no other process
    /// takes them meanwhile (rows another is claiming right now are skipped, not waited for).
    /// Committed at once, on the read connection, outside any group.
    fn claim_due(
        &self,
        now: u64,
        hold_until: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = block_on(self.reads_outside_group().query(
            "UPDATE outbox SET claimed_until = $2 WHERE id IN (
                 SELECT id FROM outbox
                 WHERE state = 'pending' AND at <= $1 AND claimed_until <= $1
                 ORDER BY at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING at, id, item",
            &[&int(now), &int(hold_until), &int(limit as u64)],
        ))
        .map_err(db)?;
        let mut due: Vec<(i64, Vec<u8>, OutboxItem)> = rows
            .iter()
            .map(|row| Ok((row.get(0), row.get(1), decode_json(row.get(2))?)))
            .collect::<Result<_, StoreError>>()?;
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(due.into_iter().map(|(_, _, item)| item).collect())
    }

    fn hold_claims(&self, ids: &[EventId], hold_until: u64) -> Result<(), StoreError> {
        let ids: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
        block_on(self.reads_outside_group().execute(
            "UPDATE outbox SET claimed_until = $2 WHERE id = ANY($1) AND state = 'pending'",
            &[&ids, &int(hold_until)],
        ))
        .map_err(db)?;
        Ok(())
    }

    /// One statement, atomic under the row's lock, committed at once.
    fn next_in_sequence(&self, name: &str, at_least: u64) -> Result<Option<u64>, StoreError> {
        let row = block_on(self.reads_outside_group().query_one(
            "INSERT INTO sequences (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = greatest(sequences.value + 1, $2)
             RETURNING value",
            &[&name, &int(at_least)],
        ))
        .map_err(db)?;
        Ok(Some(uint(row.get(0))))
    }

    /// Holds `servers_running` in ROW SHARE mode, in a transaction on a session of its own,
    /// for as long as this process lives (PostgreSQL lets go of it when the session ends, a
    /// crash included; a lost session is claimed again): any number of servers, no restore
    /// while one runs, and no other role can take part (locking a table needs rights on it).
    /// The transaction only locks a table: it has no transaction ID and no snapshot, so it
    /// holds back no vacuum.
    fn claim_for_server(&self) -> Result<(), StoreError> {
        let (target, connector) = (self.target.clone(), self.connector.clone());
        let session = block_on(
            self.runtime
                .spawn(async move { claim_session(&target, connector).await }),
        )
        .map_err(|e| StoreError::Io(format!("database: {e}")))??;
        let (target, connector) = (self.target.clone(), self.connector.clone());
        self.runtime
            .spawn(async move { hold_claim(session, target, connector).await });
        if let Ok(status) = block_on(self.reads().query_one(
            "SELECT has_database_privilege('public', current_database(), 'CONNECT')",
            &[],
        )) {
            if status.get::<_, bool>(0) {
                tracing::warn!("{PUBLIC_ACCESS_ADVICE}");
            }
        }
        Ok(())
    }

    fn answers_in_memory(&self) -> bool {
        false
    }

    /// Commits the group's transaction: everything written since the last flush becomes
    /// durable at once, or, if any of it failed, none of it does and the caller is told.
    /// Inserts refused for a payment hash already stored are the exception (see `Flushed`).
    fn flush(&self) -> Result<Flushed, StoreError> {
        let mut writer = self.writer_connection();
        if writer.open.as_ref().is_none_or(|group| group.held) {
            return Ok(Flushed::default());
        }
        let Some(group) = writer.open.take() else {
            return Ok(Flushed::default());
        };
        // Whoever sent these ahead and never asked hears nothing more of them.
        writer.unclaimed.clear();
        *self.group_thread() = None;
        if group.aborted {
            let _ = block_on(writer.client.batch_execute("ROLLBACK"));
            return Err(StoreError::Io(
                "a write in this group failed, so the group was rolled back".into(),
            ));
        }
        let flushed = Flushed {
            refused: group.refused,
        };
        if group.told.is_empty() {
            return block_on(writer.client.batch_execute("COMMIT"))
                .map_err(db)
                .map(|()| flushed);
        }
        // The notifications go out with the commit (PostgreSQL sends them only if it
        // commits), sent in the same round trip.
        let sealed: Vec<String> = group
            .told
            .iter()
            .map(|line| self.seal().seal(line))
            .collect();
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&changes::CHANNEL, Type::TEXT), (&sealed, Type::TEXT_ARRAY)];
        let notify = writer.client.execute_typed(
            "SELECT pg_notify($1, line) FROM unnest($2::text[]) AS line",
            &params,
        );
        let commit = writer.client.batch_execute("COMMIT");
        let (notified, committed) = block_on(futures_util::future::join(notify, commit));
        // A failed notify aborts the transaction, and PostgreSQL then answers COMMIT with a
        // rollback, not an error: the notify's own outcome says whether anything was kept.
        notified.map_err(db)?;
        committed.map_err(db)?;
        Ok(flushed)
    }
}

/// The key that seals what instances tell each other: made by the first instance, kept in
/// `meta`, where only rayo's role can read it.
async fn seal_key(client: &Client) -> Result<[u8; 32], StoreError> {
    use crate::clock::Random;
    let mut fresh = [0u8; 32];
    crate::clock::OsRandom.fill(&mut fresh);
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&SEAL_KEY, &fresh.as_slice()],
        )
        .await
        .map_err(db)?;
    let row = client
        .query_one("SELECT value FROM meta WHERE key = $1", &[&SEAL_KEY])
        .await
        .map_err(db)?;
    <[u8; 32]>::try_from(row.get::<_, Vec<u8>>(0).as_slice())
        .map_err(|_| StoreError::Corrupt(format!("meta {SEAL_KEY} is not a 32-byte key")))
}

fn lock_not_available(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// A session holding `servers_running` for this server (see `claim_for_server`).
async fn claim_session(
    target: &tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
) -> Result<session::Session, StoreError> {
    let session = session::open(target, connector, None).await?;
    let claimed = session
        .client
        .batch_execute(
            "SET application_name = 'rayo server';
             BEGIN; LOCK TABLE servers_running IN ROW SHARE MODE NOWAIT",
        )
        .await;
    match claimed {
        Ok(()) => Ok(session),
        Err(e) if lock_not_available(&e) => Err(StoreError::Locked(
            "a restore is running on this database: start the server once it is done".into(),
        )),
        Err(e) => Err(db(e)),
    }
}

/// Claims the database again whenever the claim's session is lost, for as long as the
/// store's runtime runs.
async fn hold_claim(
    mut session: session::Session,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
) {
    let mut backoff = crate::retry::Backoff::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(10),
    );
    loop {
        let _ = (&mut session.ended).await;
        tracing::warn!("lost the session that says this server runs on the database");
        loop {
            tokio::time::sleep(backoff.next_delay(&crate::clock::OsRandom)).await;
            match claim_session(&target, connector.clone()).await {
                Ok(again) => {
                    session = again;
                    backoff.reset();
                    tracing::info!("claimed the database again");
                    break;
                }
                Err(e) => tracing::error!(error = %e, "could not claim the database again"),
            }
        }
    }
}

/// A ledger step's statements, in the group's transaction (see `commit_transitions`), and
/// what to tell the other processes if it stands.
fn apply_step(
    w: &mut WriteGuard<'_>,
    step: &Transitions,
) -> Result<(usize, Vec<Change>), StoreError> {
    let mut told = Vec::new();
    let mut within: HashMap<Hash32, InvoiceRecord> = HashMap::new();
    for record in &step.invoices {
        let stored = match within.remove(&record.payment_hash) {
            Some(earlier) => earlier,
            None => {
                let found = block_on(w.client().query_opt(
                    "SELECT record FROM invoices WHERE payment_hash = $1 FOR UPDATE",
                    &[&record.payment_hash.0.as_slice()],
                ));
                let row = w.check(found)?.ok_or_else(|| {
                    StoreError::NotFound(format!("invoice {}", record.payment_hash))
                })?;
                invoice::decode(row.get(0))?
            }
        };
        if next_status(stored.status, record.status)?.is_none() {
            return Err(StoreError::Transition {
                from: stored.status.name(),
                to: record.status.name(),
            });
        }
        w.execute(
            "UPDATE invoices SET status = $2, expires_at = $3, paid_at = $4, record = $5
             WHERE payment_hash = $1",
            &[
                &record.payment_hash.0.as_slice(),
                &record.status.name(),
                &int(record.expires_at),
                &paid_at(record),
                &invoice::encode(record)?,
            ],
        )?;
        told.push(Change::Moved {
            payment_hash: record.payment_hash,
            user: record.user.clone(),
            payer: record.payer,
            was_pending: stored.is_pending(),
        });
        within.insert(record.payment_hash, record.clone());
    }
    let mut queued = 0;
    for item in &step.events {
        let (state, at) = outbox_state(item);
        queued += w.execute(
            "INSERT INTO outbox (id, state, at, created_at, item)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &item.id.0.as_slice(),
                &state,
                &int(at),
                &int(item.created_at),
                &encode_json(item)?,
            ],
        )? as usize;
    }
    for (key, value) in &step.meta {
        w.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key.as_str(), &value.as_slice()],
        )?;
    }
    if queued > 0 {
        told.push(Change::Queued);
    }
    Ok((queued, told))
}

#[cfg(test)]
mod shared_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::user;

    fn store() -> Option<PgStore> {
        Some(PgStore::open(&testing::database()?).unwrap())
    }

    fn seen_elsewhere(store: &PgStore) -> usize {
        std::thread::scope(|scope| scope.spawn(|| store.users().unwrap().len()).join().unwrap())
    }

    #[test]
    fn a_group_of_writes_is_seen_by_others_only_once_flushed() {
        let Some(store) = store() else { return };
        store.put_user(&user("alice")).unwrap();
        store.put_user(&user("bob")).unwrap();
        assert_eq!(
            store.users().unwrap().len(),
            2,
            "the writer sees its own group"
        );
        assert_eq!(
            seen_elsewhere(&store),
            0,
            "nobody else sees it before the commit"
        );
        store.flush().unwrap();
        assert_eq!(seen_elsewhere(&store), 2);
    }

    fn encrypted(store: &PgStore) -> bool {
        block_on(store.reads().query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        ))
        .unwrap()
        .get(0)
    }

    fn refusal(url: &str) -> String {
        match PgStore::open(url) {
            Ok(_) => panic!("{url} connected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tls_modes_check_the_server_as_libpq_defines_them() {
        let Some(db) = testing::tls_database() else {
            return;
        };
        let ca = format!("sslrootcert={}", db.ca.display());
        // verify-full: the chain to the given CA, and the name.
        let store =
            PgStore::open(&db.url("localhost", &format!("sslmode=verify-full {ca}"))).unwrap();
        assert!(encrypted(&store));
        let said = refusal(&db.url("127.0.0.1", &format!("sslmode=verify-full {ca}")));
        assert!(said.contains("not valid for name"), "{said}");
        // ... against the system's roots, which do not know this CA.
        let said = refusal(&db.url("localhost", "sslmode=verify-full"));
        assert!(said.contains("UnknownIssuer"), "{said}");
        // verify-ca: the chain, whatever the name.
        let store =
            PgStore::open(&db.url("127.0.0.1", &format!("sslmode=verify-ca {ca}"))).unwrap();
        assert!(encrypted(&store));
        // require: encrypted, nothing checked (libpq's meaning).
        let store = PgStore::open(&db.url("127.0.0.1", "sslmode=require")).unwrap();
        assert!(encrypted(&store));
        // disable: this server takes TCP connections over TLS only.
        let said = refusal(&db.url("127.0.0.1", "sslmode=disable"));
        assert!(said.contains("no pg_hba.conf entry"), "{said}");
        // A URL says the same.
        let url = format!(
            "postgres://rayo@localhost:{}/{}?sslmode=verify-full&sslrootcert={}",
            db.port,
            db.name,
            db.ca.display()
        );
        assert!(encrypted(&PgStore::open(&url).unwrap()));
    }

    /// Waits until the store's connections have noticed they were closed (their tasks read the
    /// server's goodbye in the background).
    fn settle(store: &PgStore) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let closed = || {
            store.reads.read().unwrap().is_closed()
                && store.writer.lock().unwrap().client.is_closed()
        };
        while !closed() {
            assert!(
                std::time::Instant::now() < deadline,
                "the connections stayed open"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn lost_connections_are_made_again_and_a_group_they_held_is_reported_lost() {
        let Some(url) = testing::database() else {
            return;
        };
        let store = PgStore::open(&url).unwrap();
        store.claim_for_server().unwrap();
        store.put_user(&user("alice")).unwrap();
        store.flush().unwrap();

        // Between groups: the next read and write just work, on new connections.
        testing::drop_connections(&url);
        settle(&store);
        assert_eq!(seen_elsewhere(&store), 1);
        store.put_user(&user("bob")).unwrap();
        store.flush().unwrap();
        assert_eq!(seen_elsewhere(&store), 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !PgStore::status(&url).unwrap().server_running {
            assert!(
                std::time::Instant::now() < deadline,
                "the server's claim was made again"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }

        // In the middle of a group: what it held is gone, and its flush says so.
        store.put_user(&user("carol")).unwrap();
        testing::drop_connections(&url);
        settle(&store);
        store.put_user(&user("dave")).unwrap();
        assert!(matches!(store.flush(), Err(StoreError::Io(_))));
        assert_eq!(seen_elsewhere(&store), 2);
        store.put_user(&user("erin")).unwrap();
        store.flush().unwrap();
        assert_eq!(seen_elsewhere(&store), 3);
    }

    #[test]
    fn inserts_sent_ahead_are_seen_by_the_group_and_a_stored_hash_is_refused_alone() {
        let Some(store) = store() else { return };
        let first = crate::store::contract::invoice("alice", 1);
        store.insert_invoice(&first).unwrap();
        store
            .insert_invoice(&crate::store::contract::invoice("alice", 2))
            .unwrap();
        // Read on the writing thread, after the inserts: their answers are read first.
        assert_eq!(
            store.invoice(&first.payment_hash).unwrap(),
            Some(first.clone())
        );
        assert_eq!(store.sent_ahead().len(), 2);
        assert_eq!(store.flush().unwrap(), Flushed::default());

        store.put_user(&user("bob")).unwrap();
        let mut copy = first.clone();
        copy.user = Username::parse("mallory").unwrap();
        store.insert_invoice(&copy).unwrap();
        let copied = store.sent_ahead();
        store
            .insert_invoice(&crate::store::contract::invoice("alice", 3))
            .unwrap();
        let third = store.sent_ahead();
        let flushed = store.flush().unwrap();
        assert!(matches!(
            flushed.verdict(&copied),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(flushed.verdict(&third), Ok(()));
        assert_eq!(seen_elsewhere(&store), 1, "the rest of the group was kept");
        assert_eq!(
            store.invoice(&first.payment_hash).unwrap(),
            Some(first),
            "the stored invoice is untouched"
        );
    }

    #[test]
    fn a_write_the_database_refuses_takes_its_whole_group_with_it() {
        let Some(store) = store() else { return };
        store.put_user(&user("alice")).unwrap();
        // PostgreSQL text cannot hold a NUL: the statement fails, and the transaction with it.
        assert!(store.put_meta("bad\0key", b"v").is_err());
        assert!(
            matches!(store.flush(), Err(StoreError::Io(_))),
            "the flush reports the failed group: nobody is told their write is durable"
        );
        assert_eq!(seen_elsewhere(&store), 0);
        // The next group starts clean.
        store.put_user(&user("bob")).unwrap();
        store.flush().unwrap();
        assert_eq!(seen_elsewhere(&store), 1);
    }
}
