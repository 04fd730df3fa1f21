//! rayo on PostgreSQL: the real binary against a real PostgreSQL cluster the tests start (see
//! `rayo::store::postgres::testing`). One server per database for now.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::binary::{rayo, reserve_port, run, run_json, Server};
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
async fn a_server_on_postgresql_keeps_its_invoices_across_restarts_and_refuses_a_second_server() {
    let Some((database, http)) = database_and_wallet() else {
        return;
    };
    let first = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start_with(on(&database, rayo(first.path(), port)), port);
    run(first.path(), port, &["user", "add", "alice"]);
    let hash = pay_alice(&http, first.path(), port).await;
    let status = json(on(&database, rayo(first.path(), port)), &["db", "status"]);
    assert_eq!(status["schema_version"], 1);
    assert_eq!(status["server_running"], true);

    // A second server on the same database is refused, with the reason.
    let second = tempfile::tempdir().unwrap();
    let refused = on(&database, rayo(second.path(), reserve_port()))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("another rayo server runs on this database"),
        "{said}"
    );
    server.stop();
    assert_eq!(
        json(on(&database, rayo(first.path(), port)), &["db", "status"])["server_running"],
        false
    );

    // Everything lives in the database: a server with a new, empty data directory serves it,
    // with the same admin token.
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
