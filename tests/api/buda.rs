//! rayo against a fake Buda.com that checks key, nonce and signature like the real API.

use lightning_invoice::{Currency, SignedRawBolt11Invoice};
use rayo::backends::{BudaBackend, InvoiceBackend, InvoiceState};
use rayo::config::{BackendKind, Network};
use rayo::domain::{Hash32, Secret};

use crate::support::fake_buda::FakeBuda;
use crate::support::{assert_lnurl_error, spawn_app_with, TestApp};

const KEY: &str = "buda-api-key";
const SECRET: &str = "buda-api-secret";

async fn rayo_on(buda: &FakeBuda, secret: &str) -> TestApp {
    let (url, secret) = (buda.url.clone(), secret.to_owned());
    spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Buda;
        s.backend.buda_url = url.parse().unwrap();
        s.backend.buda_api_key = Some(Secret::new(KEY));
        s.backend.buda_api_secret = Some(Secret::new(secret));
        s.backend.network = Some(Network::Bitcoin);
    })
    .await
}

fn memo_and_hash(pr: &str) -> (String, Hash32, Option<u64>) {
    let invoice: SignedRawBolt11Invoice = pr.parse().unwrap();
    assert!(invoice.check_signature());
    let raw = invoice.raw_invoice();
    let memo = raw
        .description()
        .expect("Buda invoices carry a memo")
        .as_inner()
        .0
        .clone();
    (
        memo,
        Hash32(raw.payment_hash().unwrap().0.to_byte_array()),
        raw.amount_pico_btc().map(|p| p / 10),
    )
}

use bitcoin_hashes::Hash as _;

#[tokio::test]
async fn buda_invoices_carry_the_description_as_memo_and_show_up_as_deposits() {
    let buda = FakeBuda::start(KEY, SECRET);
    let app = rayo_on(&buda, SECRET).await;
    let body = app.callback("satoshi", "amount=21000").await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let (memo, hash, amount) = memo_and_hash(pr);
    assert_eq!(
        memo,
        "Demo address on a rayo dev server: no real money moves"
    );
    assert_eq!(amount, Some(21_000));
    let stored = &app.invoices().await[0];
    assert_eq!(stored["backend_kind"], "buda");
    assert_eq!(stored["memo"], memo);
    assert!(stored.get("description_hash").is_none());

    let backend = BudaBackend::new(
        buda.url.parse().unwrap(),
        Secret::new(KEY),
        Secret::new(SECRET),
        Currency::Bitcoin,
    )
    .unwrap();
    assert_eq!(
        backend.lookup_invoice(&hash).await.unwrap(),
        InvoiceState::Unknown,
        "unpaid invoices are not deposits"
    );
    // Sixty newer deposits push ours onto the second page of the listing.
    buda.settle(pr, 60);
    match backend.lookup_invoice(&hash).await.unwrap() {
        InvoiceState::Paid {
            preimage,
            amount_received,
            ..
        } => {
            assert_eq!(preimage, None, "Buda does not reveal preimages");
            assert_eq!(amount_received.msat(), 21_000);
        }
        other => panic!("expected paid, got {other:?}"),
    }
}

#[tokio::test]
async fn buda_does_not_advertise_what_it_cannot_do() {
    let buda = FakeBuda::start(KEY, SECRET);
    let app = rayo_on(&buda, SECRET).await;
    assert_lnurl_error(
        &app.callback("satoshi", "amount=21500").await,
        "whole number of satoshis",
    );
    let wrong = rayo_on(&buda, "wrong-secret").await;
    assert_lnurl_error(
        &wrong.callback("satoshi", "amount=21000").await,
        "could not create an invoice",
    );
    let backend = BudaBackend::new(
        buda.url.parse().unwrap(),
        Secret::new(KEY),
        Secret::new("wrong-secret"),
        Currency::Bitcoin,
    )
    .unwrap();
    let err = backend.lookup_invoice(&Hash32([1; 32])).await.unwrap_err();
    assert!(
        err.to_string().contains("refused the API key or signature"),
        "{err}"
    );
    assert!(app.invoices().await.is_empty() && wrong.invoices().await.is_empty());
}
