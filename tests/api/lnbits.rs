//! rayo against a real LNbits: invoices made through the callback, checked like a wallet
//! checks them, paid from another LNbits wallet, and seen paid by rayo's lookup.

use lightning_invoice::Currency;
use rayo::backends::{InvoiceBackend, InvoiceState, LnbitsBackend};
use rayo::config::{BackendKind, Network};
use rayo::domain::{Hash32, Secret};

use crate::support::lnbits::{self, Lnbits};
use crate::support::wallet::{assert_preimage_matches, check_invoice_on};
use crate::support::{assert_lnurl_error, spawn_app_with, TestApp};

async fn rayo_on(lnbits: &Lnbits, invoice_key: &str) -> TestApp {
    let (url, key) = (lnbits.url.clone(), invoice_key.to_owned());
    spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Lnbits;
        s.backend.lnbits_url = Some(url.parse().unwrap());
        s.backend.lnbits_invoice_key = Some(Secret::new(key));
        s.backend.network = Some(Network::Bitcoin);
    })
    .await
}

#[tokio::test]
async fn lnbits_invoices_are_checked_paid_and_seen_paid() {
    let Some(lnbits) = lnbits::start().await else {
        return;
    };
    let app = rayo_on(&lnbits, &lnbits.payee_invoice_key).await;
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = app
        .callback("satoshi", "amount=21000&comment=from+lnbits")
        .await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let checked = check_invoice_on(Currency::Bitcoin, pr, 21_000, &metadata);
    let stored = app.invoices().await;
    assert_eq!(stored[0]["backend_kind"], "lnbits");
    assert_eq!(stored[0]["bolt11"], pr);

    let backend = LnbitsBackend::new(
        lnbits.url.parse().unwrap(),
        Secret::new(lnbits.payee_invoice_key.clone()),
        Currency::Bitcoin,
    )
    .unwrap();
    let hash: Hash32 = checked.payment_hash.parse().unwrap();
    assert_eq!(
        backend.lookup_invoice(&hash).await.unwrap(),
        InvoiceState::Pending
    );

    lnbits.pay(pr).await;
    match backend.lookup_invoice(&hash).await.unwrap() {
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
            assert!(paid_at > 0);
        }
        other => panic!("expected paid, got {other:?}"),
    }
    let unknown = Hash32([7; 32]);
    assert_eq!(
        backend.lookup_invoice(&unknown).await.unwrap(),
        InvoiceState::Unknown
    );
}

#[tokio::test]
async fn lnbits_refusals_reach_the_wallet_as_one_short_error_and_store_nothing() {
    let Some(lnbits) = lnbits::start().await else {
        return;
    };
    let app = rayo_on(&lnbits, "not-a-real-key").await;
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "could not create an invoice");
    assert!(
        !body["reason"]
            .as_str()
            .unwrap()
            .contains("Wallet not found"),
        "upstream words stay in the log"
    );
    // LNbits makes whole-satoshi invoices only.
    let app = rayo_on(&lnbits, &lnbits.payee_invoice_key).await;
    assert_lnurl_error(
        &app.callback("satoshi", "amount=21500").await,
        "whole number of satoshis",
    );
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_lnbits_costs_the_wallet_one_clear_error() {
    let unreachable = crate::support::ports::ReservedPort::new();
    let port = unreachable.port();
    let app = spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Lnbits;
        s.backend.lnbits_url = Some(format!("http://127.0.0.1:{port}/").parse().unwrap());
        s.backend.lnbits_invoice_key = Some(Secret::new("k"));
    })
    .await;
    assert_lnurl_error(
        &app.callback("satoshi", "amount=21000").await,
        "could not create an invoice",
    );
    assert!(app.invoices().await.is_empty());
}

/// `rayo backend check` with the given flags, from a directory with no `.env`.
fn backend_check(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rayo"))
        .current_dir(dir.path())
        .env_remove("RAYO_BACKEND")
        .env_remove("RAYO_NETWORK")
        .args(["backend", "check"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn backend_check_reports_lnbits_in_plain_words() {
    let Some(lnbits) = lnbits::start().await else {
        return;
    };
    let url = lnbits.url.as_str();
    let key = lnbits.payee_invoice_key.as_str();
    let (ok, text) = backend_check(&[
        "--backend",
        "lnbits",
        "--lnbits-url",
        url,
        "--lnbits-invoice-key",
        key,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("description hash: yes"), "{text}");
    assert!(text.contains("identity: wallet 'payee'"), "{text}");
    assert!(text.contains("whole satoshis only"), "{text}");
    assert!(text.contains("pending, as it should be"), "{text}");
    assert!(!text.contains(key), "the key is never printed: {text}");

    let (ok, text) = backend_check(&[
        "--backend",
        "lnbits",
        "--lnbits-url",
        url,
        "--lnbits-invoice-key",
        "nope",
    ]);
    assert!(!ok);
    assert!(
        text.contains("knows no wallet with this invoice key"),
        "{text}"
    );

    let (ok, text) = backend_check(&[
        "--backend",
        "lnbits",
        "--lnbits-url",
        url,
        "--lnbits-invoice-key",
        key,
        "--network",
        "regtest",
    ]);
    assert!(!ok);
    assert!(text.contains("invoice is for Bitcoin"), "{text}");
}

#[test]
fn backend_check_passes_for_the_dev_backend_and_explains_missing_settings() {
    let (ok, text) = backend_check(&[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("backend: dev") && text.contains("network: Regtest"),
        "{text}"
    );
    let (ok, text) = backend_check(&["--backend", "lnbits"]);
    assert!(!ok);
    assert!(text.contains("needs RAYO_LNBITS_URL"), "{text}");
}

#[tokio::test]
async fn a_payment_on_lnbits_is_noticed_within_seconds_verified_and_sent_to_the_webhook() {
    let Some(lnbits) = lnbits::start().await else {
        return;
    };
    let receiver = crate::support::receiver::Receiver::start();
    let app = rayo_on(&lnbits, &lnbits.payee_invoice_key).await;
    let alice = app
        .add_user("alice", serde_json::json!({"webhook_url": receiver.url}))
        .await;
    let secret = alice["webhook_secret"].as_str().unwrap().to_owned();
    let body = app.callback("alice", "amount=7000").await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let verify = body["verify"].as_str().unwrap().to_owned();
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // The watcher's websocket is open before the payment (start-up reconciling is not what
    // finds it).
    let open = "rayo_payment_channels_open{backend=\"default\"} 1";
    assert!(
        app.eventually(10, || async { app.metrics().await.contains(open) })
            .await,
        "the payment channel to LNbits opens"
    );

    lnbits.pay(pr).await;
    let paid = app.wait_for_status(&hash, "paid", 2).await;
    assert_preimage_matches(paid["preimage"].as_str().unwrap(), &hash);

    let verified = crate::support::get_json_url(&app.client, &verify).await;
    assert_eq!(verified["settled"], true);
    assert_eq!(verified["preimage"], paid["preimage"]);

    assert!(
        app.eventually(5, || async { receiver.received().len() == 1 })
            .await
    );
    let delivery = &receiver.received()[0];
    assert!(crate::support::receiver::documented_verifier_accepts(
        &secret,
        &delivery.signature,
        &delivery.body
    ));
    let event: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(event["type"], "invoice.paid");
    assert_eq!(event["data"]["invoice"]["preimage"], paid["preimage"]);
}
