//! The real `rayo` binary's logs and terminal output: no secret and no payer's bytes in them.

use serde_json::Value;

use crate::support::binary::{base_url, rayo, reserve_port, run, LoggedServer, Server};
use crate::support::{get_json_url, poll_until};

#[tokio::test]
async fn the_server_never_logs_its_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let token = "tok-9f2e7c1d-never-log-me-5a6b7c8d9e0f";
    let mut command = rayo(dir.path(), port);
    command
        .env("RAYO_ADMIN_TOKEN", token)
        .env("RAYO_LOG", "trace")
        .env("RAYO_LOG_FORMAT", "json");
    let server = LoggedServer::start(command, port);
    let http = reqwest::Client::new();
    let base = base_url(port);
    let ok = http
        .get(format!("{base}/admin/v1/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = http
        .get(format!("{base}/admin/v1/users"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    http.get(format!("{base}/lnurlp/satoshi/callback?amount=1000"))
        .send()
        .await
        .unwrap();
    let output = server.stop().await;
    assert!(output.contains("listening"), "the server did log: {output}");
    assert!(
        !output.contains(token),
        "the admin token leaked into the output"
    );
}

#[tokio::test]
async fn a_full_run_with_every_backends_secrets_never_logs_one_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let unreachable = crate::support::ports::ReservedPort::new();
    let dead = format!("http://{}/", unreachable.address());
    let secrets = [
        ("RAYO_ADMIN_TOKEN", "admin-token-ZK3P-0123456789abcdef0123"),
        (
            "RAYO_NOSTR_SECRET_KEY",
            "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a",
        ),
        ("RAYO_BACKEND_NODE_MACAROON", "0201036c6e6402f8015ec3e7"),
        ("RAYO_BACKEND_CORE_RUNE", "rune-Q8v2-secret"),
        ("RAYO_BACKEND_WALLET_INVOICE_KEY", "lnbits-key-H4x9"),
        ("RAYO_BACKEND_PHOENIX_PASSWORD", "phoenix-pass-W1"),
        ("RAYO_BACKEND_PHOENIX_WEBHOOK_SECRET", "phoenix-hook-M7"),
        ("RAYO_BACKEND_EXCHANGE_API_KEY", "buda-key-T5"),
        ("RAYO_BACKEND_EXCHANGE_API_SECRET", "buda-secret-R2"),
    ];
    let toml = [
        "node:lnd",
        "core:cln",
        "wallet:lnbits",
        "phoenix:phoenixd",
        "exchange:buda",
    ]
    .iter()
    .map(|entry| {
        let (name, kind) = entry.split_once(':').unwrap();
        format!("[backends.{name}]\nkind = \"{kind}\"\nurl = \"{dead}\"\n")
    })
    .collect::<String>();
    std::fs::write(dir.path().join("rayo.toml"), toml).unwrap();
    let mut command = rayo(dir.path(), port);
    for (key, value) in secrets {
        command.env(key, value);
    }
    command
        .env("RAYO_LOG", "trace")
        .env("RAYO_LOG_FORMAT", "json")
        .env("RAYO_BACKEND_TIMEOUT_MS", "1500");
    let server = LoggedServer::start(command, port);
    let http = reqwest::Client::new();
    let base = base_url(port);
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}/admin/v1{path}"))
            .bearer_auth("admin-token-ZK3P-0123456789abcdef0123")
    };
    // Users on every backend; callbacks that fail upstream; an API key; webhooks; readiness.
    for backend in ["node", "core", "wallet", "phoenix", "exchange"] {
        let created = admin(reqwest::Method::POST, "/users")
            .json(&serde_json::json!({"name": backend, "settings": {"backend": backend, "webhook_url": "http://127.0.0.1:9/hook"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let answer: Value = http
            .get(format!("{base}/lnurlp/{backend}/callback?amount=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "ERROR", "{backend}: {answer}");
    }
    let key: Value = admin(reqwest::Method::POST, "/users/node/api-keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_key = key["key"].as_str().unwrap().to_owned();
    http.get(format!("{base}/api/v1/invoices"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/readyz")).send().await.unwrap();
    http.post(format!("{base}/hooks/phoenix"))
        .header("X-Phoenix-Signature", "00")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body = http
        .get(format!("{base}/lnurlp/satoshi/callback?amount=1000"))
        .send()
        .await
        .unwrap();
    let hash = {
        let body: Value = body.json().await.unwrap();
        let invoice: lightning_invoice::Bolt11Invoice =
            body["pr"].as_str().unwrap().parse().unwrap();
        hex::encode(bitcoin_hashes::Hash::to_byte_array(*invoice.payment_hash()))
    };
    admin(reqwest::Method::POST, &format!("/dev/settle/{hash}"))
        .send()
        .await
        .unwrap();
    let paid = poll_until(10, || async {
        let invoice: Value = admin(reqwest::Method::GET, &format!("/invoices/{hash}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (invoice["status"] == "paid").then_some(())
    })
    .await;
    assert!(
        paid.is_some(),
        "the payment is recorded before the server stops"
    );

    let output = server.stop().await;
    assert!(
        output.lines().count() > 50,
        "a full trace-level log: {output}"
    );
    for (key, value) in secrets
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain([("api key", api_key.as_str())])
    {
        assert!(!output.contains(value), "{key} appears in the log");
    }
}

#[tokio::test]
async fn terminal_escapes_from_payers_never_reach_the_operators_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    let http = reqwest::Client::new();
    // A zap whose relay list carries an escape sequence (red text, then a terminal title).
    let relay = "wss://relay.example/\u{1b}[31mred\u{1b}]0;owned\u{7}";
    let request = crate::zaps::zap_request(&[relay], 21_000);
    let body = get_json_url(
        &http,
        &format!(
            "http://127.0.0.1:{port}/lnurlp/satoshi/callback?amount=21000&nostr={}",
            crate::callback::urlencode(&request)
        ),
    )
    .await;
    let hash = body["verify"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .nth(1)
        .unwrap()
        .to_owned();
    run(dir.path(), port, &["dev", "settle", &hash]);
    for args in [
        vec!["webhook", "list"],
        vec!["invoice", "show", &hash],
        vec!["invoice", "list"],
    ] {
        let output = run(dir.path(), port, &args);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{args:?}: {text:?}"
        );
    }
    let listed =
        String::from_utf8_lossy(&run(dir.path(), port, &["webhook", "list"]).stdout).into_owned();
    assert!(
        listed.contains("wss://relay.example/%1B[31mred"),
        "{listed}"
    );
    server.stop();
}

#[tokio::test]
async fn payer_data_comments_and_verify_tags_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let mut command = rayo(dir.path(), port);
    command
        .env("RAYO_LOG", "trace")
        .env("RAYO_LOG_FORMAT", "json");
    let server = LoggedServer::start(command, port);
    let http = reqwest::Client::new();
    let base = base_url(port);
    let payer_data = r#"{"name":"Payer Name 7f3a","email":"payer-7f3a@example.com"}"#;
    let body = get_json_url(
        &http,
        &format!(
            "{base}/lnurlp/satoshi/callback?amount=21000&comment={}&payerdata={}",
            crate::callback::urlencode("a private note 7f3a"),
            crate::callback::urlencode(payer_data)
        ),
    )
    .await;
    let verify = body["verify"].as_str().unwrap().to_owned();
    let tag = verify.rsplit('/').next().unwrap().to_owned();
    assert_eq!(get_json_url(&http, &verify).await["status"], "OK");
    // Failures are logged too, and must not quote what they refuse.
    get_json_url(
        &http,
        &format!("{base}/lnurlp/satoshi/callback?amount=21000&comment=x&payerdata=%7Bbroken-7f3a"),
    )
    .await;
    let logs = server.stop().await;
    assert!(
        logs.contains("/lnurlp/{name}/callback"),
        "requests are logged by route: {logs}"
    );
    for secret in ["7f3a", &tag, "amount=21000", "payerdata"] {
        assert!(!logs.contains(secret), "{secret:?} is in the logs");
    }
}

#[tokio::test]
async fn a_flood_of_forged_backend_webhooks_is_rate_limited_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let mut command = rayo(dir.path(), port);
    command
        .env("RAYO_BACKEND", "phoenixd")
        .env("RAYO_PHOENIXD_URL", "http://127.0.0.1:9/")
        .env("RAYO_PHOENIXD_PASSWORD", "phoenix-password")
        .env("RAYO_PHOENIXD_WEBHOOK_SECRET", "phoenix-webhook-secret")
        .env("RAYO_RATE_LIMIT_API_PER_MINUTE", "120")
        .env("RAYO_LOG", "info");
    let server = LoggedServer::start(command, port);
    let http = reqwest::Client::new();
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..200 {
        let status = http
            .post(format!("http://127.0.0.1:{port}/hooks/default"))
            .header("X-Phoenix-Signature", format!("{n:064x}"))
            .body(r#"{"type":"payment_received","paymentHash":"00"}"#)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        *statuses.entry(status).or_insert(0) += 1;
    }
    // A burst of a quarter of 120 a minute (and what refills meanwhile, two a second) gets
    // checked and refused; the rest is cut off before any checking.
    let checked = statuses.get(&401).copied().unwrap_or(0);
    assert!((30..=36).contains(&checked), "{statuses:?}");
    assert_eq!(
        checked + statuses.get(&429).copied().unwrap_or(0),
        200,
        "{statuses:?}"
    );
    let logs = server.stop().await;
    let refusals = logs.matches("refused a backend webhook").count();
    assert_eq!(refusals, 1, "{logs}");
}
