//! Watchers notice payment through each backend's channel, resume after a dropped channel
//! without missing or repeating anything, and catch up after rayo was stopped.

use std::sync::Arc;

use lightning_invoice::Currency;
use rayo::backends::{AnyBackend, LndBackend};
use rayo::config::{BackendKind, Network};
use rayo::domain::Secret;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::fake_buda::FakeBuda;
use crate::support::fake_cln::FakeCln;
use crate::support::fake_lnd::FakeLnd;
use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::receiver::Receiver;
use crate::support::{spawn_app_in, spawn_app_with, TestApp};

const MACAROON: &str = "0201036c6e64";
const RUNE: &str = "rune-for-invoices";

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

fn lnd(fake: &FakeLnd) -> AnyBackend {
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
    let app = spawn_app_in(data_dir, Some(lnd(&fake)), None, |_| {}).await;
    app.wait_for_status(&hash, "paid", 5).await;
}

fn cln_settings(cln: &FakeCln) -> impl FnOnce(&mut rayo::config::Settings) {
    let url = cln.url.clone();
    move |s| {
        s.backend.kind = BackendKind::Cln;
        s.backend.cln_url = Some(url.parse().unwrap());
        s.backend.cln_rune = Some(Secret::new(RUNE));
        s.backend.network = Some(Network::Regtest);
    }
}

#[tokio::test]
async fn cln_long_poll_settles_and_resumes_from_lastpay_index_after_a_failure() {
    let cln = FakeCln::start(RUNE);
    let app = spawn_app_with(None, cln_settings(&cln)).await;
    let first = invoice_for(&app, "satoshi", 1_000).await;
    let second = invoice_for(&app, "satoshi", 2_000).await;
    assert!(
        app.eventually(5, || async { !cln.waits().is_empty() })
            .await
    );

    cln.settle(&first);
    let paid = app.wait_for_status(&first, "paid", 5).await;
    assert_eq!(paid["amount_received_msat"], 1_000);

    // The long-poll fails mid-wait; the next one asks for what came after pay_index 1.
    cln.drop_waits();
    cln.settle(&second);
    app.wait_for_status(&second, "paid", 10).await;
    assert!(cln.waits().contains(&Some(1)), "{:?}", cln.waits());
}

#[tokio::test]
async fn cln_payment_made_while_rayo_was_stopped_is_found_at_start() {
    let cln = FakeCln::start(RUNE);
    let app = spawn_app_with(None, cln_settings(&cln)).await;
    let hash = invoice_for(&app, "satoshi", 1_000).await;
    let data_dir = app.stop().await;
    cln.settle(&hash);
    let app = spawn_app_in(data_dir, None, None, cln_settings(&cln)).await;
    app.wait_for_status(&hash, "paid", 5).await;
}

fn phoenixd_settings(
    phoenixd: &FakePhoenixd,
    webhook_secret: Option<&str>,
) -> impl FnOnce(&mut rayo::config::Settings) {
    let url = phoenixd.url.clone();
    let webhook_secret = webhook_secret.map(Secret::new);
    move |s| {
        s.backend.kind = BackendKind::Phoenixd;
        s.backend.phoenixd_url = url.parse().unwrap();
        s.backend.phoenixd_password = Some(Secret::new("pw"));
        s.backend.phoenixd_webhook_secret = webhook_secret;
    }
}

#[tokio::test]
async fn phoenixd_websocket_settles_and_a_dropped_socket_catches_up_by_lookup() {
    let phoenixd = FakePhoenixd::start("pw");
    let app = spawn_app_with(None, phoenixd_settings(&phoenixd, None)).await;
    let first = invoice_for(&app, "satoshi", 1_000).await;
    let second = invoice_for(&app, "satoshi", 2_000).await;
    assert!(
        app.eventually(5, || async { phoenixd.sockets_opened() == 1 })
            .await
    );

    phoenixd.settle(&first).await;
    let paid = app.wait_for_status(&first, "paid", 5).await;
    assert!(paid["preimage"].is_string(), "confirmed by lookup: {paid}");

    // Paid while no socket is open: nothing is pushed, the reconnect's lookup finds it.
    phoenixd.disable_websocket();
    phoenixd.drop_sockets();
    let refused = phoenixd.sockets_refused();
    phoenixd.settle(&second).await;
    assert!(
        app.eventually(10, || async { phoenixd.sockets_refused() > refused })
            .await,
        "rayo tries to reconnect"
    );
    assert_eq!(app.invoice(&second).await["status"], "pending");
    phoenixd.enable_websocket();
    app.wait_for_status(&second, "paid", 10).await;
    assert_eq!(phoenixd.sockets_opened(), 2);
}

#[tokio::test]
async fn phoenixd_signed_webhooks_settle_and_forged_ones_are_refused() {
    let phoenixd = FakePhoenixd::start("pw");
    phoenixd.disable_websocket();
    let app = spawn_app_with(None, phoenixd_settings(&phoenixd, Some("phx-secret"))).await;
    let hash = invoice_for(&app, "satoshi", 3_000).await;

    let forged =
        json!({"type": "payment_received", "amountSat": 3, "paymentHash": hash}).to_string();
    for signature in ["00", "", &"ab".repeat(32)] {
        let answer = app
            .client
            .post(format!("{}/hooks/default", app.address))
            .header("X-Phoenix-Signature", signature)
            .body(forged.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    // An unknown backend is refused exactly as a forged signature is: no names leak.
    let refusal = |name: &'static str| {
        app.client
            .post(format!("{}/hooks/{name}", app.address))
            .body(forged.clone())
            .send()
    };
    let (known, unknown) = (
        refusal("default").await.unwrap(),
        refusal("nosuch").await.unwrap(),
    );
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());

    phoenixd.send_webhooks_to(&format!("{}/hooks/default", app.address), "phx-secret");
    phoenixd.settle(&hash).await;
    app.wait_for_status(&hash, "paid", 5).await;
}

#[tokio::test]
async fn buda_deposits_are_polled_and_paid_invoices_report_no_preimage() {
    let buda = FakeBuda::start("k", "s");
    let url = buda.url.clone();
    let app = spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Buda;
        s.backend.buda_url = url.parse().unwrap();
        s.backend.buda_api_key = Some(Secret::new("k"));
        s.backend.buda_api_secret = Some(Secret::new("s"));
        s.backend.network = Some(Network::Bitcoin);
    })
    .await;
    let body = app.callback("satoshi", "amount=5000").await;
    let verify = body["verify"].as_str().unwrap().to_owned();
    let bolt11 = body["pr"].as_str().unwrap().to_owned();
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();

    // Many newer deposits push ours off the first page: paging still finds it.
    buda.settle(&bolt11, 120);
    let paid = app.wait_for_status(&hash, "paid", 15).await;
    assert_eq!(paid["amount_received_msat"], 5_000);
    assert!(paid.get("preimage").is_none(), "{paid}");
    let verified = crate::support::get_json_url(&app.client, &verify).await;
    assert_eq!(verified["settled"], true);
    assert_eq!(verified["preimage"], Value::Null);
}

#[tokio::test]
async fn phoenixd_and_buda_payments_made_while_rayo_was_stopped_are_found_at_start() {
    let phoenixd = FakePhoenixd::start("pw");
    let app = spawn_app_with(None, phoenixd_settings(&phoenixd, None)).await;
    let hash = invoice_for(&app, "satoshi", 1_000).await;
    let data_dir = app.stop().await;
    phoenixd.settle(&hash).await;
    let app = spawn_app_in(data_dir, None, None, phoenixd_settings(&phoenixd, None)).await;
    app.wait_for_status(&hash, "paid", 5).await;

    let buda = FakeBuda::start("k", "s");
    let buda_settings = |url: String| {
        move |s: &mut rayo::config::Settings| {
            s.backend.kind = BackendKind::Buda;
            s.backend.buda_url = url.parse().unwrap();
            s.backend.buda_api_key = Some(Secret::new("k"));
            s.backend.buda_api_secret = Some(Secret::new("s"));
            s.backend.network = Some(Network::Bitcoin);
        }
    };
    let app = spawn_app_with(None, buda_settings(buda.url.clone())).await;
    let bolt11 = app.callback("satoshi", "amount=2000").await["pr"]
        .as_str()
        .unwrap()
        .to_owned();
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let data_dir = app.stop().await;
    buda.settle(&bolt11, 0);
    let app = spawn_app_in(data_dir, None, None, buda_settings(buda.url.clone())).await;
    app.wait_for_status(&hash, "paid", 5).await;
}
