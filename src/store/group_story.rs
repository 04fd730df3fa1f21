//! The story of a group commit under attack, told against every store through the writer the
//! server uses: a user whose backend hands out someone else's payment hash makes inserts that
//! conflict, in the same groups as other people's invoices and payments. Only those inserts
//! may fail, and every write that was acknowledged must be in the store afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use super::contract::{invoice, user};
use super::*;
use crate::domain::{InvoiceRecord, InvoiceStatus, Msat, PaidDetails, Username};

/// The victim's invoices made in the story, and how many the hostile user tries to copy.
const VICTIM_INVOICES: u16 = 120;
const STOLEN: u16 = 24;
/// The victim's invoices stored before the story starts, for the ledger to pay during it.
const ALREADY_STORED: u16 = 30;

fn victims_invoice(n: u16) -> InvoiceRecord {
    let mut record = invoice("victim", 1);
    record.payment_hash = Hash32::sha256(format!("victim {n}").as_bytes());
    record.amount_msat = Msat::from_msat(1000 + u64::from(n));
    record.bolt11 = format!("lnbcrt-victim-{n}");
    record
}

/// The hostile user's copy of one of the victim's invoices: same payment hash, their name.
fn stolen(n: u16) -> InvoiceRecord {
    let mut record = victims_invoice(n);
    record.user = Username::parse("mallory").unwrap();
    record.bolt11 = format!("lnbcrt-mallory-{n}");
    record
}

/// The victim's invoices the hostile user copies: half stored before, half made alongside.
fn copied() -> impl Iterator<Item = u16> {
    (0..STOLEN).map(|k| {
        if k % 2 == 0 {
            k
        } else {
            ALREADY_STORED + k * 3
        }
    })
}

/// The copied invoices that race their copy.
fn raced() -> impl Iterator<Item = u16> {
    copied().filter(|n| *n >= ALREADY_STORED)
}

fn paid(record: &InvoiceRecord) -> InvoiceRecord {
    let mut record = record.clone();
    record.status = InvoiceStatus::Paid(PaidDetails {
        paid_at: 1500,
        preimage: None,
        amount_received_msat: record.amount_msat,
    });
    record
}

/// What each write was told.
#[derive(Default)]
pub(crate) struct Answers {
    /// Payment hash -> the record whose insert was acknowledged.
    pub stored: HashMap<Hash32, InvoiceRecord>,
    pub victim_refused: Vec<StoreError>,
    pub mallory_refused: Vec<StoreError>,
    pub payments_recorded: Vec<InvoiceRecord>,
    pub failures: Vec<StoreError>,
}

/// Runs the story's writes concurrently on `db`. With `midway`, calls it after the first
/// half has been sent, while the rest are in flight (a fault test drops the connection there).
pub(crate) async fn run_story(db: &Db, midway: impl FnOnce()) -> Answers {
    db.commit(|s| {
        s.put_user(&user("victim"))?;
        s.put_user(&user("mallory"))?;
        (0..ALREADY_STORED).try_for_each(|n| s.insert_invoice(&victims_invoice(n)))
    })
    .await
    .unwrap();

    enum Write {
        Insert(InvoiceRecord),
        Pay(InvoiceRecord),
    }
    let mut writes: Vec<Write> = (ALREADY_STORED..VICTIM_INVOICES)
        .map(|n| Write::Insert(victims_invoice(n)))
        .collect();
    // Copies of invoices stored long ago, and of invoices being made right now.
    for (k, n) in copied().enumerate() {
        writes.insert(k * 4, Write::Insert(stolen(n)));
    }
    for n in 0..ALREADY_STORED {
        writes.insert(
            usize::from(n) * 3 + 1,
            Write::Pay(paid(&victims_invoice(n))),
        );
    }

    let half = writes.len() / 2;
    let mut tasks = Vec::new();
    let mut midway = Some(midway);
    for (i, write) in writes.into_iter().enumerate() {
        if i == half {
            if let Some(midway) = midway.take() {
                midway();
            }
        }
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            match write {
                Write::Insert(record) => {
                    let kept = record.clone();
                    let told = db.commit(move |s| s.insert_invoice(&record)).await;
                    (Some(kept), None, told.map(|_| ()))
                }
                Write::Pay(record) => {
                    let step = Transitions {
                        invoices: vec![record.clone()],
                        ..Transitions::default()
                    };
                    let told = db.commit(move |s| s.commit_transitions(&step)).await;
                    (None, Some(record), told.map(|_| ()))
                }
            }
        }));
    }
    let mut answers = Answers::default();
    for task in tasks {
        match task.await.unwrap() {
            (Some(record), _, Ok(())) => {
                let earlier = answers.stored.insert(record.payment_hash, record);
                assert!(
                    earlier.is_none(),
                    "two inserts of one hash were both acknowledged"
                );
            }
            (Some(record), _, Err(e)) if record.user.as_str() == "mallory" => {
                answers.mallory_refused.push(e)
            }
            (Some(_), _, Err(e)) => answers.victim_refused.push(e),
            (None, Some(record), Ok(())) => answers.payments_recorded.push(record),
            (None, _, Err(e)) => answers.failures.push(e),
            (None, None, _) => unreachable!(),
        }
    }
    answers
}

/// Every acknowledged insert is in the store as acknowledged, and every acknowledged payment
/// is recorded.
pub(crate) async fn assert_acknowledged_writes_are_stored(db: &Db, answers: &Answers) {
    let found = db
        .read(|s| {
            let mut found = HashMap::new();
            for record in s.invoices(InvoicePage::newest(usize::MAX))? {
                found.insert(record.payment_hash, record);
            }
            Ok(found)
        })
        .await
        .unwrap();
    for (hash, record) in &answers.stored {
        let stored = found
            .get(hash)
            .unwrap_or_else(|| panic!("acknowledged invoice {hash} is not in the store"));
        assert_eq!(
            stored.user, record.user,
            "invoice {hash} is stored under someone else"
        );
        assert_eq!(stored.bolt11, record.bolt11);
    }
    for record in &answers.payments_recorded {
        let stored = &found[&record.payment_hash];
        assert!(
            matches!(stored.status, InvoiceStatus::Paid(_)),
            "acknowledged payment of {} is not recorded",
            record.payment_hash
        );
    }
}

async fn a_stolen_payment_hash_fails_only_its_own_insert(db: Db) {
    let answers = run_story(&db, || ()).await;
    // A victim's insert may lose only a race to the copy of that very invoice.
    for e in &answers.victim_refused {
        let StoreError::Conflict(what) = e else {
            panic!("a victim's invoice failed for another reason: {e}");
        };
        assert!(raced().any(|n| what.contains(&victims_invoice(n).payment_hash.to_string())));
    }
    assert_eq!(answers.failures, Vec::new(), "every payment was recorded");
    assert_eq!(answers.payments_recorded.len(), usize::from(ALREADY_STORED));
    // Every hash was acknowledged exactly once: each copy lost, to a stored invoice or in a
    // race, or won a race that the victim then lost.
    let refused = answers.mallory_refused.len() + answers.victim_refused.len();
    assert_eq!(refused, usize::from(STOLEN));
    assert!(answers
        .mallory_refused
        .iter()
        .all(|e| matches!(e, StoreError::Conflict(_))));
    assert_eq!(
        answers.stored.len(),
        usize::from(VICTIM_INVOICES - ALREADY_STORED)
    );
    assert_acknowledged_writes_are_stored(&db, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_fails_only_the_conflicting_insert() {
    a_stolen_payment_hash_fails_only_its_own_insert(Db::new(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sled_store_fails_only_the_conflicting_insert() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    a_stolen_payment_hash_fails_only_its_own_insert(Db::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_fails_only_the_conflicting_insert() {
    let Some(url) = postgres::testing::database() else {
        return;
    };
    let store = tokio::task::spawn_blocking(move || PgStore::open(&url).unwrap())
        .await
        .unwrap();
    a_stolen_payment_hash_fails_only_its_own_insert(Db::shared(Arc::new(store))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_keeps_every_acknowledged_write_when_the_connection_drops_mid_group() {
    let Some(url) = postgres::testing::database() else {
        return;
    };
    let opened = url.clone();
    let store = tokio::task::spawn_blocking(move || PgStore::open(&opened).unwrap())
        .await
        .unwrap();
    let db = Db::shared(Arc::new(store));
    let answers = run_story(&db, || postgres::testing::drop_connections(&url)).await;
    // Whatever the dropped connection took was reported, and what was acknowledged stayed.
    let refused = answers.victim_refused.iter().chain(&answers.failures);
    for e in refused.chain(&answers.mallory_refused) {
        assert!(
            matches!(e, StoreError::Io(_) | StoreError::Conflict(_)),
            "{e}"
        );
    }
    assert!(
        !answers.stored.is_empty(),
        "writes after the reconnection were kept"
    );
    assert_acknowledged_writes_are_stored(&db, &answers).await;
}
