//! What rayo processes sharing one database coordinate through it: leases (one process does
//! a job at a time, such as watching a backend) and changes (what the others did, as it
//! happens; see `changes`).
//!
//! A lease is a session-level advisory lock held on a session of its own. PostgreSQL lets go
//! of it when that session ends: at once when the holder stops or crashes (its socket closes),
//! and within about 10 s when its host or network goes (TCP keepalives, set below). Others try
//! to take it every `TRY_EVERY`. The holder pings its session and gives the lease up as soon
//! as the session looks lost, so it stops working before anyone else can have started.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::changes::{Change, Origin, CHANNEL};
use super::session::{self, Session};
use super::{tls, StoreError};
use crate::clock::OsRandom;
use crate::retry::Backoff;

/// How often a process that does not hold a lease tries to take it.
pub const TRY_EVERY: Duration = Duration::from_secs(2);
/// How often a lease's session is checked, and how long the check may take.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(4);
/// The first of two keys of every lease's advisory lock ("rayo" in ASCII); the second names
/// the role. Locks with two keys never meet the one-key locks of migrations and servers.
const LEASE_CLASS: i32 = 0x7261_796f;
/// How long `changes` waits for the channel to be listened on.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// Changes waiting for slow subscribers; one that falls further behind resynchronises.
const CHANGES_QUEUE: usize = 4096;

/// The coordination of the processes on one database.
pub struct PgCluster {
    runtime: tokio::runtime::Handle,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    origin: Origin,
    changes: broadcast::Sender<Change>,
    listening: OnceLock<()>,
    /// True once the channel is listened on.
    ready: tokio::sync::watch::Sender<bool>,
}

/// This process holds `role` until the lease is dropped (or its session is lost).
pub struct Lease {
    session: Session,
    role: String,
}

impl Lease {
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Resolves once this process can no longer be sure it holds the lease: its session ended
    /// or stopped answering. The work done under it must stop then.
    pub async fn lost(&mut self) {
        loop {
            tokio::select! {
                _ = &mut self.session.ended => return,
                _ = tokio::time::sleep(PING_EVERY) => {
                    let ping = self.session.client.simple_query("SELECT 1");
                    match tokio::time::timeout(PING_TIMEOUT, ping).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(role = %self.role, error = %e, "the lease's session failed");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(role = %self.role, "the lease's session stopped answering");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The second key of `role`'s advisory lock.
fn lock_key(role: &str) -> i32 {
    let hash = crate::domain::Hash32::sha256(format!("rayo lease {role}").as_bytes());
    i32::from_be_bytes([hash.0[0], hash.0[1], hash.0[2], hash.0[3]])
}

impl PgCluster {
    pub(super) fn new(
        runtime: tokio::runtime::Handle,
        target: tls::Connection,
        connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
        origin: Origin,
    ) -> Self {
        Self {
            runtime,
            target,
            connector,
            origin,
            changes: broadcast::channel(CHANGES_QUEUE).0,
            listening: OnceLock::new(),
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    /// A new session, driven on the store's runtime, whichever runtime waits for it.
    async fn session(
        &self,
        notices: Option<mpsc::UnboundedSender<tokio_postgres::Notification>>,
    ) -> Result<Session, StoreError> {
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
        loop {
            let (notices, mut received) = mpsc::unbounded_channel();
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

    fn pass_on(&self, line: &str) {
        match Change::decode(line) {
            Some((from, _)) if from == self.origin => {}
            Some((_, change)) => {
                let _ = self.changes.send(change);
            }
            None => tracing::debug!("skipped a change this rayo does not know"),
        }
    }

    /// Waits until this process holds `role`, trying every `TRY_EVERY`.
    pub async fn lead(&self, role: &str) -> Lease {
        let key = lock_key(role);
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
                    .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LEASE_CLASS, &key])
                    .await;
                match taken {
                    Ok(row) if row.get::<_, bool>(0) => {
                        return Lease {
                            session,
                            role: role.to_owned(),
                        }
                    }
                    Ok(_) => {
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

/// The roles held right now, and by which session (`rayo db status`).
pub(super) const LEASES_HELD: &str = "
    SELECT substr(a.application_name, 12), coalesce(host(a.client_addr), 'local'), a.pid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1::int::oid
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.application_name LIKE 'rayo lease %'
    ORDER BY 1";

pub(super) fn lease_class() -> i32 {
    LEASE_CLASS
}
