//! The real `rayo` binary as an operator starts and configures it: settings, the CLI, files.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::binary::{base_url, fresh_client, rayo, reserve_port, run, run_json, Server};
use crate::support::get_json_url;
use crate::support::wallet::{assert_preimage_matches, check_invoice};

#[tokio::test]
async fn the_binary_serves_settles_and_remembers_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    let server = Server::start(dir.path(), port);
    let http = fresh_client();
    let base = base_url(port);

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
async fn the_cli_shows_and_rotates_the_nostr_key_and_sets_nip05_identities() {
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port();
    // Offline: the key is made once and kept.
    let first = run_json(dir.path(), port, &["nostr", "show"]);
    assert_eq!(first["pubkey"].as_str().unwrap().len(), 64);
    assert_eq!(run_json(dir.path(), port, &["nostr", "show"]), first);

    let server = Server::start(dir.path(), port);
    let base = base_url(port);
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
