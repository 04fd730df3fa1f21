//! rayo against a fake phoenixd that speaks its wire format and signs real invoices.

use lightning_invoice::Currency;
use rayo::backends::{Backend, InvoiceBackend, InvoiceState, PhoenixdBackend};
use rayo::config::{BackendKind, Network};
use rayo::domain::{Hash32, Secret};

use crate::support::fake_node::Fault;
use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::wallet::{assert_preimage_matches, check_invoice_on};
use crate::support::{assert_lnurl_error, spawn_app_with, TestApp};

const PASSWORD: &str = "phoenix-http-password";

async fn rayo_on(phoenixd: &FakePhoenixd, password: &str) -> TestApp {
    let (url, password) = (phoenixd.url.clone(), password.to_owned());
    spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Phoenixd;
        s.backend.phoenixd_url = url.parse().unwrap();
        s.backend.phoenixd_password = Some(Secret::new(password));
        s.backend.network = Some(Network::Bitcoin);
    })
    .await
}

fn backend(phoenixd: &FakePhoenixd, password: &str) -> Backend<PhoenixdBackend> {
    PhoenixdBackend::new(
        phoenixd.url.parse().unwrap(),
        Secret::new(password),
        Currency::Bitcoin,
    )
    .unwrap()
}

#[tokio::test]
async fn phoenixd_invoices_are_checked_and_seen_paid_with_their_preimage() {
    let phoenixd = FakePhoenixd::start(PASSWORD);
    let app = rayo_on(&phoenixd, PASSWORD).await;
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.callback("satoshi", "amount=21000").await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let checked = check_invoice_on(Currency::Bitcoin, pr, 21_000, &metadata);
    assert_eq!(app.invoices().await[0]["backend_kind"], "phoenixd");

    let phoenix = backend(&phoenixd, PASSWORD);
    let hash: Hash32 = checked.payment_hash.parse().unwrap();
    assert_eq!(
        phoenix.lookup_invoice(&hash).await.unwrap(),
        InvoiceState::Pending
    );
    phoenixd.settle(&checked.payment_hash).await;
    match phoenix.lookup_invoice(&hash).await.unwrap() {
        InvoiceState::Paid {
            preimage,
            paid_at,
            amount_received,
        } => {
            assert_preimage_matches(
                &preimage.expect("a preimage").0.to_hex(),
                &checked.payment_hash,
            );
            assert_eq!(amount_received.msat(), 21_000);
            assert!(
                paid_at > 1_700_000_000,
                "completedAt is milliseconds; rayo keeps seconds"
            );
        }
        other => panic!("expected paid, got {other:?}"),
    }
    assert_eq!(
        phoenix.lookup_invoice(&Hash32([3; 32])).await.unwrap(),
        InvoiceState::Unknown
    );
}

#[tokio::test]
async fn phoenixd_failures_cost_the_wallet_one_short_error_and_store_nothing() {
    let phoenixd = FakePhoenixd::start(PASSWORD);
    let wrong_password = rayo_on(&phoenixd, "guess").await;
    assert_lnurl_error(
        &wrong_password.callback("satoshi", "amount=21000").await,
        "could not create an invoice",
    );
    let err = backend(&phoenixd, "guess")
        .lookup_invoice(&Hash32([3; 32]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused the password"), "{err}");

    let app = rayo_on(&phoenixd, PASSWORD).await;
    assert_lnurl_error(
        &app.callback("satoshi", "amount=21500").await,
        "whole number of satoshis",
    );
    for (fault, needle) in [
        (Fault::ServerError, "could not create an invoice"),
        (Fault::Garbage, "could not create an invoice"),
        (Fault::WrongAmount, "invalid invoice"),
    ] {
        phoenixd.faults.set(fault);
        assert_lnurl_error(&app.callback("satoshi", "amount=21000").await, needle);
    }
    assert!(app.invoices().await.is_empty());
    assert!(wrong_password.invoices().await.is_empty());
}

/// Waits until rayo has taken in phoenixd's answer about its node key `times` times, as its
/// metrics tell.
async fn node_key_learned(app: &TestApp, times: u32) {
    let line = format!("rayo_backend_node_keys_learned_total{{backend=\"default\"}} {times}");
    let learned = app
        .eventually(5, || async { app.metrics().await.contains(&line) })
        .await;
    assert!(learned, "rayo learns the backend's node key ({times})");
}

#[tokio::test]
async fn a_valid_invoice_signed_by_another_node_than_phoenixds_is_refused() {
    let phoenixd = FakePhoenixd::start(PASSWORD);
    let app = rayo_on(&phoenixd, PASSWORD).await;
    node_key_learned(&app, 1).await;
    phoenixd.faults.set(Fault::ForeignSigner);
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "invalid invoice");
    assert!(app.invoices().await.is_empty(), "nothing is stored");

    phoenixd.faults.set(Fault::None);
    let body = app.callback("satoshi", "amount=21000").await;
    assert!(body["pr"].is_string(), "its own invoices pass: {body}");
}

#[tokio::test]
async fn a_node_whose_key_changed_is_learned_again_after_one_refused_invoice() {
    let phoenixd = FakePhoenixd::start(PASSWORD);
    let app = rayo_on(&phoenixd, PASSWORD).await;
    node_key_learned(&app, 1).await;
    phoenixd.faults.set(Fault::RotatedKey);
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "invalid invoice");
    node_key_learned(&app, 2).await;
    let body = app.callback("satoshi", "amount=21000").await;
    assert!(
        body["pr"].is_string(),
        "signed by the node's new key: {body}"
    );

    phoenixd.faults.set(Fault::ForeignSigner);
    for _ in 0..5 {
        let body = app.callback("satoshi", "amount=21000").await;
        assert_lnurl_error(&body, "invalid invoice");
    }
    assert_eq!(
        phoenixd.getinfo_calls(),
        2,
        "invoices signed by strangers do not make rayo ask on every callback"
    );
}
