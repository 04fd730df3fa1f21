//! The PostgreSQL schema, as numbered migrations embedded in the binary. They are applied at
//! open in one transaction that holds `schema_version` alone, so instances starting together
//! apply each exactly once, and no other role on the database (which has no rights on that
//! table) can hold them up; an instance refuses a database whose schema is newer than it knows.

use tokio_postgres::Client;

use crate::store::StoreError;

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
    // 3: coordination only rayo's role can take part in (advisory locks are anyone's). A
    // lease is a row naming its holder until a time by the database's clock; each running
    // server holds `servers_running` in ROW SHARE mode in a transaction of its own, which a
    // restore must take alone.
    "
    CREATE TABLE leases (
        role TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        client TEXT NOT NULL,
        pid INT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE servers_running ();
    ",
    // 4: people's account records (see `store::records`), by kind and key. Keys are bytes:
    // they are whatever the accounts service names things by, compared exactly.
    "
    CREATE TABLE account_records (
        kind TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (kind, key)
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
    let create = "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)";
    // Two instances creating it at once: one of them is told it exists after all.
    if client.batch_execute(create).await.is_err() {
        client.batch_execute(create).await.map_err(db)?;
    }
    let row = client
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(db)?;
    Ok(row.map_or(0, |row| row.get(0)))
}

fn newer(found: i32) -> StoreError {
    StoreError::Corrupt(format!(
        "the database's schema is version {found}, newer than this rayo knows ({VERSION}): \
         run a newer rayo, or restore a backup into an empty database"
    ))
}

/// Brings the schema to `VERSION`, holding `schema_version` alone while it does; refuses a
/// newer one. An up-to-date schema takes no lock at all.
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let found = version(client).await?;
    if found == VERSION {
        return Ok(VERSION);
    }
    if found > VERSION {
        return Err(newer(found));
    }
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute("LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(db)?;
    // Read again under the lock: another instance may have migrated meanwhile.
    let found = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(db)?
        .map_or(0, |row| row.get::<_, i32>(0));
    if found > VERSION {
        return Err(newer(found));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(migration).await.map_err(db)?;
        tracing::info!(version = index + 1, "applying a database migration");
    }
    tx.execute("DELETE FROM schema_version", &[])
        .await
        .map_err(db)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&VERSION],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(VERSION)
}
