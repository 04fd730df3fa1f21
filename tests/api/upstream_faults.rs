//! Every fake upstream, made to misbehave in each way: the wallet gets one short error within
//! the callback's timeout, the operator's error names the problem, nothing is stored, and the
//! next good answer works again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_invoice::Currency;
use rayo::backends::{
    AnyBackend, BackendError, BudaBackend, ClnBackend, LndBackend, PhoenixdBackend,
};
use rayo::domain::Secret;

use crate::support::fake_buda::FakeBuda;
use crate::support::fake_cln::FakeCln;
use crate::support::fake_lnd::FakeLnd;
use crate::support::fake_node::{Fault, Faults};
use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::{assert_lnurl_error, spawn_app_with};

async fn misbehaving(name: &str, backend: AnyBackend, faults: Faults) {
    let app = spawn_app_with(Some(backend.clone()), |s| {
        s.backend_timeout = Duration::from_millis(500)
    })
    .await;
    let cases = [
        (Fault::Hangs, "did not answer in time"),
        (Fault::ServerError, "could not create an invoice"),
        (Fault::Garbage, "could not create an invoice"),
        (Fault::Trickle, "did not answer in time"),
        (Fault::Reset, "could not create an invoice"),
        (Fault::WrongAmount, "invalid invoice"),
        (Fault::WrongDescription, "invalid invoice"),
    ];
    for (fault, needle) in cases {
        faults.set(fault);
        let started = Instant::now();
        let body = app.callback("satoshi", "amount=21000").await;
        assert_lnurl_error(&body, needle);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name} {fault:?}: answered within the timeout"
        );
        assert!(
            app.invoices().await.is_empty(),
            "{name} {fault:?}: nothing stored"
        );
    }
    faults.set(Fault::ServerError);
    let err = backend
        .lookup_invoice(&rayo::domain::Hash32([1; 32]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Unavailable(_)),
        "{name}: a 5xx is 'unavailable': {err}"
    );
    assert!(
        err.to_string().contains("503"),
        "{name}: the operator sees the status: {err}"
    );
    faults.set(Fault::Garbage);
    let err = backend
        .lookup_invoice(&rayo::domain::Hash32([1; 32]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Protocol(_)),
        "{name}: garbage is a protocol error: {err}"
    );

    faults.set(Fault::None);
    let body = app.callback("satoshi", "amount=21000").await;
    assert!(body["pr"].is_string(), "{name}: recovers by itself: {body}");
}

#[tokio::test]
async fn lnd_that_misbehaves_costs_one_short_error() {
    let fake = FakeLnd::start("abcd");
    let backend = LndBackend::new(
        fake.url.parse().unwrap(),
        Secret::new("abcd"),
        Some(fake.tls_cert_pem.as_bytes()),
        false,
        Currency::Bitcoin,
    )
    .unwrap();
    misbehaving("lnd", Arc::new(backend), fake.faults.clone()).await;
}

#[tokio::test]
async fn cln_that_misbehaves_costs_one_short_error() {
    let fake = FakeCln::start("rune");
    let backend = ClnBackend::new(
        fake.url.parse().unwrap(),
        Secret::new("rune"),
        None,
        Currency::Regtest,
    )
    .unwrap();
    misbehaving("cln", Arc::new(backend), fake.faults.clone()).await;
}

#[tokio::test]
async fn phoenixd_that_misbehaves_costs_one_short_error() {
    let fake = FakePhoenixd::start("pw");
    let backend = PhoenixdBackend::new(
        fake.url.parse().unwrap(),
        Secret::new("pw"),
        Currency::Bitcoin,
    )
    .unwrap();
    misbehaving("phoenixd", Arc::new(backend), fake.faults.clone()).await;
}

#[tokio::test]
async fn buda_that_misbehaves_costs_one_short_error() {
    let fake = FakeBuda::start("k", "s");
    let backend = BudaBackend::new(
        fake.url.parse().unwrap(),
        Secret::new("k"),
        Secret::new("s"),
        Currency::Bitcoin,
    )
    .unwrap();
    misbehaving("buda", Arc::new(backend), fake.faults.clone()).await;
}
