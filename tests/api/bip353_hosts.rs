//! BIP-353 records kept at DNS hosts that sign the zone (deSEC, Cloudflare; fakes that speak
//! their documented APIs): added with the user, removed with them, and every drift at the
//! host repaired and reported. A host that fails is tried again; one that refuses is shown.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::dns::{name_of, HOST};
use crate::support::fake_dns_hosts::{FakeCloudflare, FakeDesec};
use crate::support::{spawn_app_with, TestApp};

const TOKEN: &str = "host-token-123";

/// rayo on pay.rayo.test with its records kept at `sync` (`RAYO_BIP353_SYNC`). Passes run
/// when offers change and when asked: the tests see each one's report whole.
async fn rayo_keeping(sync: &str, tweak: impl FnOnce(&mut rayo::config::Settings)) -> TestApp {
    let sync = sync.to_owned();
    spawn_app_with(None, move |s| {
        s.public_url =
            rayo::config::PublicUrl::parse(&format!("http://{HOST}:{}", s.bind.port())).unwrap();
        s.bip353.refresh = Duration::from_secs(3600);
        s.bip353.sync = vec![rayo::config::SyncTarget::parse(&sync).unwrap()];
        s.bip353.host_timeout = Duration::from_millis(1500);
        s.demo_user = false;
        tweak(s);
    })
    .await
}

async fn sync_now(app: &TestApp) -> Value {
    let answer = app.admin(reqwest::Method::POST, "/bip353/sync", None).await;
    assert_eq!(answer.status(), 200);
    let reports: Value = answer.json().await.unwrap();
    reports[0].clone()
}

/// The URI rayo publishes for `user`.
async fn uri_of(app: &TestApp, user: &str) -> String {
    let printed: Value = app
        .admin(reqwest::Method::GET, "/bip353/records", None)
        .await
        .json()
        .await
        .unwrap();
    printed["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("{}.", name_of(user)))
        .unwrap_or_else(|| panic!("no record for {user}: {printed}"))["uri"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// deSEC's subname of `user`'s record, under the deSEC domain `rayo.test`.
fn subname(user: &str) -> String {
    format!("{user}.user._bitcoin-payment.pay")
}

#[tokio::test]
async fn desec_is_kept_in_step_as_users_come_and_go_and_drift_is_repaired() {
    let desec = FakeDesec::start(TOKEN, "rayo.test");
    let url = desec.url.clone();
    let app = rayo_keeping("pay.rayo.test=desec:rayo.test", move |s| {
        s.bip353.desec_token = Some(rayo::domain::Secret::new(TOKEN));
        s.bip353.desec_api = url;
    })
    .await;
    // What else the operator keeps there is left alone.
    desec.set("pay", &["\"v=spf1 -all\""]);
    desec.set(
        "_note.user._bitcoin-payment.pay",
        &["\"not a payment record\""],
    );

    // Added with the user.
    app.add_user("alice", json!({})).await;
    app.add_user("bob", json!({})).await;
    let (alice, bob) = (uri_of(&app, "alice").await, uri_of(&app, "bob").await);
    assert!(
        app.eventually(10, || async {
            let held = desec.records();
            held.get(&subname("alice")) == Some(&vec![alice.clone()])
                && held.get(&subname("bob")) == Some(&vec![bob.clone()])
        })
        .await,
        "both records reach deSEC: {:?}",
        desec.records()
    );
    let in_step = sync_now(&app).await;
    assert_eq!(in_step["error"], Value::Null);
    assert_eq!(
        (
            in_step["created"].clone(),
            in_step["repaired"].clone(),
            in_step["removed"].clone()
        ),
        (json!([]), json!([]), json!([]))
    );

    // Drift behind rayo's back: a record changed, one deleted, a stranger's added.
    desec.set(&subname("alice"), &["\"bitcoin:?lno=lno1someoneelse\""]);
    desec.set(&subname("bob"), &[]);
    desec.set(&subname("mallory"), &["\"bitcoin:?lno=lno1mallory\""]);
    let repaired = sync_now(&app).await;
    println!("{repaired:#}");
    assert_eq!(repaired["repaired"], json!([name_of("alice")]));
    assert_eq!(repaired["created"], json!([name_of("bob")]));
    assert_eq!(repaired["removed"], json!([name_of("mallory")]));
    let held = desec.records();
    assert_eq!(held[&subname("alice")], vec![alice]);
    assert_eq!(held[&subname("bob")], vec![bob]);
    assert!(!held.contains_key(&subname("mallory")));
    assert_eq!(held["pay"], vec!["v=spf1 -all".to_owned()]);
    assert!(held.contains_key("_note.user._bitcoin-payment.pay"));
    // The report stays for the operator.
    let kept: Value = app
        .admin(reqwest::Method::GET, "/bip353/sync", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept[0]["removed"], json!([name_of("mallory")]));

    // Removed with the user.
    app.admin(reqwest::Method::DELETE, "/users/bob", None).await;
    assert!(
        app.eventually(10, || async {
            !desec.records().contains_key(&subname("bob"))
        })
        .await,
        "bob's record goes with him"
    );
}

#[tokio::test]
async fn cloudflare_is_kept_in_step_as_users_come_and_go_and_drift_is_repaired() {
    let cloudflare = FakeCloudflare::start(TOKEN, "023e105f4ecef8ad9ca31a8372d0c353");
    let url = cloudflare.url.clone();
    let app = rayo_keeping(
        "pay.rayo.test=cloudflare:023e105f4ecef8ad9ca31a8372d0c353",
        move |s| {
            s.bip353.cloudflare_token = Some(rayo::domain::Secret::new(TOKEN));
            s.bip353.cloudflare_api = url;
        },
    )
    .await;
    cloudflare.add("TXT", "pay.rayo.test", "\"v=spf1 -all\"");
    for user in ["alice", "bob", "carol"] {
        app.add_user(user, json!({})).await;
    }
    let uris = [
        uri_of(&app, "alice").await,
        uri_of(&app, "bob").await,
        uri_of(&app, "carol").await,
    ];
    let expected = |cf: &FakeCloudflare| {
        let held = cf.records();
        ["alice", "bob", "carol"]
            .iter()
            .zip(&uris)
            .all(|(user, uri)| held.contains(&(name_of(user), uri.clone())))
    };
    assert!(
        app.eventually(10, || async { expected(&cloudflare) }).await,
        "{:?}",
        cloudflare.records()
    );

    // Over several pages of records, drift is found and repaired.
    cloudflare.tamper(&name_of("alice"), Some("\"bitcoin:?lno=lno1someoneelse\""));
    cloudflare.tamper(&name_of("carol"), None);
    cloudflare.add("TXT", &name_of("mallory"), "\"bitcoin:?lno=lno1mallory\"");
    cloudflare.add("TXT", &name_of("alice"), "\"bitcoin:?lno=lno1second\"");
    let repaired = sync_now(&app).await;
    println!("{repaired:#}");
    assert_eq!(repaired["repaired"], json!([name_of("alice")]));
    assert_eq!(repaired["created"], json!([name_of("carol")]));
    assert_eq!(repaired["removed"], json!([name_of("mallory")]));
    assert!(expected(&cloudflare));
    let alice_records = cloudflare
        .records()
        .into_iter()
        .filter(|(n, _)| *n == name_of("alice"))
        .count();
    assert_eq!(alice_records, 1, "exactly one bitcoin: record per name");
    assert!(cloudflare
        .records()
        .contains(&("pay.rayo.test".to_owned(), "v=spf1 -all".to_owned())));

    app.admin(reqwest::Method::DELETE, "/users/carol", None)
        .await;
    assert!(
        app.eventually(10, || async {
            !cloudflare
                .records()
                .iter()
                .any(|(n, _)| *n == name_of("carol"))
        })
        .await
    );
}

#[tokio::test]
async fn a_host_that_fails_or_hangs_is_tried_again_and_one_that_refuses_is_reported() {
    let desec = FakeDesec::start(TOKEN, "rayo.test");
    let url = desec.url.clone();
    let app = rayo_keeping("pay.rayo.test=desec:rayo.test", move |s| {
        s.bip353.desec_token = Some(rayo::domain::Secret::new(TOKEN));
        s.bip353.desec_api = url;
    })
    .await;
    // Overloaded twice, then fine: the pass the new user sets off gets through.
    desec.fail_next(2);
    app.add_user("alice", json!({})).await;
    let alice = uri_of(&app, "alice").await;
    assert!(
        app.eventually(10, || async {
            desec.records().get(&subname("alice")) == Some(&vec![alice.clone()])
        })
        .await
    );
    let kept: Value = app
        .admin(reqwest::Method::GET, "/bip353/sync", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept[0]["error"], Value::Null, "{kept}");
    assert_eq!(kept[0]["created"], json!([name_of("alice")]));
    assert!(
        desec.requests() >= 4,
        "two failures, then a listing and a change"
    );

    // Slower than the timeout once: tried again.
    desec.set(&subname("alice"), &[]);
    desec.hang_next(1);
    let report = sync_now(&app).await;
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(report["created"], json!([name_of("alice")]));

    // A refused token is no passing trouble: reported, kept, and not hammered.
    desec.refuse(true);
    let before = desec.requests();
    let report = sync_now(&app).await;
    println!("{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("deSEC refused (401"), "{error}");
    assert!(!error.contains(TOKEN), "the token never shows");
    assert_eq!(desec.requests() - before, 1, "a refusal is not retried");
    let kept: Value = app
        .admin(reqwest::Method::GET, "/bip353/sync", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept[0]["error"], report["error"]);
    desec.refuse(false);
    let report = sync_now(&app).await;
    assert_eq!(report["error"], Value::Null);
}

#[test]
fn sync_settings_name_a_host_rayo_knows() {
    use rayo::config::SyncTarget;
    assert!(SyncTarget::parse("pay.rayo.test=desec").is_ok());
    assert!(SyncTarget::parse("pay.rayo.test=desec:rayo.test").is_ok());
    assert!(SyncTarget::parse("pay.rayo.test=desec:other.test")
        .unwrap_err()
        .contains("not under"));
    assert!(SyncTarget::parse("pay.rayo.test=cloudflare")
        .unwrap_err()
        .contains("zone id"));
    assert!(SyncTarget::parse("pay.rayo.test=route53:x")
        .unwrap_err()
        .contains("unknown"));
    assert!(SyncTarget::parse("127.0.0.1=desec").is_err());
    assert!(SyncTarget::parse("nonsense").is_err());
}
