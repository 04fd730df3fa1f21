use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::backend_double::{BackendDouble, Fault};
use crate::support::{assert_lnurl_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn admin_api_refuses_missing_and_wrong_tokens() {
    let app = spawn_app().await;
    let url = format!("{}/admin/v1/users", app.address);
    let missing = app.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for wrong in [
        "wrong",
        &app.admin_token[..10],
        &format!("{}x", app.admin_token),
    ] {
        let answer = app
            .client
            .get(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{wrong}");
    }
    let basic = app
        .client
        .get(&url)
        .basic_auth("admin", Some(&app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn admin_creates_a_user_and_shows_the_webhook_secret_once() {
    let app = spawn_app().await;
    let created = app
        .add_user(
            "alice",
            json!({"description": "Alice", "webhook_url": "https://hooks.example/rayo"}),
        )
        .await;
    assert_eq!(created["address"], format!("alice@{}", app.domain()));
    assert!(created["lnurl"].as_str().unwrap().starts_with("LNURL1"));
    assert!(created["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let shown: Value = app
        .admin(Method::GET, "/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.get("webhook_secret").is_none(), "{shown}");
    assert_eq!(shown["description"], "Alice");
}

#[tokio::test]
async fn admin_refuses_bad_users_with_clear_statuses() {
    let app = spawn_app().await;
    let post = |body: Value| app.admin(Method::POST, "/users", Some(body));
    assert_eq!(post(json!({"name": "satoshi"})).await.status(), 409);
    for name in ["admin", "Bad Name", "..", "", "ünïcode"] {
        let answer = post(json!({"name": name})).await;
        assert_eq!(answer.status(), 422, "{name}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid");
    }
    let inverted =
        post(json!({"name": "carol", "settings": {"min_sendable": 5000, "max_sendable": 1000}}))
            .await;
    assert_eq!(inverted.status(), 422);
    let unknown_field = post(json!({"name": "carol", "settings": {"colour": "blue"}})).await;
    assert_eq!(unknown_field.status(), 422);
    let foreign_url =
        post(json!({"name": "carol", "settings": {"success_url": "https://elsewhere.example/"}}))
            .await;
    assert_eq!(foreign_url.status(), 422);
    let users: Vec<Value> = app
        .admin(Method::GET, "/users", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users.len(), 1, "only the demo user: {users:?}");
}

#[tokio::test]
async fn admin_updates_take_effect_on_the_live_endpoint() {
    let app = spawn_app().await;
    app.add_user("alice", json!({})).await;
    let answer = app
        .admin(
            Method::PATCH,
            "/users/alice",
            Some(json!({"min_sendable": 5000, "description": "New"})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let body = app.get_json("/.well-known/lnurlp/alice").await;
    assert_eq!(body["minSendable"], 5000);
    assert!(body["metadata"].as_str().unwrap().contains("\"New\""));
    assert_lnurl_error(
        &app.callback("alice", "amount=1000").await,
        "at least 5000 msat",
    );

    assert_eq!(
        app.admin(Method::DELETE, "/users/alice", None)
            .await
            .status(),
        204
    );
    assert_lnurl_error(
        &app.get_json("/.well-known/lnurlp/alice").await,
        "unknown user",
    );
    assert_eq!(
        app.admin(Method::DELETE, "/users/alice", None)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.admin(Method::PATCH, "/users/alice", Some(json!({})))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn admin_lists_invoices_by_user_and_status_newest_first() {
    let app = spawn_app().await;
    app.add_user("alice", json!({})).await;
    for amount in [1000, 2000, 3000] {
        app.callback("satoshi", &format!("amount={amount}")).await;
    }
    app.callback("alice", "amount=4000").await;
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let answer = app.admin(Method::GET, &format!("/invoices{q}"), None).await;
            assert_eq!(answer.status(), 200, "{q}");
            answer.json::<Vec<Value>>().await.unwrap()
        }
    };
    let amounts = |v: &[Value]| {
        v.iter()
            .map(|i| i["amount_msat"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(amounts(&list("").await), [4000, 3000, 2000, 1000]);
    assert_eq!(amounts(&list("?user=satoshi").await), [3000, 2000, 1000]);
    assert_eq!(amounts(&list("?user=satoshi&limit=2").await), [3000, 2000]);
    let newest = list("?user=satoshi&limit=1").await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.settle(&newest).await.status(), 200);
    assert_eq!(amounts(&list("?status=paid").await), [3000]);
    assert_eq!(
        amounts(&list("?status=pending&user=satoshi").await),
        [2000, 1000]
    );
    assert_eq!(
        app.admin(Method::GET, "/invoices?status=lost", None)
            .await
            .status(),
        422
    );
    assert_eq!(
        app.admin(Method::GET, "/invoices?limit=many", None)
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn dev_settle_is_idempotent_and_refuses_what_it_cannot_settle() {
    let app = spawn_app().await;
    let body = app.callback("satoshi", "amount=1000").await;
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let first: Value = app.settle(&hash).await.json().await.unwrap();
    let second: Value = app.settle(&hash).await.json().await.unwrap();
    assert_eq!(first["preimage"], second["preimage"]);
    assert_eq!(first["paid_at"], second["paid_at"]);
    assert_eq!(first["bolt11"], body["pr"]);
    assert_eq!(app.settle(&"00".repeat(32)).await.status(), 404);
    assert_eq!(app.settle("xyz").await.status(), 422);
}

#[tokio::test]
async fn dev_settle_refuses_invoices_from_another_backend() {
    let app = spawn_app_with(Some(Arc::new(BackendDouble::new(Fault::None))), |_| {}).await;
    app.callback("satoshi", "amount=1000").await;
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = app.settle(&hash).await;
    assert_eq!(answer.status(), 409);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(double)"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_admin_routes_are_json_404s() {
    let app = spawn_app().await;
    let answer = app.admin(Method::GET, "/nothing", None).await;
    assert_eq!(answer.status(), 404);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_admin_api_can_live_on_an_address_of_its_own() {
    let app = crate::support::spawn_app_with(None, |s| {
        s.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    // Not on the public address...
    let public = app.admin(reqwest::Method::GET, "/users", None).await;
    assert_eq!(public.status(), 404);
    // ...but where the server told the CLI to look.
    let admin_url = std::fs::read_to_string(app.data_dir.path().join("server.url")).unwrap();
    assert_ne!(admin_url.trim(), app.address);
    let there = app
        .client
        .get(format!("{}/admin/v1/users", admin_url.trim()))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(there.status(), 200);
    let wrong = app
        .client
        .get(format!("{}/admin/v1/users", admin_url.trim()))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Metrics move with it; wallets are served as usual.
    assert_eq!(app.get("/metrics").await.status(), 404);
    let metrics = app
        .client
        .get(format!("{}/metrics", admin_url.trim()))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(app.callback("satoshi", "amount=1000").await["pr"].is_string());
}
