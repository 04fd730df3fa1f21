//! BIP-353 names as payers see them: rayo serving its zones on a real UDP and TCP port, and
//! the independent tools that check what it answers: BIND's `dig` and `delv`, dnspython's
//! validator, and Boltz's BOLT12 decoder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use rayo::config::{PublicUrl, Settings};
use serde_json::Value;

use super::TestApp;

/// The domain the test addresses live on: a DNS name, as BIP-353 needs (an IP cannot).
pub const HOST: &str = "pay.rayo.test";

pub fn zone() -> String {
    format!("user._bitcoin-payment.{HOST}")
}

pub fn name_of(user: &str) -> String {
    format!("{user}.{}", zone())
}

/// Settings for rayo on `pay.rayo.test`, serving its zone on a free loopback port, looking
/// at offers every second.
pub fn serving_dns(s: &mut Settings) {
    s.public_url = PublicUrl::parse(&format!("http://{HOST}:{}", s.bind.port())).unwrap();
    s.bip353.dns_bind = Some("127.0.0.1:0".parse().unwrap());
    s.bip353.refresh = std::time::Duration::from_secs(1);
}

/// Whether BIND's tools are here; under CI they must be.
pub fn have_bind_tools() -> bool {
    let found = Command::new("delv").arg("-v").output().is_ok();
    if !found {
        super::skip_unless_ci("BIND's delv and dig are not installed (Debian bind9-dnsutils)");
    }
    found
}

fn output(mut command: Command) -> String {
    let out = command.output().expect("the tool runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `dig @server -p port <args>`, its whole output.
pub async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut command = Command::new("dig");
    command
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string());
    command.args(args);
    tokio::task::spawn_blocking(move || output(command))
        .await
        .unwrap()
}

/// `delv` with `anchors` as the only trust anchors and the zone as the root of trust.
pub async fn delv(server: SocketAddr, anchors: &[String], name: &str, rtype: &str) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!("trust-anchors {{\n{}\n}};\n", anchors.join("\n")),
    )
    .unwrap();
    let mut command = Command::new("delv");
    command
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .arg("-a")
        .arg(file.path())
        .arg(format!("+root={}.", zone()))
        .args([name, rtype]);
    let out = tokio::task::spawn_blocking(move || output(command))
        .await
        .unwrap();
    drop(file);
    out
}

/// The zone's delegation as `rayo bip353 ds` gives it (through the admin API).
pub async fn delegation(app: &TestApp) -> Value {
    let answer = app.admin(reqwest::Method::GET, "/bip353/ds", None).await;
    assert_eq!(answer.status(), 200);
    let all: Value = answer.json().await.unwrap();
    all.as_array()
        .and_then(|zones| zones.iter().find(|z| z["zone"] == zone()))
        .cloned()
        .unwrap_or_else(|| panic!("no delegation for {}: {all}", zone()))
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The base64 key of each DNSKEY line.
pub fn keys(delegation: &Value) -> Vec<String> {
    strings(&delegation["dnskeys"])
        .iter()
        .map(|line| line.rsplit(' ').next().unwrap().to_owned())
        .collect()
}

/// Waits until rayo's DNS server answers `user`'s TXT record; returns the URI it holds.
pub async fn wait_for_name(app: &TestApp, user: &str) -> String {
    let server = app.dns.expect("the DNS server runs");
    let name = hickory_proto::rr::Name::from_ascii(format!("{}.", name_of(user))).unwrap();
    super::poll_until(15, || {
        let name = name.clone();
        async move {
            let answer =
                rayo::bip353::check::ask(server, &name, hickory_proto::rr::RecordType::TXT)
                    .await
                    .ok()?;
            answer.answers.iter().find_map(|r| match &r.data {
                hickory_proto::rr::RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
        }
    })
    .await
    .unwrap_or_else(|| panic!("₿{user}@{HOST} was not served within 15 s"))
}

fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("RAYO_TEST_DNS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-dns"));
    if dir.join("bin/python").exists() {
        Some(dir)
    } else {
        super::skip_unless_ci(
            "dnspython is not installed: run .ci/run once, or set RAYO_TEST_DNS_VENV",
        );
        None
    }
}

/// dnspython's verdict on `user`'s record, validated against `anchor` (a base64 key); with
/// `tamper`, on a copy changed by one byte.
pub async fn dnspython(
    server: SocketAddr,
    user: &str,
    anchor: &str,
    tamper: bool,
) -> Option<Value> {
    let venv = venv()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dns/validate.py");
    let mut command = Command::new(venv.join("bin/python"));
    command.arg("-W").arg("ignore").arg(script).args([
        server.ip().to_string(),
        server.port().to_string(),
        format!("{}.", zone()),
        format!("{}.", name_of(user)),
        anchor.to_owned(),
    ]);
    if tamper {
        command.arg("--tamper");
    }
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    Some(serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "dnspython said {text:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }))
}

/// What Boltz's decoder (npm boltz-bolt12) reads in `offer`.
pub async fn boltz_decode(offer: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bolt12");
    assert!(
        dir.join("node_modules/boltz-bolt12").exists(),
        "run `npm ci --prefix tests/bolt12` (or .ci/run) first"
    );
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("--no-warnings")
        .arg("--experimental-wasm-modules")
        .arg("decode.mjs")
        .arg(offer);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "boltz-bolt12 said {} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
