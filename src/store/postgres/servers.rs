//! Which servers run on the database: each holds `servers_running` in ROW SHARE mode in a
//! transaction of its own; a restore needs it alone.

use super::group::block_on;
use super::*;

/// Servers running on the database: the sessions holding `servers_running` (see
/// `claim_for_server`).
pub(super) const SERVERS_RUNNING: &str = "
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'relation' AND granted AND mode = 'RowShareLock'
      AND relation = to_regclass('servers_running')::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// What a server's claiming session is called, before its instance id.
const SERVER_SESSION: &str = "rayo server ";

/// The instances running on the database, by their claiming sessions.
const INSTANCES: &str = "
    SELECT substr(application_name, 13), coalesce(host(client_addr), 'local'),
           extract(epoch FROM backend_start)::bigint
    FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'rayo server %'
    ORDER BY backend_start";

/// The roles held now, by instance.
const HOLDERS: &str = "
    SELECT role, holder FROM leases
    WHERE until >= extract(epoch FROM clock_timestamp())::float8
    ORDER BY role";

/// The instances on the database and who leads which job.
pub(super) fn cluster(store: &PgStore) -> Result<crate::store::ClusterView, StoreError> {
    let reads = store.reads();
    let instances = block_on(reads.query(INSTANCES, &[]))
        .map_err(db)?
        .iter()
        .map(|row| crate::store::Instance {
            id: row.get(0),
            client: row.get(1),
            since: uint(row.get(2)),
        })
        .collect();
    let leases = block_on(reads.query(HOLDERS, &[]))
        .map_err(db)?
        .iter()
        .map(|row| crate::store::LeaseView {
            role: row.get(0),
            holder: row.get(1),
        })
        .collect();
    Ok(crate::store::ClusterView {
        this: format!("{:016x}", store.origin.0),
        instances,
        leases,
    })
}

pub(super) fn lock_not_available(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// A session holding `servers_running` for this server (see `claim_for_server`).
pub(super) async fn claim_session(
    target: &tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    origin: changes::Sender,
) -> Result<session::Session, StoreError> {
    let session = session::open(target, connector, None).await?;
    // The session's name says which instance it is: the console lists them by it.
    let claimed = session
        .client
        .batch_execute(&format!(
            "SET application_name = '{SERVER_SESSION}{:016x}';
             BEGIN; LOCK TABLE servers_running IN ROW SHARE MODE NOWAIT",
            origin.0
        ))
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
pub(super) async fn hold_claim(
    mut session: session::Session,
    target: tls::Connection,
    connector: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    origin: changes::Sender,
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
            match claim_session(&target, connector.clone(), origin).await {
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

/// Holds `servers_running` in ROW SHARE mode, in a transaction on a session of its own,
/// for as long as this process lives (PostgreSQL lets go of it when the session ends, a
/// crash included; a lost session is claimed again): any number of servers, no restore
/// while one runs, and no other role can take part (locking a table needs rights on it).
/// The transaction only locks a table: it has no transaction ID and no snapshot, so it
/// holds back no vacuum.
pub(super) fn claim_for_server(store: &PgStore) -> Result<(), StoreError> {
    let (target, connector, origin) = (store.target.clone(), store.connector.clone(), store.origin);
    let session = block_on(
        store
            .runtime()
            .spawn(async move { claim_session(&target, connector, origin).await }),
    )
    .map_err(|e| StoreError::Io(format!("database: {e}")))??;
    let (target, connector) = (store.target.clone(), store.connector.clone());
    store
        .runtime()
        .spawn(async move { hold_claim(session, target, connector, origin).await });
    if let Ok(status) = block_on(store.reads().query_one(
        "SELECT has_database_privilege('public', current_database(), 'CONNECT')",
        &[],
    )) {
        if status.get::<_, bool>(0) {
            tracing::warn!("{PUBLIC_ACCESS_ADVICE}");
        }
    }
    Ok(())
}
