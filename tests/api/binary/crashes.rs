//! The real `rayo` binary killed, restored and pruned: nothing answered is ever lost.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::{
    base_url, fresh_client, rayo, reserve_port, run, run_failing, run_json, Server,
};
use crate::support::wallet::check_invoice;
use crate::support::{get_json_url, poll_until};

#[tokio::test]
async fn a_webhook_cut_off_by_a_crash_is_delivered_after_restart_and_the_cli_shows_it() {
    let receiver = crate::support::receiver::Receiver::start();
    receiver.set_hanging(true);
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    let http = fresh_client();
    run(
        dir.path(),
        port,
        &["user", "add", "alice", "--webhook-url", &receiver.url],
    );
    let base = base_url(port);
    let metadata = get_json_url(&http, &format!("{base}/.well-known/lnurlp/alice")).await
        ["metadata"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = get_json_url(&http, &format!("{base}/lnurlp/alice/callback?amount=4000")).await;
    let hash = check_invoice(body["pr"].as_str().unwrap(), 4000, &metadata).payment_hash;
    run(dir.path(), port, &["dev", "settle", &hash]);

    // rayo is now mid-delivery (the receiver holds the request open): kill it.
    poll_until(10, || async { (receiver.attempts() > 0).then_some(()) })
        .await
        .expect("rayo starts delivering");
    assert_eq!(receiver.attempts(), 1);
    server.kill_hard();
    receiver.set_hanging(false);

    let server = Server::start(dir.path(), port);
    poll_until(10, || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
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
    poll_until(10, || async {
        (receiver.received().len() >= 2).then_some(())
    })
    .await;
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
async fn a_backup_restores_users_invoices_and_keys_into_a_new_data_directory() {
    let old = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(old.path(), port);
    let http = fresh_client();
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
    let base = base_url(port);
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
    let base = base_url(port);
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
    let delivered = poll_until(30, || async {
        let bodies: Vec<String> = receiver.received().into_iter().map(|r| r.body).collect();
        paid.iter()
            .all(|h| bodies.iter().any(|b| b.contains(h.as_str())))
            .then_some(())
    })
    .await;
    assert!(
        delivered.is_some(),
        "every paid invoice's webhook was delivered"
    );
    server.stop();
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
