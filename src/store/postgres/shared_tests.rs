//! Several processes on one database, each a `PgStore` of its own here: claims on due
//! events, sequences, the changes they tell each other, and leases.

use std::time::Duration;

use super::*;
use crate::store::contract::{invoice, outbox_item, user};
use crate::store::Lease as _;

fn two_stores() -> Option<(String, PgStore, PgStore)> {
    let url = testing::database()?;
    let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
    Some((url, a, b))
}

fn ids(items: &[OutboxItem]) -> Vec<u8> {
    items.iter().map(|item| item.id.0[0]).collect()
}

#[test]
fn a_due_event_is_handed_to_one_process_until_its_claim_lapses_or_it_is_put_back() {
    let Some((_, a, b)) = two_stores() else {
        return;
    };
    for n in 1..=4 {
        a.put_outbox_item(&outbox_item(n, 10)).unwrap();
    }
    a.flush().unwrap();
    assert_eq!(ids(&a.claim_due(100, 160, 2).unwrap()), vec![1, 2]);
    assert_eq!(
        ids(&b.claim_due(100, 160, 10).unwrap()),
        vec![3, 4],
        "what one claimed, the other is not handed"
    );
    assert!(a.claim_due(120, 180, 10).unwrap().is_empty());
    // Renewed claims outlast the first hold.
    a.hold_claims(&[EventId([1; 16])], 300).unwrap();
    // b's claims lapse (b crashed): a takes them over, and a's lapsed one on 2.
    assert_eq!(ids(&a.claim_due(200, 260, 10).unwrap()), vec![2, 3, 4]);
    // An attempt's outcome put back (still pending) is free to claim again when due.
    let mut retried = outbox_item(1, 150);
    retried.attempts = 1;
    a.put_outbox_item(&retried).unwrap();
    a.flush().unwrap();
    assert_eq!(ids(&b.claim_due(200, 260, 10).unwrap()), vec![1]);
}

#[test]
fn claims_made_at_once_never_share_an_event() {
    let Some((url, _, _)) = two_stores() else {
        return;
    };
    let writer = PgStore::open(&url).unwrap();
    for n in 0..200 {
        writer.put_outbox_item(&outbox_item(n, 10)).unwrap();
    }
    writer.flush().unwrap();
    let stores: Vec<PgStore> = (0..4).map(|_| PgStore::open(&url).unwrap()).collect();
    let handed: Vec<u8> = std::thread::scope(|scope| {
        let takers: Vec<_> = stores
            .iter()
            .map(|store| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_due(100, 160, 7).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(ids(&got));
                    }
                })
            })
            .collect();
        takers.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = handed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(handed.len(), 200, "every event handed out once");
    assert_eq!(sorted.len(), 200, "none twice");
}

#[test]
fn a_sequence_grows_strictly_whichever_process_asks() {
    let Some((_, a, b)) = two_stores() else {
        return;
    };
    assert_eq!(a.next_in_sequence("n", 1000).unwrap(), 1000);
    assert_eq!(b.next_in_sequence("n", 5).unwrap(), 1001);
    assert_eq!(a.next_in_sequence("n", 2000).unwrap(), 2000);
    assert_eq!(b.next_in_sequence("other", 1).unwrap(), 1);
    let all: Vec<u64> = std::thread::scope(|scope| {
        let (a, b) = (&a, &b);
        let askers: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    let store = if i % 2 == 0 { a } else { b };
                    (0..50)
                        .map(|_| store.next_in_sequence("n", 0).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        askers.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 200, "no number given twice");
    assert!(sorted[0] > 2000);
}

/// The stores wait for their own runtime's connections, so they are called from async code
/// here without `block_in_place`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn next_change(changes: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("a change arrives")
        .unwrap()
}

#[test]
fn what_one_process_commits_the_others_hear_and_it_does_not() {
    let Some((_, a, b)) = two_stores() else {
        return;
    };
    runtime().block_on(async {
        let mut heard_by_b = b.coordination().changes().await;
        let mut heard_by_a = a.coordination().changes().await;
        let mut record = invoice("alice", 1);
        record.payer = Some(crate::domain::ClientTag(9));
        // A group that is rolled back tells nobody.
        {
            a.put_user(&user("ghost")).unwrap();
            assert!(a.put_meta("bad\0key", b"v").is_err());
            assert!(a.flush().is_err());
            a.put_user(&user("alice")).unwrap();
            a.insert_invoice(&record).unwrap();
            a.flush().unwrap();
        }
        assert_eq!(
            next_change(&mut heard_by_b).await,
            Change::User(Username::parse("alice").unwrap())
        );
        assert_eq!(
            next_change(&mut heard_by_b).await,
            Change::Added {
                payment_hash: record.payment_hash,
                user: record.user.clone(),
                payer: record.payer,
            }
        );
        let mut paid = record.clone();
        paid.status = InvoiceStatus::Expired;
        let mut step = Transitions::events(vec![outbox_item(1, 10)]);
        step.invoices.push(paid);
        {
            a.commit_transitions(&step).unwrap();
            a.flush().unwrap();
        }
        assert_eq!(
            next_change(&mut heard_by_b).await,
            Change::Moved {
                payment_hash: record.payment_hash,
                user: record.user.clone(),
                payer: record.payer,
                was_pending: true,
            }
        );
        assert_eq!(next_change(&mut heard_by_b).await, Change::Queued);
        assert!(
            heard_by_a.try_recv().is_err(),
            "a process is not told its own changes"
        );
    });
}

#[test]
fn a_listener_that_lost_its_session_listens_again_and_says_changes_may_be_missed() {
    let Some((url, a, b)) = two_stores() else {
        return;
    };
    runtime().block_on(async {
        let mut heard = b.coordination().changes().await;
        {
            a.put_meta("k", b"1").unwrap();
            a.flush().unwrap();
        }
        assert_eq!(next_change(&mut heard).await, Change::Meta("k".into()));
        testing::drop_connections(&url);
        assert_eq!(next_change(&mut heard).await, Change::Resync);
        {
            a.put_meta("k", b"2").unwrap();
            a.flush().unwrap();
        }
        assert_eq!(next_change(&mut heard).await, Change::Meta("k".into()));
    });
}

#[test]
fn one_process_leads_a_role_and_another_takes_over_when_it_lets_go_or_its_session_dies() {
    let Some((url, a, b)) = two_stores() else {
        return;
    };
    runtime().block_on(async {
        let (a, b) = (a.coordination(), b.coordination());
        let lease = a.lead("watch default").await;
        assert_eq!(lease.role(), "watch default");
        // Another role is free.
        let other = b.lead("sweep").await;
        let mut waiting = Box::pin(b.lead("watch default"));
        assert!(
            tokio::time::timeout(Duration::from_secs(3), &mut waiting)
                .await
                .is_err(),
            "b waits while a leads"
        );
        let status =
            std::thread::scope(|s| s.spawn(|| PgStore::status(&url).unwrap()).join()).unwrap();
        let roles: Vec<&str> = status.leases.iter().map(|l| l.role.as_str()).collect();
        assert_eq!(roles, ["sweep", "watch default"]);
        // Letting go (a graceful stop) hands the role over at the next try.
        drop(lease);
        let mut lease = tokio::time::timeout(coordination::TRY_EVERY * 3, waiting)
            .await
            .expect("b takes over");
        drop(other);

        // The holder's session dies (the database dropped it): it knows and stops, lets the
        // lease go on a new session, and a leads again.
        let mut again = Box::pin(a.lead("watch default"));
        testing::drop_connections(&url);
        tokio::time::timeout(Duration::from_secs(10), lease.lost())
            .await
            .expect("the holder notices it lost the lease");
        drop(lease);
        tokio::time::timeout(Duration::from_secs(10), &mut again)
            .await
            .expect("a takes over");
    });
}

/// A connection of the intruder's, driven in the background.
async fn connect_as(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[test]
fn another_role_can_neither_forge_nor_read_what_instances_tell_each_other() {
    let Some((url, a, b)) = two_stores() else {
        return;
    };
    let intruder = testing::intruder(&url);
    runtime().block_on(async {
        let mut heard_by_b = b.coordination().changes().await;
        let (listening, mut connection) =
            tokio_postgres::connect(&intruder, tokio_postgres::NoTls)
                .await
                .unwrap();
        let (overheard_tx, mut overheard) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let tokio_postgres::AsyncMessage::Notification(n) = message {
                    let _ = overheard_tx.send(n.payload().to_owned());
                }
            }
        });
        listening.batch_execute("LISTEN rayo_changes").await.unwrap();

        // Lines as rayo wrote them before they were sealed: a thousand unpaid invoices for
        // alice (which made every instance refuse her), and a forced rescan.
        let forger = connect_as(&intruder).await;
        forger
            .batch_execute(
                "SELECT pg_notify('rayo_changes', '00000000000000ff|a|' || md5(n::text) || md5(n::text) || '|alice|-')
                 FROM generate_series(1, 1000) AS n;
                 SELECT pg_notify('rayo_changes', '00000000000000ff|r');
                 SELECT pg_notify('rayo_changes', 'not even a line');",
            )
            .await
            .unwrap();
        // Then a real change.
        a.put_user(&user("alice")).unwrap();
        a.flush().unwrap();
        assert_eq!(
            next_change(&mut heard_by_b).await,
            Change::User(Username::parse("alice").unwrap()),
            "nothing forged got through before it"
        );
        assert!(heard_by_b.try_recv().is_err(), "nor after it");

        // What the intruder overheard of the real change says nothing it can read.
        let mut real = None;
        while let Ok(payload) =
            tokio::time::timeout(Duration::from_secs(5), overheard.recv()).await
        {
            let payload = payload.unwrap();
            if !payload.contains('|') && payload != "not even a line" {
                real = Some(payload);
                break;
            }
        }
        let real = real.expect("the real change went by");
        assert!(!real.contains("alice"), "{real}");
    });
}

#[test]
fn another_role_can_neither_take_nor_block_leases_servers_or_migrations() {
    let Some((url, a, _)) = two_stores() else {
        return;
    };
    let intruder = testing::intruder(&url);
    runtime().block_on(async {
        let squatter = connect_as(&intruder).await;
        // What rayo's old advisory locks were: a lease (the "watch user-wallet frank" one),
        // the servers' shared lock with an exclusive request queued behind it (a restore that
        // waits), and the migration lock.
        squatter
            .batch_execute(
                "SELECT pg_advisory_lock(1918990703, 1461944212);
                 SELECT pg_advisory_lock_shared(x'7261796f0001'::bigint);
                 SELECT pg_advisory_lock(x'7261796f'::bigint);",
            )
            .await
            .unwrap();
        let waiter = connect_as(&intruder).await;
        tokio::spawn(async move {
            let _ = waiter
                .batch_execute("SELECT pg_advisory_lock(x'7261796f0001'::bigint)")
                .await;
        });
        // The tables rayo coordinates through are rayo's alone.
        for sql in [
            "SELECT * FROM leases",
            "UPDATE leases SET until = 1e18",
            "BEGIN; LOCK TABLE servers_running IN ACCESS EXCLUSIVE MODE",
            "BEGIN; LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE",
            "SELECT * FROM meta",
        ] {
            let refused = squatter.batch_execute(sql).await.unwrap_err();
            assert_eq!(
                refused.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}: {refused:?}"
            );
            let _ = squatter.batch_execute("ROLLBACK").await;
        }

        let lease = tokio::time::timeout(
            Duration::from_secs(10),
            a.coordination().lead("watch user-wallet frank"),
        )
        .await
        .expect("rayo takes the lease whatever the intruder holds");
        drop(lease);
    });
    // A new server starts (migrating and claiming the database) with all of that held.
    let (opened_tx, opened) = std::sync::mpsc::channel();
    let url_for_server = url.clone();
    std::thread::spawn(move || {
        let started = PgStore::open(&url_for_server).and_then(|s| s.claim_for_server());
        let _ = opened_tx.send(started);
    });
    opened
        .recv_timeout(Duration::from_secs(20))
        .expect("a server starts without waiting for the intruder")
        .unwrap();
    assert!(
        !PgStore::status(&url).unwrap().public_can.is_empty(),
        "db status warns that PUBLIC may still connect"
    );
}
