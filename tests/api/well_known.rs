use crate::support::{assert_lnurl_error, spawn_app};
use serde_json::json;

#[tokio::test]
async fn well_known_serves_a_pay_request_for_the_demo_user() {
    let app = spawn_app().await;
    let answer = app.get("/.well-known/lnurlp/satoshi").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    assert_eq!(answer.headers()["content-type"], "application/json");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["tag"], "payRequest");
    assert_eq!(
        body["callback"],
        format!("{}/lnurlp/satoshi/callback", app.address)
    );
    assert_eq!(body["minSendable"], 1000);
    assert_eq!(body["maxSendable"], 10_000_000_000u64);
    assert_eq!(body["commentAllowed"], 255);
    let metadata: Vec<(String, String)> =
        serde_json::from_str(body["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata[0].0, "text/plain");
    assert_eq!(
        metadata[1],
        (
            "text/identifier".into(),
            format!("satoshi@{}", app.domain())
        )
    );
    // Strict clients (Python lnurl) reject unknown fields.
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "allowsNostr",
            "callback",
            "commentAllowed",
            "maxSendable",
            "metadata",
            "minSendable",
            "nostrPubkey",
            "tag"
        ]
    );
}

#[tokio::test]
async fn well_known_advertises_long_description_image_and_payer_data() {
    let app = spawn_app().await;
    let png = base64_png();
    app.add_user(
        "alice",
        json!({
            "description": "Alice's tips",
            "long_description": "Thanks for\nreading",
            "image": {"mime": "image/png", "base64": png},
            "payer_data": {"name": {"mandatory": false}, "email": {"mandatory": true}},
            "comment_allowed": 0
        }),
    )
    .await;
    let body = app.get_json("/.well-known/lnurlp/alice").await;
    let metadata: Vec<(String, String)> =
        serde_json::from_str(body["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        metadata[2],
        ("text/long-desc".into(), "Thanks for\nreading".into())
    );
    assert_eq!(metadata[3], ("image/png;base64".into(), png));
    assert_eq!(
        body["payerData"],
        json!({"name": {"mandatory": false}, "email": {"mandatory": true}})
    );
    assert!(
        body.get("commentAllowed").is_none(),
        "absent means no comments (LUD-12)"
    );
}

#[tokio::test]
async fn well_known_folds_case_and_strips_plus_tags() {
    let app = spawn_app().await;
    let plain = app.get_json("/.well-known/lnurlp/satoshi").await;
    assert_eq!(app.get_json("/.well-known/lnurlp/Satoshi").await, plain);
    assert_eq!(
        app.get_json("/.well-known/lnurlp/SATOSHI+tips").await,
        plain
    );
}

#[tokio::test]
async fn well_known_metadata_is_byte_identical_every_time() {
    let app = spawn_app().await;
    let first = app
        .get("/.well-known/lnurlp/satoshi")
        .await
        .bytes()
        .await
        .unwrap();
    let second = app
        .get("/.well-known/lnurlp/satoshi")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, second);
}

#[tokio::test]
async fn well_known_refuses_unknown_invalid_and_lookalike_names() {
    let app = spawn_app().await;
    for name in [
        "nobody",
        "sat%2Foshi",
        "%00",
        "s%D0%B0toshi",
        "%EF%BD%93atoshi",
        "a%20b",
        "a..b",
        ".satoshi",
    ] {
        let answer = app.get(&format!("/.well-known/lnurlp/{name}")).await;
        assert_eq!(answer.status(), 200, "{name}");
        assert_eq!(answer.headers()["access-control-allow-origin"], "*");
        assert_lnurl_error(&answer.json().await.unwrap(), "unknown user");
    }
    let (status, body) = app.raw_get("/.well-known/lnurlp/..").await;
    assert_eq!(status, 200);
    assert_lnurl_error(&body, "unknown user");
}

#[tokio::test]
async fn unknown_routes_under_lnurl_paths_answer_lnurl_errors() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/lnurlp/",
        "/.well-known/lnurlp/a/b",
        "/lnurlp/satoshi",
        "/lnurlp/satoshi/nope",
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        assert_lnurl_error(&answer.json().await.unwrap(), "not found");
    }
}

#[tokio::test]
async fn preflight_requests_are_allowed_from_any_origin() {
    let app = spawn_app().await;
    let answer = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/lnurlp/satoshi/callback", app.address),
        )
        .header("Origin", "https://wallet.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    assert!(answer.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
}

#[tokio::test]
async fn disabled_users_are_not_served() {
    let app = spawn_app().await;
    app.add_user("bob", json!({"disabled": true})).await;
    assert_lnurl_error(
        &app.get_json("/.well-known/lnurlp/bob").await,
        "not accepting payments",
    );
}

#[tokio::test]
async fn healthz_answers() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
}

#[tokio::test]
async fn urls_come_from_the_public_url_not_the_host_header() {
    let app = spawn_app().await;
    let body: serde_json::Value = app
        .client
        .get(format!("{}/.well-known/lnurlp/satoshi", app.address))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["callback"].as_str().unwrap().starts_with(&app.address));
    let callback = app.callback("satoshi", "amount=1000").await;
    assert!(callback["verify"]
        .as_str()
        .unwrap()
        .starts_with(&app.address));
}

fn base64_png() -> String {
    use base64::Engine;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 16]);
    base64::engine::general_purpose::STANDARD.encode(png)
}
