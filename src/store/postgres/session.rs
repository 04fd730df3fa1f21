//! One database session: a tokio-postgres client and the task that drives its connection,
//! which also hands on the notifications the session receives (`LISTEN`) and says when the
//! session ended, so that what depends on it (a lease, a listener) knows at once.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, Connection, Notification};

use super::tls;
use super::{db, StoreError};

/// Where a listening session hands its notifications: a bounded queue, so that lines
/// anyone can send (any role may `NOTIFY`) cost a bounded amount of memory; what does not fit
/// is counted as dropped, and the listener reads everything again instead.
#[derive(Clone)]
pub struct Notices {
    pub queue: mpsc::Sender<Notification>,
    pub dropped: Arc<AtomicU64>,
}

/// A connected session.
pub struct Session {
    pub client: Client,
    /// Resolves when the connection ended (closed by either side, or broken).
    pub ended: oneshot::Receiver<()>,
}

/// Connects to `target`; the connection is driven by a task on the current runtime.
/// Notifications go to `notices`, if given.
pub async fn open(
    target: &tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    notices: Option<Notices>,
) -> Result<Session, StoreError> {
    let (done, ended) = oneshot::channel();
    let client = match connector {
        Some(tls) => {
            let (client, connection) = tokio_postgres::connect(&target.config, tls)
                .await
                .map_err(db)?;
            tokio::spawn(drive(connection, notices, done));
            client
        }
        None => {
            let (client, connection) =
                tokio_postgres::connect(&target.config, tokio_postgres::NoTls)
                    .await
                    .map_err(db)?;
            tokio::spawn(drive(connection, notices, done));
            client
        }
    };
    Ok(Session { client, ended })
}

async fn drive<S, T>(
    mut connection: Connection<S, T>,
    notices: Option<Notices>,
    done: oneshot::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(notice))) => {
                if let Some(notices) = &notices {
                    if let Err(mpsc::error::TrySendError::Full(_)) = notices.queue.try_send(notice)
                    {
                        notices.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::error!(error = %e, "the database connection ended");
                break;
            }
            None => break,
        }
    }
    let _ = done.send(());
}
