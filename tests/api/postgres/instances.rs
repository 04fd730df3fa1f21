//! Several instances on one database answer as one, and one takes over when another dies.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::get_json_url;
use crate::support::receiver::Receiver;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_answer_as_one() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let receiver = Receiver::start();
    let env = [
        ("RAYO_MAX_PENDING_PER_USER", "3"),
        ("RAYO_MAX_PENDING_PER_CLIENT", "3"),
    ];
    let a = Instance::start(&database, &env);
    let b = Instance::start(&database, &env);
    assert_eq!(cli(&database, &["db", "status"])["servers"], 2);

    // The CLI works on the database while both run, and both serve what it did.
    cli(
        &database,
        &["user", "add", "alice", "--webhook-url", &receiver.url],
    );
    let description = |base: String| {
        let http = http.clone();
        async move {
            let pay = get_json_url(&http, &format!("{base}/.well-known/lnurlp/alice")).await;
            pay["metadata"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert!(description(a.base()).await.contains("alice"));
    assert!(description(b.base()).await.contains("alice"));
    cli(
        &database,
        &[
            "user",
            "update",
            "alice",
            "--description",
            "Changed elsewhere",
        ],
    );
    let seen = eventually(Duration::from_secs(5), || async {
        description(b.base()).await.contains("Changed elsewhere")
    })
    .await;
    assert!(seen.is_some(), "b forgot its cached profile when told");

    // Callbacks to both; the cap of three unpaid invoices holds across them.
    let first = invoice_from(&http, &a.base()).await.unwrap();
    let second = invoice_from(&http, &b.base()).await.unwrap();
    let third = invoice_from(&http, &a.base()).await.unwrap();
    caught_up(&database, &http, &b.base(), "After three invoices").await;
    let refused = invoice_from(&http, &b.base()).await.unwrap_err();
    assert_eq!(refused["status"], "ERROR", "{refused}");

    // A follower on b hears of a payment a records.
    let key = cli(&database, &["user", "api-key", "create", "alice"]);
    let key = key["key"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/invoices/{}/ws",
        b.base().replace("http", "ws"),
        first.hash
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let message = |m: Option<Result<Message, _>>| -> Value {
        serde_json::from_str(m.unwrap().unwrap().to_text().unwrap()).unwrap()
    };
    assert_eq!(message(socket.next().await)["event"], "invoice");
    a.through(&database, &["dev", "settle", &first.hash]);
    let heard = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the follower on b hears of the payment a recorded");
    assert_eq!(message(heard)["event"], "paid");

    // The payment freed a place under the cap, on b too; b settles its own invoice.
    caught_up(&database, &http, &b.base(), "After a payment").await;
    let fourth = invoice_from(&http, &b.base()).await.unwrap();
    // The dev key is the database's: a settles what b made.
    a.through(&database, &["dev", "settle", &second.hash]);

    // Each payment's webhook arrives once, whichever instance delivers it.
    let both = eventually(Duration::from_secs(10), || async {
        receiver.received().len() >= 2
    })
    .await;
    assert!(both.is_some(), "both webhooks arrive");
    // Once both events are marked delivered, no instance sends them again.
    let settled = eventually(Duration::from_secs(10), || async {
        let events = cli(&database, &["webhook", "list"]);
        let events = events.as_array().cloned().unwrap_or_default();
        events.len() == 2 && events.iter().all(|e| e["state"] == "delivered")
    })
    .await;
    assert!(settled.is_some(), "both events are marked delivered");
    let received = receiver.received();
    let mut ids: Vec<&str> = received.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(received.len(), 2, "no event twice: {received:?}");
    assert_eq!(ids.len(), 2);
    for hash in [&first, &second] {
        assert!(received.iter().any(|r| r.body.contains(hash.hash.as_str())));
    }
    for hash in [&third, &fourth] {
        assert!(!settled_on(&http, &a.base(), hash).await);
    }

    // A key revoked anywhere is refused everywhere.
    let show = |base: String| {
        let (http, key, hash) = (http.clone(), key.clone(), third.hash.clone());
        async move {
            http.get(format!("{base}/api/v1/invoices/{hash}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(show(b.base()).await, 200);
    let keys = cli(&database, &["user", "api-key", "list", "alice"]);
    cli(
        &database,
        &["user", "api-key", "revoke", keys[0]["id"].as_str().unwrap()],
    );
    assert_eq!(show(a.base()).await, 401);
    assert_eq!(show(b.base()).await, 401);
}

/// Who holds the watcher's lease now (the database session), if anyone.
fn watcher_lease(database: &str) -> Option<i64> {
    cli(database, &["db", "status"])["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lease| lease["role"] == "watch default")
        .map(|lease| lease["pid"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_watching_instance_dies_another_notices_payments_within_ten_seconds() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let phoenixd = FakePhoenixd::start("pw");
    let env = [
        ("RAYO_BACKEND", "phoenixd"),
        ("RAYO_PHOENIXD_URL", phoenixd.url.as_str()),
        ("RAYO_PHOENIXD_PASSWORD", "pw"),
    ];
    // a starts first, so a leads.
    let mut a = Instance::start(&database, &env);
    let database_ = database.clone();
    let led = eventually(Duration::from_secs(5), || {
        let database = database_.clone();
        async move {
            tokio::task::spawn_blocking(move || watcher_lease(&database))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
    assert!(led.is_some(), "a leads the watcher");
    let mut b = Instance::start(&database, &env);
    cli(&database, &["user", "add", "alice"]);
    let leader = watcher_lease(&database).unwrap();

    // Paid while a watches: a notices (and b, which does not watch, serves the result).
    let hash = invoice_from(&http, &b.base()).await.unwrap();
    phoenixd.settle(&hash.hash).await;
    let (base_a, base_b) = (a.base(), b.base());
    let noticed = eventually(Duration::from_secs(5), || settled_on(&http, &base_b, &hash)).await;
    assert!(noticed.is_some(), "the leader noticed");

    // a dies; a payment made while nobody watches is noticed by b within the bound.
    let hash = invoice_from(&http, &b.base()).await.unwrap();
    a.kill();
    phoenixd.settle(&hash.hash).await;
    let took = eventually(Duration::from_secs(10), || {
        settled_on(&http, &base_b, &hash)
    })
    .await;
    let took = took.expect("b took over and noticed the payment within 10 s");
    eprintln!("b noticed a payment made after the leader died in {took:?}");
    assert_ne!(watcher_lease(&database), Some(leader));

    // a comes back and stands by; b stops gracefully and hands over at once.
    a.restart(&database, &env);
    let hash = invoice_from(&http, &a.base()).await.unwrap();
    b.stop();
    phoenixd.settle(&hash.hash).await;
    let took = eventually(Duration::from_secs(10), || {
        settled_on(&http, &base_a, &hash)
    })
    .await;
    let took = took.expect("a took over from b's graceful stop");
    eprintln!("a noticed a payment after b stopped gracefully in {took:?}");
    a.stop();
}
