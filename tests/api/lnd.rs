//! rayo against a fake LND REST API over TLS with a self-signed CA:TRUE certificate.

use lightning_invoice::Currency;
use rayo::backends::{Backend, InvoiceBackend, InvoiceState, LndBackend};
use rayo::domain::{Hash32, Secret};

use crate::support::fake_lnd::{lnd_style_certificate, FakeLnd};
use crate::support::wallet::{assert_preimage_matches, check_invoice_on};
use crate::support::{assert_lnurl_error, spawn_app_with};

const MACAROON: &str = "0201036c6e6402f801030a10b3bc9d28b5b2cb9e4d3c2ae0a1c30e7f1201301a160a0761646472657373120472656164120577726974651a170a08696e766f69636573120472656164120577726974651a";

fn lnd(fake: &FakeLnd, macaroon: &str, cert_pem: Option<&str>) -> Backend<LndBackend> {
    LndBackend::new(
        fake.url.parse().unwrap(),
        Secret::new(macaroon),
        cert_pem.map(str::as_bytes),
        false,
        Currency::Bitcoin,
    )
    .unwrap()
}

#[tokio::test]
async fn lnd_invoices_are_checked_and_seen_settled_through_a_pinned_certificate() {
    let fake = FakeLnd::start(MACAROON);
    let backend = std::sync::Arc::new(lnd(&fake, MACAROON, Some(&fake.tls_cert_pem)));
    let app = spawn_app_with(Some(backend.clone()), |_| {}).await;
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.callback("satoshi", "amount=21001").await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("no invoice: {body}"));
    let checked = check_invoice_on(Currency::Bitcoin, pr, 21_001, &metadata);
    assert_eq!(
        app.invoices().await[0]["backend_ref"],
        "1",
        "LND's add_index"
    );

    let hash: Hash32 = checked.payment_hash.parse().unwrap();
    assert_eq!(
        backend.lookup_invoice(&hash).await.unwrap(),
        InvoiceState::Pending
    );
    fake.settle(&checked.payment_hash);
    match backend.lookup_invoice(&hash).await.unwrap() {
        InvoiceState::Paid {
            preimage,
            amount_received,
            paid_at,
        } => {
            assert_preimage_matches(
                &preimage.expect("a preimage").0.to_hex(),
                &checked.payment_hash,
            );
            assert_eq!(amount_received.msat(), 21_001);
            assert!(paid_at > 0);
        }
        other => panic!("expected settled, got {other:?}"),
    }
    assert_eq!(
        backend.lookup_invoice(&Hash32([2; 32])).await.unwrap(),
        InvoiceState::Unknown
    );
}

#[tokio::test]
async fn lnd_with_another_certificate_or_macaroon_is_refused_in_plain_words() {
    let fake = FakeLnd::start(MACAROON);
    let (other_pem, _, _) = lnd_style_certificate();
    let err = lnd(&fake, MACAROON, Some(&other_pem))
        .lookup_invoice(&Hash32([2; 32]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("other than the pinned one"),
        "{err}"
    );
    let err = lnd(&fake, MACAROON, None)
        .lookup_invoice(&Hash32([2; 32]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unreachable") || err.to_string().contains("certificate"),
        "{err}"
    );
    let err = lnd(&fake, "00ff", Some(&fake.tls_cert_pem))
        .lookup_invoice(&Hash32([2; 32]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused the macaroon"), "{err}");

    let pinned_elsewhere = std::sync::Arc::new(lnd(&fake, MACAROON, Some(&other_pem)));
    let app = spawn_app_with(Some(pinned_elsewhere), |_| {}).await;
    assert_lnurl_error(
        &app.callback("satoshi", "amount=21000").await,
        "could not create an invoice",
    );
    assert!(app.invoices().await.is_empty());
}
