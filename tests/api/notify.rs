//! People hear they were paid: through ntfy, email (a real SMTP server), Nostr private
//! messages (a real relay, unwrapped by nostr-tools), in digests when payments come in
//! storms, and never through a channel that was not confirmed or is marked broken.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::notify::{FakeNtfy, SmtpServer};
use crate::support::nwc::NostrRelay;
use crate::support::relay::Relay;
use crate::support::{spawn_app_in, spawn_app_with, ShiftedClock, TestApp};

async fn pay(app: &TestApp, name: &str, query: &str) -> String {
    let body = app.callback(name, query).await;
    let pr = body["pr"].as_str().unwrap_or_else(|| panic!("{body}"));
    let hash = app
        .invoices()
        .await
        .into_iter()
        .find(|i| i["bolt11"] == pr)
        .unwrap()["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.settle(&hash).await.status(), 200);
    hash
}

async fn user(app: &TestApp, name: &str) -> Value {
    app.admin(Method::GET, &format!("/users/{name}"), None)
        .await
        .json()
        .await
        .unwrap()
}

async fn events_of_kind(app: &TestApp, kind: &str) -> Vec<Value> {
    let all: Vec<Value> = app
        .admin(Method::GET, "/webhooks?limit=500", None)
        .await
        .json()
        .await
        .unwrap();
    all.into_iter().filter(|e| e["type"] == kind).collect()
}

async fn update(app: &TestApp, name: &str, body: Value) -> reqwest::Response {
    app.admin(Method::PATCH, &format!("/users/{name}"), Some(body))
        .await
}

#[tokio::test]
async fn a_payment_reaches_ntfy_with_the_amount_comment_payer_and_a_link() {
    let ntfy = FakeNtfy::start();
    let app = spawn_app_with(None, |s| s.notify.allow_private = true).await;
    let topic = format!(
        "{}/alice-x7",
        ntfy.base.replace("http://", "http://:tk_secret123@")
    );
    app.add_user(
        "alice",
        json!({"comment_allowed": 100, "payer_data": {"name": {"mandatory": false}},
               "notify": [format!("ntfy:{topic}")]}),
    )
    .await;
    let shown = user(&app, "alice").await;
    assert_eq!(shown["notify"][0]["state"], "ready", "{shown}");
    assert!(!shown.to_string().contains("tk_secret123"), "{shown}");

    let hash = pay(
        &app,
        "alice",
        "amount=21000&comment=thanks%20for%20the%20coffee&payerdata=%7B%22name%22%3A%22Bob%22%7D",
    )
    .await;
    assert!(
        app.eventually(10, || async { !ntfy.heard().is_empty() })
            .await
    );
    let heard = &ntfy.heard()[0];
    assert_eq!(heard.authorization.as_deref(), Some("Bearer tk_secret123"));
    let body = &heard.body;
    assert_eq!(body["topic"], "alice-x7");
    assert_eq!(body["title"], format!("21 sats to alice@{}", app.domain()));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "You received 21 sats at alice@{} from Bob.",
            app.domain()
        )),
        "{message}"
    );
    assert!(message.contains("\"thanks for the coffee\""), "{message}");
    assert_eq!(
        body["click"],
        format!("{}/account?q={hash}#payments", app.address)
    );
    assert_eq!(body["tags"], json!(["moneybag"]));
    assert_eq!(body["priority"], 3);
    println!(
        "ntfy received: {}",
        serde_json::to_string_pretty(body).unwrap()
    );

    // Amounts only, once the person says so: the comment and the payer stay on the server.
    assert_eq!(
        update(&app, "alice", json!({"notify_details": false}))
            .await
            .status(),
        200
    );
    pay(&app, "alice", "amount=5000&comment=private%20words").await;
    assert!(
        app.eventually(10, || async { ntfy.heard().len() == 2 })
            .await
    );
    let second = ntfy.heard()[1].body.to_string();
    assert!(
        second.contains("5 sats") && !second.contains("private words"),
        "{second}"
    );
}

#[tokio::test]
async fn bad_channels_are_refused_with_the_reason_and_change_nothing() {
    let app = spawn_app_with(None, |_| {}).await;
    let npub = "npub1sg6plzptd64u62a878hep2kev88swjh3tw00gjsfl8f237lmu63q0uf63m";
    app.add_user("alice", json!({"notify": [format!("nostr:{npub}")]}))
        .await;
    for (channel, says) in [
        ("nostr:npub1notakey", "not an npub"),
        ("email:alice", "not an email address"),
        ("email:alice@example.org", "RAYO_SMTP_URL"),
        ("ntfy:http://127.0.0.1:9/alice", "RAYO_NOTIFY_ALLOW_PRIVATE"),
        ("ntfy:http://10.0.0.7/alice", "RAYO_NOTIFY_ALLOW_PRIVATE"),
        ("ntfy:https://ntfy.sh/", "topic name"),
        ("telegram:@alice", "not a chat id"),
        ("telegram:12345", "RAYO_TELEGRAM_BOT_TOKEN"),
        ("pigeon:coo", "not a channel"),
    ] {
        let answer = update(&app, "alice", json!({"notify": [channel]})).await;
        assert_eq!(answer.status(), 422, "{channel}");
        let body: Value = answer.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{channel}: {message}");
    }
    let shown = user(&app, "alice").await;
    assert_eq!(shown["notify"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown["notify"][0]["kind"], "nostr", "{shown}");
    let digest = update(&app, "alice", json!({"notify_digest": "30s"})).await;
    assert_eq!(digest.status(), 422);
}

fn smtp_settings(server: &SmtpServer) -> impl FnOnce(&mut rayo::config::Settings) {
    let url = format!("smtp://rayo:s3cret@localhost:{}", server.port);
    let ca = server.ca_file();
    move |s: &mut rayo::config::Settings| {
        s.notify.smtp_url = Some(rayo::domain::Secret::new(url));
        s.notify.smtp_from = Some("rayo alerts <alerts@rayo.test>".into());
        s.notify.smtp_ca_file = Some(ca);
    }
}

/// The confirmation link in a mail as received: quoted-printable undone first (long lines
/// are cut with `=` at their ends).
fn confirm_link(data: &str) -> String {
    data.replace("=\r\n", "")
        .replace("=3D", "=")
        .split_whitespace()
        .find(|w| w.contains("/notify/confirm?"))
        .unwrap()
        .to_owned()
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    let head = data.split("\r\n\r\n").next().unwrap_or(data);
    head.split("\r\n")
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|line| line[name.len() + 1..].trim())
}

#[tokio::test]
async fn an_address_is_confirmed_by_its_link_before_alerts_are_mailed_over_starttls() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let app = spawn_app_with(None, smtp_settings(&smtp)).await;
    app.add_user(
        "alice",
        json!({"comment_allowed": 200, "payer_data": {"name": {"mandatory": false}},
               "notify": ["email:alice@example.org"]}),
    )
    .await;
    assert_eq!(
        user(&app, "alice").await["notify"][0]["state"],
        "unconfirmed"
    );

    // Only the confirmation goes out; a payment before it is not mailed.
    assert!(
        app.eventually(10, || async { smtp.received().len() == 1 })
            .await
    );
    let confirm = smtp.received()[0].clone();
    assert_eq!(confirm["tls"], true, "STARTTLS was offered, so it was used");
    assert_eq!(
        confirm["authenticated"], true,
        "AUTH, after STARTTLS: {confirm}"
    );
    assert_eq!(confirm["rcpt_tos"], json!(["alice@example.org"]));
    let data = confirm["data"].as_str().unwrap();
    assert!(header(data, "Subject")
        .unwrap()
        .contains("Confirm payment alerts for alice@"));
    assert!(
        header(data, "List-Unsubscribe").is_none(),
        "nothing is subscribed yet"
    );
    let link = confirm_link(data);
    // Asking for a test before confirming mails the link again, nothing else.
    let again = app
        .admin(Method::POST, "/users/alice/notify/test", Some(json!({})))
        .await;
    assert_eq!(again.status(), 202);
    assert!(
        app.eventually(10, || async { smtp.received().len() == 2 })
            .await
    );
    let resent = smtp.received()[1]["data"].as_str().unwrap().to_owned();
    assert!(header(&resent, "Subject")
        .unwrap()
        .starts_with("Confirm payment alerts"));
    pay(&app, "alice", "amount=1000").await;

    // Opening the link shows a button and changes nothing (mail scanners open links).
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Yes, send them here"));
    assert_eq!(
        user(&app, "alice").await["notify"][0]["state"],
        "unconfirmed"
    );
    let address = link
        .split("a=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    for forged in [
        link.replace("&t=", "&t=00"),
        link.replace(&address, "mallory%40evil%2Eexample"),
    ] {
        let opened = app.client.get(&forged).send().await.unwrap();
        assert_eq!(opened.status(), 400, "{forged}");
        let words = opened.text().await.unwrap();
        assert!(
            !words.contains("mallory") && !words.contains("Yes, send"),
            "{words}"
        );
        let posted = app.client.post(&forged).send().await.unwrap();
        assert_eq!(posted.status(), 400, "{forged}");
    }
    let confirmed = app.client.post(&link).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(user(&app, "alice").await["notify"][0]["state"], "ready");
    assert_eq!(
        smtp.received().len(),
        2,
        "the payment before confirming was not mailed"
    );

    // Header injection: a comment with line breaks is refused at the door, and a payer's
    // name (LUD-18 JSON may hold "\r\n") reaches only the encoded body.
    let refused = app
        .callback(
            "alice",
            "amount=21000&comment=hi%0D%0ABcc%3A%20evil%40example.com",
        )
        .await;
    assert_eq!(refused["status"], "ERROR", "{refused}");
    let name =
        "%7B%22name%22%3A%22Bob%5Cr%5CnBcc%3A%20evil%40example.com%5Cr%5Cn%5Cr%5Cnforged%22%7D";
    let hash = pay(
        &app,
        "alice",
        &format!("amount=21000&comment=Subject%3A%20fake&payerdata={name}"),
    )
    .await;
    assert!(
        app.eventually(10, || async { smtp.received().len() == 3 })
            .await
    );
    let mail = smtp.received()[2].clone();
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.org"]));
    let data = mail["data"].as_str().unwrap();
    println!("the mail as received:\n{data}");
    assert_eq!(
        header(data, "Subject").map(str::to_owned),
        Some(format!("21 sats to alice@{}", app.domain()))
    );
    assert_eq!(
        header(data, "From"),
        Some("\"rayo alerts\" <alerts@rayo.test>")
    );
    assert!(
        header(data, "Date").is_some_and(|d| d.contains(" +0000")),
        "{data}"
    );
    let id = header(data, "Message-ID").unwrap();
    assert!(
        id.starts_with("<evt_") && id.ends_with("@rayo.test>"),
        "{id}"
    );
    let unsubscribe = header(data, "List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with(&format!("<{}/notify/unsubscribe?u=alice", app.address)),
        "{unsubscribe}"
    );
    assert_eq!(
        header(data, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(header(data, "Bcc").is_none(), "{data}");
    assert_eq!(data.matches("\r\nSubject:").count(), 1, "{data}");
    assert!(
        data.replace("=\r\n", "")
            .contains("from Bob Bcc: evil@example.com forged."),
        "names are one line: {data}"
    );
    assert!(
        data.contains("multipart/alternative") && data.contains("text/html"),
        "{data}"
    );
    let decoded = data.replace("=\r\n", "").replace("=3D", "=");
    assert!(decoded.contains(&hash), "the link to the payment: {data}");

    // One click (RFC 8058) turns the channel off, without a sign-in.
    let url = unsubscribe.trim_matches(|c| c == '<' || c == '>');
    let off = app
        .client
        .post(url)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    assert!(user(&app, "alice").await["notify"].is_null());
}

#[tokio::test]
async fn an_smtp_server_that_refuses_is_retried_then_dead_lettered_with_its_words_and_the_channel_marked_broken(
) {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let configure = smtp_settings(&smtp);
    let app = spawn_app_with(None, move |s| {
        configure(s);
        s.notify.smtp_timeout = Duration::from_secs(1);
        s.webhook_window = Duration::from_secs(4);
        s.webhook_first_retry = Duration::from_secs(1);
    })
    .await;
    app.add_user("alice", json!({"notify": ["email:alice@example.org"]}))
        .await;
    assert!(
        app.eventually(10, || async { smtp.received().len() == 1 })
            .await
    );
    let data = smtp.received()[0]["data"].as_str().unwrap().to_owned();
    let link = confirm_link(&data);
    assert_eq!(app.client.post(&link).send().await.unwrap().status(), 200);

    smtp.set_mode("refuse");
    pay(&app, "alice", "amount=1000").await;
    let dead = app
        .eventually(20, || async {
            events_of_kind(&app, "notify.paid")
                .await
                .first()
                .is_some_and(|e| e["state"] == "dead")
        })
        .await;
    assert!(dead);
    let event = &events_of_kind(&app, "notify.paid").await[0];
    assert!(event["attempts"].as_u64().unwrap() >= 2, "retried: {event}");
    let words = event["last_outcome"].as_str().unwrap();
    assert!(
        words.contains("550") && words.contains("refused by the test's policy"),
        "{words}"
    );
    println!("the refused mail: {event}");
    let shown = user(&app, "alice").await;
    assert_eq!(shown["notify"][0]["state"], "broken", "{shown}");
    assert!(shown["notify"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("550"));

    // Nothing more is tried while it is broken...
    pay(&app, "alice", "amount=2000").await;
    assert!(
        app.eventually(10, || async {
            events_of_kind(&app, "notify.paid").await.iter().any(|e| {
                e["state"] == "delivered"
                    && e["last_outcome"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("marked broken")
            })
        })
        .await
    );
    // ...until a test gets through, which clears the mark.
    smtp.set_mode("ok");
    let test = app
        .admin(Method::POST, "/users/alice/notify/test", Some(json!({})))
        .await;
    assert_eq!(test.status(), 202);
    assert!(
        app.eventually(10, || async { smtp.received().len() == 2 })
            .await
    );
    assert!(
        app.eventually(10, || async {
            user(&app, "alice").await["notify"][0]["state"] == "ready"
        })
        .await
    );

    // A server that drops the connection, and one that stalls, are failures with words too.
    for (mode, amount, words) in [("drop", 3000, "SMTP:"), ("stall", 4000, "in time")] {
        smtp.set_mode(mode);
        let hash = pay(&app, "alice", &format!("amount={amount}")).await;
        let failed = || async {
            events_of_kind(&app, "notify.paid")
                .await
                .into_iter()
                .find(|e| e["payment_hash"] == hash.as_str())
                .filter(|e| {
                    e["attempts"].as_u64() >= Some(1)
                        && e["last_outcome"]
                            .as_str()
                            .unwrap_or_default()
                            .contains(words)
                })
        };
        assert!(
            app.eventually(20, || async { failed().await.is_some() })
                .await,
            "{mode}"
        );
        println!("{mode}: {}", failed().await.unwrap()["last_outcome"]);
    }

    // Once those are dead letters the channel is broken again. Removed and set again, it
    // starts afresh (a mark is about a channel as it was set).
    assert!(
        app.eventually(20, || async {
            user(&app, "alice").await["notify"][0]["state"] == "broken"
        })
        .await
    );
    let removed = update(&app, "alice", json!({"notify": [""]})).await;
    assert_eq!(removed.status(), 200);
    let again = update(
        &app,
        "alice",
        json!({"notify": ["email:alice@example.org"]}),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        user(&app, "alice").await["notify"][0]["state"],
        "unconfirmed"
    );
}

#[tokio::test]
async fn a_nostr_private_message_reaches_the_persons_dm_relay_and_nostr_tools_unwraps_it() {
    let Some(tools) = nostr_tools() else {
        return;
    };
    let Some(relay) = NostrRelay::start() else {
        return;
    };
    // The person's list names a relay that is down and one that refuses the wrap first: the
    // message goes on to the next.
    let down = Relay::reserve();
    let refusing = Relay::start();
    refusing.refuse_everything();
    let recipient = nostr::Keys::generate();
    let secret = recipient.secret_key().to_secret_hex();
    let listed = std::process::Command::new("node")
        .current_dir(&tools)
        .args([
            "dm-recipient.mjs",
            "list",
            &relay.url,
            &secret,
            &down.url,
            &refusing.url,
            &relay.url,
        ])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let relay_url = relay.url.clone();
    let app = spawn_app_with(None, move |s| {
        s.nostr_allow_private_relays = true;
        s.nostr_relays = vec![rayo::domain::RelayUrl::parse(&relay_url).unwrap()];
    })
    .await;
    use nostr::ToBech32;
    let npub = recipient.public_key().to_bech32().unwrap();
    app.add_user(
        "alice",
        json!({"comment_allowed": 100, "notify": [format!("nostr:{npub}")]}),
    )
    .await;
    let receiving = {
        let (tools, url, secret) = (tools.clone(), relay.url.clone(), secret.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .current_dir(&tools)
                .args(["dm-recipient.mjs", "receive", &url, &secret, "20000"])
                .output()
                .unwrap()
        })
    };
    pay(&app, "alice", "amount=42000&comment=gm").await;
    let received = receiving.await.unwrap();
    assert!(
        received.status.success(),
        "{} {:?}",
        String::from_utf8_lossy(&received.stderr),
        events_of_kind(&app, "notify.paid").await
    );
    let unwrapped: Value = serde_json::from_slice(&received.stdout).unwrap();
    let server_key = app.get_json("/.well-known/lnurlp/alice").await["nostrPubkey"].clone();
    assert_eq!(
        unwrapped["seal"]["pubkey"], server_key,
        "sealed with rayo's key"
    );
    assert_eq!(unwrapped["rumor"]["kind"], 14);
    assert_eq!(
        unwrapped["rumor"]["tags"][0],
        json!(["p", recipient.public_key().to_hex()])
    );
    let text = unwrapped["rumor"]["content"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("42 sats to alice@{}", app.domain())),
        "{text}"
    );
    assert!(text.contains("\"gm\""), "{text}");
    println!("the private message as nostr-tools unwrapped it: {text}");
    // Seal and wrap times are randomised into the past; the rumour's is the payment's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(unwrapped["wrap"]["created_at"].as_u64().unwrap() <= now);
    assert!(
        app.eventually(5, || async {
            events_of_kind(&app, "notify.paid").await[0]["state"] == "delivered"
        })
        .await
    );
    assert_eq!(
        refusing.refused().len(),
        1,
        "the refusing relay was offered the wrap"
    );
}

#[tokio::test]
async fn a_burst_of_50_payments_is_told_in_one_digest() {
    let ntfy = FakeNtfy::start();
    let clock = Arc::new(ShiftedClock::default());
    let app = spawn_app_in(
        tempfile::tempdir().unwrap(),
        None,
        Some(clock.clone()),
        |s| s.notify.allow_private = true,
    )
    .await;
    app.add_user(
        "alice",
        json!({"comment_allowed": 100, "notify": [format!("ntfy:{}/alice-x7", ntfy.base)], "notify_digest": "10m"}),
    )
    .await;
    start_of_a_period(&clock);
    for n in 1..=50 {
        pay(
            &app,
            "alice",
            &format!("amount={}&comment=zap%20{n}", n * 1000),
        )
        .await;
    }
    assert_eq!(
        events_of_kind(&app, "notify.digest").await.len(),
        1,
        "one digest for the period"
    );
    assert!(ntfy.heard().is_empty(), "nothing before the period ends");
    clock.advance(11 * 60);
    assert!(
        app.eventually(15, || async { !ntfy.heard().is_empty() })
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ntfy.heard().len(), 1);
    let digest = &ntfy.heard()[0].body;
    println!(
        "the digest: {}",
        serde_json::to_string_pretty(digest).unwrap()
    );
    assert_eq!(
        digest["title"],
        format!("50 payments, 1,275 sats to alice@{}", app.domain())
    );
    let text = digest["message"].as_str().unwrap();
    assert!(
        text.contains("- 50 sats: \"zap 50\""),
        "newest first: {text}"
    );
    assert!(text.contains("and 40 more."), "{text}");
}

#[tokio::test]
async fn a_flood_beyond_the_persons_allowance_is_folded_into_a_digest() {
    let ntfy = FakeNtfy::start();
    let clock = Arc::new(ShiftedClock::default());
    let app = spawn_app_in(
        tempfile::tempdir().unwrap(),
        None,
        Some(clock.clone()),
        |s| {
            s.notify.allow_private = true;
            s.notify.per_person_hourly = 5;
        },
    )
    .await;
    app.add_user(
        "alice",
        json!({"notify": [format!("ntfy:{}/alice-x7", ntfy.base)]}),
    )
    .await;
    start_of_a_period(&clock);
    for _ in 0..12 {
        pay(&app, "alice", "amount=1000").await;
    }
    assert!(
        app.eventually(10, || async {
            events_of_kind(&app, "notify.paid")
                .await
                .iter()
                .all(|e| e["state"] == "delivered")
        })
        .await
    );
    assert_eq!(ntfy.heard().len(), 5, "the allowance");
    let folded = events_of_kind(&app, "notify.paid").await;
    assert_eq!(
        folded
            .iter()
            .filter(|e| e["last_outcome"]
                .as_str()
                .unwrap_or_default()
                .contains("told in the digest"))
            .count(),
        7
    );
    clock.advance(11 * 60);
    assert!(
        app.eventually(15, || async { ntfy.heard().len() == 6 })
            .await
    );
    assert_eq!(
        ntfy.heard()[5].body["title"],
        format!("12 payments, 12 sats to alice@{}", app.domain())
    );
}

/// Moves `clock` to just after the start of a 10-minute period, so a burst falls in one.
fn start_of_a_period(clock: &ShiftedClock) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    clock.advance(600 - now % 600 + 1);
}

fn nostr_tools() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nostr-tools");
    if dir.join("node_modules/nostr-tools").exists() {
        return Some(dir);
    }
    crate::support::skip_unless_ci(
        "nostr-tools is not installed: run `npm ci --prefix tests/nostr-tools` (.ci/run does)",
    );
    None
}

#[tokio::test]
async fn a_telegram_chat_is_linked_by_its_one_time_code_and_hears_of_payments() {
    use crate::support::notify::{FakeTelegram, TELEGRAM_TOKEN};
    let telegram = FakeTelegram::start();
    let api = telegram.base.clone();
    let app = spawn_app_with(None, move |s| {
        s.notify.telegram_bot_token = Some(rayo::domain::Secret::new(TELEGRAM_TOKEN));
        s.notify.telegram_api_url = api;
    })
    .await;
    app.add_user("alice", json!({"comment_allowed": 50})).await;
    let code: Value = app
        .admin(Method::POST, "/users/alice/notify/telegram", None)
        .await
        .json()
        .await
        .unwrap();
    let secret = code["code"].as_str().unwrap().to_owned();
    assert_eq!(
        code["link"],
        format!("https://t.me/rayo_test_bot?start={secret}")
    );

    telegram.say(4242, "hello?");
    telegram.say(4242, &format!("/start {secret}"));
    assert!(
        app.eventually(10, || async { telegram.sent().len() == 2 })
            .await
    );
    assert!(telegram.sent()[0]["text"]
        .as_str()
        .unwrap()
        .contains("/start code"));
    assert!(
        telegram.sent()[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Linked."),
        "{:?}",
        telegram.sent()
    );
    let shown = user(&app, "alice").await;
    assert_eq!(shown["notify"][0]["channel"], "telegram:4242", "{shown}");

    // The code works once.
    telegram.say(777, &format!("/start {secret}"));
    assert!(
        app.eventually(10, || async { telegram.sent().len() == 3 })
            .await
    );
    assert!(telegram.sent()[2]["text"]
        .as_str()
        .unwrap()
        .contains("not valid or has expired"));
    assert_eq!(
        user(&app, "alice").await["notify"].as_array().map(Vec::len),
        Some(1)
    );

    // Telegram asks to slow down: the message waits, uncounted, then goes.
    telegram.throttle_next(1);
    pay(
        &app,
        "alice",
        "amount=21000&comment=%3Cb%3Enot%20markup%3C%2Fb%3E",
    )
    .await;
    assert!(
        app.eventually(10, || async { telegram.sent().len() == 4 })
            .await
    );
    let alert = &telegram.sent()[3];
    assert_eq!(alert["chat_id"], 4242);
    let text = alert["text"].as_str().unwrap();
    println!("the Telegram message: {text}");
    assert!(
        text.starts_with(&format!("21 sats to alice@{}", app.domain())),
        "{text}"
    );
    assert!(text.contains("\"<b>not markup</b>\"") && alert.get("parse_mode").is_none());
    assert!(
        app.eventually(5, || async {
            events_of_kind(&app, "notify.paid")
                .await
                .first()
                .is_some_and(|e| e["state"] == "delivered" && e["attempts"] == 1)
        })
        .await
    );

    telegram.say(4242, "/stop");
    assert!(
        app.eventually(10, || async {
            user(&app, "alice").await["notify"].is_null()
        })
        .await
    );
}

#[tokio::test]
async fn a_person_sets_up_alerts_on_their_account_page() {
    use crate::accounts::{local_base, on_localhost};
    use crate::support::notify::{FakeTelegram, TELEGRAM_TOKEN};
    let Some(tools) = crate::pages::browser_tools() else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let ntfy = FakeNtfy::start();
    let telegram = FakeTelegram::start();
    let (mail, api) = (smtp_settings(&smtp), telegram.base.clone());
    let app = spawn_app_with(None, move |s| {
        on_localhost(s);
        mail(s);
        s.notify.allow_private = true;
        s.notify.telegram_bot_token = Some(rayo::domain::Secret::new(TELEGRAM_TOKEN));
        s.notify.telegram_api_url = api;
    })
    .await;
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .arg("notifications.mjs")
        .arg(local_base(&app))
        .arg(&app.admin_token)
        .arg(&artifacts)
        .arg(&ntfy.base)
        .arg(&telegram.base)
        .arg(smtp.dir.path());
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    println!("{}", serde_json::to_string_pretty(&seen).unwrap());
    assert_eq!(seen["noChannels"], true);
    assert_eq!(seen["afterNtfy"][0]["state"], "ready", "{seen}");
    assert!(
        seen["badNpubError"]
            .as_str()
            .unwrap()
            .contains("not an npub"),
        "{seen}"
    );
    assert_eq!(seen["afterBadNpub"], 1);
    assert_eq!(seen["afterEmail"][1]["state"], "unconfirmed", "{seen}");
    assert_eq!(seen["confirmed"], "Address confirmed");
    assert_eq!(seen["afterConfirm"][1]["state"], "ready", "{seen}");
    assert_eq!(seen["digestChosen"], "10m");
    assert_eq!(seen["detailsTicked"], false);
    assert!(seen["telegramLink"]
        .as_str()
        .unwrap()
        .starts_with("https://t.me/rayo_test_bot?start="));
    assert_eq!(
        seen["afterTelegram"][2]["key"],
        "telegram:4242",
        "the bot said {:?}",
        telegram.sent()
    );
    assert_eq!(seen["keyboardReachable"], true);
    assert_eq!(seen["consoleErrors"], json!([]));
    for (page, violations) in seen["axe"].as_object().unwrap() {
        assert_eq!(violations, &json!([]), "axe on {page}");
    }
    for page in [
        "empty",
        "refused",
        "unconfirmed",
        "confirm",
        "telegram",
        "channels",
        "account",
    ] {
        assert_eq!(
            seen[format!("{page}Overflows")],
            false,
            "{page} scrolls sideways at 360 px"
        );
    }
    // The test went through ntfy; the person's settings are stored.
    assert!(
        app.eventually(10, || async { !ntfy.heard().is_empty() })
            .await
    );
    assert!(ntfy.heard()[0].body["title"]
        .as_str()
        .unwrap()
        .starts_with("Notifications for alice@"));
    let shown = user(&app, "alice").await;
    assert_eq!(shown["notify_digest"], "10m");
    assert_eq!(shown["notify_details"], false);
}

#[tokio::test]
async fn the_operator_hears_of_a_backend_down_and_dead_letters_once_each_and_when_they_clear() {
    use crate::support::backend_double::{BackendDouble, Fault};
    let ntfy = FakeNtfy::start();
    let backend = Arc::new(BackendDouble::new(Fault::Fails));
    let topic = format!("ntfy:{}/ops-x7", ntfy.base);
    let app = spawn_app_with(Some(backend.clone()), move |s| {
        s.notify.allow_private = true;
        s.notify.operator = vec![rayo::domain::Channel::parse(&topic).unwrap()];
        s.notify.alerts.every = Duration::from_secs(1);
        s.notify.alerts.backend_down = Duration::from_secs(0);
        s.notify.alerts.dead_letters = 1;
        s.webhook_window = Duration::from_secs(1);
        s.webhook_first_retry = Duration::from_secs(1);
    })
    .await;
    let titles = || -> Vec<String> {
        ntfy.heard()
            .iter()
            .map(|h| h.body["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        app.eventually(15, || async {
            titles().iter().any(|t| t.ends_with("is down"))
        })
        .await,
        "{:?}",
        titles()
    );
    let down = ntfy
        .heard()
        .into_iter()
        .find(|h| {
            h.body["title"]
                .as_str()
                .unwrap_or_default()
                .ends_with("is down")
        })
        .unwrap();
    println!(
        "the operator's alert: {}",
        serde_json::to_string_pretty(&down.body).unwrap()
    );
    assert!(down.body["message"]
        .as_str()
        .unwrap()
        .contains("Failing since"));
    assert_eq!(down.body["tags"], json!(["warning"]));

    // A person's ntfy server that keeps failing: their test becomes a dead letter, and the
    // operator hears of it once.
    let failing = FakeNtfy::start();
    failing.set_failing(true);
    app.add_user(
        "alice",
        json!({"notify": [format!("ntfy:{}/alice-x7", failing.base)]}),
    )
    .await;
    let test = app
        .admin(Method::POST, "/users/alice/notify/test", Some(json!({})))
        .await;
    assert_eq!(test.status(), 202);
    backend.set_fault(Fault::None);
    assert!(
        app.eventually(20, || async {
            titles().iter().any(|t| t.ends_with("1 dead letters"))
        })
        .await,
        "{:?}",
        titles()
    );
    // The backend answers again: the incident is resolved, once.
    assert!(
        app.eventually(20, || async {
            titles()
                .iter()
                .any(|t| t.contains("resolved: backend") && t.ends_with("is down"))
        })
        .await,
        "{:?}",
        titles()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let said = titles();
    assert_eq!(
        said.iter()
            .filter(|t| t.ends_with("is down") && !t.contains("resolved"))
            .count(),
        1,
        "{said:?}"
    );
    assert_eq!(
        said.iter()
            .filter(|t| t.contains("resolved: backend"))
            .count(),
        1,
        "{said:?}"
    );
    assert_eq!(
        said.iter().filter(|t| t.ends_with("dead letters")).count(),
        1,
        "{said:?}"
    );
}

#[tokio::test]
async fn the_operator_hears_when_a_currency_has_no_usable_price() {
    use crate::support::fake_prices::FakePrices;
    use rayo::prices::Currency;
    let ntfy = FakeNtfy::start();
    // Every source answers, but none knows USD: no rate can be made.
    let prices = FakePrices::start();
    prices.set("buda", "CLP", "90000000");
    let tickers = prices.tickers();
    let topic = format!("ntfy:{}/ops-x7", ntfy.base);
    let app = spawn_app_with(None, move |s| {
        s.notify.allow_private = true;
        s.notify.operator = vec![rayo::domain::Channel::parse(&topic).unwrap()];
        s.notify.alerts.every = Duration::from_secs(1);
        s.currencies = vec![Currency::find("USD").unwrap()];
        s.price_refresh = Duration::from_secs(1);
        s.price_sources = tickers;
    })
    .await;
    assert!(
        app.eventually(15, || async {
            ntfy.heard().iter().any(|h| {
                h.body["title"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("no usable price for USD")
            })
        })
        .await,
        "{:?}",
        ntfy.heard()
    );
}
