//! The PostgreSQL schema, as numbered migrations embedded in the binary. They are applied at
//! open under an advisory lock, so instances starting together apply each exactly once; an
//! instance refuses a database whose schema is newer than it knows.

use tokio_postgres::Client;

use crate::store::StoreError;

/// Taken while migrating: any number, the same in every rayo ("rayo" in ASCII).
const MIGRATION_LOCK: i64 = 0x7261_796f;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`, applied in one transaction.
const MIGRATIONS: &[&str] = &[
    // 1: the same contract as sled's trees. Records are stored in rayo's own encodings
    // (compact binary invoices, JSON for the rest); the columns beside them are what queries
    // select and order by.
    "
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        record BYTEA NOT NULL
    );
    CREATE TABLE metadata (
        hash BYTEA PRIMARY KEY,
        text TEXT NOT NULL
    );
    CREATE TABLE invoices (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        payment_hash BYTEA PRIMARY KEY,
        username TEXT NOT NULL,
        status TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        paid_at BIGINT,
        record BYTEA NOT NULL
    );
    CREATE INDEX invoices_by_user ON invoices (username, seq);
    CREATE INDEX invoices_pending ON invoices (expires_at, seq) WHERE status = 'pending';
    CREATE INDEX invoices_expired ON invoices (expires_at) WHERE status = 'expired';
    CREATE INDEX invoices_paid ON invoices (paid_at) WHERE status = 'paid';
    CREATE TABLE outbox (
        id BYTEA PRIMARY KEY,
        state TEXT NOT NULL,
        at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        item BYTEA NOT NULL
    );
    CREATE INDEX outbox_by_state ON outbox (state, at, id);
    CREATE TABLE api_keys (
        key_hash BYTEA PRIMARY KEY,
        record BYTEA NOT NULL
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value BYTEA NOT NULL
    );
    ",
    // 2: several instances on one database. A pending event is claimed by one deliverer
    // until `claimed_until` (seconds); numbers that must grow across every instance (Buda's
    // nonce) come from `sequences`.
    "
    ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE sequences (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    ",
];

/// The schema version this rayo writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Io(format!("database: {e}"))
}

/// The schema version of the database (0: none yet).
pub async fn version(client: &Client) -> Result<i32, StoreError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")
        .await
        .map_err(db)?;
    let row = client
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(db)?;
    Ok(row.map_or(0, |row| row.get(0)))
}

/// Brings the schema to `VERSION`, under the advisory lock; refuses a newer one.
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    let outcome = apply(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db);
    let version = outcome?;
    unlocked?;
    Ok(version)
}

async fn apply(client: &mut Client) -> Result<i32, StoreError> {
    let found = version(client).await?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is version {found}, newer than this rayo knows ({VERSION}): \
             run a newer rayo, or restore a backup into an empty database"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = index as i32 + 1;
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute(migration).await.map_err(db)?;
        tx.execute("DELETE FROM schema_version", &[])
            .await
            .map_err(db)?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&to])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(version = to, "applied a database migration");
    }
    Ok(VERSION)
}
