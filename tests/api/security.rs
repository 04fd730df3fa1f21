//! The outside audit's findings, one test each: what an attacker tried, and that it no longer
//! works.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::receiver::Receiver;
use crate::support::relay::Relay;
use crate::support::{poll_until, spawn_app_with, TestApp};
use rayo::net::PrivateWebhooks;

/// The events queued about one invoice, as the admin API lists them.
async fn events_about(app: &TestApp, hash: &str) -> Vec<Value> {
    app.admin(Method::GET, &format!("/webhooks?invoice={hash}"), None)
        .await
        .json()
        .await
        .unwrap()
}

/// Waits until the event about `hash` has been attempted; returns its last outcome.
async fn first_outcome(app: &TestApp, hash: &str, seconds: u64) -> String {
    let outcome = poll_until(seconds, || async {
        let events = events_about(app, hash).await;
        events
            .first()
            .and_then(|e| e["last_outcome"].as_str())
            .map(str::to_owned)
    })
    .await;
    outcome.unwrap_or_else(|| panic!("no delivery attempt for {hash} within {seconds} s"))
}

/// This machine's own name, when it resolves to a private address (it does in containers and
/// VMs, through /etc/hosts): a DNS name that leads inside without looking like it.
fn private_hostname() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_owned();
    let addresses: Vec<_> = (name.as_str(), 80).to_socket_addrs().ok()?.collect();
    (!addresses.is_empty() && addresses.iter().all(|a| !rayo::net::is_public(a.ip())))
        .then_some(name)
}

async fn shop(app: &TestApp) -> String {
    app.add_user("shop", json!({})).await;
    app.admin(
        Method::PATCH,
        "/users/shop",
        Some(json!({"rotate_webhook_secret": true})),
    )
    .await;
    app.api_key("shop").await
}

#[tokio::test]
async fn apps_cannot_point_webhooks_at_loopback_in_any_spelling() {
    let receiver = Receiver::start();
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook");
    let app = spawn_app_with(None, |s| s.webhook_allow_private = PrivateWebhooks::None).await;
    let key = shop(&app).await;
    for url in [
        format!("http://[::ffff:7f00:1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.0.0.1:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let (status, body) = app
            .create_invoice(&key, json!({"amount_sat": 1, "webhook_url": url}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("public addresses"),
            "{body}"
        );
    }
    assert!(app.invoices().await.is_empty(), "nothing was stored");
    assert_eq!(receiver.attempts(), 0);
}

#[tokio::test]
async fn an_app_webhook_whose_name_resolves_inside_is_refused_at_delivery() {
    let Some(hostname) = private_hostname() else {
        eprintln!("skipped: this machine's name does not resolve to a private address");
        return;
    };
    let receiver = Receiver::start();
    let url = receiver.url.replace("127.0.0.1", &hostname);
    let app = spawn_app_with(None, |s| s.webhook_allow_private = PrivateWebhooks::None).await;
    let key = shop(&app).await;
    // A name passes the early check: it could be public. Where it leads is checked when rayo
    // connects, on the addresses it resolves to then.
    let (status, created) = app
        .create_invoice(&key, json!({"amount_sat": 1, "webhook_url": url}))
        .await;
    assert_eq!(status, 201, "{created}");
    let hash = created["payment_hash"].as_str().unwrap();
    app.settle(hash).await;
    let outcome = first_outcome(&app, hash, 10).await;
    assert!(outcome.contains("private"), "{outcome}");
    assert_eq!(receiver.attempts(), 0, "nothing reached the inside");
}

#[tokio::test]
async fn operator_webhooks_reach_private_addresses_only_when_the_operator_says_so() {
    let receiver = Receiver::start();
    // Without the opt-in, even the operator's own webhook to loopback is refused, at once.
    let app = spawn_app_with(None, |s| s.webhook_allow_private = PrivateWebhooks::None).await;
    let refused = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"name": "alice", "settings": {"webhook_url": receiver.url}})),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RAYO_WEBHOOK_ALLOW_PRIVATE"),
        "{body}"
    );
    assert_eq!(receiver.attempts(), 0);

    // RAYO_WEBHOOK_ALLOW_PRIVATE=true: the operator's webhook is delivered; an app's is not.
    let app = spawn_app_with(None, |s| {
        s.webhook_allow_private = PrivateWebhooks::Operator
    })
    .await;
    let key = shop(&app).await;
    app.admin(
        Method::PATCH,
        "/users/shop",
        Some(json!({"webhook_url": receiver.url})),
    )
    .await;
    let (status, _) = app
        .create_invoice(&key, json!({"amount_sat": 1, "webhook_url": receiver.url}))
        .await;
    assert_eq!(status, 422, "apps stay public-only");
    let (status, created) = app.create_invoice(&key, json!({"amount_sat": 1})).await;
    assert_eq!(status, 201);
    app.settle(created["payment_hash"].as_str().unwrap()).await;
    assert!(
        app.eventually(10, || async { receiver.received().len() == 1 })
            .await
    );
}

#[tokio::test]
async fn a_webhook_error_body_is_read_only_as_far_as_the_log_quotes_it() {
    let receiver = Receiver::start();
    receiver.set_endless_error(true);
    let app = spawn_app_with(None, |_| {}).await;
    app.add_user("alice", json!({"webhook_url": receiver.url}))
        .await;
    app.callback("alice", "amount=1000").await;
    let hash = app.invoices().await[0]["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(&hash).await;
    // The receiver would talk forever; rayo quotes its first words and hangs up, well before
    // the 10 s an attempt may take.
    let outcome = first_outcome(&app, &hash, 5).await;
    assert!(
        outcome.starts_with("HTTP 500") && outcome.contains("error error"),
        "{outcome}"
    );
    assert!(outcome.chars().count() <= 250, "{outcome}");
}

#[tokio::test]
async fn zap_receipts_reach_relays_named_by_ipv6_literals() {
    use crate::zaps::{receipt_on, zap, zap_request};
    let relay = Relay::start_on_ipv6();
    let app = spawn_app_with(None, |s| s.nostr_allow_private_relays = true).await;
    let request = zap_request(&[&relay.url], 21_000);
    let (_, hash) = zap(&app, &request, 21_000).await;
    app.settle(&hash).await;
    let receipt = receipt_on(&relay, &app, 10).await;
    assert_eq!(receipt.kind.as_u16(), 9735);
}

#[tokio::test]
async fn zap_receipts_never_go_to_private_relays_by_default() {
    use crate::zaps::{zap, zap_request};
    let relay = Relay::start();
    let app = spawn_app_with(None, |_| {}).await;
    // The relay is named by a private literal: skipped when the receipt is prepared.
    let request = zap_request(&[&relay.url, "wss://[2001:db8::1]/"], 21_000);
    let (_, hash) = zap(&app, &request, 21_000).await;
    // A payment and the events it calls for are committed as one step before the settle
    // answers: had a receipt been queued, it would be listed now.
    app.settle(&hash).await;
    assert!(events_about(&app, &hash).await.is_empty());
    assert!(relay.events().is_empty());
}

#[tokio::test]
async fn max_sendable_beyond_all_bitcoin_is_refused() {
    let app = spawn_app_with(None, |_| {}).await;
    let answer = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"name": "whale", "settings": {"max_sendable": 2_100_000_000_000_000_001u64}})),
        )
        .await;
    assert_eq!(answer.status(), 422);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("21 million bitcoin"),
        "{body}"
    );
}

#[tokio::test]
async fn with_an_admin_address_the_admin_token_opens_nothing_on_the_public_port() {
    let app = spawn_app_with(None, |s| {
        s.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin_url = std::fs::read_to_string(app.data_dir.path().join("server.url")).unwrap();
    let admin_url = admin_url.trim();
    let list = |base: String| {
        app.client
            .get(format!("{base}/api/v1/invoices"))
            .bearer_auth(&app.admin_token)
            .send()
    };
    assert_eq!(list(app.address.clone()).await.unwrap().status(), 401);
    let (status, _) = app
        .create_invoice(
            &app.admin_token,
            json!({"user": "satoshi", "amount_sat": 1}),
        )
        .await;
    assert_eq!(status, 401);
    let stored: Vec<Value> = app
        .client
        .get(format!("{admin_url}/admin/v1/invoices"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing was created");
    // On the admin address the operator is at home.
    assert_eq!(list(admin_url.to_owned()).await.unwrap().status(), 200);
}

/// A request from `ip` (the trusted proxy header says so) to `path`: its status and its body.
async fn from(app: &TestApp, ip: &str, path: &str) -> (u16, String) {
    let answer = app
        .client
        .get(format!("{}{path}", app.address))
        .header("Fly-Client-IP", ip)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn every_route_that_makes_an_invoice_passes_the_same_rate_limit() {
    let app = spawn_app_with(None, |s| {
        s.rate_limit_callback_per_minute = 4;
        s.client_ip_header = Some("Fly-Client-IP".into());
    })
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pay_form = |ip: &'static str| {
        no_redirects
            .post(format!("{}/@satoshi/pay", app.address))
            .form(&[("amount", "1")])
            .header("Fly-Client-IP", ip)
            .send()
    };
    // The pay form spends the client's budget (a burst of one at 4 a minute)...
    assert_eq!(pay_form("203.0.113.7").await.unwrap().status(), 303);
    // ...so the wallet callback and the invoice API are refused for it too,
    let (_, body) = from(&app, "203.0.113.7", "/lnurlp/satoshi/callback?amount=1000").await;
    assert!(body.contains("Too many requests"), "{body}");
    let api = app
        .client
        .post(format!("{}/api/v1/invoices", app.address))
        .bearer_auth(&app.admin_token)
        .header("Fly-Client-IP", "203.0.113.7")
        .json(&json!({"user": "satoshi", "amount_sat": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429);
    // ...and the other way round: a client whose callbacks used it gets no form invoices.
    let (_, body) = from(&app, "198.51.100.9", "/lnurlp/satoshi/callback?amount=1000").await;
    assert!(body.contains("\"pr\""), "{body}");
    let refused = pay_form("198.51.100.9").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("Too many requests"));
    assert_eq!(app.invoices().await.len(), 2);
}

#[tokio::test]
async fn one_client_at_its_rate_limit_cannot_make_an_address_unpayable() {
    let app = std::sync::Arc::new(
        spawn_app_with(None, |s| {
            s.client_ip_header = Some("Fly-Client-IP".into());
            s.max_pending_per_user = 50;
        })
        .await,
    );
    // One client asks for invoices as fast as it is let, and pays none.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut asked, mut got) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (_, body) =
                    from(&app, "203.0.113.66", "/lnurlp/satoshi/callback?amount=1000").await;
                asked += 1;
                got += usize::from(body.contains("\"pr\""));
            }
            (asked, got)
        })
    };
    // Meanwhile another payer gets an invoice every time, and pays it.
    for round in 0..20 {
        let (_, body) = from(
            &app,
            "198.51.100.20",
            "/lnurlp/satoshi/callback?amount=1000",
        )
        .await;
        let answer: Value = serde_json::from_str(&body).unwrap();
        let pr = answer["pr"]
            .as_str()
            .unwrap_or_else(|| panic!("round {round}: {answer}"));
        assert!(pr.starts_with("lnbcrt"));
        let hash = answer["verify"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .nth(1)
            .unwrap();
        assert_eq!(app.settle(hash).await.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (asked, got) = hammer.await.unwrap();
    assert!(asked > 100, "the hammer kept going: {asked} requests");
    assert_eq!(got, 5, "it holds at most its share: a tenth of 50");
}

/// Opens a live follower of `hash` with `key`: the socket, or the HTTP status it was refused with.
async fn follow(
    app: &TestApp,
    key: &str,
    hash: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v1/invoices/{hash}/ws",
        app.address.replace("http", "ws")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            let first = socket.next().await.unwrap().unwrap();
            assert!(first.to_text().unwrap().contains("\"invoice\""));
            Ok(socket)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => Err(answer.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn followers_now(app: &TestApp) -> String {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find(|l| l.starts_with("rayo_live_followers "))
        .unwrap_or("rayo_live_followers missing")
        .to_owned()
}

#[tokio::test]
async fn a_live_follower_ends_when_its_client_goes_away() {
    let app = spawn_app_with(None, |_| {}).await;
    let key = shop(&app).await;
    let (_, created) = app
        .create_invoice(&key, json!({"amount_sat": 1, "expiry_secs": 86400}))
        .await;
    let hash = created["payment_hash"].as_str().unwrap();
    let socket = follow(&app, &key, hash).await.unwrap();
    assert_eq!(followers_now(&app).await, "rayo_live_followers 1");
    // The client vanishes without a closing handshake; the invoice stays open for a day.
    drop(socket);
    assert!(
        app.eventually(5, || async {
            followers_now(&app).await == "rayo_live_followers 0"
        })
        .await,
        "{}",
        followers_now(&app).await
    );
}

#[tokio::test]
async fn live_followers_are_capped_per_api_key() {
    let app = spawn_app_with(None, |s| s.max_followers_per_client = 2).await;
    let key = shop(&app).await;
    let (_, created) = app.create_invoice(&key, json!({"amount_sat": 1})).await;
    let hash = created["payment_hash"].as_str().unwrap();
    let first = follow(&app, &key, hash).await.unwrap();
    let _second = follow(&app, &key, hash).await.unwrap();
    assert_eq!(follow(&app, &key, hash).await.err(), Some(429));
    drop(first);
    assert!(
        app.eventually(5, || async { follow(&app, &key, hash).await.is_ok() })
            .await,
        "a place is free again once a follower ends"
    );
}

#[tokio::test]
async fn removing_a_user_revokes_their_api_keys_for_good() {
    let app = spawn_app_with(None, |_| {}).await;
    let key = shop(&app).await;
    assert_eq!(
        app.admin(Method::DELETE, "/users/shop", None)
            .await
            .status(),
        204
    );
    // Someone else gets the name later: the old key opens nothing.
    shop(&app).await;
    let (status, body) = app.create_invoice(&key, json!({"amount_sat": 1})).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
}

#[tokio::test]
async fn unauthenticated_api_requests_are_rate_limited_too() {
    let app = spawn_app_with(None, |s| {
        s.rate_limit_api_per_minute = 4;
        s.client_ip_header = Some("Fly-Client-IP".into());
    })
    .await;
    let guess = |token: &'static str| {
        app.client
            .get(format!("{}/api/v1/invoices", app.address))
            .bearer_auth(token)
            .header("Fly-Client-IP", "203.0.113.5")
            .send()
    };
    assert_eq!(guess("rk_guess1").await.unwrap().status(), 401);
    assert_eq!(guess("rk_guess2").await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_body_sent_one_byte_at_a_time_is_cut_off_at_its_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(None, |s| {
        s.request_body_timeout = std::time::Duration::from_secs(2)
    })
    .await;
    let stream = tokio::net::TcpStream::connect(app.domain()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /api/v1/invoices HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.domain(),
        app.admin_token
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    // One byte every 500 ms would take 50 s; the server answers and hangs up long before.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        reader.read_to_end(&mut answer),
    )
    .await;
    trickle.abort();
    assert!(read.is_ok(), "the connection was still open after 8 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(6));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(app.invoices().await.is_empty());
}

#[tokio::test]
async fn concurrent_readiness_probes_share_one_check_and_show_no_upstream_errors() {
    use crate::support::backend_double::{BackendDouble, Fault};
    use std::sync::atomic::Ordering;
    let backend = std::sync::Arc::new(BackendDouble::new(Fault::Fails));
    let app = spawn_app_with(Some(backend.clone()), |_| {}).await;
    let probes = (0..20).map(|_| app.get("/readyz"));
    let answers = futures_util::future::join_all(probes).await;
    assert_eq!(
        backend.lookups.load(Ordering::SeqCst),
        1,
        "one check for twenty probes"
    );
    for answer in answers {
        assert_eq!(answer.status(), 503);
        let text = answer.text().await.unwrap();
        assert!(!text.contains("secret detail"), "{text}");
        assert!(text.contains("failing"), "{text}");
    }
}
