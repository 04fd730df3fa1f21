//! Apps create, read, list and follow a user's invoices with an API key.

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::receiver::Receiver;
use crate::support::wallet::assert_preimage_matches;
use crate::support::{spawn_app, TestApp};

async fn api_key(app: &TestApp, user: &str) -> String {
    let answer = app
        .admin(Method::POST, &format!("/users/{user}/api-keys"), None)
        .await;
    assert_eq!(answer.status(), 201);
    let created: Value = answer.json().await.unwrap();
    created["key"].as_str().unwrap().to_owned()
}

async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}/api/v1{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_app_creates_reads_and_lists_invoices_and_learns_they_were_paid() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    app.add_user("shop", json!({})).await;
    app.admin(
        Method::PATCH,
        "/users/shop",
        Some(json!({"rotate_webhook_secret": true})),
    )
    .await;
    let key = api_key(&app, "shop").await;

    let (status, created) = api(
        &app,
        Method::POST,
        "/invoices",
        Some(&key),
        Some(json!({
            "amount_sat": 21, "description": "Order #42", "expiry_secs": 5,
            "webhook_url": receiver.url, "metadata": {"order": 42}
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"], "shop");
    assert_eq!(created["amount_msat"], 21_000);
    assert_eq!(created["status"], "pending");
    assert_eq!(created["description"], "Order #42");
    assert_eq!(created["metadata"], json!({"order": 42}));
    assert_eq!(created["expiry_secs"], 30, "clamped up to the 30 s minimum");
    assert!(created["verify_url"].as_str().unwrap().contains("/verify/"));
    let hash = created["payment_hash"].as_str().unwrap().to_owned();
    assert!(created["checkout_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/pay/{hash}")));
    let invoice: lightning_invoice::Bolt11Invoice =
        created["bolt11"].as_str().unwrap().parse().unwrap();
    assert_eq!(invoice.amount_milli_satoshis(), Some(21_000));

    let (_, long) = api(
        &app,
        Method::POST,
        "/invoices",
        Some(&key),
        Some(json!({"amount_msat": 1500, "expiry_secs": 10_000_000})),
    )
    .await;
    assert_eq!(long["expiry_secs"], 86_400, "clamped down to 24 h");

    let (status, shown) = api(
        &app,
        Method::GET,
        &format!("/invoices/{hash}"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "pending");

    // Pages, newest first, with a cursor.
    let (_, page) = api(&app, Method::GET, "/invoices?limit=1", Some(&key), None).await;
    assert_eq!(page["invoices"][0]["amount_msat"], 1500);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = api(
        &app,
        Method::GET,
        &format!("/invoices?limit=1&cursor={cursor}"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(rest["invoices"][0]["payment_hash"], hash.as_str());
    let (_, pending) = api(&app, Method::GET, "/invoices?status=paid", Some(&key), None).await;
    assert_eq!(pending["invoices"], json!([]));

    app.settle(&hash).await;
    let (_, paid) = api(
        &app,
        Method::GET,
        &format!("/invoices/{hash}"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(paid["status"], "paid");
    assert_preimage_matches(paid["preimage"].as_str().unwrap(), &hash);
    assert!(
        app.eventually(5, || async { receiver.received().len() == 1 })
            .await
    );
    let event: Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(event["data"]["invoice"]["metadata"], json!({"order": 42}));
}

#[tokio::test]
async fn the_api_refuses_bad_credentials_and_bad_requests_with_the_right_status() {
    let app = spawn_app().await;
    app.add_user("alice", json!({})).await;
    app.add_user("bob", json!({})).await;
    let alice = api_key(&app, "alice").await;
    let body = json!({"amount_sat": 1});

    let cases: Vec<(Option<&str>, Value, u16, &str)> = vec![
        (None, body.clone(), 401, "unauthorized"),
        (Some("rk_0000"), body.clone(), 401, "unauthorized"),
        (Some("not-a-token"), body.clone(), 401, "unauthorized"),
        (
            Some(&alice),
            json!({"user": "bob", "amount_sat": 1}),
            403,
            "forbidden",
        ),
        (
            Some(&alice),
            json!({"amount_sat": 1, "amount_msat": 1000}),
            422,
            "invalid",
        ),
        (Some(&alice), json!({}), 422, "invalid"),
        (Some(&alice), json!({"amount_msat": 0}), 422, "invalid"),
        (Some(&alice), json!({"amount_msat": "1000"}), 422, "invalid"),
        (
            Some(&alice),
            json!({"amount_sat": 1, "description": "a\u{7}b"}),
            422,
            "invalid",
        ),
        (
            Some(&alice),
            json!({"amount_sat": 1, "webhook_url": "ftp://x"}),
            422,
            "invalid",
        ),
        (
            Some(&alice),
            json!({"amount_sat": 1, "webhook_url": "https://x.test/h"}),
            409,
            "conflict",
        ),
        (
            Some(&alice),
            json!({"amount_sat": 1, "surprise": true}),
            422,
            "invalid",
        ),
        (
            Some(&alice),
            json!({"amount_sat": 1, "metadata": {"big": "x".repeat(5000)}}),
            422,
            "invalid",
        ),
        (
            Some(&app.admin_token),
            json!({"user": "nobody", "amount_sat": 1}),
            404,
            "not_found",
        ),
        (
            Some(&app.admin_token),
            json!({"amount_sat": 1}),
            422,
            "invalid",
        ),
    ];
    for (token, body, status, code) in cases {
        let (got, answer) = api(&app, Method::POST, "/invoices", token, Some(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
    }
    assert!(app.invoices().await.is_empty(), "nothing was stored");

    // Alice cannot see Bob's invoice; a revoked key stops working; a disabled user is a conflict.
    let (_, bobs) = api(
        &app,
        Method::POST,
        "/invoices",
        Some(&app.admin_token),
        Some(json!({"user": "bob", "amount_sat": 2})),
    )
    .await;
    let bobs = bobs["payment_hash"].as_str().unwrap();
    let (status, _) = api(
        &app,
        Method::GET,
        &format!("/invoices/{bobs}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api(&app, Method::GET, "/invoices?user=bob", Some(&alice), None).await;
    assert_eq!(status, 403);
    let keys: Value = app
        .admin(Method::GET, "/api-keys?user=alice", None)
        .await
        .json()
        .await
        .unwrap();
    let id = keys[0]["id"].as_str().unwrap();
    app.admin(Method::DELETE, &format!("/api-keys/{id}"), None)
        .await;
    let (status, answer) = api(&app, Method::GET, "/invoices", Some(&alice), None).await;
    assert_eq!(status, 401);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    app.admin(Method::PATCH, "/users/bob", Some(json!({"disabled": true})))
        .await;
    let (status, _) = api(
        &app,
        Method::POST,
        "/invoices",
        Some(&app.admin_token),
        Some(json!({"user": "bob", "amount_sat": 2})),
    )
    .await;
    assert_eq!(status, 409);
}

async fn new_invoice(app: &TestApp, key: &str) -> String {
    let (_, created) = api(
        app,
        Method::POST,
        "/invoices",
        Some(key),
        Some(json!({"amount_sat": 3})),
    )
    .await;
    created["payment_hash"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_websocket_sends_the_invoice_then_its_payment_then_closes() {
    let app = spawn_app().await;
    app.add_user("alice", json!({})).await;
    let key = api_key(&app, "alice").await;
    let hash = new_invoice(&app, &key).await;

    let url = format!(
        "{}/api/v1/invoices/{hash}/ws",
        app.address.replace("http", "ws")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first: Value =
        serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["event"], "invoice");
    assert_eq!(first["invoice"]["status"], "pending");

    app.settle(&hash).await;
    let second: Value =
        serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(second["event"], "paid");
    assert_eq!(second["invoice"]["status"], "paid");
    let closing = socket.next().await;
    assert!(
        matches!(
            closing,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
        ),
        "{closing:?}"
    );

    // Without a key: refused before any upgrade.
    let url = format!(
        "{}/api/v1/invoices/{hash}/ws",
        app.address.replace("http", "ws")
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn server_sent_events_deliver_the_invoice_then_its_payment() {
    let app = spawn_app().await;
    app.add_user("alice", json!({})).await;
    let key = api_key(&app, "alice").await;
    let hash = new_invoice(&app, &key).await;
    let answer = app
        .client
        .get(format!("{}/api/v1/invoices/{hash}/ws", app.address))
        .bearer_auth(&key)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = answer;
    let first = String::from_utf8(body.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: invoice\ndata: "), "{first}");
    app.settle(&hash).await;
    let mut rest = String::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        rest.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(rest.starts_with("event: paid\ndata: "), "{rest}");
    let data: Value =
        serde_json::from_str(rest.trim_start_matches("event: paid\ndata: ").trim()).unwrap();
    assert_eq!(data["invoice"]["status"], "paid");

    let plain = app
        .client
        .get(format!("{}/api/v1/invoices/{hash}/ws", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 406);
}
