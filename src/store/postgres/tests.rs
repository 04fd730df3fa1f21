//! The PostgreSQL store's own stories: groups, TLS, reconnecting, inserts sent ahead.

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
    let store = PgStore::open(&db.url("localhost", &format!("sslmode=verify-full {ca}"))).unwrap();
    assert!(encrypted(&store));
    let said = refusal(&db.url("127.0.0.1", &format!("sslmode=verify-full {ca}")));
    assert!(said.contains("not valid for name"), "{said}");
    // ... against the system's roots, which do not know this CA.
    let said = refusal(&db.url("localhost", "sslmode=verify-full"));
    assert!(said.contains("UnknownIssuer"), "{said}");
    // verify-ca: the chain, whatever the name.
    let store = PgStore::open(&db.url("127.0.0.1", &format!("sslmode=verify-ca {ca}"))).unwrap();
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
        store.reads.read().unwrap().is_closed() && store.writer.lock().unwrap().client.is_closed()
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
