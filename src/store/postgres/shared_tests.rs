//! Several processes on one database, each a `PgStore` of its own here: claims on due
//! events, sequences, the changes they tell each other, and leases.

use std::time::Duration;

use super::*;
use crate::store::contract::{invoice, outbox_item, user};

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
    assert_eq!(a.next_in_sequence("n", 1000).unwrap(), Some(1000));
    assert_eq!(b.next_in_sequence("n", 5).unwrap(), Some(1001));
    assert_eq!(a.next_in_sequence("n", 2000).unwrap(), Some(2000));
    assert_eq!(b.next_in_sequence("other", 1).unwrap(), Some(1));
    let all: Vec<u64> = std::thread::scope(|scope| {
        let (a, b) = (&a, &b);
        let askers: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    let store = if i % 2 == 0 { a } else { b };
                    (0..50)
                        .map(|_| store.next_in_sequence("n", 0).unwrap().unwrap())
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
        let mut heard_by_b = b.cluster().changes().await;
        let mut heard_by_a = a.cluster().changes().await;
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
        let mut heard = b.cluster().changes().await;
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
        let (a, b) = (a.cluster(), b.cluster());
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
        let mut lease = tokio::time::timeout(cluster::TRY_EVERY * 3, waiting)
            .await
            .expect("b takes over");
        drop(other);

        // The holder's session dies (the database dropped it): it knows, and a leads again.
        let mut again = Box::pin(a.lead("watch default"));
        testing::drop_connections(&url);
        tokio::time::timeout(Duration::from_secs(10), lease.lost())
            .await
            .expect("the holder notices it lost the lease");
        tokio::time::timeout(Duration::from_secs(10), &mut again)
            .await
            .expect("a takes over");
    });
}
