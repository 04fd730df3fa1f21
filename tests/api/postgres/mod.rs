//! rayo on PostgreSQL: the real binary against a real PostgreSQL cluster the tests start (see
//! `rayo::store::postgres::testing`), one server or several on one database.

mod bip353;
mod console;
mod instances;
mod load;
mod notify;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::{base_url, fresh_client, rayo, reserve_port, run, run_json, Server};
use crate::support::fake_buda::FakeBuda;
use crate::support::get_json_url;

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
    let base = base_url(port);
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
    let http = fresh_client();
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
    assert_eq!(status["schema_version"], 4, "the schema this rayo writes");
    assert_eq!(status["known_version"], 4);
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
            cli.env("RAYO_ADMIN_URL", base_url(port));
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
    .map_api(|buda| buda.sharing_nonces(Db::shared(std::sync::Arc::new(store))));
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
