//! Two instances on one database serve the same BIP-353 zone: they sign with the key the
//! store holds, so either one's answers validate against the one DS record at the parent.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::dns::{self, delv, dig, name_of, strings, HOST};

use super::*;

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn serving_dns_at(port: u16) -> Vec<(String, String)> {
    vec![
        ("RAYO_PUBLIC_URL".into(), format!("http://{HOST}")),
        ("RAYO_DNS_BIND".into(), format!("127.0.0.1:{port}")),
        ("RAYO_BIP353_REFRESH".into(), "1s".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sign_the_zone_with_one_key_and_either_answers() {
    let Some((database, _http)) = database_and_wallet() else {
        return;
    };
    if !dns::have_bind_tools() {
        return;
    }
    let ports = [reserve_port(), reserve_port()];
    let envs: Vec<Vec<(String, String)>> = ports.iter().map(|p| serving_dns_at(*p)).collect();
    let a = Instance::start(&database, &pairs(&envs[0]));
    let b = Instance::start(&database, &pairs(&envs[1]));
    a.through(&database, &["user", "add", "alice"]);
    let servers: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    // Each instance makes the zone from the store: the one offer, the one key.
    for server in &servers {
        let served = eventually(Duration::from_secs(20), || async {
            dig(*server, &[&name_of("alice"), "TXT", "+short", "+norec"])
                .await
                .contains("bitcoin:?lno=")
        })
        .await;
        assert!(served.is_some(), "{server} serves ₿alice@{HOST}");
    }
    let keys: Vec<String> = futures_util::future::join_all(servers.iter().map(|server| async {
        dig(
            *server,
            &[&format!("{}.", dns::zone()), "DNSKEY", "+short", "+norec"],
        )
        .await
    }))
    .await;
    assert_eq!(keys[0], keys[1], "one key, whichever instance answers");
    let records: Vec<String> = futures_util::future::join_all(servers.iter().map(|server| async {
        dig(*server, &[&name_of("alice"), "TXT", "+short", "+norec"]).await
    }))
    .await;
    assert_eq!(records[0], records[1], "one offer");

    let delegations = a.through(&database, &["bip353", "ds"]);
    let anchors = strings(&delegations[0]["trust_anchors"]);
    for server in &servers {
        let out = delv(*server, &anchors, &name_of("alice"), "TXT").await;
        assert!(out.contains("; fully validated"), "{server}: {out}");
        let denied = delv(*server, &anchors, &name_of("mallory"), "TXT").await;
        assert!(
            denied.contains("; negative response, fully validated"),
            "{server}: {denied}"
        );
    }

    // A payment to the offer, recorded through one instance, is alice's on both.
    let paid = b.through(
        &database,
        &["dev", "pay-offer", "alice", "--amount-msat", "5000"],
    );
    let hash = paid["payment_hash"].as_str().unwrap().to_owned();
    let seen = a.through(&database, &["invoice", "show", &hash]);
    assert_eq!(seen["status"], "paid");
    assert_eq!(seen["user"], "alice");
}
