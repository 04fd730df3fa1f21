//! What rayo processes sharing one database coordinate through it: leases (one process does
//! a job at a time, such as watching a backend) and changes (what the others did, as it
//! happens; see `changes`).
//!
//! A lease is a row of `leases` that names its holder until a time by the database's clock.
//! Only rayo's role can write that table, so no other role on the database can take, hold or
//! block a lease (an advisory lock, which any session can take, could). The holder renews it
//! every `RENEW_EVERY` for `LEASE_SECONDS`, and gives it up as soon as a renewal fails or is
//! late, well before it runs out, so it stops working before anyone else can have started.
//! Others try to take it every `TRY_EVERY`; one whose holder stopped is let go at once, one
//! whose holder vanished after `LEASE_SECONDS`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::changes::{Change, Seal, Sender, CHANNEL};
use super::session::{self, Notices, Session};
use super::{tls, StoreError};
use crate::clock::OsRandom;
use crate::retry::Backoff;

/// How often a process that does not hold a lease tries to take it.
pub const TRY_EVERY: Duration = Duration::from_secs(2);
/// How long a lease lasts past its last renewal, by the database's clock.
const LEASE_SECONDS: f64 = 10.0;
/// How often the holder renews it, and how long a renewal may take: a holder that has not
/// renewed for `RENEW_EVERY + RENEW_TIMEOUT` (5 s) stops, before the lease can run out.
const RENEW_EVERY: Duration = Duration::from_secs(2);
const RENEW_TIMEOUT: Duration = Duration::from_secs(3);
/// Takes `role` for `holder` if it is free, run out, or already `holder`'s; renews it then.
const TAKE: &str = "
    INSERT INTO leases (role, holder, client, pid, until)
    VALUES ($1, $2, coalesce(host(inet_client_addr()), 'local'), pg_backend_pid(),
            extract(epoch FROM clock_timestamp())::float8 + $3)
    ON CONFLICT (role) DO UPDATE SET holder = EXCLUDED.holder, client = EXCLUDED.client,
        pid = EXCLUDED.pid, until = EXCLUDED.until
    WHERE leases.holder = EXCLUDED.holder
       OR leases.until < extract(epoch FROM clock_timestamp())::float8
    RETURNING 1";
const RELEASE: &str = "DELETE FROM leases WHERE role = $1 AND holder = $2";
/// How long `changes` waits for the channel to be listened on.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// Changes waiting for slow subscribers; one that falls further behind resynchronises.
const CHANGES_QUEUE: usize = 4096;
/// Notifications waiting to be opened; past that they are dropped and everything is read again.
const NOTICES_QUEUE: usize = 1024;
/// Reading everything again costs a scan of the unpaid invoices: at most this often when
/// notifications were dropped (a flood of lines anyone can send).
const RESYNC_AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// The coordination of the processes on one database.
pub struct PgCoordination {
    runtime: tokio::runtime::Handle,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    origin: Sender,
    seal: Seal,
    changes: broadcast::Sender<Change>,
    listening: OnceLock<()>,
    /// Lines that did not open, logged at most once a minute.
    forged: crate::log_throttle::LogThrottle,
    /// True once the channel is listened on.
    ready: tokio::sync::watch::Sender<bool>,
}

/// This process holds `role` until the lease is dropped (or cannot be renewed).
pub struct Lease {
    /// Taken by `drop`, to let the lease go at once.
    session: Option<Session>,
    role: String,
    holder: String,
    runtime: tokio::runtime::Handle,
    /// To let go on a new session when the lease's own was lost.
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

#[async_trait::async_trait]
impl crate::store::Lease for Lease {
    fn role(&self) -> &str {
        &self.role
    }

    /// Resolves once this process can no longer be sure it holds the lease: a renewal failed,
    /// was refused or took too long, or the session ended. The work done under it must stop
    /// then.
    async fn lost(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        loop {
            tokio::select! {
                _ = &mut session.ended => return,
                _ = tokio::time::sleep(RENEW_EVERY) => {
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                        [&self.role, &self.holder, &LEASE_SECONDS];
                    let renewal = session.client.query_opt(TAKE, &params);
                    match tokio::time::timeout(RENEW_TIMEOUT, renewal).await {
                        Ok(Ok(Some(_))) => {}
                        Ok(Ok(None)) => {
                            tracing::warn!(role = %self.role, "another instance holds the lease now");
                            return;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(role = %self.role, error = %e, "could not renew the lease");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(role = %self.role, "renewing the lease took too long");
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    /// Lets the lease go at once (on a new session if its own was lost), so that another
    /// instance takes over without waiting for it to run out.
    fn drop(&mut self) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        let (role, holder) = (self.role.clone(), self.holder.clone());
        let (target, connector) = (self.target.clone(), self.connector.clone());
        self.runtime.spawn(async move {
            if session.client.is_closed() {
                match session::open(&target, connector, None).await {
                    Ok(fresh) => session = fresh,
                    Err(_) => return,
                }
            }
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&role, &holder];
            let release = session.client.execute(RELEASE, &params);
            let _ = tokio::time::timeout(RENEW_TIMEOUT, release).await;
        });
    }
}

impl PgCoordination {
    pub(super) fn new(
        runtime: tokio::runtime::Handle,
        target: tls::Connection,
        connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
        origin: Sender,
        seal: Seal,
    ) -> Self {
        Self {
            runtime,
            target,
            connector,
            origin,
            seal,
            changes: broadcast::channel(CHANGES_QUEUE).0,
            listening: OnceLock::new(),
            forged: crate::log_throttle::LogThrottle::new(Duration::from_secs(60)),
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    /// A new session, driven on the store's runtime, whichever runtime waits for it.
    async fn session(&self, notices: Option<Notices>) -> Result<Session, StoreError> {
        let (target, connector) = (self.target.clone(), self.connector.clone());
        self.runtime
            .spawn(async move { session::open(&target, connector, notices).await })
            .await
            .map_err(|e| StoreError::Io(format!("database: {e}")))?
    }

    /// Changes the other processes make from now on; returns once they are listened for (or
    /// after `LISTEN_WAIT`, the listener trying on). The first call starts listening.
    pub async fn changes(self: &Arc<Self>) -> broadcast::Receiver<Change> {
        let receiver = self.changes.subscribe();
        self.listening.get_or_init(|| {
            let me = self.clone();
            self.runtime.spawn(async move { me.listen().await });
        });
        let mut ready = self.ready.subscribe();
        if tokio::time::timeout(LISTEN_WAIT, ready.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            tracing::warn!("not yet listening to the other instances; trying on");
        }
        receiver
    }

    /// Listens on the channel for as long as the process runs, connecting again (and telling
    /// subscribers to resynchronise) whenever the session is lost.
    async fn listen(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut dropped_seen = 0;
        let mut resynced_at: Option<tokio::time::Instant> = None;
        loop {
            let (queue, mut received) = mpsc::channel(NOTICES_QUEUE);
            let notices = Notices {
                queue,
                dropped: dropped.clone(),
            };
            let listening = match self.session(Some(notices)).await {
                Ok(session) => match session
                    .client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                {
                    Ok(()) => Ok(session),
                    Err(e) => Err(super::db(e)),
                },
                Err(e) => Err(e),
            };
            match listening {
                Ok(mut session) => {
                    // Listening again: whatever was said meanwhile was missed.
                    if self.ready.send_replace(true) {
                        tracing::info!("listening to the other instances again");
                        let _ = self.changes.send(Change::Resync);
                    }
                    backoff.reset();
                    loop {
                        tokio::select! {
                            notice = received.recv() => match notice {
                                Some(notice) => self.pass_on(notice.payload()),
                                None => break,
                            },
                            _ = &mut session.ended => break,
                        }
                        let now_dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
                        let due = resynced_at.is_none_or(|at| at.elapsed() >= RESYNC_AT_MOST_EVERY);
                        if now_dropped != dropped_seen && due {
                            tracing::warn!(dropped = now_dropped - dropped_seen, "notifications arrived faster than they could be read; reading everything again");
                            dropped_seen = now_dropped;
                            resynced_at = Some(tokio::time::Instant::now());
                            let _ = self.changes.send(Change::Resync);
                        }
                    }
                    while let Ok(notice) = received.try_recv() {
                        self.pass_on(notice.payload());
                    }
                    tracing::warn!("lost the session listening to the other instances");
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not listen to the other instances");
                }
            }
            tokio::time::sleep(backoff.next_delay(&OsRandom)).await;
        }
    }

    fn pass_on(&self, payload: &str) {
        let Some(line) = self.seal.open(payload) else {
            if let Some(held_back) = self.forged.admit() {
                tracing::warn!(held_back, "dropped a notification on rayo's channel that was not sealed by rayo (another role on the database sent it)");
            }
            return;
        };
        match Change::decode(&line) {
            Some((from, _)) if from == self.origin => {}
            Some((_, change)) => {
                let _ = self.changes.send(change);
            }
            None => tracing::debug!("skipped a change this rayo does not know"),
        }
    }

    /// Waits until this process holds `role`, trying every `TRY_EVERY`.
    pub async fn lead(&self, role: &str) -> Lease {
        let holder = format!("{:016x}", self.origin.0);
        let mut announced = false;
        loop {
            let session = match self.session(None).await {
                Ok(session) => session,
                Err(e) => {
                    tracing::warn!(role, error = %e, "could not open a session to take a lease");
                    tokio::time::sleep(TRY_EVERY).await;
                    continue;
                }
            };
            // Names the session for `rayo db status`, and has the server notice a vanished
            // holder within about 10 s (a crashed process's socket closes at once anyway).
            let setup = format!(
                "SET application_name = 'rayo lease {role}'; SET tcp_keepalives_idle = 4; \
                 SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 2"
            );
            if let Err(e) = session.client.batch_execute(&setup).await {
                tracing::warn!(role, error = %e, "could not set up a lease's session");
                tokio::time::sleep(TRY_EVERY).await;
                continue;
            }
            loop {
                let taken = session
                    .client
                    .query_opt(TAKE, &[&role, &holder, &LEASE_SECONDS])
                    .await;
                match taken {
                    Ok(Some(_)) => {
                        return Lease {
                            session: Some(session),
                            role: role.to_owned(),
                            holder,
                            runtime: self.runtime.clone(),
                            target: self.target.clone(),
                            connector: self.connector.clone(),
                        }
                    }
                    Ok(None) => {
                        if !announced {
                            tracing::info!(role, "another instance leads; standing by");
                            announced = true;
                        }
                        tokio::time::sleep(TRY_EVERY).await;
                    }
                    Err(e) => {
                        tracing::warn!(role, error = %e, "lost the session trying to take a lease");
                        break;
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::store::Coordination for Arc<PgCoordination> {
    async fn lead(&self, role: &str) -> Box<dyn crate::store::Lease> {
        Box::new(PgCoordination::lead(self, role).await)
    }

    async fn changes(&self) -> broadcast::Receiver<Change> {
        PgCoordination::changes(self).await
    }
}

/// The roles held right now, and by which session (`rayo db status`).
pub(super) const LEASES_HELD: &str = "
    SELECT role, client, pid FROM leases
    WHERE until >= extract(epoch FROM clock_timestamp())::float8
    ORDER BY role";
