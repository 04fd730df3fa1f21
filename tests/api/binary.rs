//! The real `rayo` binary, end to end, as an operator and a wallet would use it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::{
    rayo, reserve_port, run, run_failing, run_json, wait_until_healthy, LoggedServer, Server,
};
use crate::support::get_json_url;
use crate::support::wallet::{assert_preimage_matches, check_invoice};

#[tokio::test]
async fn the_binary_serves_settles_and_remembers_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    // Fresh connections: the CLI steps can outlast the server's keep-alive window.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");

    let token = dir.path().join("data").join("admin.token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the generated admin token is private to its owner"
    );

    // While the server runs (holding the store's lock), the CLI goes through the admin API.
    let alice = run_json(
        dir.path(),
        port,
        &[
            "user",
            "add",
            "alice",
            "--description",
            "Alice's tips",
            "--comment-allowed",
            "20",
        ],
    );
    assert_eq!(alice["address"], format!("alice@127.0.0.1:{port}"));

    let pay_request = get_json_url(&http, &format!("{base}/.well-known/lnurlp/alice")).await;
    let metadata = pay_request["metadata"].as_str().unwrap();
    let callback = pay_request["callback"].as_str().unwrap();
    let answer = get_json_url(&http, &format!("{callback}?amount=42000&comment=hola")).await;
    let checked = check_invoice(answer["pr"].as_str().unwrap(), 42_000, metadata);
    let verify = answer["verify"].as_str().unwrap().to_owned();

    let settled = run_json(dir.path(), port, &["dev", "settle", &checked.payment_hash]);
    assert_eq!(settled["status"], "paid");
    let verified = get_json_url(&http, &verify).await;
    assert_eq!(verified["settled"], true);
    assert_preimage_matches(
        verified["preimage"].as_str().unwrap(),
        &checked.payment_hash,
    );

    server.stop();

    // With no server, the CLI opens the store itself.
    let offline = run_json(
        dir.path(),
        port,
        &["invoice", "show", &checked.payment_hash],
    );
    assert_eq!(offline["status"], "paid");
    assert_eq!(offline["comment"], "hola");
    assert_eq!(offline["hashed_description"], metadata);

    let server = Server::start(dir.path(), port);
    let after = get_json_url(&http, &verify).await;
    assert_eq!(after, verified, "the paid invoice survived the restart");
    let listed = run_json(dir.path(), port, &["invoice", "list", "--user", "alice"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let users = run_json(dir.path(), port, &["user", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "satoshi"]);
    server.stop();
}

#[tokio::test]
async fn the_cli_says_plainly_when_the_store_is_locked_and_no_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let _holder = rayo::store::SledStore::open(&dir.path().join("data").join("store")).unwrap();
    let output = rayo(dir.path(), port)
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("locked by another process"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[tokio::test]
async fn the_cli_manages_users_offline_with_tables_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    run(
        dir.path(),
        port,
        &[
            "user",
            "add",
            "bob",
            "--payer-data",
            "name,email:mandatory",
            "--success-message",
            "Gracias",
        ],
    );
    let table = String::from_utf8(run(dir.path(), port, &["user", "list"]).stdout).unwrap();
    assert!(table.starts_with("ADDRESS"), "{table}");
    assert!(table.contains(&format!("bob@127.0.0.1:{port}")), "{table}");
    let shown = run_json(dir.path(), port, &["user", "show", "bob"]);
    assert_eq!(shown["payer_data"], "name,email:mandatory");
    run(dir.path(), port, &["user", "update", "bob", "--disable"]);
    assert_eq!(
        run_json(dir.path(), port, &["user", "show", "bob"])["disabled"],
        true
    );
    run(dir.path(), port, &["user", "remove", "bob"]);
    let missing = rayo(dir.path(), port)
        .args(["user", "show", "bob"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user 'bob'"));
    let bad = rayo(dir.path(), port)
        .args(["user", "add", "admin"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("reserved"));
}

#[test]
fn the_admin_token_is_never_shown_in_help() {
    let output = Command::new(crate::support::binary::rayo_binary())
        .args(["serve", "--help"])
        .env("RAYO_ADMIN_TOKEN", "super-secret-token")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--admin-token"), "{help}");
    assert!(!help.contains("super-secret-token"), "{help}");
}

#[test]
fn settings_come_from_a_dot_env_file_when_the_environment_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "RAYO_PUBLIC_URL=https://pay.example.com\nRAYO_DATA_DIR={}\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let output = Command::new(crate::support::binary::rayo_binary())
        .current_dir(dir.path())
        .env_remove("RAYO_PUBLIC_URL")
        .env_remove("RAYO_DATA_DIR")
        .env(
            "RAYO_ADMIN_URL",
            format!("http://127.0.0.1:{}", reserve_port()),
        )
        .args(["user", "add", "carol", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let carol: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(carol["address"], "carol@pay.example.com");
    assert!(
        dir.path().join("d").join("store").exists(),
        "the data directory came from .env too"
    );
}

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
    wait_until_healthy(port);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
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
async fn rayo_toml_adds_named_backends_with_secrets_from_the_environment() {
    let buda = crate::support::fake_buda::FakeBuda::start("key-1", "secret-1");
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    std::fs::write(
        dir.path().join("rayo.toml"),
        format!("[backends.exchange]\nkind = \"buda\"\nurl = \"{}\"\napi_key = \"key-1\"\nnetwork = \"bitcoin\"\n", buda.url),
    )
    .unwrap();
    let mut command = rayo(dir.path(), port);
    command.env("RAYO_BACKEND_EXCHANGE_API_SECRET", "secret-1");
    let server = tokio::task::spawn_blocking(move || Server::start_with(command, port))
        .await
        .unwrap();
    let shop = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            run_json(
                &dir,
                port,
                &["user", "add", "shop", "--backend", "exchange"],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(shop["backend"], "exchange");
    let answer: Value = reqwest::get(format!(
        "http://127.0.0.1:{port}/lnurlp/shop/callback?amount=3000"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        answer["pr"]
            .as_str()
            .is_some_and(|pr| pr.starts_with("lnbc30n")),
        "{answer}"
    );
    drop(server);
}

#[tokio::test]
async fn a_webhook_cut_off_by_a_crash_is_delivered_after_restart_and_the_cli_shows_it() {
    let receiver = crate::support::receiver::Receiver::start();
    receiver.set_hanging(true);
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    run(
        dir.path(),
        port,
        &["user", "add", "alice", "--webhook-url", &receiver.url],
    );
    let base = format!("http://127.0.0.1:{port}");
    let metadata = get_json_url(&http, &format!("{base}/.well-known/lnurlp/alice")).await
        ["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = get_json_url(&http, &format!("{base}/lnurlp/alice/callback?amount=4000")).await;
    let hash = check_invoice(body["pr"].as_str().unwrap(), 4000, &metadata).payment_hash;
    run(dir.path(), port, &["dev", "settle", &hash]);

    // rayo is now mid-delivery (the receiver holds the request open): kill it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.attempts() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.attempts(), 1);
    server.kill_hard();
    receiver.set_hanging(false);

    let server = Server::start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.received().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = receiver.received();
    assert_eq!(delivered.len(), 1, "delivered once the server is back");

    let listed = run_json(dir.path(), port, &["webhook", "list"]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, delivered[0].event_id);
    let shown = run_json(dir.path(), port, &["webhook", "show", &id]);
    assert_eq!(shown["type"], "invoice.paid");
    assert_eq!(shown["body"], delivered[0].body.as_str());
    let table = String::from_utf8(run(dir.path(), port, &["webhook", "list"]).stdout).unwrap();
    assert!(
        table.contains(&id) && table.contains("invoice.paid"),
        "{table}"
    );

    // A manual retry sends the same event again, with the same id.
    run(dir.path(), port, &["webhook", "retry", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.received().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received()[1].event_id, id);

    // API keys: created through the CLI, usable at once, revoked through the CLI.
    let created = run_json(dir.path(), port, &["user", "api-key", "create", "alice"]);
    let key = created["key"].as_str().unwrap();
    let answer = http
        .post(format!("{base}/api/v1/invoices"))
        .bearer_auth(key)
        .json(&serde_json::json!({"amount_sat": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    run(
        dir.path(),
        port,
        &["user", "api-key", "revoke", created["id"].as_str().unwrap()],
    );
    let listed = run_json(dir.path(), port, &["user", "api-key", "list", "alice"]);
    assert!(listed[0]["revoked_at"].is_u64(), "{listed}");
    let answer = http
        .get(format!("{base}/api/v1/invoices"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    server.stop();
}

#[tokio::test]
async fn the_cli_shows_and_rotates_the_nostr_key_and_sets_nip05_identities() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    // Offline: the key is made once and kept.
    let first = run_json(dir.path(), port, &["nostr", "show"]);
    assert_eq!(first["pubkey"].as_str().unwrap().len(), 64);
    assert_eq!(run_json(dir.path(), port, &["nostr", "show"]), first);

    let server = Server::start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let advertised = get_json_url(&http, &format!("{base}/.well-known/lnurlp/satoshi")).await;
    assert_eq!(advertised["nostrPubkey"], first["pubkey"]);
    let rotated = run_json(dir.path(), port, &["nostr", "rotate-key"]);
    assert_ne!(rotated["pubkey"], first["pubkey"]);
    let advertised = get_json_url(&http, &format!("{base}/.well-known/lnurlp/satoshi")).await;
    assert_eq!(advertised["nostrPubkey"], rotated["pubkey"]);

    run(
        dir.path(),
        port,
        &[
            "user",
            "add",
            "bob",
            "--nostr-pubkey",
            first["npub"].as_str().unwrap(),
            "--nostr-relays",
            "wss://relay.one,wss://relay.two",
        ],
    );
    let nip05 = get_json_url(&http, &format!("{base}/.well-known/nostr.json?name=bob")).await;
    assert_eq!(nip05["names"]["bob"], first["pubkey"]);
    assert_eq!(
        nip05["relays"][first["pubkey"].as_str().unwrap()],
        serde_json::json!(["wss://relay.one/", "wss://relay.two/"]),
        "stored normalised"
    );
    server.stop();
}

#[tokio::test]
async fn a_backup_restores_users_invoices_and_keys_into_a_new_data_directory() {
    let old = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(old.path(), port);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    run(
        old.path(),
        port,
        &[
            "user",
            "add",
            "alice",
            "--webhook-url",
            "https://hooks.example/in",
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let body = get_json_url(&http, &format!("{base}/lnurlp/alice/callback?amount=5000")).await;
    let verify = body["verify"].as_str().unwrap().to_owned();
    let hash = verify.rsplit('/').nth(1).unwrap().to_owned();
    run(old.path(), port, &["dev", "settle", &hash]);
    let nostr = run_json(old.path(), port, &["nostr", "show"]);

    // Taken from the running server through the admin API.
    let file = old.path().join("backup.json");
    run(old.path(), port, &["backup", file.to_str().unwrap()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "backups hold secrets");
    }
    assert!(
        run_failing(old.path(), port, &["restore", file.to_str().unwrap()])
            .contains("stop it first")
    );
    server.stop();

    let new = tempfile::tempdir().unwrap();
    let new_port = reserve_port();
    run(new.path(), new_port, &["restore", file.to_str().unwrap()]);
    // Once there is data, only --force replaces it.
    assert!(
        run_failing(new.path(), new_port, &["restore", file.to_str().unwrap()]).contains("--force")
    );
    run(
        new.path(),
        new_port,
        &["restore", "--force", file.to_str().unwrap()],
    );

    let server = Server::start(new.path(), new_port);
    let users = run_json(new.path(), new_port, &["user", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "satoshi"]);
    let invoice = run_json(new.path(), new_port, &["invoice", "show", &hash]);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(
        run_json(new.path(), new_port, &["nostr", "show"]),
        nostr,
        "same Nostr key"
    );
    // The verify key came along: the old verify URL's tag still works on the new server.
    let moved = verify.replace(
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{new_port}"),
    );
    let answer = get_json_url(&http, &moved).await;
    assert_eq!(answer["settled"], true);
    server.stop();

    let garbage = new.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format\": \"something else\"}").unwrap();
    assert!(run_failing(
        new.path(),
        new_port,
        &["restore", "--force", garbage.to_str().unwrap()]
    )
    .contains("not a rayo backup"));
}

/// Load on the callback from `clients` tasks until `stop`; every invoice a client received
/// goes into `received` as (payment hash, bolt11).
fn callback_load(
    base: String,
    clients: usize,
    received: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (base, received, stop) = (base.clone(), received.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let url = format!("{base}/lnurlp/alice/callback?amount=1000");
                    let Ok(answer) = http.get(url).send().await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let Ok(body) = answer.json::<Value>().await else {
                        continue;
                    };
                    if let Some(pr) = body["pr"].as_str() {
                        let invoice: lightning_invoice::Bolt11Invoice = pr.parse().unwrap();
                        let hash = hex::encode(bitcoin_hashes::Hash::to_byte_array(
                            *invoice.payment_hash(),
                        ));
                        received.lock().unwrap().push((hash, pr.to_owned()));
                    }
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn sigkill_under_load_loses_no_invoice_no_payment_and_no_webhook() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let receiver = crate::support::receiver::Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server::start(dir.path(), port);
    run(
        dir.path(),
        port,
        &["user", "add", "alice", "--webhook-url", &receiver.url],
    );
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let admin = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut paid: Vec<String> = Vec::new();

    for round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let load = callback_load(base.clone(), 16, received.clone(), stop.clone());
        // Pay some of what has been handed out so far, while the load runs.
        let wait = 300 + u64::from(rayo::clock::Random::bytes32(&rayo::clock::OsRandom)[0]) * 4;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(wait) {
            let next = received
                .lock()
                .unwrap()
                .iter()
                .rev()
                .step_by(7)
                .next()
                .cloned();
            if let Some((hash, _)) = next.filter(|(h, _)| !paid.contains(h)) {
                let settled = admin
                    .post(format!("{base}/admin/v1/dev/settle/{hash}"))
                    .bearer_auth(token.trim())
                    .send()
                    .await;
                if settled.is_ok_and(|a| a.status() == 200) {
                    paid.push(hash);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server.kill_hard();
        stop.store(true, Ordering::SeqCst);
        for task in load {
            let _ = task.await;
        }
        server = Server::start(dir.path(), port);
        eprintln!(
            "round {round}: {} invoices handed out, {} paid so far",
            received.lock().unwrap().len(),
            paid.len()
        );
    }

    // Every invoice a client received is stored with its exact bolt11; every payment stuck.
    let received = received.lock().unwrap().clone();
    assert!(
        received.len() > 100,
        "the load produced invoices ({})",
        received.len()
    );
    assert!(!paid.is_empty());
    let stored: Vec<Value> = admin
        .get(format!("{base}/admin/v1/invoices?limit=1000000"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_hash: std::collections::HashMap<&str, &Value> = stored
        .iter()
        .map(|i| (i["payment_hash"].as_str().unwrap(), i))
        .collect();
    for (hash, bolt11) in &received {
        let record = by_hash
            .get(hash.as_str())
            .unwrap_or_else(|| panic!("invoice {hash} was lost"));
        assert_eq!(record["bolt11"], bolt11.as_str());
    }
    for hash in &paid {
        assert_eq!(by_hash[hash.as_str()]["status"], "paid", "{hash} went back");
    }
    // Every payment's webhook arrives, at least once, after all those kills.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = || {
        let bodies: Vec<String> = receiver.received().into_iter().map(|r| r.body).collect();
        paid.iter()
            .all(|h| bodies.iter().any(|b| b.contains(h.as_str())))
    };
    while !delivered() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered(), "every paid invoice's webhook was delivered");
    server.stop();
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
    tokio::task::spawn_blocking(move || wait_until_healthy(port))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
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
    tokio::time::sleep(Duration::from_millis(500)).await;

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

/// Every file and directory under `dir` that group or others may read, write or enter.
fn open_to_others(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!(
                "{} {:o}",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    open
}

#[tokio::test]
async fn the_data_directory_and_everything_in_it_is_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    // A data directory someone made readable, with a file in it, as an older rayo left them.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("notes.txt"), "x").unwrap();
    std::fs::set_permissions(
        data.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let server = Server::start(dir.path(), port);
    run(dir.path(), port, &["user", "add", "alice"]);
    let http = reqwest::Client::new();
    get_json_url(
        &http,
        &format!("http://127.0.0.1:{port}/lnurlp/alice/callback?amount=1000"),
    )
    .await;
    assert_eq!(open_to_others(&data), Vec::<String>::new());

    // A backup written over an existing readable file leaves it private.
    let file = dir.path().join("backup.json");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(dir.path(), port, &["backup", file.to_str().unwrap()]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    server.stop();
    assert_eq!(open_to_others(&data), Vec::<String>::new());
}

#[test]
fn admin_tokens_shorter_than_32_characters_are_refused_at_start() {
    for token in ["", "hunter2", "0123456789abcdef0123456789abcde"] {
        let dir = tempfile::tempdir().unwrap();
        let output = rayo(dir.path(), reserve_port())
            .env("RAYO_ADMIN_TOKEN", token)
            .arg("serve")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{token:?} was accepted");
        assert!(stderr.contains("at least 32 characters"), "{stderr}");
    }
}

#[tokio::test]
async fn a_restore_that_fails_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    run(dir.path(), port, &["user", "add", "alice"]);
    let http = reqwest::Client::new();
    get_json_url(
        &http,
        &format!("http://127.0.0.1:{port}/lnurlp/alice/callback?amount=1000"),
    )
    .await;
    let file = dir.path().join("backup.json");
    run(dir.path(), port, &["backup", file.to_str().unwrap()]);
    server.stop();
    let good: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();

    let tampered = |change: &dyn Fn(&mut Value)| {
        let mut backup = good.clone();
        change(&mut backup);
        let path = dir.path().join("tampered.json");
        std::fs::write(&path, serde_json::to_vec(&backup).unwrap()).unwrap();
        run_failing(
            dir.path(),
            port,
            &["restore", "--force", path.to_str().unwrap()],
        )
    };
    let bad_base64 = tampered(&|b| b["meta"][0][1] = "not base64 at all!".into());
    assert!(bad_base64.contains("not base64"), "{bad_base64}");
    assert!(bad_base64.contains("nothing was changed"), "{bad_base64}");
    let inverted = tampered(&|b| {
        b["users"][0]["min_sendable"] = 5_000.into();
        b["users"][0]["max_sendable"] = 1_000.into();
    });
    assert!(inverted.contains("min_sendable"), "{inverted}");
    let twice = tampered(&|b| {
        let first = b["invoices"][0].clone();
        b["invoices"].as_array_mut().unwrap().push(first);
    });
    assert!(twice.contains("appears twice"), "{twice}");

    // Everything is still there.
    let server = Server::start(dir.path(), port);
    let users = run_json(dir.path(), port, &["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    let invoices = run_json(dir.path(), port, &["invoice", "list"]);
    assert_eq!(invoices.as_array().unwrap().len(), 1, "{invoices}");
    server.stop();
    // And the good backup still restores.
    run(
        dir.path(),
        port,
        &["restore", "--force", file.to_str().unwrap()],
    );
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
    tokio::task::spawn_blocking(move || wait_until_healthy(port))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
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
    tokio::task::spawn_blocking(move || wait_until_healthy(port))
        .await
        .unwrap();
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

#[test]
fn rayo_prune_removes_what_retention_lets_go_of_offline_and_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    // 1200 invoices over the last 60 days: the newest 10 pending, one in five of the others paid.
    run(
        dir.path(),
        port,
        &[
            "dev",
            "populate",
            "--users",
            "4",
            "--invoices",
            "1200",
            "--pending",
            "10",
            "--paid-one-in",
            "5",
        ],
    );
    // (Listings stop at 1000: count each status on its own.)
    let listed = |dir: &Path| -> usize {
        ["pending", "paid", "expired"]
            .iter()
            .map(|status| {
                run_json(
                    dir,
                    port,
                    &["invoice", "list", "--status", status, "--limit", "1000"],
                )
                .as_array()
                .unwrap()
                .len()
            })
            .sum()
    };
    assert_eq!(listed(dir.path()), 1200);

    // Expired unpaid invoices go a week after expiry: about 53 of the 60 days' worth.
    let counted = run_json(dir.path(), port, &["prune", "--dry-run"]);
    assert_eq!(counted["dry_run"], true);
    let unpaid = counted["pruned"]["unpaid_invoices"].as_u64().unwrap();
    assert!((800..900).contains(&unpaid), "{counted}");
    assert_eq!(counted["pruned"]["paid_invoices"], 0, "paid ones are kept");
    assert_eq!(listed(dir.path()), 1200, "a dry run changes nothing");
    let text = run(dir.path(), port, &["prune"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("expired unpaid invoices:  {unpaid}")),
        "{text}"
    );
    assert_eq!(listed(dir.path()), 1200 - unpaid as usize);
    assert_eq!(
        run_json(dir.path(), port, &["prune"])["pruned"]["unpaid_invoices"],
        0
    );

    // An operator who keeps paid invoices 30 days prunes through the running server too.
    let mut serve = rayo(dir.path(), port);
    serve.env("RAYO_RETENTION_PAID", "30d");
    let server = Server::start_with(serve, port);
    let output = rayo(dir.path(), port)
        .args(["prune", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pruned: Value = serde_json::from_slice(&output.stdout).unwrap();
    let paid = pruned["pruned"]["paid_invoices"].as_u64().unwrap();
    assert!(
        (90..150).contains(&paid),
        "the server's retention applies: {pruned}"
    );
    assert_eq!(listed(dir.path()), 1200 - (unpaid + paid) as usize);
    server.stop();

    // Retention shorter than an hour is refused, with the setting named.
    let refused = rayo(dir.path(), port)
        .args(["serve"])
        .env("RAYO_RETENTION_UNPAID", "10m")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("RAYO_RETENTION_UNPAID") && said.contains("at least 1h"),
        "{said}"
    );
}
