//! Watchers notice payment through each backend's channel, resume after a dropped channel
//! without missing or repeating anything, and catch up after rayo was stopped.

use std::sync::Arc;

use lightning_invoice::Currency;
use rayo::backends::{InvoiceBackend, LndBackend};
use rayo::domain::Secret;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::fake_lnd::FakeLnd;
use crate::support::receiver::Receiver;
use crate::support::{spawn_app_in, spawn_app_with, TestApp};

const MACAROON: &str = "0201036c6e64";

async fn invoice_for(app: &TestApp, name: &str, msat: u64) -> String {
    let body = app.callback(name, &format!("amount={msat}")).await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let invoices = app.invoices().await;
    let found = invoices
        .iter()
        .find(|i| i["bolt11"] == pr.as_str())
        .unwrap();
    found["payment_hash"].as_str().unwrap().to_owned()
}

async fn events_for(app: &TestApp, hash: &str) -> Vec<Value> {
    app.admin(Method::GET, &format!("/webhooks?invoice={hash}"), None)
        .await
        .json()
        .await
        .unwrap()
}

fn lnd(fake: &FakeLnd) -> Arc<dyn InvoiceBackend> {
    Arc::new(
        LndBackend::new(
            fake.url.parse().unwrap(),
            Secret::new(MACAROON),
            Some(fake.tls_cert_pem.as_bytes()),
            false,
            Currency::Bitcoin,
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn lnd_stream_settles_resumes_from_its_cursor_and_counts_each_payment_once() {
    let fake = FakeLnd::start(MACAROON);
    let receiver = Receiver::start();
    let app = spawn_app_with(Some(lnd(&fake)), |_| {}).await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let first = invoice_for(&app, "alice", 21_000).await;
    let second = invoice_for(&app, "alice", 22_000).await;
    assert!(
        app.eventually(5, || async { !fake.subscriptions().is_empty() })
            .await
    );

    fake.settle(&first);
    let paid = app.wait_for_status(&first, "paid", 5).await;
    assert_eq!(paid["amount_received_msat"], 21_000);
    assert!(paid["preimage"].is_string());

    // The stream drops; a payment lands while rayo is reconnecting.
    fake.drop_streams();
    fake.settle(&second);
    app.wait_for_status(&second, "paid", 10).await;
    let resumed = fake.subscriptions();
    assert!(resumed.len() >= 2, "{resumed:?}");
    assert_eq!(resumed[1], Some(1), "resumed after settle_index 1");

    // Once more, to be sure replays are harmless: every payment has exactly one event.
    fake.drop_streams();
    assert!(
        app.eventually(5, || async { fake.subscriptions().len() >= 3 })
            .await
    );
    assert!(
        app.eventually(5, || async { receiver.received().len() == 2 })
            .await
    );
    assert_eq!(events_for(&app, &first).await.len(), 1);
    assert_eq!(events_for(&app, &second).await.len(), 1);
}

#[tokio::test]
async fn lnd_payment_made_while_rayo_was_stopped_is_found_at_start() {
    let fake = FakeLnd::start(MACAROON);
    let app = spawn_app_with(Some(lnd(&fake)), |_| {}).await;
    let hash = invoice_for(&app, "satoshi", 1_000).await;
    let data_dir = app.stop().await;

    fake.settle(&hash);
    let app = spawn_app_in(data_dir, Some(lnd(&fake)), |_| {}).await;
    app.wait_for_status(&hash, "paid", 5).await;
}
