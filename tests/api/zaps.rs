//! NIP-57 zaps end to end: a zap request checked at the callback, an invoice committing to it,
//! and after payment a signed receipt on the relays, even when a relay is down at first or
//! rayo restarts before delivering. Also NIP-05.

use bitcoin_hashes::{sha256, Hash};
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, Tag};
use serde_json::{json, Value};

use crate::callback::urlencode;
use crate::support::relay::Relay;
use crate::support::wallet::{assert_preimage_matches, check_invoice};
use crate::support::{assert_lnurl_error, spawn_app_in, spawn_app_with, TestApp};

const RECIPIENT: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const NOTE: &str = "5c83da77af1dec6d7289834998ad7aafbd9e2191396d75ec3cc27f5a77226f36";

pub(crate) fn sender() -> Keys {
    Keys::parse("00000000000000000000000000000000000000000000000000000000000000a1").unwrap()
}

pub(crate) fn zap_request(relays: &[&str], amount_msat: u64) -> String {
    let mut relay_tag = vec!["relays"];
    relay_tag.extend_from_slice(relays);
    EventBuilder::new(Kind::from(9734), "Great post!")
        .tags([
            Tag::parse(relay_tag).unwrap(),
            Tag::parse(["amount", &amount_msat.to_string()]).unwrap(),
            Tag::parse(["p", RECIPIENT]).unwrap(),
            Tag::parse(["e", NOTE]).unwrap(),
            Tag::parse(["P", &sender().public_key().to_hex()]).unwrap(),
        ])
        .sign_with_keys(&sender())
        .unwrap()
        .as_json()
}

pub(crate) async fn zap(app: &TestApp, request: &str, amount_msat: u64) -> (String, String) {
    let body = app
        .callback(
            "satoshi",
            &format!("amount={amount_msat}&nostr={}", urlencode(request)),
        )
        .await;
    let pr = body["pr"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    // A wallet checks `h` against the zap request it sent, byte for byte.
    let hash = check_invoice(&pr, amount_msat, request).payment_hash;
    (pr, hash)
}

pub(crate) async fn receipt_on(relay: &Relay, app: &TestApp, seconds: u64) -> Event {
    assert!(
        app.eventually(seconds, || async { !relay.events().is_empty() })
            .await,
        "no receipt on {}",
        relay.url
    );
    relay.events().remove(0)
}

fn tag<'a>(event: &'a Event, name: &str) -> Option<&'a [String]> {
    event
        .tags
        .iter()
        .map(|t| t.as_slice())
        .find(|t| t.first().map(String::as_str) == Some(name))
}

#[tokio::test]
async fn a_zap_is_paid_and_its_signed_receipt_reaches_the_relay() {
    let relay = Relay::start();
    let app = spawn_app_with(None, |s| s.nostr_allow_private_relays = true).await;
    let pay_request = app.get_json("/.well-known/lnurlp/satoshi").await;
    assert_eq!(pay_request["allowsNostr"], true);
    let server_key = pay_request["nostrPubkey"].as_str().unwrap().to_owned();
    assert_eq!(server_key.len(), 64);

    let request = zap_request(&[&relay.url], 21_000);
    let (pr, hash) = zap(&app, &request, 21_000).await;
    assert_eq!(
        app.invoice(&hash).await["hashed_description"],
        request.as_str()
    );
    app.settle(&hash).await;
    let paid = app.invoice(&hash).await;

    let receipt = receipt_on(&relay, &app, 5).await;
    receipt
        .verify()
        .expect("the receipt's id and signature verify");
    assert_eq!(receipt.kind.as_u16(), 9735);
    assert_eq!(receipt.pubkey.to_hex(), server_key);
    assert_eq!(receipt.content, "");
    assert_eq!(
        receipt.created_at.as_u64(),
        paid["paid_at"].as_u64().unwrap()
    );
    assert_eq!(tag(&receipt, "p").unwrap()[1], RECIPIENT);
    assert_eq!(tag(&receipt, "e").unwrap()[1], NOTE);
    assert_eq!(
        tag(&receipt, "P").unwrap()[1],
        sender().public_key().to_hex()
    );
    assert_eq!(tag(&receipt, "bolt11").unwrap()[1], pr);
    let description = &tag(&receipt, "description").unwrap()[1];
    assert_eq!(description, &request);
    let invoice: lightning_invoice::Bolt11Invoice = pr.parse().unwrap();
    let lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) = invoice.description() else {
        panic!("a zap invoice commits to a hash");
    };
    assert_eq!(h.0, sha256::Hash::hash(description.as_bytes()));
    assert_preimage_matches(&tag(&receipt, "preimage").unwrap()[1], &hash);

    // The receipt also shows in the webhook view of events.
    let events = events_for(&app, &hash).await;
    assert_eq!(events[0]["type"], "zap.receipt");
    assert!(
        app.eventually(5, || async {
            let events = events_for(&app, &hash).await;
            events[0]["state"] == "delivered"
        })
        .await
    );
}

#[tokio::test]
async fn a_relay_that_is_down_gets_the_receipt_once_it_is_up_even_across_a_restart() {
    let relay = Relay::reserve();
    let late = Relay::reserve();
    let settings = |s: &mut rayo::config::Settings| {
        s.nostr_allow_private_relays = true;
        s.webhook_first_retry = std::time::Duration::from_secs(1);
    };
    let app = spawn_app_with(None, settings).await;
    let request = zap_request(&[&relay.url, &late.url], 5_000);
    let (_, hash) = zap(&app, &request, 5_000).await;
    app.settle(&hash).await;
    let tried = app
        .eventually(10, || async {
            let queued = events_for(&app, &hash).await;
            let receipts: Vec<&Value> = queued
                .iter()
                .filter(|q| q["type"] == "zap.receipt")
                .collect();
            !receipts.is_empty() && receipts.iter().all(|r| r["attempts"].as_u64() >= Some(1))
        })
        .await;
    assert!(tried, "rayo tried the relays while they were down");

    // One relay comes up while rayo runs...
    relay.listen();
    receipt_on(&relay, &app, 10).await;

    // ...the other only after rayo was restarted.
    let data_dir = app.stop().await;
    late.listen();
    let app = spawn_app_in(data_dir, None, None, settings).await;
    let receipt = receipt_on(&late, &app, 10).await;
    receipt.verify().unwrap();
    assert_eq!(receipt.id, relay.events()[0].id, "the same receipt");
}

#[tokio::test]
async fn zap_receipts_follow_a_payment_seen_by_a_backend_watcher() {
    let fake = crate::support::fake_lnd::FakeLnd::start("0201036c6e64");
    let backend: rayo::backends::AnyBackend = std::sync::Arc::new(
        rayo::backends::LndBackend::new(
            fake.url.parse().unwrap(),
            rayo::domain::Secret::new("0201036c6e64"),
            Some(fake.tls_cert_pem.as_bytes()),
            false,
            rayo::backends::InvoiceNetwork::Bitcoin,
        )
        .unwrap(),
    );
    let relay = Relay::start();
    let app = spawn_app_with(Some(backend), |s| s.nostr_allow_private_relays = true).await;
    let request = zap_request(&[&relay.url], 3_000);
    let body = app
        .callback(
            "satoshi",
            &format!("amount=3000&nostr={}", urlencode(&request)),
        )
        .await;
    let pr = body["pr"].as_str().unwrap_or_else(|| panic!("{body}"));
    let hash = crate::support::wallet::check_invoice_on(
        lightning_invoice::Currency::Bitcoin,
        pr,
        3_000,
        &request,
    )
    .payment_hash;
    assert!(
        app.eventually(5, || async { !fake.subscriptions().is_empty() })
            .await
    );
    fake.settle(&hash);
    let receipt = receipt_on(&relay, &app, 5).await;
    assert_eq!(tag(&receipt, "bolt11").unwrap()[1], pr);
}

#[tokio::test]
async fn bad_zap_requests_get_their_own_reason_and_store_nothing() {
    let app = spawn_app_with(None, |_| {}).await;
    let good = zap_request(&["wss://relay.example"], 21_000);
    let cases = [
        (good.replace("Great post!", "Great pots!"), "id"),
        (zap_request(&["wss://relay.example"], 1_000), "amount"),
        ("{\"kind\":9734}".to_owned(), "not a valid Nostr event"),
        (
            EventBuilder::new(Kind::from(1), "hi")
                .sign_with_keys(&sender())
                .unwrap()
                .as_json(),
            "kind 9734",
        ),
        (zap_request(&[], 21_000), "relays"),
        (format!("{{\"x\":\"{}\"}}", "a".repeat(5000)), "too large"),
    ];
    for (raw, reason) in cases {
        let body = app
            .callback(
                "satoshi",
                &format!("amount=21000&nostr={}", urlencode(&raw)),
            )
            .await;
        assert_lnurl_error(&body, reason);
    }
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn zaps_are_not_advertised_or_accepted_where_the_backend_cannot_commit_to_them() {
    let buda = crate::support::fake_buda::FakeBuda::start("k", "s");
    let url = buda.url.clone();
    let app = spawn_app_with(None, move |s| {
        s.backend.kind = rayo::config::BackendKind::Buda;
        s.backend.buda_url = url.parse().unwrap();
        s.backend.buda_api_key = Some(rayo::domain::Secret::new("k"));
        s.backend.buda_api_secret = Some(rayo::domain::Secret::new("s"));
        s.backend.network = Some(rayo::config::Network::Bitcoin);
    })
    .await;
    let pay_request = app.get_json("/.well-known/lnurlp/satoshi").await;
    assert!(pay_request.get("allowsNostr").is_none(), "{pay_request}");
    assert!(pay_request.get("nostrPubkey").is_none());
    let body = app
        .callback(
            "satoshi",
            &format!(
                "amount=21000&nostr={}",
                urlencode(&zap_request(&["wss://r.example"], 21000))
            ),
        )
        .await;
    assert_lnurl_error(&body, "cannot receive zaps");
}

#[tokio::test]
async fn rotating_the_nostr_key_changes_what_wallets_see_and_what_signs() {
    let relay = Relay::start();
    let app = spawn_app_with(None, |s| s.nostr_allow_private_relays = true).await;
    let before = app.get_json("/.well-known/lnurlp/satoshi").await["nostrPubkey"].clone();
    let rotated: Value = app
        .admin(reqwest::Method::POST, "/nostr/rotate", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(rotated["npub"].as_str().unwrap().starts_with("npub1"));
    let after = app.get_json("/.well-known/lnurlp/satoshi").await["nostrPubkey"].clone();
    assert_ne!(before, after);
    assert_eq!(after, rotated["pubkey"]);
    let (_, hash) = zap(&app, &zap_request(&[&relay.url], 1_000), 1_000).await;
    app.settle(&hash).await;
    assert_eq!(
        receipt_on(&relay, &app, 5).await.pubkey.to_hex(),
        after.as_str().unwrap()
    );
}

#[tokio::test]
async fn nip05_maps_names_to_keys_with_cors_and_nothing_else() {
    let app = spawn_app_with(None, |_| {}).await;
    let npub = {
        use nostr::ToBech32;
        sender().public_key().to_bech32().unwrap()
    };
    app.add_user(
        "alice",
        json!({"nostr_pubkey": npub, "nostr_relays": ["wss://relay.example"]}),
    )
    .await;
    app.add_user("_", json!({"nostr_pubkey": RECIPIENT.to_uppercase()}))
        .await;

    let answer = app.get("/.well-known/nostr.json?name=alice").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    let body: Value = answer.json().await.unwrap();
    let hex = sender().public_key().to_hex();
    assert_eq!(body["names"], json!({"alice": hex}));
    assert_eq!(
        body["relays"],
        json!({hex: ["wss://relay.example/"]}),
        "relays are stored normalised"
    );

    let root = app.get_json("/.well-known/nostr.json?name=_").await;
    assert_eq!(root["names"]["_"], RECIPIENT, "stored as lowercase hex");
    for unknown in ["nobody", "satoshi", "", "%ff"] {
        let body = app
            .get_json(&format!("/.well-known/nostr.json?name={unknown}"))
            .await;
        assert_eq!(body["names"], json!({}), "{unknown}");
    }
    assert_eq!(
        app.get_json("/.well-known/nostr.json").await["names"],
        json!({})
    );

    let refused = app
        .admin(
            reqwest::Method::PATCH,
            "/users/alice",
            Some(json!({"nostr_pubkey": "xyz"})),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let refused = app
        .admin(
            reqwest::Method::PATCH,
            "/users/alice",
            Some(json!({"nostr_relays": ["https://not-a-relay"]})),
        )
        .await;
    assert_eq!(refused.status(), 422);
}

/// nostr-tools (npm) in tests/nostr-tools, installed by `.ci/run`; `None` (skip) only
/// outside CI.
fn nostr_tools() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nostr-tools");
    if dir.join("node_modules/nostr-tools").exists() {
        return Some(dir);
    }
    let why =
        "nostr-tools is not installed: run `npm ci --prefix tests/nostr-tools` (.ci/run does)";
    crate::support::skip_unless_ci(why);
    None
}

fn node(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("node")
        .current_dir(dir)
        .arg("zap.mjs")
        .args(args)
        .output()
        .expect("node runs")
}

#[tokio::test]
async fn nostr_tools_builds_a_zap_rayo_accepts_and_verifies_the_receipt_rayo_signs() {
    let Some(tools) = nostr_tools() else {
        return;
    };
    let relay = Relay::start();
    let app = spawn_app_with(None, |s| s.nostr_allow_private_relays = true).await;
    let server_key = app.get_json("/.well-known/lnurlp/satoshi").await["nostrPubkey"]
        .as_str()
        .unwrap()
        .to_owned();

    let made = node(&tools, &["request", &relay.url, "42000", RECIPIENT]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let request = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let (pr, hash) = zap(&app, &request, 42_000).await;
    app.settle(&hash).await;
    let receipt = receipt_on(&relay, &app, 5).await.as_json();

    let checked = node(&tools, &["receipt", &receipt, &request, &server_key, &pr]);
    assert!(
        checked.status.success(),
        "nostr-tools refuses the receipt: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // And it notices a forged one.
    let forged = receipt.replace(&pr, &pr.to_uppercase());
    assert!(
        !node(&tools, &["receipt", &forged, &request, &server_key, &pr])
            .status
            .success()
    );
}

/// The events queued for the invoice `hash` (webhooks and zap receipts), as the admin API
/// lists them.
async fn events_for(app: &TestApp, hash: &str) -> Vec<Value> {
    app.admin(
        reqwest::Method::GET,
        &format!("/webhooks?invoice={hash}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}
