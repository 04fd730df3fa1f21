//! The small tables: users, metadata strings, API keys, `meta` (the server's keys, the key that
//! seals what instances tell each other) and `sequences`.

use super::group::block_on;
use super::*;

impl PgStore {
    pub(super) fn one(
        &self,
        sql: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = block_on(self.reads().query_opt(sql, &[key])).map_err(db)?;
        Ok(row.map(|row| row.get(0)))
    }

    pub(super) fn all(&self, sql: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = block_on(self.reads().query(sql, &[])).map_err(db)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}

/// The key that seals what instances tell each other: made by the first instance, kept in
/// `meta`, where only rayo's role can read it.
pub(super) async fn seal_key(client: &Client) -> Result<[u8; 32], StoreError> {
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

pub(super) fn user(store: &PgStore, name: &Username) -> Result<Option<User>, StoreError> {
    store
        .one("SELECT record FROM users WHERE name = $1", &name.as_str())?
        .map(|v| decode_json(&v))
        .transpose()
}

pub(super) fn users(store: &PgStore) -> Result<Vec<User>, StoreError> {
    store
        .all("SELECT record FROM users ORDER BY name")?
        .iter()
        .map(|v| decode_json(v))
        .collect()
}

pub(super) fn first_users(store: &PgStore, limit: usize) -> Result<Vec<User>, StoreError> {
    let rows = block_on(store.reads().query(
        "SELECT record FROM users ORDER BY name LIMIT $1",
        &[&int(limit as u64)],
    ))
    .map_err(db)?;
    rows.iter().map(|row| decode_json(row.get(0))).collect()
}

pub(super) fn put_user(store: &PgStore, user: &User) -> Result<(), StoreError> {
    let mut w = store.writes()?;
    w.execute(
        "INSERT INTO users (name, record) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
        &[&user.name.as_str(), &encode_json(user)?],
    )?;
    w.tell(store.origin, Change::User(user.name.clone()));
    Ok(())
}

pub(super) fn remove_user(store: &PgStore, name: &Username) -> Result<bool, StoreError> {
    let mut w = store.writes()?;
    let removed = w.execute("DELETE FROM users WHERE name = $1", &[&name.as_str()])?;
    w.tell(store.origin, Change::User(name.clone()));
    Ok(removed > 0)
}

pub(super) fn metadata(store: &PgStore, hash: &Hash32) -> Result<Option<String>, StoreError> {
    let row = block_on(store.reads().query_opt(
        "SELECT text FROM metadata WHERE hash = $1",
        &[&hash.0.as_slice()],
    ))
    .map_err(db)?;
    Ok(row.map(|row| row.get(0)))
}

pub(super) fn put_metadata(store: &PgStore, json: &str) -> Result<Hash32, StoreError> {
    let hash = Hash32::sha256(json.as_bytes());
    store.writes()?.execute(
        "INSERT INTO metadata (hash, text) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&hash.0.as_slice(), &json],
    )?;
    Ok(hash)
}

pub(super) fn api_key(store: &PgStore, key_hash: &Hash32) -> Result<Option<ApiKey>, StoreError> {
    store
        .one(
            "SELECT record FROM api_keys WHERE key_hash = $1",
            &key_hash.0.as_slice(),
        )?
        .map(|v| decode_json(&v))
        .transpose()
}

pub(super) fn put_api_key(store: &PgStore, key: &ApiKey) -> Result<(), StoreError> {
    store.writes()?.execute(
        "INSERT INTO api_keys (key_hash, record) VALUES ($1, $2)
         ON CONFLICT (key_hash) DO UPDATE SET record = EXCLUDED.record",
        &[&key.key_hash.0.as_slice(), &encode_json(key)?],
    )?;
    Ok(())
}

pub(super) fn api_keys(store: &PgStore) -> Result<Vec<ApiKey>, StoreError> {
    store
        .all("SELECT record FROM api_keys ORDER BY key_hash")?
        .iter()
        .map(|v| decode_json(v))
        .collect()
}

pub(super) fn meta(store: &PgStore, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    store.one("SELECT value FROM meta WHERE key = $1", &key)
}

pub(super) fn put_meta(store: &PgStore, key: &str, value: &[u8]) -> Result<(), StoreError> {
    let mut w = store.writes()?;
    w.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )?;
    w.tell(store.origin, Change::Meta(key.to_owned()));
    Ok(())
}

pub(super) fn meta_entries(store: &PgStore) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows = block_on(
        store
            .reads()
            .query("SELECT key, value FROM meta ORDER BY key", &[]),
    )
    .map_err(db)?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

pub(super) fn metadata_entries(store: &PgStore) -> Result<Vec<String>, StoreError> {
    let rows = block_on(
        store
            .reads()
            .query("SELECT text FROM metadata ORDER BY hash", &[]),
    )
    .map_err(db)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// One statement, atomic under the row's lock, committed at once.
pub(super) fn next_in_sequence(
    store: &PgStore,
    name: &str,
    at_least: u64,
) -> Result<u64, StoreError> {
    let row = block_on(store.reads_outside_group().query_one(
        "INSERT INTO sequences (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = greatest(sequences.value + 1, $2)
         RETURNING value",
        &[&name, &int(at_least)],
    ))
    .map_err(db)?;
    Ok(uint(row.get(0)))
}

pub(super) fn record(
    store: &PgStore,
    kind: RecordKind,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let row = block_on(store.reads().query_opt(
        "SELECT value FROM account_records WHERE kind = $1 AND key = $2",
        &[&kind.name(), &key.as_bytes()],
    ))
    .map_err(db)?;
    Ok(row.map(|row| row.get(0)))
}

pub(super) fn records(
    store: &PgStore,
    kind: RecordKind,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    // A byte range, not LIKE: no character in a key means anything to the query.
    let rows = block_on(store.reads().query(
        "SELECT key, value FROM account_records
         WHERE kind = $1 AND key >= $2 AND substring(key FROM 1 FOR octet_length($2)) = $2
         ORDER BY key LIMIT $3",
        &[&kind.name(), &prefix.as_bytes(), &int(limit as u64)],
    ))
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            let key: Vec<u8> = row.get(0);
            let key = String::from_utf8(key)
                .map_err(|e| StoreError::Corrupt(format!("an account record's key: {e}")))?;
            Ok((key, row.get(1)))
        })
        .collect()
}

/// Each form is one statement: under the row's lock, a second instance swapping the same
/// record waits for the first to commit, then finds the value changed and applies nothing.
pub(super) fn swap_record(store: &PgStore, swap: Swap<'_>) -> Result<bool, StoreError> {
    let (kind, key) = (swap.kind.name(), swap.key.as_bytes());
    let mut w = store.writes()?;
    let applied = match (swap.old, swap.new) {
        (None, Some(new)) => w.execute(
            "INSERT INTO account_records (kind, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (kind, key) DO NOTHING",
            &[&kind, &key, &new],
        )?,
        (Some(old), Some(new)) => w.execute(
            "UPDATE account_records SET value = $4 WHERE kind = $1 AND key = $2 AND value = $3",
            &[&kind, &key, &old, &new],
        )?,
        (Some(old), None) => w.execute(
            "DELETE FROM account_records WHERE kind = $1 AND key = $2 AND value = $3",
            &[&kind, &key, &old],
        )?,
        (None, None) => {
            drop(w);
            return Ok(record(store, swap.kind, swap.key)?.is_none());
        }
    };
    Ok(applied == 1)
}
