//! Nostr Wallet Connect end to end: rayo against a real relay (PyPI nostr-relay) and a fake
//! wallet service written with nostr-tools (see `support::nwc`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_invoice::Currency;
use serde_json::{json, Value};

use rayo::backends::{NwcBackend, NwcUri, RelayPool};
use rayo::config::{BackendKind, BackendSettings, Network, Settings};
use rayo::domain::Secret;
use rayo::net::Reach;

use crate::support::binary::{rayo, reserve_port, run, run_json, LoggedServer};
use crate::support::fake_node::Fault;
use crate::support::nwc::{FakeNwcWallet, NostrRelay, WalletSetup};
use crate::support::{assert_lnurl_error, spawn_app_in, spawn_app_with, TestApp};

fn nwc(uri: &str) -> BackendSettings {
    BackendSettings {
        kind: BackendKind::Nwc,
        nwc_uri: Some(Secret::new(uri)),
        network: Some(Network::Regtest),
        ..BackendSettings::default()
    }
}

fn on_wallet(uri: String) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.backend = nwc(&uri);
        s.backend_timeout = Duration::from_secs(3);
    }
}

/// The payment hash of an invoice a callback answered with.
fn hash_of(answer: &Value) -> String {
    let verify = answer["verify"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    verify.rsplit('/').nth(1).unwrap().to_owned()
}

/// One relay, and two wallets on it.
fn relay_and_two_wallets() -> Option<(NostrRelay, FakeNwcWallet, FakeNwcWallet)> {
    let relay = NostrRelay::start()?;
    let first = FakeNwcWallet::start(&relay, WalletSetup::default())?;
    let second = FakeNwcWallet::start(&relay, WalletSetup::default())?;
    Some((relay, first, second))
}

fn relay_and_wallet(setup: WalletSetup<'_>) -> Option<(NostrRelay, FakeNwcWallet)> {
    let relay = NostrRelay::start()?;
    let wallet = FakeNwcWallet::start(&relay, setup)?;
    Some((relay, wallet))
}

#[tokio::test]
async fn a_payer_gets_an_invoice_from_the_users_wallet_and_its_payment_is_noticed() {
    let Some((_relay, wallet)) = relay_and_wallet(WalletSetup::default()) else {
        return;
    };
    let app = spawn_app_with(None, on_wallet(wallet.uri.clone())).await;
    app.add_user("alice", json!({})).await;

    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let answer = app.callback("alice", "amount=21000").await;
        took.push(started.elapsed());
        assert!(
            answer["pr"].as_str().unwrap().starts_with("lnbcrt210n"),
            "{answer}"
        );
    }
    took.sort();
    eprintln!(
        "callback through NWC on loopback: median {:?}, max {:?}",
        took[2], took[4]
    );
    let answer = app.callback("alice", "amount=21000").await;
    let hash = hash_of(&answer);
    wallet.settle(&hash, true).await;
    let paid = app.wait_for_status(&hash, "paid", 10).await;
    assert_eq!(paid["amount_msat"], 21000);

    // Paid while rayo is down: found by lookup when it starts again.
    let answer = app.callback("alice", "amount=21000").await;
    let missed = hash_of(&answer);
    let data = app.stop().await;
    wallet.settle(&missed, false).await;
    let app = spawn_app_in(data, None, None, on_wallet(wallet.uri.clone())).await;
    app.wait_for_status(&missed, "paid", 10).await;
}

/// Alice's callback's answer and how long it took.
async fn timed_callback(app: &TestApp) -> (Value, Duration) {
    timed_callback_for(app, "alice").await
}

#[tokio::test]
async fn answers_that_are_not_the_wallets_own_are_ignored_and_the_payer_hears_in_time() {
    let Some((_relay, wallet)) = relay_and_wallet(WalletSetup::default()) else {
        return;
    };
    let app = spawn_app_with(None, on_wallet(wallet.uri.clone())).await;
    app.add_user("alice", json!({})).await;
    app.callback("alice", "amount=21000").await;
    let stored = app.invoices().await.len();
    for mode in [
        "silent",
        "wrong-signer",
        "garbage",
        "not-addressed",
        "wrong-request",
    ] {
        wallet.set_mode(mode).await;
        let (answer, took) = timed_callback(&app).await;
        assert_lnurl_error(&answer, "did not answer in time");
        assert!(took < Duration::from_secs(5), "{mode}: {took:?}");
    }
    for code in ["RATE_LIMITED", "QUOTA_EXCEEDED", "UNAUTHORIZED", "INTERNAL"] {
        wallet.set_mode(&format!("error:{code}")).await;
        let (answer, _) = timed_callback(&app).await;
        assert_lnurl_error(&answer, "could not create an invoice");
    }
    assert_eq!(app.invoices().await.len(), stored, "nothing was stored");
    wallet.set_mode("normal").await;
    assert!(app.callback("alice", "amount=21000").await["pr"].is_string());
}

#[tokio::test]
async fn invoices_that_ignore_the_description_hash_or_the_amount_are_refused() {
    let Some((_relay, wallet)) = relay_and_wallet(WalletSetup::default()) else {
        return;
    };
    let app = spawn_app_with(None, on_wallet(wallet.uri.clone())).await;
    app.add_user("alice", json!({})).await;
    for fault in [Fault::WrongDescription, Fault::WrongAmount] {
        wallet.faults.set(fault);
        let answer = app.callback("alice", "amount=21000").await;
        assert_lnurl_error(&answer, "invalid invoice");
    }
    assert!(app.invoices().await.is_empty());

    // `rayo backend check` names the missing `h`.
    wallet.faults.set(Fault::WrongDescription);
    let pool = RelayPool::new(Reach::Anywhere);
    let backend = NwcBackend::new(
        NwcUri::parse(&wallet.uri).unwrap(),
        &pool,
        Currency::Regtest,
    );
    let report = rayo::operator::check_backend(
        &backend,
        std::time::SystemTime::now(),
        &rayo::clock::OsRandom,
    )
    .await;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("commits to no description hash")),
        "{:?}",
        report.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_mid_request_fails_that_request_and_rayo_reconnects() {
    let Some((mut relay, wallet)) = relay_and_wallet(WalletSetup::default()) else {
        return;
    };
    let app = Arc::new(spawn_app_with(None, on_wallet(wallet.uri.clone())).await);
    app.add_user("alice", json!({})).await;
    assert!(app.callback("alice", "amount=21000").await["pr"].is_string());

    wallet.set_mode("silent").await;
    let seen = wallet.requests_seen().await;
    let asking = app.clone();
    let pending = tokio::spawn(async move { timed_callback(&asking).await });
    assert!(
        app.eventually(5, || async { wallet.requests_seen().await > seen })
            .await,
        "the wallet has the request"
    );
    tokio::task::block_in_place(|| relay.stop());
    let (answer, took) = pending.await.unwrap();
    assert_eq!(answer["status"], "ERROR", "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    tokio::task::block_in_place(|| relay.restart());
    wallet.set_mode("normal").await;
    let back = app
        .eventually(30, || async {
            app.callback("alice", "amount=21000").await["pr"].is_string()
        })
        .await;
    assert!(back, "invoices come again once the relay is back");
}

#[tokio::test]
async fn wallets_without_nip44_are_spoken_to_in_nip04() {
    for setup in [
        WalletSetup {
            encryption: "nip04",
            ..WalletSetup::default()
        },
        WalletSetup {
            encryption: "nip04",
            info: false,
            ..WalletSetup::default()
        },
    ] {
        let Some((_relay, wallet)) = relay_and_wallet(setup) else {
            return;
        };
        let app = spawn_app_with(None, on_wallet(wallet.uri.clone())).await;
        app.add_user("alice", json!({})).await;
        let hash = hash_of(&app.callback("alice", "amount=21000").await);
        wallet.settle(&hash, true).await;
        app.wait_for_status(&hash, "paid", 10).await;
    }
}

#[tokio::test]
async fn two_users_with_their_own_wallets_on_one_relay_are_each_paid_and_told() {
    let Some((_relay, first, second)) = relay_and_two_wallets() else {
        return;
    };
    let (a, b) = (nwc(&first.uri), nwc(&second.uri));
    let app = spawn_app_with(None, move |s| {
        s.named_backends = vec![
            ("alice-wallet".parse().unwrap(), a),
            ("bob-wallet".parse().unwrap(), b),
        ];
    })
    .await;
    app.add_user("alice", json!({"backend": "alice-wallet"}))
        .await;
    app.add_user("bob", json!({"backend": "bob-wallet"})).await;
    let (alice, bob) = tokio::join!(
        app.callback("alice", "amount=21000"),
        app.callback("bob", "amount=42000")
    );
    let (alice, bob) = (hash_of(&alice), hash_of(&bob));
    assert_eq!((first.invoices_made(), second.invoices_made()), (1, 1));
    tokio::join!(first.settle(&alice, true), second.settle(&bob, true));
    let alice = app.wait_for_status(&alice, "paid", 10).await;
    let bob = app.wait_for_status(&bob, "paid", 10).await;
    assert_eq!(
        (alice["user"].clone(), alice["amount_msat"].clone()),
        (json!("alice"), json!(21000))
    );
    assert_eq!(
        (bob["user"].clone(), bob["amount_msat"].clone()),
        (json!("bob"), json!(42000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_check_reports_the_connection_and_warns_when_it_can_spend() {
    let Some((_relay, wallet)) = relay_and_wallet(WalletSetup {
        methods: "make_invoice lookup_invoice get_info pay_invoice",
        ..WalletSetup::default()
    }) else {
        return;
    };
    let secret = wallet.uri.rsplit("secret=").next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let checked = rayo(dir.path(), port)
        .args(["backend", "check"])
        .env("RAYO_BACKEND", "nwc")
        .env("RAYO_NWC_URI", &wallet.uri)
        .env("RAYO_NETWORK", "regtest")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    eprintln!("{said}");
    assert!(checked.status.success(), "{said}");
    for expected in [
        "encryption: NIP-44 v2",
        "wallet network: regtest",
        "WARNING: this connection can spend (pay_invoice)",
        "ok: the backend is usable",
    ] {
        assert!(said.contains(expected), "{expected:?} in {said}");
    }
    assert!(
        !said.contains(&secret),
        "the connection secret is never shown"
    );

    // Nor is it logged by a server that uses it.
    let mut command = rayo(dir.path(), port);
    command
        .env("RAYO_BACKEND", "nwc")
        .env("RAYO_NWC_URI", &wallet.uri)
        .env("RAYO_NETWORK", "regtest")
        .env("RAYO_LOG", "debug");
    let server = LoggedServer::start(command, port);
    let answer = reqwest::get(format!(
        "http://127.0.0.1:{port}/lnurlp/satoshi/callback?amount=21000"
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert!(answer["pr"].is_string(), "{answer}");
    let logs = server.stop().await;
    assert!(
        !logs.contains(&secret),
        "the connection secret is not in the logs"
    );
}

#[tokio::test]
async fn each_user_can_bring_their_own_wallet_and_only_they_depend_on_it() {
    let Some((_relay, first, second)) = relay_and_two_wallets() else {
        return;
    };
    // The default backend is the dev one; alice and bob bring their wallets.
    let app = spawn_app_with(None, |s| s.nostr_allow_private_relays = true).await;
    let alice = app.add_user("alice", json!({"nwc": first.uri})).await;
    app.add_user("bob", json!({"nwc": second.uri})).await;
    let shown = alice["nwc"].as_str().unwrap();
    assert!(shown.ends_with("secret=<redacted>"), "{shown}");
    let secret = first.uri.rsplit("secret=").next().unwrap();
    assert!(!alice.to_string().contains(secret));

    let (a, b) = tokio::join!(
        app.callback("alice", "amount=21000"),
        app.callback("bob", "amount=42000")
    );
    let (a, b) = (hash_of(&a), hash_of(&b));
    assert_eq!((first.invoices_made(), second.invoices_made()), (1, 1));

    // What NWC adds to a callback here: the same server, a user on the dev backend.
    let (mut own, mut dev) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        own.push(timed_callback_for(&app, "alice").await.1);
        dev.push(timed_callback_for(&app, "satoshi").await.1);
    }
    own.sort();
    dev.sort();
    eprintln!(
        "callback median on loopback: {:?} through NWC (relay and wallet included), {:?} on the dev backend",
        own[4], dev[4]
    );
    assert_eq!(app.invoice(&a).await["backend"], "user-wallet");
    tokio::join!(first.settle(&a, true), second.settle(&b, true));
    app.wait_for_status(&a, "paid", 10).await;
    app.wait_for_status(&b, "paid", 10).await;

    // Paid while rayo is down: its watcher starts with it, and looks the invoice up.
    let missed = hash_of(&app.callback("alice", "amount=21000").await);
    let data = app.stop().await;
    first.settle(&missed, false).await;
    let app = spawn_app_in(data, None, None, |s| s.nostr_allow_private_relays = true).await;
    app.wait_for_status(&missed, "paid", 10).await;

    // bob's wallet goes offline: bob's payers hear so in time, alice's are not affected.
    drop(second);
    let (bob, alice) = tokio::join!(
        timed_callback_for(&app, "bob"),
        app.callback("alice", "amount=21000")
    );
    assert_lnurl_error(&bob.0, "did not answer in time");
    assert!(alice["pr"].is_string(), "{alice}");

    // Without her wallet, alice is served by the default backend again.
    let updated = app
        .admin(
            reqwest::Method::PATCH,
            "/users/alice",
            Some(json!({"nwc": ""})),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let hash = hash_of(&app.callback("alice", "amount=21000").await);
    assert_eq!(app.invoice(&hash).await["backend"], "default");
}

/// `user`'s callback's answer and how long it took.
async fn timed_callback_for(app: &TestApp, user: &str) -> (Value, Duration) {
    let started = Instant::now();
    let answer = app.callback(user, "amount=21000").await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_wallet_uri_that_does_not_parse_or_names_a_private_relay_is_refused_with_the_reason() {
    let app = spawn_app_with(None, |_| {}).await;
    for (uri, reason) in [
        ("https://example.com", "starts with nostr+walletconnect://"),
        ("nostr+walletconnect://abcd?relay=wss://r&secret=00", "public key"),
        (
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c",
            "names no relay",
        ),
        // Relays a payer would never hear back through: refused now, with the setting.
        (
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=ws://127.0.0.1:7777&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c",
            "127.0.0.1 is not a public address; users' own wallets may only use public relays unless RAYO_NOSTR_ALLOW_PRIVATE_RELAYS=true",
        ),
        (
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss://localhost.&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c",
            "RAYO_NOSTR_ALLOW_PRIVATE_RELAYS=true",
        ),
        (
            "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=ws://[::ffff:7f00:1]:7777&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c",
            "RAYO_NOSTR_ALLOW_PRIVATE_RELAYS=true",
        ),
    ] {
        let answer = app
            .admin(
                reqwest::Method::POST,
                "/users",
                Some(json!({"name": "alice", "settings": {"nwc": uri}})),
            )
            .await;
        assert_eq!(answer.status(), 422, "{uri}");
        let body: Value = answer.json().await.unwrap();
        assert!(body.to_string().contains(reason), "{uri}: {body}");
    }
}

#[test]
fn the_cli_reads_a_wallet_uri_from_standard_input_and_never_shows_its_secret() {
    use std::io::Write;
    const SECRET: &str = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";
    let uri = format!(
        "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss://relay.example&secret={SECRET}"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let mut adding = rayo(dir.path(), port)
        .args(["user", "add", "alice", "--nwc", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(adding.stdin.take().unwrap(), "{uri}").unwrap();
    let added = adding.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&added.stdout).into_owned()
        + &String::from_utf8_lossy(&added.stderr);
    assert!(added.status.success(), "{said}");
    assert!(said.contains("own wallet:"), "{said}");
    assert!(!said.contains(SECRET), "{said}");

    let shown = run_json(dir.path(), port, &["user", "show", "alice"]);
    assert_eq!(
        shown["nwc"],
        "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss%3A%2F%2Frelay.example%2F&secret=<redacted>"
    );
    run(dir.path(), port, &["user", "update", "alice", "--nwc", ""]);
    let shown = run_json(dir.path(), port, &["user", "show", "alice"]);
    assert!(shown.get("nwc").is_none(), "{shown}");
}
