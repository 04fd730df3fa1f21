//! Group commit on PostgreSQL: the write connection and the transaction that the writes of one
//! group share, inserts sent ahead (pipelined) and the answers read back, the thread writing a
//! group reading through the same connection, and the flush that commits the group, or rolls
//! it back and says so. Every wait on the database is `block_on` here: the store is
//! synchronous, its callers are on the store's writer thread or the blocking pool.

use super::*;

/// The write connection, and the transaction the writes since the last flush are in. The
/// store's writer applies a group of writes and then flushes: here the group shares one
/// transaction, and the flush commits it, so a group costs one commit (one WAL flush), not
/// one per write.
pub(super) struct Writer {
    pub(super) client: Arc<Client>,
    pub(super) open: Option<OpenGroup>,
    /// Inserts sent ahead that no write has claimed yet (see `Store::sent_ahead`).
    pub(super) unclaimed: Vec<SentAhead>,
    /// The number of the next insert sent ahead.
    pub(super) next_insert: u64,
}

/// The thread writing into a group reads through the same connection, so it sees what the
/// group wrote (a ledger step reads the invoice a callback just stored): see `group_thread`.
pub(super) struct OpenGroup {
    /// A statement failed outside a savepoint: the transaction can only roll back.
    pub(super) aborted: bool,
    /// Opened by `replace`, which commits it itself.
    pub(super) held: bool,
    /// What the group tells the other processes when it commits (see `changes`).
    pub(super) told: Vec<String>,
    /// Inserts sent ahead, their answers not yet read (see `insert_invoice`).
    pub(super) sent: Vec<SentInsert>,
    /// Inserts that found their payment hash already stored: left out, the group goes on.
    pub(super) refused: Vec<SentAhead>,
}

impl OpenGroup {
    pub(super) fn new(held: bool) -> Self {
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
    pub(super) fn settle(&mut self) {
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

pub(super) type Pending<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An insert whose statement is on its way (or answered already).
pub(super) struct SentInsert {
    pub(super) ticket: SentAhead,
    /// What to tell the other processes if it is kept.
    pub(super) told: Option<String>,
    pub(super) answer: Answer,
}

pub(super) enum Answer {
    Waiting(Pending<Result<u64, tokio_postgres::Error>>),
    Done(Result<u64, tokio_postgres::Error>),
}

impl Writer {
    pub(super) fn settle(&mut self) {
        if let Some(group) = self.open.as_mut() {
            group.settle();
        }
    }
}

/// The write connection inside the group's transaction.
pub(super) struct WriteGuard<'a>(pub(super) std::sync::MutexGuard<'a, Writer>);

impl WriteGuard<'_> {
    pub(super) fn client(&self) -> &Client {
        &self.0.client
    }

    /// Marks the group failed when `outcome` is a database error.
    pub(super) fn check<T>(
        &mut self,
        outcome: Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        if outcome.is_err() {
            if let Some(group) = self.0.open.as_mut() {
                group.aborted = true;
            }
        }
        outcome.map_err(db)
    }

    /// Tells the other processes about `change` when the group commits.
    pub(super) fn tell(&mut self, origin: Sender, change: Change) {
        if let Some(group) = self.0.open.as_mut() {
            group.told.push(change.encode(origin));
        }
    }

    pub(super) fn execute(
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
pub(super) enum ReadClient<'a> {
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

/// A new connection to `target`, driven by `runtime`. Connecting needs the runtime's reactor:
/// it runs there, and any thread (one of an async runtime too) waits for it.
pub(super) fn connect(
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
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
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

impl PgStore {
    /// The write connection, connected again first if the database closed it. Writes of a
    /// group the lost connection held are gone: the group is marked failed, so its flush says
    /// so.
    pub(super) fn writer_connection(&self) -> std::sync::MutexGuard<'_, Writer> {
        let mut writer = self.writer_connection_ahead();
        writer.settle();
        writer
    }

    /// The write connection, with inserts sent ahead possibly still unanswered: only for
    /// sending another one.
    pub(super) fn writer_connection_ahead(&self) -> std::sync::MutexGuard<'_, Writer> {
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
    pub(super) fn writes(&self) -> Result<WriteGuard<'_>, StoreError> {
        self.open_group(self.writer_connection())
    }

    /// `writes`, without reading the answers to inserts sent ahead first.
    pub(super) fn writes_ahead(&self) -> Result<WriteGuard<'_>, StoreError> {
        self.open_group(self.writer_connection_ahead())
    }

    pub(super) fn open_group<'a>(
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

    pub(super) fn reads(&self) -> ReadClient<'_> {
        let here = std::thread::current().id();
        if *self.group_thread() == Some(here) {
            return ReadClient::Writer(self.writer_connection());
        }
        ReadClient::Shared(self.reads_outside_group())
    }

    /// The shared read connection, even on the thread writing a group: for statements that
    /// must commit on their own, at once.
    pub(super) fn reads_outside_group(&self) -> Arc<Client> {
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

    pub(super) fn group_thread(&self) -> std::sync::MutexGuard<'_, Option<std::thread::ThreadId>> {
        self.group_thread.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Commits the group's transaction: everything written since the last flush becomes
/// durable at once, or, if any of it failed, none of it does and the caller is told.
/// Inserts refused for a payment hash already stored are the exception (see `Flushed`).
pub(super) fn flush(store: &PgStore) -> Result<Flushed, StoreError> {
    let mut writer = store.writer_connection();
    if writer.open.as_ref().is_none_or(|group| group.held) {
        return Ok(Flushed::default());
    }
    let Some(group) = writer.open.take() else {
        return Ok(Flushed::default());
    };
    // Whoever sent these ahead and never asked hears nothing more of them.
    writer.unclaimed.clear();
    *store.group_thread() = None;
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
        .map(|line| store.seal().seal(line))
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
