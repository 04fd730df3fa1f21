//! One story, told against every `Store` implementation.

use std::sync::Arc;

use super::*;
use crate::domain::{
    ApiKey, Delivery, DescriptionSource, EventId, EventKind, Hash32, InvoiceRecord, InvoiceStatus,
    Msat, OutboxItem, PaidDetails, Preimage, Secret, Target, User, UserContext, UserSettings,
    Username,
};

pub(crate) fn user(name: &str) -> User {
    let ctx = UserContext {
        domain: "example.com",
        now: 100,
        new_secret: &|| Secret::new("x"),
    };
    User::create(
        Username::parse(name).unwrap(),
        UserSettings::default(),
        &ctx,
    )
    .unwrap()
}

pub(crate) fn invoice(user: &str, n: u8) -> InvoiceRecord {
    InvoiceRecord {
        payment_hash: Hash32::sha256(&[n]),
        user: Username::parse(user).unwrap(),
        amount_msat: Msat::from_msat(1000 * u64::from(n)),
        bolt11: format!("lnbcrt{n}"),
        description_hash: Some(Hash32::sha256(b"m")),
        described_by: DescriptionSource::Metadata {
            metadata_hash: Hash32::sha256(b"m"),
        },
        comment: None,
        status: InvoiceStatus::Pending,
        created_at: 1000 + u64::from(n),
        expires_at: 2000 + u64::from(n) % 3,
        backend: crate::domain::BackendName::default_name(),
        backend_kind: "dev".into(),
        backend_ref: None,
        app: None,
        payer: None,
        fiat: None,
    }
}

fn paid(n: u8) -> InvoiceStatus {
    InvoiceStatus::Paid(PaidDetails {
        paid_at: 1500,
        preimage: Some(Preimage(Hash32([n; 32]))),
        amount_received_msat: Msat::from_msat(1000),
    })
}

pub(crate) fn outbox_item(n: u8, due: u64) -> OutboxItem {
    OutboxItem {
        id: EventId([n; 16]),
        kind: EventKind::InvoicePaid,
        payment_hash: Hash32::sha256(&[n]),
        target: Target::Webhook {
            url: "https://example.com/hook".parse().unwrap(),
            user: Username::parse("alice").unwrap(),
            operator: true,
        },
        body: "{}".into(),
        created_at: u64::from(n),
        deadline: 1000,
        attempts: 0,
        next_attempt_at: due,
        delivery: Delivery::Pending,
        log: Vec::new(),
    }
}

/// Inserts `record` and flushes, with the verdict a caller of the writer would hear.
pub(crate) fn insert_durably(store: &dyn Store, record: &InvoiceRecord) -> Result<(), StoreError> {
    store.insert_invoice(record)?;
    let sent = store.sent_ahead();
    store.flush()?.verdict(&sent)
}

fn store_story(store: &dyn Store) {
    // Users: create, read, list in name order, replace, remove.
    assert_eq!(
        store.user(&Username::parse("alice").unwrap()).unwrap(),
        None
    );
    store.put_user(&user("bob")).unwrap();
    store.put_user(&user("alice")).unwrap();
    let names: Vec<String> = store
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let mut bob = user("bob");
    bob.disabled = true;
    store.put_user(&bob).unwrap();
    assert!(store.user(&bob.name).unwrap().unwrap().disabled);
    assert!(store.remove_user(&bob.name).unwrap());
    assert!(!store.remove_user(&bob.name).unwrap());

    // Metadata is content addressed and idempotent.
    let h = store.put_metadata("[[\"text/plain\",\"hi\"]]").unwrap();
    assert_eq!(h, store.put_metadata("[[\"text/plain\",\"hi\"]]").unwrap());
    assert_eq!(
        store.metadata(&h).unwrap().as_deref(),
        Some("[[\"text/plain\",\"hi\"]]")
    );

    // Invoices: insert once, list newest first per user and overall.
    for n in 1..=3 {
        store.insert_invoice(&invoice("alice", n)).unwrap();
    }
    store.insert_invoice(&invoice("carol", 4)).unwrap();
    store.flush().unwrap();
    assert!(matches!(
        insert_durably(store, &invoice("alice", 1)),
        Err(StoreError::Conflict(_))
    ));
    let alice = Username::parse("alice").unwrap();
    let listed: Vec<u64> = store
        .invoices(InvoicePage::newest(10).of(&alice))
        .unwrap()
        .iter()
        .map(|r| r.amount_msat.msat())
        .collect();
    assert_eq!(listed, [3000, 2000, 1000]);
    assert_eq!(store.invoices(InvoicePage::newest(2)).unwrap().len(), 2);
    assert_eq!(
        store.invoices(InvoicePage::newest(10)).unwrap()[0]
            .user
            .as_str(),
        "carol"
    );
    let big: Vec<_> = store
        .invoices(InvoicePage::newest(10).keeping(&mut |r| r.amount_msat.msat() >= 2000))
        .unwrap();
    assert_eq!(big.len(), 3);
    // Pages continue below a cursor.
    let older: Vec<u64> = store
        .invoices(
            InvoicePage::newest(10)
                .of(&alice)
                .before(&invoice("alice", 3).payment_hash),
        )
        .unwrap()
        .iter()
        .map(|r| r.amount_msat.msat())
        .collect();
    assert_eq!(older, [2000, 1000]);
    assert_eq!(
        store
            .invoices(InvoicePage::newest(10).before(&invoice("alice", 2).payment_hash))
            .unwrap()
            .len(),
        1
    );

    // Pending invoices by expiry: 3 (2000), 1 and 4 (2001), 2 (2002).
    let expiring = |until| -> Vec<u64> {
        store
            .expiring(until, 10)
            .unwrap()
            .iter()
            .map(|r| r.expires_at)
            .collect()
    };
    assert_eq!(expiring(2001), [2000, 2001, 2001]);
    assert_eq!(expiring(u64::MAX).len(), 4);
    assert_eq!(store.expiring(u64::MAX, 1).unwrap().len(), 1);

    // Status moves forward only; a step is written whole or not at all.
    let hash = invoice("alice", 1).payment_hash;
    let moved = |n: u8, status: InvoiceStatus| {
        let mut record = store
            .invoices(
                InvoicePage::newest(1)
                    .keeping(&mut |r| r.payment_hash == invoice("alice", n).payment_hash),
            )
            .unwrap()
            .remove(0);
        record.status = status;
        record
    };
    let step = |invoices: Vec<InvoiceRecord>, events: Vec<OutboxItem>| Transitions {
        invoices,
        events,
        meta: vec![("watch.cursor.x".into(), vec![7])],
    };
    assert_eq!(
        store
            .commit_transitions(&step(vec![moved(1, paid(1))], vec![outbox_item(1, 50)]))
            .unwrap(),
        1
    );
    assert_eq!(store.invoice(&hash).unwrap().unwrap().status, paid(1));
    assert_eq!(store.meta("watch.cursor.x").unwrap(), Some(vec![7]));
    // Backwards or repeated: refused, and nothing of the step is written.
    for refused in [InvoiceStatus::Pending, InvoiceStatus::Expired, paid(9)] {
        let outcome = store.commit_transitions(&step(
            vec![moved(2, paid(2)), moved(1, refused)],
            vec![outbox_item(9, 50)],
        ));
        assert!(
            matches!(outcome, Err(StoreError::Transition { .. })),
            "{outcome:?}"
        );
        assert!(store
            .invoice(&invoice("alice", 2).payment_hash)
            .unwrap()
            .unwrap()
            .is_pending());
        assert_eq!(store.outbox_item(&EventId([9; 16])).unwrap(), None);
    }
    let mut ghost = invoice("nobody", 7);
    ghost.status = paid(7);
    assert!(matches!(
        store.commit_transitions(&step(vec![ghost], Vec::new())),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.invoice(&hash).unwrap().unwrap().status, paid(1));
    // An invoice that left `pending` no longer expires.
    assert_eq!(expiring(u64::MAX).len(), 3);
    let hash3 = invoice("alice", 3).payment_hash;
    store
        .commit_transitions(&step(vec![moved(3, InvoiceStatus::Expired)], Vec::new()))
        .unwrap();
    assert_eq!(expiring(2001), [2001]);
    // Money that arrives after expiry is still recorded.
    store
        .commit_transitions(&step(vec![moved(3, paid(3))], Vec::new()))
        .unwrap();
    assert_eq!(store.invoice(&hash3).unwrap().unwrap().status, paid(3));

    // Outbox: queued once (by id), due by time, re-scheduled or finished by replacing.
    let mut event = outbox_item(1, 50);
    assert_eq!(
        store
            .commit_transitions(&Transitions::events(vec![event.clone()]))
            .unwrap(),
        0,
        "already queued with the payment"
    );
    store
        .commit_transitions(&Transitions::events(vec![outbox_item(2, 60)]))
        .unwrap();
    let due = |now| -> Vec<u8> {
        store
            .outbox_due(now, 10)
            .unwrap()
            .iter()
            .map(|i| i.id.0[0])
            .collect()
    };
    assert_eq!(due(49), Vec::<u8>::new());
    assert_eq!(due(55), [1]);
    assert_eq!(due(60), [1, 2]);
    event.next_attempt_at = 70;
    event.attempts = 1;
    store.put_outbox_item(&event).unwrap();
    assert_eq!(due(65), [2]);
    assert_eq!(due(70), [2, 1]);
    event.delivery = Delivery::Delivered { at: 71 };
    store.put_outbox_item(&event).unwrap();
    assert_eq!(due(100), [2]);
    assert_eq!(store.outbox_item(&event.id).unwrap(), Some(event.clone()));
    let all = store.outbox_items(&mut |_| true, 10).unwrap();
    assert_eq!(all.iter().map(|i| i.id.0[0]).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(
        store
            .outbox_items(&mut |i| i.delivery == Delivery::Pending, 10)
            .unwrap()
            .len(),
        1
    );

    // API keys by hash.
    let (key, token) = ApiKey::issue(alice.clone(), [5; 32], 10);
    store.put_api_key(&key).unwrap();
    assert_eq!(store.api_key(&ApiKey::hash(&token)).unwrap(), Some(key));
    assert_eq!(store.api_key(&ApiKey::hash("rk_other")).unwrap(), None);
    assert_eq!(store.api_keys().unwrap().len(), 1);

    // Meta values.
    assert_eq!(store.meta("k").unwrap(), None);
    store.put_meta("k", b"v").unwrap();
    assert_eq!(store.meta("k").unwrap().as_deref(), Some(&b"v"[..]));
    store.flush().unwrap();

    super::records::records_story(store);
    store.flush().unwrap();
}

#[test]
fn memory_store_keeps_the_contract() {
    store_story(&MemoryStore::new());
}

#[test]
fn sled_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    store_story(&SledStore::open(dir.path()).unwrap());
}

#[test]
fn sled_store_keeps_what_was_flushed_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.insert_invoice(&invoice("alice", 5)).unwrap();
        store.flush().unwrap();
    }
    // sled's background flusher may hold the lock for a moment after the last handle drops.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let store = loop {
        match SledStore::open(dir.path()) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(
        store.invoice(&invoice("alice", 5).payment_hash).unwrap(),
        Some(invoice("alice", 5))
    );
}

#[test]
fn a_second_opener_is_told_the_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    assert!(matches!(
        SledStore::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_flushes_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(Arc::new(SledStore::open(dir.path()).unwrap()));
    let tasks: Vec<_> = (1..=100u8)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.commit(move |s| s.insert_invoice(&invoice("alice", n)))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = db
        .read(|s| s.invoices(InvoicePage::newest(1000)))
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    let dup = db.commit(|s| s.insert_invoice(&invoice("alice", 1))).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
}

/// An invoice made at `n`, finished as `n` says: most expire, one in five is paid, one in
/// thirteen stays pending (an app invoice with a long expiry).
pub(crate) fn aged(n: u16) -> InvoiceRecord {
    let users = ["alice", "bob", "carol", "dave"];
    let mut record = invoice(users[usize::from(n) % 4], 0);
    record.payment_hash = Hash32::sha256(&n.to_be_bytes());
    record.amount_msat = Msat::from_msat(1000 + u64::from(n));
    record.created_at = 10_000 + u64::from(n);
    record.expires_at = record.created_at + 600;
    record.status = if n.is_multiple_of(13) {
        record.expires_at += 86_400;
        InvoiceStatus::Pending
    } else if n.is_multiple_of(5) {
        paid(n as u8)
    } else {
        InvoiceStatus::Expired
    };
    record
}

fn amounts(records: &[InvoiceRecord]) -> Vec<u64> {
    records.iter().map(|r| r.amount_msat.msat()).collect()
}

/// What a store shows: every listing, page and lookup there is.
pub(crate) fn everything(store: &dyn Store, count: u16) -> Vec<Vec<u64>> {
    let mut views = vec![amounts(
        &store.invoices(InvoicePage::newest(10_000)).unwrap(),
    )];
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        let name = Username::parse(name).unwrap();
        views.push(amounts(
            &store
                .invoices(InvoicePage::newest(10_000).of(&name))
                .unwrap(),
        ));
        views.push(amounts(
            &store
                .invoices(
                    InvoicePage::newest(7)
                        .of(&name)
                        .before(&aged(count / 2).payment_hash),
                )
                .unwrap(),
        ));
    }
    views.push(amounts(
        &store
            .invoices(InvoicePage::newest(10_000).keeping(&mut |r| r.paid().is_some()))
            .unwrap(),
    ));
    views.push(amounts(&store.expiring(u64::MAX, 10_000).unwrap()));
    for n in 0..count {
        let found = store.invoice(&aged(n).payment_hash).unwrap();
        views.push(
            found
                .map(|r| vec![r.amount_msat.msat()])
                .unwrap_or_default(),
        );
    }
    views
}

/// Sealing moves invoices and changes nothing anyone can see: every listing, page, lookup and
/// status change reads the same before and after, whatever moved where.
fn sealing_story(store: &dyn Store) {
    let count = 600;
    for n in 0..count / 2 {
        store.insert_invoice(&aged(n)).unwrap();
    }
    let before = everything(store, count / 2);
    let long_after = 1_000_000;
    store.seal(long_after, 100).unwrap();
    store.seal(long_after, usize::MAX).unwrap();
    assert_eq!(everything(store, count / 2), before);

    // More arrive (some above the sealed ones, in the same order), and are sealed in turn.
    for n in count / 2..count {
        store.insert_invoice(&aged(n)).unwrap();
    }
    store.flush().unwrap();
    assert!(matches!(
        insert_durably(store, &aged(1)),
        Err(StoreError::Conflict(_))
    ));
    let before = everything(store, count);
    store.seal(long_after, usize::MAX).unwrap();
    assert_eq!(everything(store, count), before);

    // A sealed invoice can still be paid late, and a long-pending one finishes and seals
    // into the chunk that covers its place.
    let mut late = aged(1);
    late.status = paid(1);
    let mut straggler = aged(13);
    straggler.status = InvoiceStatus::Expired;
    store
        .commit_transitions(&Transitions {
            invoices: vec![late.clone(), straggler.clone()],
            ..Transitions::default()
        })
        .unwrap();
    let mut again = late.clone();
    again.status = InvoiceStatus::Expired;
    assert!(matches!(
        store.commit_transitions(&Transitions {
            invoices: vec![again],
            ..Transitions::default()
        }),
        Err(StoreError::Transition { .. })
    ));
    let before = everything(store, count);
    store.seal(long_after + 86_400 * 2, usize::MAX).unwrap();
    assert_eq!(everything(store, count), before);
    assert_eq!(store.invoice(&late.payment_hash).unwrap(), Some(late));
    assert_eq!(
        store.invoice(&straggler.payment_hash).unwrap(),
        Some(straggler)
    );
}

#[test]
fn memory_store_keeps_the_sealing_contract() {
    sealing_story(&MemoryStore::new());
}

#[test]
fn sled_store_keeps_the_sealing_contract() {
    let dir = tempfile::tempdir().unwrap();
    sealing_story(&SledStore::open(dir.path()).unwrap());
}

/// Every step of a pruning pass, from the start: what went.
pub(crate) fn prune_all(
    store: &dyn Store,
    rules: &Retention,
    now: u64,
    budget: usize,
    dry_run: bool,
) -> Pruned {
    let mut total = Pruned::default();
    let mut from = PruneCursor::default();
    loop {
        let step = store
            .prune(&PruneRequest {
                rules,
                now,
                from: &from,
                budget,
                dry_run,
            })
            .unwrap();
        total.add(step.pruned);
        match step.next {
            Some(next) => from = next,
            None => return total,
        }
    }
}

/// What a store shows after pruning is what a store that never held the pruned invoices
/// shows.
fn the_same_store_without(kept: impl Fn(&InvoiceRecord) -> bool, count: u16) -> Vec<Vec<u64>> {
    let model = MemoryStore::new();
    for n in 0..count {
        let record = aged(n);
        if kept(&record) {
            model.insert_invoice(&record).unwrap();
        }
    }
    everything(&model, count)
}

fn delivered(n: u8, at: u64) -> OutboxItem {
    OutboxItem {
        delivery: Delivery::Delivered { at },
        ..outbox_item(n, 0)
    }
}

fn dead(n: u8, at: u64) -> OutboxItem {
    OutboxItem {
        delivery: Delivery::Dead { at },
        ..outbox_item(n, 0)
    }
}

/// Expired unpaid invoices go a week after their expiry, delivered events a month after
/// delivery, dead letters after three, paid invoices only when the operator says; a dry run
/// counts the same and changes nothing; the rest reads as before.
fn pruning_story(store: &dyn Store, budget: usize) {
    let count = 600;
    for n in 0..count {
        store.insert_invoice(&aged(n)).unwrap();
    }
    store.seal(1_000_000, usize::MAX).unwrap();
    let day = 86_400;
    for (n, item) in [
        delivered(1, 100),
        delivered(2, 40 * day),
        dead(3, 100),
        dead(4, 40 * day),
        outbox_item(5, 100),
    ]
    .into_iter()
    .enumerate()
    {
        store.put_outbox_item(&item).unwrap();
        assert_eq!(item.id.0[0], n as u8 + 1);
    }
    let rules = Retention::default();
    let before = everything(store, count);

    // A week after the first expiry, to the second: nothing yet.
    let first_expiry = aged(1).expires_at;
    let too_soon = prune_all(store, &rules, first_expiry + 7 * day - 1, budget, false);
    assert_eq!(too_soon.unpaid_invoices + too_soon.paid_invoices, 0);
    assert_eq!(everything(store, count), before);

    // Later: the unpaid ones that expired by then, in a dry run first.
    let now = aged(299).expires_at + 7 * day;
    let gone =
        |r: &InvoiceRecord| r.status == InvoiceStatus::Expired && r.expires_at + 7 * day <= now;
    let expected = (0..count).filter(|n| gone(&aged(*n))).count() as u64;
    let dry = prune_all(store, &rules, now, budget, true);
    assert_eq!(dry.unpaid_invoices, expected);
    assert_eq!(
        everything(store, count),
        before,
        "a dry run changes nothing"
    );
    let pruned = prune_all(store, &rules, now, budget, false);
    assert_eq!(pruned, dry);
    assert_eq!(
        (pruned.paid_invoices, pruned.events, pruned.dead_letters),
        (0, 0, 0),
        "paid invoices are kept, and no event is old enough"
    );
    assert_eq!(
        everything(store, count),
        the_same_store_without(|r| !gone(r), count)
    );
    assert_eq!(
        prune_all(store, &rules, now, budget, false),
        Pruned::default()
    );

    // A hundred days in: every expired invoice, the events delivered more than 30 days ago,
    // the dead letters of more than 90; never the pending event.
    let later = 100 * day;
    let pruned = prune_all(store, &rules, later, budget, false);
    assert_eq!((pruned.events, pruned.dead_letters), (2, 1));
    let ids = |store: &dyn Store| -> Vec<u8> {
        let mut ids: Vec<u8> = store
            .outbox_items(&mut |_| true, 10)
            .unwrap()
            .iter()
            .map(|item| item.id.0[0])
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids(store), vec![4, 5]);
    assert_eq!(store.outbox_due(u64::MAX, 10).unwrap().len(), 1);
    let unfinished = |r: &InvoiceRecord| r.status != InvoiceStatus::Expired;
    assert_eq!(
        everything(store, count),
        the_same_store_without(unfinished, count)
    );

    // A late payment to a pruned invoice finds nothing to change; new invoices still seal.
    let mut late = aged(2);
    late.status = paid(2);
    assert!(matches!(
        store.commit_transitions(&Transitions {
            invoices: vec![late],
            ..Transitions::default()
        }),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.invoice(&aged(2).payment_hash).unwrap().is_none());
    store.insert_invoice(&aged(2)).unwrap();
    store.seal(later, usize::MAX).unwrap();
    assert!(store.invoice(&aged(2).payment_hash).unwrap().is_some());

    // An operator who keeps paid invoices a year.
    let keep_a_year = Retention {
        paid: Some(365 * day),
        ..rules
    };
    let pruned = prune_all(store, &keep_a_year, 1500 + 365 * day, budget, false);
    assert_eq!(
        pruned.paid_invoices,
        (0..count).filter(|n| aged(*n).paid().is_some()).count() as u64
    );
    assert!(store.invoice(&aged(5).payment_hash).unwrap().is_none());
    assert!(
        store.invoice(&aged(13).payment_hash).unwrap().is_some(),
        "pending stays"
    );
}

#[test]
fn memory_store_keeps_the_pruning_contract() {
    pruning_story(&MemoryStore::new(), usize::MAX);
}

#[test]
fn sled_store_keeps_the_pruning_contract_in_steps_of_any_size() {
    for budget in [1, 7, 100, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        pruning_story(&SledStore::open(dir.path()).unwrap(), budget);
    }
}

/// The same stories against a real PostgreSQL (see `postgres::testing`).
fn postgres() -> Option<PgStore> {
    Some(PgStore::open(&postgres::testing::database()?).unwrap())
}

#[test]
fn postgres_store_keeps_the_contract() {
    if let Some(store) = postgres() {
        store_story(&store);
    }
}

#[test]
fn postgres_store_keeps_the_sealing_contract() {
    if let Some(store) = postgres() {
        sealing_story(&store);
    }
}

#[test]
fn postgres_store_keeps_the_pruning_contract_in_steps_of_any_size() {
    for budget in [1, 7, usize::MAX] {
        if let Some(store) = postgres() {
            pruning_story(&store, budget);
        }
    }
}
