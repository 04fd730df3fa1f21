//! rayo against a fake clnrest. CLN hashes the description itself, so these tests also prove
//! that rayo sends the exact metadata string (and payer data) it serves.

use lightning_invoice::Currency;
use rayo::backends::{ClnBackend, InvoiceBackend, InvoiceState};
use rayo::config::{BackendKind, Network};
use rayo::domain::{Hash32, Secret};
use serde_json::json;

use crate::callback::urlencode;
use crate::support::fake_cln::FakeCln;
use crate::support::wallet::{assert_preimage_matches, check_invoice_on};
use crate::support::{assert_lnurl_error, spawn_app_with, TestApp};

const RUNE: &str = "tU-RLjMiDpY2U0o3W1oFowar36RFGpWloPbW9-RuZdo9MyZpZD0wMjRiOWExZmE4ZTAwNmYxZTM5MzdmNjVmNjZjNDA4ZTZkYThlMWNhNzI4ZWE0MzIyMmE3MzgxZGYxY2M0NDk2MDUmbWV0aG9kXmxpc3R8bWV0aG9kXmdldHxtZXRob2Q9c3VtbWFyeQ==";

async fn rayo_on(cln: &FakeCln, rune: &str) -> TestApp {
    let (url, rune) = (cln.url.clone(), rune.to_owned());
    spawn_app_with(None, move |s| {
        s.backend.kind = BackendKind::Cln;
        s.backend.cln_url = Some(url.parse().unwrap());
        s.backend.cln_rune = Some(Secret::new(rune));
        s.backend.network = Some(Network::Regtest);
    })
    .await
}

#[tokio::test]
async fn cln_commits_to_the_exact_metadata_and_reports_payment() {
    let cln = FakeCln::start(RUNE);
    let app = rayo_on(&cln, RUNE).await;
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.callback("satoshi", "amount=21500").await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let checked = check_invoice_on(Currency::Regtest, pr, 21_500, &metadata);

    let backend = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new(RUNE),
        None,
        Currency::Regtest,
    )
    .unwrap();
    let hash: Hash32 = checked.payment_hash.parse().unwrap();
    assert_eq!(
        backend.lookup_invoice(&hash).await.unwrap(),
        InvoiceState::Pending
    );
    cln.settle(&checked.payment_hash);
    match backend.lookup_invoice(&hash).await.unwrap() {
        InvoiceState::Paid {
            preimage,
            amount_received,
            ..
        } => {
            assert_preimage_matches(
                &preimage.expect("a preimage").0.to_hex(),
                &checked.payment_hash,
            );
            assert_eq!(
                amount_received.msat(),
                21_500,
                "CLN keeps millisatoshi precision"
            );
        }
        other => panic!("expected paid, got {other:?}"),
    }
    assert_eq!(
        backend.lookup_invoice(&Hash32([1; 32])).await.unwrap(),
        InvoiceState::Unknown
    );
}

#[tokio::test]
async fn cln_commits_to_metadata_plus_payer_data() {
    let cln = FakeCln::start(RUNE);
    let app = rayo_on(&cln, RUNE).await;
    app.add_user(
        "alice",
        json!({"payer_data": {"name": {"mandatory": true}}}),
    )
    .await;
    let metadata = app.get_json("/.well-known/lnurlp/alice").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let payer_data = r#"{"name":"Hal"}"#;
    let body = app
        .callback(
            "alice",
            &format!("amount=3000&payerdata={}", urlencode(payer_data)),
        )
        .await;
    check_invoice_on(
        Currency::Regtest,
        body["pr"].as_str().unwrap(),
        3000,
        &format!("{metadata}{payer_data}"),
    );
}

#[tokio::test]
async fn cln_refusing_the_rune_costs_the_wallet_one_short_error() {
    let cln = FakeCln::start(RUNE);
    let app = rayo_on(&cln, "not-the-rune").await;
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "could not create an invoice");
    assert!(app.invoices().await.is_empty());
    let backend = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new("not-the-rune"),
        None,
        Currency::Regtest,
    )
    .unwrap();
    let err = backend.lookup_invoice(&Hash32([1; 32])).await.unwrap_err();
    assert!(err.to_string().contains("refused the rune"), "{err}");
    assert!(
        !err.to_string().contains("not-the-rune"),
        "the rune is never quoted: {err}"
    );
}

#[tokio::test]
async fn clnrest_over_tls_is_reached_only_through_its_pinned_certificate() {
    let (cln, pem) = FakeCln::start_tls(RUNE);
    let pinned = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new(RUNE),
        Some(pem.as_bytes()),
        Currency::Regtest,
    )
    .unwrap();
    assert!(pinned.identity().await.unwrap().node_id.is_some());

    let (other_pem, _) = crate::support::fake_lnd::self_signed_tls();
    let impostor = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new(RUNE),
        Some(other_pem.as_bytes()),
        Currency::Regtest,
    )
    .unwrap();
    let refused = impostor
        .lookup_invoice(&Hash32([1; 32]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("pinned") || refused.contains("certificate"),
        "{refused}"
    );
    // Without a pin, the self-made certificate is not trusted either.
    let unpinned = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new(RUNE),
        None,
        Currency::Regtest,
    )
    .unwrap();
    assert!(unpinned.lookup_invoice(&Hash32([1; 32])).await.is_err());
}
