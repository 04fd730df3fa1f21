//! Operations: metrics, readiness, rate limits and the cap on unpaid invoices.

use serde_json::json;

use crate::support::{assert_lnurl_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn metrics_count_requests_invoices_payments_and_the_outbox() {
    let receiver = crate::support::receiver::Receiver::start();
    receiver.set_down(true);
    let app = spawn_app().await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    let body = app.callback("alice", "amount=1000").await;
    assert!(body["pr"].is_string());
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(&hash).await;
    // The failed attempt is counted once rayo has recorded it.
    assert!(
        app.eventually(5, || async {
            app.metrics()
                .await
                .contains("rayo_outbox_delivery_failures_total")
        })
        .await
    );
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    for expected in [
        r#"rayo_invoices_created_total{backend="default"} 1"#,
        r#"rayo_invoices_paid_total{backend="default"} 1"#,
        r#"rayo_http_requests_total{route="/lnurlp/{name}/callback",method="GET",status="200"} 1"#,
        r#"rayo_http_requests_total{route="/metrics",method="GET",status="200"}"#,
        r#"rayo_backend_invoice_requests_total{backend="default",outcome="ok"} 1"#,
        "rayo_outbox_backlog 1",
        r#"rayo_outbox_delivery_failures_total{kind="invoice.paid"}"#,
        "rayo_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Route patterns, never raw paths: names and hashes stay out of label values.
    assert!(!text.contains("/lnurlp/alice"));
}

#[tokio::test]
async fn readiness_checks_the_store_and_every_backend() {
    let app = spawn_app().await;
    let answer = app.get("/readyz").await;
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    assert_eq!(body["backends"], "ok", "no backend names for the public");

    // A port held by nobody's server: connections are refused.
    let dead = crate::support::ports::ReservedPort::new();
    let url = format!("http://{}/", dead.address());
    let app = spawn_app_with(None, move |s| {
        s.backend.kind = rayo::config::BackendKind::Lnbits;
        s.backend.lnbits_url = Some(url.parse().unwrap());
        s.backend.lnbits_invoice_key = Some(rayo::domain::Secret::new("k"));
    })
    .await;
    let answer = app.get("/readyz").await;
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["backends"], "failing", "{body}");
    // Which backend, and what exactly is wrong, is for the operator.
    let answer = app
        .client
        .get(format!("{}/readyz", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["backends"]["default"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{body}"
    );
}

#[tokio::test]
async fn callbacks_are_limited_per_client_address() {
    let app = spawn_app_with(None, |s| {
        s.rate_limit_callback_per_minute = 4;
        s.client_ip_header = Some("Fly-Client-IP".into());
    })
    .await;
    let call = |ip: &'static str| {
        let request = app
            .client
            .get(format!(
                "{}/lnurlp/satoshi/callback?amount=1000",
                app.address
            ))
            .header("Fly-Client-IP", ip);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // A burst of one (a quarter of 4 a minute), then refusals with an LNURL error.
    assert!(call("203.0.113.7").await["pr"].is_string());
    assert_lnurl_error(&call("203.0.113.7").await, "too many requests");
    // Another client has its own budget.
    assert!(call("198.51.100.9").await["pr"].is_string());
    assert_eq!(app.invoices().await.len(), 2);
}

#[tokio::test]
async fn a_user_with_too_many_unpaid_invoices_gets_no_more_until_some_are_paid() {
    let app = spawn_app_with(None, |s| {
        s.max_pending_per_user = 2;
        s.max_pending_per_client = Some(2);
    })
    .await;
    for _ in 0..2 {
        assert!(app.callback("satoshi", "amount=1000").await["pr"].is_string());
    }
    assert_lnurl_error(
        &app.callback("satoshi", "amount=1000").await,
        "too many unpaid",
    );
    let answer = app
        .client
        .post(format!("{}/api/v1/invoices", app.address))
        .bearer_auth(&app.admin_token)
        .json(&json!({"user": "satoshi", "amount_sat": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);

    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(&hash).await;
    assert!(app.callback("satoshi", "amount=1000").await["pr"].is_string());
}

#[tokio::test]
async fn oversized_headers_queries_and_bodies_are_refused_without_harm() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    // A 64 KiB header: the connection is refused with a 4xx, the server carries on.
    let mut stream = tokio::net::TcpStream::connect(app.domain()).await.unwrap();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = stream.read(&mut answer).await.unwrap_or(0);
    let status = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        status.is_empty() || status.starts_with("HTTP/1.1 4"),
        "refused: {status:?}"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);

    // A callback query beyond 8 KiB is an LNURL error.
    let long = app
        .callback(
            "satoshi",
            &format!("amount=1000&comment={}", "a".repeat(9000)),
        )
        .await;
    assert_lnurl_error(&long, "too long");

    // An invoice API body beyond 16 KiB: 413, nothing stored.
    let answer = app
        .client
        .post(format!("{}/api/v1/invoices", app.address))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"user\":\"satoshi\",\"amount_sat\":1,\"description\":\"{}\"}}",
            "a".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    assert!(app.invoices().await.is_empty());
}
