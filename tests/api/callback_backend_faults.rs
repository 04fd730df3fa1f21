//! The callback's last line of defence: whatever the backend returns is checked before a wallet
//! sees it, and a slow or failing backend costs the wallet one clear error, never a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::backend_double::{BackendDouble, Fault};
use crate::support::wallet::check_invoice;
use crate::support::{assert_lnurl_error, spawn_app_with};

#[tokio::test]
async fn callback_refuses_invoices_the_backend_got_wrong() {
    let backend = Arc::new(BackendDouble::new(Fault::None));
    let app = spawn_app_with(Some(backend.clone()), |_| {}).await;
    for fault in [
        Fault::WrongAmount,
        Fault::WrongDescriptionHash,
        Fault::WrongNetwork,
        Fault::AlreadyExpired,
        Fault::MisreportedPaymentHash,
        Fault::Garbage,
    ] {
        backend.set_fault(fault);
        let body = app.callback("satoshi", "amount=21000").await;
        assert_lnurl_error(&body, "invalid invoice");
        assert!(
            app.invoices().await.is_empty(),
            "{fault:?} must store nothing"
        );
    }
    backend.set_fault(Fault::None);
    let metadata = app.get_json("/.well-known/lnurlp/satoshi").await["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.callback("satoshi", "amount=21000").await;
    check_invoice(body["pr"].as_str().unwrap(), 21_000, &metadata);
    assert_eq!(app.invoices().await.len(), 1);
}

#[tokio::test]
async fn callback_reports_a_failing_backend_without_leaking_its_words() {
    let app = spawn_app_with(Some(Arc::new(BackendDouble::new(Fault::Fails))), |_| {}).await;
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "could not create an invoice");
    assert!(!body["reason"].as_str().unwrap().contains("503"));
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn callback_gives_up_on_a_hanging_backend_at_the_configured_timeout() {
    let app = spawn_app_with(Some(Arc::new(BackendDouble::new(Fault::Hangs))), |s| {
        s.backend_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    let body = app.callback("satoshi", "amount=21000").await;
    assert_lnurl_error(&body, "did not answer in time");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the timeout, not the wallet's"
    );
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn a_stalled_backend_holds_at_most_the_configured_number_of_calls() {
    let double = Arc::new(BackendDouble::new(Fault::Hangs));
    let app = spawn_app_with(Some(double.clone()), |s| {
        s.max_backend_calls = 2;
        s.backend_timeout = std::time::Duration::from_millis(800);
    })
    .await;
    let calls = (0..6).map(|_| app.callback("satoshi", "amount=1000"));
    let answers = futures_util::future::join_all(calls).await;
    for answer in &answers {
        assert_lnurl_error(answer, "did not answer in time");
    }
    assert_eq!(
        double
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the others waited for a slot and gave up at the timeout"
    );
    assert!(app.invoices().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backend_holds_only_its_own_share_of_calls() {
    // satoshi's backend never answers; shop's (a Buda account) does.
    let stalled = Arc::new(BackendDouble::new(Fault::Hangs));
    let buda = crate::support::fake_buda::FakeBuda::start("k", "s");
    let exchange = rayo::config::BackendSettings {
        kind: rayo::config::BackendKind::Buda,
        buda_url: buda.url.parse().unwrap(),
        buda_api_key: Some(rayo::domain::Secret::new("k")),
        buda_api_secret: Some(rayo::domain::Secret::new("s")),
        network: Some(rayo::config::Network::Bitcoin),
        ..rayo::config::BackendSettings::default()
    };
    let app = Arc::new(
        spawn_app_with(Some(stalled.clone()), move |s| {
            s.max_backend_calls = 4;
            s.backend_timeout = Duration::from_secs(60);
            s.named_backends = vec![("exchange".parse().unwrap(), exchange)];
        })
        .await,
    );
    app.add_user("shop", serde_json::json!({"backend": "exchange"}))
        .await;

    // More callbacks than its share wait on the stalled backend...
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.callback("satoshi", "amount=1000").await })
        })
        .collect();
    let share_held = crate::support::poll_until(10, || async {
        (stalled.calls.load(std::sync::atomic::Ordering::SeqCst) == 4).then_some(())
    })
    .await;
    assert!(share_held.is_some(), "the stalled backend holds its share");

    // ...and the other backend's user is served at once, while they still wait.
    let served = tokio::time::timeout(Duration::from_secs(10), app.callback("shop", "amount=5000"))
        .await
        .expect("another backend's user does not wait for the stalled one");
    assert!(served["pr"].is_string(), "{served}");
    assert!(waiting.iter().all(|call| !call.is_finished()));
    assert_eq!(
        stalled
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        4,
        "the stalled backend never had more than its share"
    );
    for call in waiting {
        call.abort();
    }
}
