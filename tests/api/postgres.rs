//! rayo on PostgreSQL: the real binary against a real PostgreSQL cluster the tests start (see
//! `rayo::store::postgres::testing`), one server or several on one database.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::binary::{rayo, reserve_port, run, run_json, Server};
use crate::support::fake_buda::FakeBuda;
use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::get_json_url;
use crate::support::nginx::Nginx;
use crate::support::receiver::Receiver;

fn on(database: &str, mut command: Command) -> Command {
    command.env("RAYO_DATABASE_URL", database);
    command
}

fn json(mut command: Command, args: &[&str]) -> Value {
    let output = command.args(args).arg("--json").output().unwrap();
    assert!(
        output.status.success(),
        "rayo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn paid_invoice_hashes(listed: &Value) -> Vec<String> {
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|invoice| invoice["status"] == "paid")
        .map(|invoice| invoice["payment_hash"].as_str().unwrap().to_owned())
        .collect()
}

async fn pay_alice(http: &reqwest::Client, dir: &Path, port: u16) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let body = get_json_url(http, &format!("{base}/lnurlp/alice/callback?amount=21000")).await;
    let verify = body["verify"].as_str().unwrap().to_owned();
    let hash = verify.rsplit('/').nth(1).unwrap().to_owned();
    run(dir, port, &["dev", "settle", &hash]);
    hash
}

/// A fresh database (or `None`: no PostgreSQL here), and an HTTP client with fresh
/// connections for each request (the CLI steps can outlast a server's keep-alive).
fn database_and_wallet() -> Option<(String, reqwest::Client)> {
    let database = rayo::store::postgres::testing::database()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    Some((database, http))
}

#[tokio::test]
async fn a_server_on_postgresql_keeps_its_invoices_across_restarts() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let first = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start_with(on(&database, rayo(first.path(), port)), port);
    run(first.path(), port, &["user", "add", "alice"]);
    let hash = pay_alice(&http, first.path(), port).await;
    let status = json(on(&database, rayo(first.path(), port)), &["db", "status"]);
    assert_eq!(status["schema_version"], 3);
    assert_eq!(status["servers"], 1);
    // PostgreSQL lets every role connect to a new database: db status says so.
    assert_eq!(status["public_can"], serde_json::json!(["CONNECT", "TEMP"]));

    // A restore needs the database to itself.
    let file = first.path().join("backup.json");
    run(first.path(), port, &["backup", file.to_str().unwrap()]);
    let refused = on(&database, rayo(first.path(), port))
        .args(["restore", "--force", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("a server is running on this database"),
        "{said}"
    );
    server.stop();
    assert_eq!(
        json(on(&database, rayo(first.path(), port)), &["db", "status"])["servers"],
        0
    );

    // Everything lives in the database: a server with a new, empty data directory serves it,
    // with the same admin token.
    let second = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start_with(on(&database, rayo(second.path(), port)), port);
    let listed = run_json(second.path(), port, &["invoice", "list"]);
    assert_eq!(paid_invoice_hashes(&listed), vec![hash]);
    let token = |dir: &Path| std::fs::read_to_string(dir.join("data").join("admin.token")).unwrap();
    assert_eq!(token(first.path()), token(second.path()));
    // A CLI anywhere with the database's address finds the token there.
    let elsewhere = tempfile::tempdir().unwrap();
    let users = json(
        {
            let mut cli = on(&database, rayo(elsewhere.path(), port));
            cli.env("RAYO_ADMIN_URL", format!("http://127.0.0.1:{port}"));
            cli
        },
        &["user", "list"],
    );
    assert_eq!(users[0]["name"], "alice");
    let pay_request = get_json_url(
        &http,
        &format!("http://127.0.0.1:{port}/.well-known/lnurlp/alice"),
    )
    .await;
    assert_eq!(pay_request["tag"], "payRequest");
    server.stop();
}

#[tokio::test]
async fn a_sled_store_moves_into_postgresql_through_backup_and_restore() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    run(
        dir.path(),
        port,
        &["user", "add", "alice", "--comment-allowed", "20"],
    );
    let hash = pay_alice(&http, dir.path(), port).await;
    let nostr = run_json(dir.path(), port, &["nostr", "show"]);
    let file = dir.path().join("backup.json");
    run(dir.path(), port, &["backup", file.to_str().unwrap()]);
    server.stop();

    let restored = on(&database, rayo(dir.path(), port))
        .args(["restore", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    // The CLI reads the database itself while no server runs.
    let alice = json(
        on(&database, rayo(dir.path(), port)),
        &["user", "show", "alice"],
    );
    assert_eq!(alice["comment_allowed"], 20);
    let listed = json(on(&database, rayo(dir.path(), port)), &["invoice", "list"]);
    assert_eq!(paid_invoice_hashes(&listed), vec![hash]);
    assert_eq!(
        json(on(&database, rayo(dir.path(), port)), &["nostr", "show"]),
        nostr
    );

    // Into a database that holds something, only with --force.
    let again = on(&database, rayo(dir.path(), port))
        .args(["restore", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// One of several servers on `database`, each with a data directory of its own.
struct Instance {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Server>,
}

impl Instance {
    fn start(database: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = reserve_port();
        let mut instance = Self {
            dir,
            port,
            server: None,
        };
        instance.restart(database, env);
        instance
    }

    fn restart(&mut self, database: &str, env: &[(&str, &str)]) {
        let mut command = on(database, rayo(self.dir.path(), self.port));
        command.envs(env.iter().copied());
        self.server = Some(Server::start_with(command, self.port));
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The CLI through this instance's admin API (what it does, this instance does).
    fn through(&self, database: &str, args: &[&str]) -> Value {
        let mut command = on(database, rayo(self.dir.path(), self.port));
        command.env("RAYO_ADMIN_URL", self.base());
        json(command, args)
    }

    fn stop(&mut self) {
        self.server.take().unwrap().stop();
    }

    fn kill(&mut self) {
        self.server.take().unwrap().kill_hard();
    }
}

/// The CLI on the database itself, as an operator would run it anywhere.
fn cli(database: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    json(on(database, rayo(dir.path(), reserve_port())), args)
}

/// An invoice a callback answered with.
#[derive(Debug, Clone)]
struct Answered {
    hash: String,
    /// Its LUD-21 verify path, on any instance.
    verify: String,
}

impl Answered {
    fn of(body: &Value) -> Option<Self> {
        let verify = body["verify"].as_str()?;
        let path = &verify[verify.find("/lnurlp/")?..];
        Some(Self {
            hash: path.rsplit('/').nth(1)?.to_owned(),
            verify: path.to_owned(),
        })
    }
}

/// An invoice for alice from the instance at `base`, or the LNURL error.
async fn invoice_from(http: &reqwest::Client, base: &str) -> Result<Answered, Value> {
    let body = get_json_url(http, &format!("{base}/lnurlp/alice/callback?amount=21000")).await;
    Answered::of(&body).ok_or(body)
}

/// Polls `check` every 50 ms for up to `within`; how long it took to hold.
/// How long `check` took to come true, if it did `within` (the failovers' figures).
async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    crate::support::poll_until(within.as_secs(), || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
    .map(|()| started.elapsed())
}

/// Changes alice's description through the database and waits until `base` serves it.
/// Instances hear of changes in commit order, so `base` has then heard of every change
/// committed before this one.
async fn caught_up(database: &str, http: &reqwest::Client, base: &str, marker: &str) {
    cli(
        database,
        &["user", "update", "alice", "--description", marker],
    );
    let seen = eventually(Duration::from_secs(10), || async {
        let pay = get_json_url(http, &format!("{base}/.well-known/lnurlp/alice")).await;
        pay["metadata"]
            .as_str()
            .unwrap_or_default()
            .contains(marker)
    })
    .await;
    assert!(seen.is_some(), "{base} hears of what was done elsewhere");
}

async fn settled_on(http: &reqwest::Client, base: &str, invoice: &Answered) -> bool {
    let verify = get_json_url(http, &format!("{base}{}", invoice.verify)).await;
    verify["settled"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_answer_as_one() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let receiver = Receiver::start();
    let env = [
        ("RAYO_MAX_PENDING_PER_USER", "3"),
        ("RAYO_MAX_PENDING_PER_CLIENT", "3"),
    ];
    let a = Instance::start(&database, &env);
    let b = Instance::start(&database, &env);
    assert_eq!(cli(&database, &["db", "status"])["servers"], 2);

    // The CLI works on the database while both run, and both serve what it did.
    cli(
        &database,
        &["user", "add", "alice", "--webhook-url", &receiver.url],
    );
    let description = |base: String| {
        let http = http.clone();
        async move {
            let pay = get_json_url(&http, &format!("{base}/.well-known/lnurlp/alice")).await;
            pay["metadata"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert!(description(a.base()).await.contains("alice"));
    assert!(description(b.base()).await.contains("alice"));
    cli(
        &database,
        &[
            "user",
            "update",
            "alice",
            "--description",
            "Changed elsewhere",
        ],
    );
    let seen = eventually(Duration::from_secs(5), || async {
        description(b.base()).await.contains("Changed elsewhere")
    })
    .await;
    assert!(seen.is_some(), "b forgot its cached profile when told");

    // Callbacks to both; the cap of three unpaid invoices holds across them.
    let first = invoice_from(&http, &a.base()).await.unwrap();
    let second = invoice_from(&http, &b.base()).await.unwrap();
    let third = invoice_from(&http, &a.base()).await.unwrap();
    caught_up(&database, &http, &b.base(), "After three invoices").await;
    let refused = invoice_from(&http, &b.base()).await.unwrap_err();
    assert_eq!(refused["status"], "ERROR", "{refused}");

    // A follower on b hears of a payment a records.
    let key = cli(&database, &["user", "api-key", "create", "alice"]);
    let key = key["key"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/invoices/{}/ws",
        b.base().replace("http", "ws"),
        first.hash
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let message = |m: Option<Result<Message, _>>| -> Value {
        serde_json::from_str(m.unwrap().unwrap().to_text().unwrap()).unwrap()
    };
    assert_eq!(message(socket.next().await)["event"], "invoice");
    a.through(&database, &["dev", "settle", &first.hash]);
    let heard = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the follower on b hears of the payment a recorded");
    assert_eq!(message(heard)["event"], "paid");

    // The payment freed a place under the cap, on b too; b settles its own invoice.
    caught_up(&database, &http, &b.base(), "After a payment").await;
    let fourth = invoice_from(&http, &b.base()).await.unwrap();
    // The dev key is the database's: a settles what b made.
    a.through(&database, &["dev", "settle", &second.hash]);

    // Each payment's webhook arrives once, whichever instance delivers it.
    let both = eventually(Duration::from_secs(10), || async {
        receiver.received().len() >= 2
    })
    .await;
    assert!(both.is_some(), "both webhooks arrive");
    // Once both events are marked delivered, no instance sends them again.
    let settled = eventually(Duration::from_secs(10), || async {
        let events = cli(&database, &["webhook", "list"]);
        let events = events.as_array().cloned().unwrap_or_default();
        events.len() == 2 && events.iter().all(|e| e["state"] == "delivered")
    })
    .await;
    assert!(settled.is_some(), "both events are marked delivered");
    let received = receiver.received();
    let mut ids: Vec<&str> = received.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(received.len(), 2, "no event twice: {received:?}");
    assert_eq!(ids.len(), 2);
    for hash in [&first, &second] {
        assert!(received.iter().any(|r| r.body.contains(hash.hash.as_str())));
    }
    for hash in [&third, &fourth] {
        assert!(!settled_on(&http, &a.base(), hash).await);
    }

    // A key revoked anywhere is refused everywhere.
    let show = |base: String| {
        let (http, key, hash) = (http.clone(), key.clone(), third.hash.clone());
        async move {
            http.get(format!("{base}/api/v1/invoices/{hash}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(show(b.base()).await, 200);
    let keys = cli(&database, &["user", "api-key", "list", "alice"]);
    cli(
        &database,
        &["user", "api-key", "revoke", keys[0]["id"].as_str().unwrap()],
    );
    assert_eq!(show(a.base()).await, 401);
    assert_eq!(show(b.base()).await, 401);
}

/// Who holds the watcher's lease now (the database session), if anyone.
fn watcher_lease(database: &str) -> Option<i64> {
    cli(database, &["db", "status"])["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lease| lease["role"] == "watch default")
        .map(|lease| lease["pid"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_watching_instance_dies_another_notices_payments_within_ten_seconds() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let phoenixd = FakePhoenixd::start("pw");
    let env = [
        ("RAYO_BACKEND", "phoenixd"),
        ("RAYO_PHOENIXD_URL", phoenixd.url.as_str()),
        ("RAYO_PHOENIXD_PASSWORD", "pw"),
    ];
    // a starts first, so a leads.
    let mut a = Instance::start(&database, &env);
    let database_ = database.clone();
    let led = eventually(Duration::from_secs(5), || {
        let database = database_.clone();
        async move {
            tokio::task::spawn_blocking(move || watcher_lease(&database))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
    assert!(led.is_some(), "a leads the watcher");
    let mut b = Instance::start(&database, &env);
    cli(&database, &["user", "add", "alice"]);
    let leader = watcher_lease(&database).unwrap();

    // Paid while a watches: a notices (and b, which does not watch, serves the result).
    let hash = invoice_from(&http, &b.base()).await.unwrap();
    phoenixd.settle(&hash.hash).await;
    let (base_a, base_b) = (a.base(), b.base());
    let noticed = eventually(Duration::from_secs(5), || settled_on(&http, &base_b, &hash)).await;
    assert!(noticed.is_some(), "the leader noticed");

    // a dies; a payment made while nobody watches is noticed by b within the bound.
    let hash = invoice_from(&http, &b.base()).await.unwrap();
    a.kill();
    phoenixd.settle(&hash.hash).await;
    let took = eventually(Duration::from_secs(10), || {
        settled_on(&http, &base_b, &hash)
    })
    .await;
    let took = took.expect("b took over and noticed the payment within 10 s");
    eprintln!("b noticed a payment made after the leader died in {took:?}");
    assert_ne!(watcher_lease(&database), Some(leader));

    // a comes back and stands by; b stops gracefully and hands over at once.
    a.restart(&database, &env);
    let hash = invoice_from(&http, &a.base()).await.unwrap();
    b.stop();
    phoenixd.settle(&hash.hash).await;
    let took = eventually(Duration::from_secs(10), || {
        settled_on(&http, &base_a, &hash)
    })
    .await;
    let took = took.expect("a took over from b's graceful stop");
    eprintln!("a noticed a payment after b stopped gracefully in {took:?}");
    a.stop();
}

/// Runs callbacks against `bases` in turn, `workers` at a time, until `stop` is set; returns
/// the payment hashes answered and the requests that failed.
/// Callbacks from `workers` wallets at once, round robin over `bases`, until `stop`; counts
/// each answered invoice in `progress` as it comes.
async fn callback_load(
    bases: Vec<String>,
    workers: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
) -> (Vec<Answered>, Vec<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (http, bases, stop, progress) =
            (http.clone(), bases.clone(), stop.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let (mut answered, mut failed) = (Vec::new(), Vec::new());
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let base = &bases[n % bases.len()];
                n += 1;
                let url = format!("{base}/lnurlp/alice/callback?amount=21000");
                match http.get(&url).send().await {
                    Ok(answer) if answer.status().is_success() => {
                        let body: Value = answer.json().await.unwrap_or_default();
                        match Answered::of(&body) {
                            Some(invoice) => {
                                answered.push(invoice);
                                progress.fetch_add(1, Ordering::Relaxed);
                            }
                            None => failed.push(format!("{base}: {body}")),
                        }
                    }
                    Ok(answer) => failed.push(format!("{base}: {}", answer.status())),
                    Err(e) => failed.push(format!("{base}: {e}")),
                }
            }
            (answered, failed)
        }));
    }
    let (mut answered, mut failed) = (Vec::new(), Vec::new());
    for task in tasks {
        let (a, f) = task.await.unwrap();
        answered.extend(a);
        failed.extend(f);
    }
    (answered, failed)
}

/// Waits until the load has had `more` invoices answered since now.
async fn answered_beyond(progress: &AtomicUsize, more: usize) {
    let target = progress.load(Ordering::Relaxed) + more;
    crate::support::poll_until(60, || async {
        (progress.load(Ordering::Relaxed) >= target).then_some(())
    })
    .await
    .expect("the load keeps being answered");
}

/// How many of `invoices` the database holds.
async fn stored(http: &reqwest::Client, base: &str, invoices: &[Answered]) -> usize {
    let mut found = 0;
    for chunk in invoices.chunks(32) {
        let checks = chunk.iter().map(|invoice| {
            let url = format!("{base}{}", invoice.verify);
            let http = http.clone();
            async move { get_json_url(&http, &url).await["status"] == "OK" }
        });
        found += futures_util::future::join_all(checks)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
    }
    found
}

const UNCAPPED: [(&str, &str); 2] = [
    ("RAYO_MAX_PENDING_PER_USER", "0"),
    ("RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE", "100000000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_callback_load_loses_no_invoice_it_answered() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let mut a = Instance::start(&database, &UNCAPPED);
    let b = Instance::start(&database, &UNCAPPED);
    cli(&database, &["user", "add", "alice"]);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(callback_load(
        vec![a.base(), b.base()],
        16,
        stop.clone(),
        progress.clone(),
    ));
    answered_beyond(&progress, 200).await;
    a.kill();
    answered_beyond(&progress, 200).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.unwrap();
    let found = stored(&http, &b.base(), &answered).await;
    eprintln!(
        "answered {} invoices ({} requests failed, to the killed instance); {found} stored",
        answered.len(),
        failed.len()
    );
    assert!(answered.len() > 100, "the load ran");
    assert!(
        failed.iter().all(|f| f.starts_with(&a.base())),
        "only the killed instance failed: {:?}",
        failed.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(found, answered.len(), "every answered invoice is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_a_load_balancer_fails_no_wallet_request() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let mut a = Instance::start(&database, &UNCAPPED);
    let mut b = Instance::start(&database, &UNCAPPED);
    let Some(nginx) = Nginx::start(&[a.port, b.port]) else {
        return;
    };
    cli(&database, &["user", "add", "alice"]);
    let front = format!("http://127.0.0.1:{}", nginx.port);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(callback_load(
        vec![front.clone()],
        8,
        stop.clone(),
        progress.clone(),
    ));
    for instance in [&mut a, &mut b] {
        answered_beyond(&progress, 60).await;
        let database = database.clone();
        tokio::task::block_in_place(|| {
            instance.stop();
            instance.restart(&database, &UNCAPPED);
        });
    }
    answered_beyond(&progress, 60).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.unwrap();
    let found = stored(&http, &front, &answered).await;
    eprintln!(
        "rolling restart: {} callbacks answered, {} failed, {found} stored",
        answered.len(),
        failed.len()
    );
    assert!(answered.len() > 100, "the load ran");
    assert_eq!(failed, Vec::<String>::new(), "no wallet request failed");
    assert_eq!(found, answered.len(), "every answered invoice is stored");
}

#[tokio::test]
async fn buda_nonces_come_from_one_sequence_in_the_database() {
    use rayo::backends::{BudaBackend, InvoiceBackend};
    use rayo::store::{Db, PgStore, SharedStore};
    let Some((database, _)) = database_and_wallet() else {
        return;
    };
    let buda = FakeBuda::start("k", "s");
    // Another instance has signed with this key up to an hour ahead of this clock.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let ahead = now_us + 3_600_000_000;
    let name = format!(
        "buda nonce {}",
        &rayo::domain::Hash32::sha256(b"k").to_string()[..16]
    );
    let store = tokio::task::spawn_blocking(move || {
        let store = PgStore::open(&database).unwrap();
        assert_eq!(store.next_in_sequence(&name, ahead).unwrap(), ahead);
        store
    })
    .await
    .unwrap();
    let backend = BudaBackend::new(
        buda.url.parse().unwrap(),
        rayo::domain::Secret::new("k"),
        rayo::domain::Secret::new("s"),
        lightning_invoice::Currency::Bitcoin,
    )
    .unwrap()
    .sharing_nonces(Db::shared(std::sync::Arc::new(store)));
    backend
        .lookup_invoice(&rayo::domain::Hash32([1; 32]))
        .await
        .unwrap();
    assert_eq!(
        buda.last_nonce(),
        ahead + 1,
        "the next number of the shared sequence"
    );
}
