use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::backend_double::BackendDouble;
use crate::support::wallet::check_invoice;
use crate::support::{assert_lnurl_error, spawn_app, spawn_app_with, TestApp};

async fn metadata_of(app: &TestApp, name: &str) -> String {
    app.get_json(&format!("/.well-known/lnurlp/{name}")).await["metadata"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Each bad request gets its LNURL error and leaves no invoice behind.
async fn assert_refused(app: &TestApp, name: &str, query: &str, needle: &str) {
    let before = app.invoices().await.len();
    let body = app.callback(name, query).await;
    assert_lnurl_error(&body, needle);
    assert_eq!(
        app.invoices().await.len(),
        before,
        "{query:?} must store nothing"
    );
}

#[tokio::test]
async fn callback_returns_a_checked_invoice_committing_to_the_metadata() {
    let app = spawn_app().await;
    let metadata = metadata_of(&app, "satoshi").await;
    let body = app.callback("satoshi", "amount=21000").await;
    let checked = check_invoice(body["pr"].as_str().unwrap(), 21_000, &metadata);
    assert_eq!(body["routes"], json!([]));
    assert_eq!(body["disposable"], false);
    assert_eq!(
        body["successAction"],
        json!({"tag": "message", "message": "Thanks! (This was a demo payment.)"})
    );
    let verify = body["verify"].as_str().unwrap();
    assert!(verify.starts_with(&format!(
        "{}/lnurlp/satoshi/verify/{}/",
        app.address, checked.payment_hash
    )));
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["disposable", "pr", "routes", "successAction", "verify"]
    );
}

#[tokio::test]
async fn callback_stores_the_invoice_with_its_comment() {
    let app = spawn_app().await;
    let body = app
        .callback("satoshi", "amount=5000&comment=gracias+%E2%9A%A1")
        .await;
    let checked = check_invoice(
        body["pr"].as_str().unwrap(),
        5000,
        &metadata_of(&app, "satoshi").await,
    );
    let stored = app.invoices().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["payment_hash"], checked.payment_hash);
    assert_eq!(stored[0]["bolt11"], body["pr"]);
    assert_eq!(stored[0]["comment"], "gracias ⚡");
    assert_eq!(stored[0]["status"], "pending");
    assert_eq!(stored[0]["amount_msat"], 5000);
}

#[tokio::test]
async fn callback_accepts_names_in_any_case_and_with_tags() {
    let app = spawn_app().await;
    let metadata = metadata_of(&app, "satoshi").await;
    for name in ["SATOSHI", "Satoshi+tips"] {
        let body = app.callback(name, "amount=1000").await;
        check_invoice(body["pr"].as_str().unwrap(), 1000, &metadata);
    }
}

#[tokio::test]
async fn callback_with_payer_data_commits_to_metadata_plus_payer_data() {
    let app = spawn_app().await;
    app.add_user(
        "alice",
        json!({"payer_data": {"name": {"mandatory": false}, "email": {"mandatory": true}}}),
    )
    .await;
    let metadata = metadata_of(&app, "alice").await;
    let payer_data = r#"{"name":"Satoshi","email":"satoshi@example.com"}"#;
    let query = format!("amount=2000&payerdata={}", urlencode(payer_data));
    let body = app.callback("alice", &query).await;
    check_invoice(
        body["pr"].as_str().unwrap(),
        2000,
        &format!("{metadata}{payer_data}"),
    );
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown: Value = app
        .admin(reqwest::Method::GET, &format!("/invoices/{hash}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["payer_data"], payer_data);
    assert_eq!(
        shown["hashed_description"],
        format!("{metadata}{payer_data}")
    );
}

#[tokio::test]
async fn callback_answers_a_url_success_action_on_the_same_domain() {
    let app = spawn_app().await;
    let url = format!("{}/thanks", app.address);
    app.add_user(
        "shop",
        json!({"success_url": url, "success_message": "Your receipt"}),
    )
    .await;
    let body = app.callback("shop", "amount=1000").await;
    assert_eq!(
        body["successAction"],
        json!({"tag": "url", "description": "Your receipt", "url": url})
    );
}

#[tokio::test]
async fn callback_keeps_an_8_kib_query_working() {
    let app = spawn_app().await;
    let padding = "x".repeat(8 * 1024 - "amount=1000&pad=".len());
    let body = app
        .callback("satoshi", &format!("amount=1000&pad={padding}"))
        .await;
    assert!(body["pr"].is_string(), "{body}");
}

#[tokio::test]
async fn callback_refuses_bad_amounts() {
    let app = spawn_app().await;
    let cases = [
        ("missing", "comment=hi", "missing amount"),
        ("empty", "amount=", "empty amount"),
        ("zero", "amount=0", "too small"),
        ("negative", "amount=-1000", "digits only"),
        ("fractional", "amount=1000.5", "digits only"),
        ("exponent", "amount=1e3", "digits only"),
        ("hex", "amount=0x3e8", "digits only"),
        ("overflow", "amount=18446744073709551616", "too large"),
        ("below min", "amount=999", "at least 1000 msat"),
        (
            "above max",
            "amount=10000000001",
            "at most 10000000000 msat",
        ),
        ("duplicated", "amount=1000&amount=2000", "more than once"),
    ];
    for (_case, query, needle) in cases {
        assert_refused(&app, "satoshi", query, needle).await;
    }
}

#[tokio::test]
async fn callback_refuses_millisatoshis_on_a_whole_sat_backend() {
    let app = spawn_app_with(Some(Arc::new(BackendDouble::sat_only())), |_| {}).await;
    assert_refused(&app, "satoshi", "amount=1500", "whole number of satoshis").await;
    let body = app.callback("satoshi", "amount=2000").await;
    assert!(body["pr"].is_string(), "{body}");
}

#[tokio::test]
async fn callback_counts_comment_characters_not_bytes() {
    let app = spawn_app().await;
    app.add_user("tiny", json!({"comment_allowed": 10})).await;
    for at_limit in ["abcdefghij", "⚡⚡⚡⚡⚡⚡⚡⚡⚡⚡", "ñandúñandú"] {
        let body = app
            .callback(
                "tiny",
                &format!("amount=1000&comment={}", urlencode(at_limit)),
            )
            .await;
        assert!(body["pr"].is_string(), "{at_limit}: {body}");
    }
    for over in ["abcdefghijk", "⚡⚡⚡⚡⚡⚡⚡⚡⚡⚡⚡"] {
        assert_refused(
            &app,
            "tiny",
            &format!("amount=1000&comment={}", urlencode(over)),
            "comment too long",
        )
        .await;
    }
    assert_refused(
        &app,
        "tiny",
        "amount=1000&comment=a&comment=b",
        "more than once",
    )
    .await;
}

#[tokio::test]
async fn callback_refuses_comments_where_none_are_allowed_but_accepts_empty_ones() {
    let app = spawn_app().await;
    app.add_user("quiet", json!({"comment_allowed": 0})).await;
    assert_refused(
        &app,
        "quiet",
        "amount=1000&comment=hello",
        "does not accept comments",
    )
    .await;
    let body = app.callback("quiet", "amount=1000&comment=").await;
    assert!(body["pr"].is_string(), "Zeus always sends comment=: {body}");
}

#[tokio::test]
async fn callback_refuses_bad_payer_data() {
    let app = spawn_app().await;
    app.add_user(
        "alice",
        json!({"payer_data": {"email": {"mandatory": true}}}),
    )
    .await;
    let cases = [
        ("not JSON", "{name", "not valid json"),
        (
            "not an object",
            r#"["satoshi@example.com"]"#,
            "must be a json object",
        ),
        (
            "mandatory field missing",
            r#"{"name":"Satoshi"}"#,
            "missing the mandatory field 'email'",
        ),
        (
            "wrong type",
            r#"{"email":42}"#,
            "must be a non-empty string",
        ),
        ("bad email", r#"{"email":"satoshi"}"#, "not an email"),
    ];
    for (_case, payer_data, needle) in cases {
        assert_refused(
            &app,
            "alice",
            &format!("amount=1000&payerdata={}", urlencode(payer_data)),
            needle,
        )
        .await;
    }
}

#[tokio::test]
async fn callback_refuses_unknown_disabled_and_malformed_names() {
    let app = spawn_app().await;
    app.add_user("bob", json!({"disabled": true})).await;
    assert_refused(&app, "bob", "amount=1000", "not accepting payments").await;
    for name in ["nobody", "a..b", "%00", "sat%2Foshi", "s%D0%B0toshi"] {
        assert_refused(&app, name, "amount=1000", "unknown user").await;
    }
    let (status, body) = app.raw_get("/lnurlp/../callback?amount=1000").await;
    assert_eq!(status, 200);
    assert_lnurl_error(&body, "unknown user");
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn callback_refuses_a_10_kib_query_and_bad_encodings() {
    let app = spawn_app().await;
    let huge = format!("amount=1000&comment={}", "a".repeat(10 * 1024));
    assert_refused(&app, "satoshi", &huge, "query string too long").await;
    assert_refused(
        &app,
        "satoshi",
        "amount=1000&comment=%FF%FE",
        "not valid percent-encoded utf-8",
    )
    .await;
}

pub fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
