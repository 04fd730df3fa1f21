//! Payment events reach the user's webhook: signed, retried until the receiver is up, never
//! lost across a restart, and the same event always carries the same id.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::receiver::{documented_verifier_accepts, Receiver};
use crate::support::{spawn_app_in, spawn_app_with, ShiftedClock, TestApp};

async fn pay_alice(app: &TestApp) -> String {
    let body = app.callback("alice", "amount=21000&comment=thanks").await;
    let pr = body["pr"].as_str().unwrap_or_else(|| panic!("{body}"));
    app.invoices()
        .await
        .into_iter()
        .find(|i| i["bolt11"] == pr)
        .unwrap()["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn webhooks(app: &TestApp) -> Vec<Value> {
    app.admin(Method::GET, "/webhooks", None)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_paid_invoice_reaches_the_webhook_signed_and_the_documented_verifier_accepts_it() {
    let receiver = Receiver::start();
    let app = spawn_app_with(None, |_| {}).await;
    let alice = app
        .add_user(
            "alice",
            json!({"webhook_url": receiver.url, "comment_allowed": 100}),
        )
        .await;
    let secret = alice["webhook_secret"].as_str().unwrap().to_owned();
    let hash = pay_alice(&app).await;
    assert_eq!(app.settle(&hash).await.status(), 200);

    assert!(
        app.eventually(5, || async { !receiver.received().is_empty() })
            .await
    );
    let delivery = &receiver.received()[0];
    let event: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(event["type"], "invoice.paid");
    assert_eq!(event["id"], delivery.event_id.as_str());
    let invoice = &event["data"]["invoice"];
    assert_eq!(invoice["payment_hash"], hash.as_str());
    assert_eq!(invoice["user"], "alice");
    assert_eq!(invoice["amount_msat"], 21000);
    assert_eq!(invoice["comment"], "thanks");
    assert_eq!(invoice["status"], "paid");
    assert!(invoice["preimage"].is_string() && invoice["paid_at"].is_u64());

    assert!(documented_verifier_accepts(
        &secret,
        &delivery.signature,
        &delivery.body
    ));
    let tampered = delivery.body.replace("21000", "99000");
    assert!(!documented_verifier_accepts(
        &secret,
        &delivery.signature,
        &tampered
    ));
    assert!(!documented_verifier_accepts(
        "whsec_wrong",
        &delivery.signature,
        &delivery.body
    ));

    // The receiver answered; rayo records that right after.
    assert!(
        app.eventually(5, || async {
            webhooks(&app).await[0]["state"] == "delivered"
        })
        .await
    );
    let listed = webhooks(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["attempts"], 1);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_once_it_is_up_with_the_same_id() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let app = spawn_app_with(None, |s| {
        s.webhook_first_retry = std::time::Duration::from_secs(1)
    })
    .await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let hash = pay_alice(&app).await;
    app.settle(&hash).await;
    assert!(
        app.eventually(10, || async { receiver.attempts() >= 2 })
            .await
    );
    let pending = webhooks(&app).await;
    assert_eq!(pending[0]["state"], "pending");
    assert!(pending[0]["last_outcome"].as_str().unwrap().contains("503"));

    receiver.set_down(false);
    assert!(
        app.eventually(15, || async { !receiver.received().is_empty() })
            .await
    );
    let id = pending[0]["id"].as_str().unwrap();
    assert_eq!(receiver.received()[0].event_id, id);
    assert!(
        app.eventually(5, || async {
            webhooks(&app).await[0]["state"] == "delivered"
        })
        .await
    );
    let shown: Value = app
        .admin(Method::GET, &format!("/webhooks/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "delivered");
    assert!(shown["log"].as_array().unwrap().len() >= 3, "{shown}");

    // Sending it again (as after a crash mid-delivery) repeats the same event id.
    app.admin(Method::POST, &format!("/webhooks/{id}/retry"), None)
        .await;
    assert!(
        app.eventually(5, || async { receiver.received().len() == 2 })
            .await
    );
    let ids: Vec<String> = receiver
        .received()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ids, [id, id]);
}

#[tokio::test]
async fn events_queued_before_a_restart_are_delivered_after_it() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let app = spawn_app_with(None, |_| {}).await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let hash = pay_alice(&app).await;
    app.settle(&hash).await;
    assert!(
        app.eventually(5, || async { receiver.attempts() >= 1 })
            .await
    );
    let data_dir = app.stop().await;

    receiver.set_down(false);
    let app = spawn_app_in(data_dir, None, None, |_| {}).await;
    // The retry is due 5 s (jittered) after the first attempt.
    assert!(
        app.eventually(15, || async { receiver.received().len() == 1 })
            .await
    );
    let event: Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(event["data"]["invoice"]["payment_hash"], hash.as_str());
    assert!(
        app.eventually(5, || async {
            webhooks(&app).await[0]["state"] == "delivered"
        })
        .await
    );
}

#[tokio::test]
async fn a_user_without_a_webhook_gets_no_events_and_verify_reports_the_payment() {
    let app = spawn_app_with(None, |_| {}).await;
    let body = app.callback("satoshi", "amount=5000").await;
    let verify = body["verify"].as_str().unwrap().to_owned();
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(&hash).await;
    let answer = crate::support::get_json_url(&app.client, &verify).await;
    assert_eq!(answer["settled"], true);
    assert!(webhooks(&app).await.is_empty());
}

#[tokio::test]
async fn unpaid_invoices_expire_and_say_so_on_the_webhook_and_in_verify() {
    let clock = std::sync::Arc::new(crate::support::ShiftedClock::default());
    let receiver = Receiver::start();
    let app = spawn_app_in(
        tempfile::tempdir().unwrap(),
        None,
        Some(clock.clone()),
        |_| {},
    )
    .await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let hash = pay_alice(&app).await;
    assert_eq!(app.invoice(&hash).await["status"], "pending");

    clock.advance(601);
    assert!(
        app.eventually(5, || async { receiver.received().len() == 1 })
            .await
    );
    let event: Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(event["type"], "invoice.expired");
    assert_eq!(event["data"]["invoice"]["status"], "expired");
    // Settling by hand is refused now; the record stays expired.
    assert_eq!(app.settle(&hash).await.status(), 409);
    assert_eq!(app.invoice(&hash).await["status"], "expired");
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_others_and_redirects_are_not_followed() {
    let hanging = Receiver::start();
    hanging.set_hanging(true);
    let healthy = Receiver::start();
    let redirecting = Receiver::start();
    redirecting.redirect_to(&healthy.url);
    let app = spawn_app_with(None, |_| {}).await;
    app.add_user("slow", json!({"webhook_url": hanging.url}))
        .await;
    app.add_user("fine", json!({"webhook_url": healthy.url}))
        .await;
    app.add_user("moved", json!({"webhook_url": redirecting.url}))
        .await;
    // Many payments to the hanging receiver first, then one each to the others.
    for _ in 0..8 {
        let pr = app.callback("slow", "amount=1000").await;
        assert!(pr["pr"].is_string());
    }
    for invoice in app.invoices().await {
        app.settle(invoice["payment_hash"].as_str().unwrap()).await;
    }
    let fine = app.callback("fine", "amount=1000").await["verify"].clone();
    assert!(fine.is_string());
    let moved = app.callback("moved", "amount=1000").await["verify"].clone();
    assert!(moved.is_string());
    for invoice in app.invoices().await {
        if invoice["user"] != "slow" {
            app.settle(invoice["payment_hash"].as_str().unwrap()).await;
        }
    }
    assert!(
        app.eventually(5, || async { healthy.received().len() == 1 })
            .await,
        "the healthy receiver is served while another hangs"
    );
    assert!(
        hanging.attempts() <= 4,
        "at most 4 at once per endpoint: {}",
        hanging.attempts()
    );
    // The redirect counted as a failure; nothing reached the redirect's target from it.
    assert!(
        app.eventually(5, || async {
            webhooks(&app).await.iter().any(|e| {
                e["last_outcome"]
                    .as_str()
                    .is_some_and(|o| o.contains("redirect"))
            })
        })
        .await
    );
    assert_eq!(healthy.received().len(), 1);
}

#[tokio::test]
async fn a_receiver_down_past_the_delivery_window_is_dead_lettered_and_can_be_retried() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let clock = std::sync::Arc::new(ShiftedClock::default());
    let app = spawn_app_in(
        tempfile::tempdir().unwrap(),
        None,
        Some(clock.clone()),
        |s| s.webhook_first_retry = std::time::Duration::from_secs(1),
    )
    .await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let hash = pay_alice(&app).await;
    app.settle(&hash).await;
    assert!(
        app.eventually(10, || async { receiver.attempts() > 0 })
            .await
    );
    // The delivery window passes on the server's clock; the next attempt finds it over.
    clock.advance(25 * 3600);
    let dead = || async {
        webhooks(&app)
            .await
            .into_iter()
            .find(|w| w["state"] == "dead")
    };
    assert!(
        app.eventually(10, || async { dead().await.is_some() })
            .await,
        "given up after the window"
    );
    let attempts = receiver.attempts();

    // Someone else's event is delivered after it: the outbox has run since, and left the
    // dead one alone.
    let later = Receiver::start();
    app.add_user("bob", json!({"webhook_url": later.url})).await;
    let body = app.callback("bob", "amount=21000").await;
    let bob = app
        .invoices()
        .await
        .into_iter()
        .find(|i| i["bolt11"] == body["pr"])
        .unwrap();
    app.settle(bob["payment_hash"].as_str().unwrap()).await;
    assert!(
        app.eventually(10, || async { later.received().len() == 1 })
            .await
    );
    assert_eq!(receiver.attempts(), attempts, "no more attempts once dead");

    receiver.set_down(false);
    let id = dead().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.admin(Method::POST, &format!("/webhooks/{id}/retry"), None)
        .await;
    assert!(
        app.eventually(5, || async { receiver.received().len() == 1 })
            .await
    );
}
