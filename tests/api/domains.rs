//! Several domains on one server: each with its own public URL, users on one of them, and
//! requests routed by Host (never trusted to build URLs).

use rayo::config::PublicUrl;
use serde_json::{json, Value};

use crate::support::{assert_lnurl_error, spawn_app_with, TestApp};

async fn get_on(app: &TestApp, host: &str, path: &str) -> (u16, Value) {
    let answer = app
        .client
        .get(format!("{}{path}", app.address))
        .header("Host", host)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_user_answers_on_their_own_domain_only() {
    let app = spawn_app_with(None, |s| {
        s.extra_public_urls = vec![PublicUrl::parse("https://second.test").unwrap()];
    })
    .await;
    let bob = app.add_user("bob", json!({"domain": "Second.Test"})).await;
    assert_eq!(bob["address"], "bob@second.test");
    let primary = app.domain().to_owned();

    let (_, pay) = get_on(&app, "second.test", "/.well-known/lnurlp/bob").await;
    assert_eq!(pay["callback"], "https://second.test/lnurlp/bob/callback");
    assert!(pay["metadata"]
        .as_str()
        .unwrap()
        .contains("bob@second.test"));
    let (_, body) = get_on(&app, "second.test", "/lnurlp/bob/callback?amount=1000").await;
    assert!(body["verify"]
        .as_str()
        .unwrap()
        .starts_with("https://second.test/lnurlp/bob/verify/"));

    // Wrong domain, or one this server does not serve: unknown.
    let (_, wrong) = get_on(&app, &primary, "/.well-known/lnurlp/bob").await;
    assert_lnurl_error(&wrong, "unknown user");
    let (_, wrong) = get_on(&app, "second.test", "/.well-known/lnurlp/satoshi").await;
    assert_lnurl_error(&wrong, "unknown user");
    let (_, evil) = get_on(&app, "evil.test", "/.well-known/lnurlp/bob").await;
    assert_lnurl_error(&evil, "unknown user");
    let (_, ok) = get_on(&app, &primary, "/.well-known/lnurlp/satoshi").await;
    assert_eq!(ok["tag"], "payRequest");

    // Pages follow the same rule.
    let page = app
        .client
        .get(format!("{}/@bob", app.address))
        .header("Host", "evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);

    let refused = app
        .admin(
            reqwest::Method::POST,
            "/users",
            Some(json!({"name": "eve", "settings": {"domain": "evil.test"}})),
        )
        .await;
    assert_eq!(refused.status(), 422);
    // Moving a user back to the primary domain.
    let moved: Value = app
        .admin(
            reqwest::Method::PATCH,
            "/users/bob",
            Some(json!({"domain": ""})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["address"], format!("bob@{primary}"));
}

#[tokio::test]
async fn an_internationalised_domain_is_accepted_and_served_in_its_ascii_form() {
    let app = spawn_app_with(None, |s| {
        s.extra_public_urls = vec![PublicUrl::parse("https://bücher.example").unwrap()];
    })
    .await;
    let ana = app
        .add_user("ana", json!({"domain": "bücher.example"}))
        .await;
    assert_eq!(ana["address"], "ana@xn--bcher-kva.example");
    let (_, pay) = get_on(&app, "xn--bcher-kva.example", "/.well-known/lnurlp/ana").await;
    assert_eq!(
        pay["callback"],
        "https://xn--bcher-kva.example/lnurlp/ana/callback"
    );
}
