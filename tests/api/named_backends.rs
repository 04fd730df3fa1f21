//! Several backends at once: each user is served by the default one or the one they name.

use reqwest::Method;
use serde_json::{json, Value};

use rayo::config::{BackendKind, BackendSettings, Network, Settings};
use rayo::domain::Secret;
use rayo::startup::{Application, Overrides};

use crate::support::fake_buda::FakeBuda;
use crate::support::{assert_lnurl_error, spawn_app_with};

fn exchange(buda: &FakeBuda) -> BackendSettings {
    BackendSettings {
        kind: BackendKind::Buda,
        buda_url: buda.url.parse().unwrap(),
        buda_api_key: Some(Secret::new("k")),
        buda_api_secret: Some(Secret::new("s")),
        network: Some(Network::Bitcoin),
        ..BackendSettings::default()
    }
}

#[tokio::test]
async fn each_user_gets_invoices_from_their_own_backend() {
    let buda = FakeBuda::start("k", "s");
    let named = exchange(&buda);
    let app = spawn_app_with(None, move |s| {
        s.named_backends = vec![("exchange".parse().unwrap(), named)]
    })
    .await;
    let shop = app.add_user("shop", json!({"backend": "exchange"})).await;
    assert_eq!(shop["backend"], "exchange");

    app.callback("shop", "amount=5000").await;
    app.callback("satoshi", "amount=5000").await;
    let invoices = app.invoices().await;
    let by_user = |name: &str| invoices.iter().find(|i| i["user"] == name).unwrap().clone();
    assert_eq!(
        (
            by_user("shop")["backend"].clone(),
            by_user("shop")["backend_kind"].clone()
        ),
        (json!("exchange"), json!("buda"))
    );
    assert!(by_user("shop")["bolt11"]
        .as_str()
        .unwrap()
        .starts_with("lnbc"));
    assert_eq!(
        (
            by_user("satoshi")["backend"].clone(),
            by_user("satoshi")["backend_kind"].clone()
        ),
        (json!("default"), json!("dev"))
    );
    assert!(by_user("satoshi")["bolt11"]
        .as_str()
        .unwrap()
        .starts_with("lnbcrt"));

    let unknown = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"name": "x", "settings": {"backend": "nope"}})),
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("configured: default, exchange"),
        "{body}"
    );

    let back = app
        .admin(Method::PATCH, "/users/shop", Some(json!({"backend": ""})))
        .await;
    assert_eq!(back.status(), 200);
    let body = app.callback("shop", "amount=5000").await;
    assert!(
        body["pr"].as_str().unwrap().starts_with("lnbcrt"),
        "back on the default backend: {body}"
    );
}

#[tokio::test]
async fn the_default_backend_can_be_a_named_one() {
    let buda = FakeBuda::start("k", "s");
    let named = exchange(&buda);
    let app = spawn_app_with(None, move |s| {
        s.named_backends = vec![("exchange".parse().unwrap(), named)];
        s.default_backend = Some("exchange".parse().unwrap());
    })
    .await;
    let body = app.callback("satoshi", "amount=5000").await;
    assert!(
        body["pr"].as_str().unwrap().starts_with("lnbc50n"),
        "a Buda (mainnet) invoice: {body}"
    );
    assert_lnurl_error(
        &app.callback("satoshi", "amount=5500").await,
        "whole number of satoshis",
    );
}

#[tokio::test]
async fn a_default_backend_that_does_not_exist_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults();
    settings.data_dir = dir.path().to_path_buf();
    settings.default_backend = Some("missing".parse().unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Application::build_on(settings, listener, Overrides::default())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("the default backend 'missing' is not configured"),
        "{err}"
    );
}
