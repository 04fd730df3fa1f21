//! BIP-353 names: each address's BOLT12 offer, published as a DNSSEC-signed TXT record by
//! rayo's own DNS server, checked with tools that are not rayo's: BIND's dig and delv,
//! dnspython's validator and Boltz's BOLT12 decoder.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use serde_json::{json, Value};

use crate::support::dns::{
    self, delegation, delv, dig, keys, name_of, serving_dns, strings, zone, HOST,
};
use crate::support::fake_cln::FakeCln;
use crate::support::fake_node::{self, Fault};
use crate::support::receiver::Receiver;
use crate::support::{spawn_app_with, TestApp};

async fn rayo_serving_names() -> TestApp {
    spawn_app_with(None, serving_dns).await
}

fn offer_of(uri: &str) -> &str {
    uri.strip_prefix("bitcoin:?lno=")
        .unwrap_or_else(|| panic!("not a BOLT12 URI: {uri}"))
}

#[tokio::test]
async fn a_users_name_is_served_signed_and_validates_with_delv_and_dnspython() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    let uri = dns::wait_for_name(&app, "alice").await;
    let server = app.dns.unwrap();
    let zone_keys = delegation(&app).await;

    let udp = dig(server, &[&name_of("alice"), "TXT", "+dnssec", "+norec"]).await;
    println!("{udp}");
    assert!(
        udp.contains("status: NOERROR") && udp.contains(" aa"),
        "{udp}"
    );
    assert!(
        udp.contains("TXT \"bitcoin:?lno=lno1") && udp.contains("RRSIG TXT 13 "),
        "{udp}"
    );
    assert!(!udp.contains(" ra"), "no recursion is offered: {udp}");
    let tcp = dig(
        server,
        &[&name_of("alice"), "TXT", "+dnssec", "+norec", "+tcp"],
    )
    .await;
    assert!(
        tcp.contains("status: NOERROR") && tcp.contains("(TCP)"),
        "{tcp}"
    );

    let validated = delv(
        server,
        &strings(&zone_keys["trust_anchors"]),
        &name_of("alice"),
        "TXT",
    )
    .await;
    println!("{validated}");
    assert!(validated.contains("; fully validated"), "{validated}");
    assert!(validated.contains(&uri), "{validated}");

    let key = &keys(&zone_keys)[0];
    if let Some(verdict) = dns::dnspython(server, "alice", key, false).await {
        assert_eq!(verdict["validated"], true, "{verdict}");
        assert_eq!(verdict["txt"], uri.as_str());
        assert_eq!(verdict["aa"], true);
        // The DS `rayo bip353 ds` gives the parent is the one dnspython derives from the key.
        let ds = strings(&zone_keys["ds"]);
        let derived = verdict["ds"].as_str().unwrap().to_uppercase();
        assert!(
            ds.iter().any(|line| line.ends_with(&derived)),
            "{ds:?} against {derived}"
        );
        let tampered = dns::dnspython(server, "alice", key, true).await.unwrap();
        assert_eq!(
            tampered["validated"], false,
            "a changed record must not validate: {tampered}"
        );
    }
    // A key that is not the zone's validates nothing.
    let stranger = "\"user._bitcoin-payment.pay.rayo.test.\" static-key 257 3 13 \"mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\";".to_owned();
    let refused = delv(server, &[stranger], &name_of("alice"), "TXT").await;
    assert!(!refused.contains("fully validated"), "{refused}");
}

#[tokio::test]
async fn the_offer_decodes_with_boltz_as_the_users_offer_from_the_dev_node() {
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    let uri = dns::wait_for_name(&app, "alice").await;
    let decoded = dns::boltz_decode(offer_of(&uri)).await;
    println!("{decoded}");
    assert_eq!(decoded["description"], format!("Payment to alice@{HOST}"));
    assert_eq!(decoded["issuer"], HOST);
    assert_eq!(decoded["amount"], Value::Null, "any amount");
    assert_eq!(
        decoded["chains"],
        json!(["4"]),
        "regtest, as the dev backend"
    );
    // The node that signs the dev backend's invoices.
    let pr = app.callback("alice", "amount=1000").await["pr"]
        .as_str()
        .unwrap()
        .to_owned();
    let invoice: lightning_invoice::Bolt11Invoice = pr.parse().unwrap();
    assert_eq!(
        decoded["signing_pubkey"],
        invoice.recover_payee_pub_key().to_string()
    );
    // The same record, printed for a DNS host to serve.
    let printed: Value = app
        .admin(reqwest::Method::GET, "/bip353/records", None)
        .await
        .json()
        .await
        .unwrap();
    let record = &printed["records"][0];
    assert_eq!(record["name"], format!("{}.", name_of("alice")));
    assert_eq!(record["address"], format!("₿alice@{HOST}"));
    assert_eq!(record["uri"], uri.as_str());
    assert!(strings(&record["strings"]).iter().all(|s| s.len() <= 255));
}

/// The NSEC3 records of an answer, as (owner hash, next hash) pairs.
fn nsec3_spans(answer: &Message) -> Vec<(Vec<u8>, Vec<u8>)> {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    answer
        .authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) => {
                let label = r.name.iter().next().unwrap();
                let owner = data_encoding::BASE32HEX_NOPAD
                    .decode(&label.to_ascii_uppercase())
                    .unwrap();
                Some((owner, nsec3.next_hashed_owner_name().to_vec()))
            }
            _ => None,
        })
        .collect()
}

fn distance(from: &[u8], to: &[u8]) -> u128 {
    let low = |b: &[u8]| u128::from_be_bytes(b[4..20].try_into().unwrap());
    low(to).wrapping_sub(low(from))
}

#[tokio::test]
async fn names_that_are_not_users_get_an_authenticated_nxdomain_that_names_no_one() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = rayo_serving_names().await;
    for user in ["alice", "bob", "carol"] {
        app.add_user(user, json!({})).await;
    }
    dns::wait_for_name(&app, "carol").await;
    let server = app.dns.unwrap();
    let anchors = strings(&delegation(&app).await["trust_anchors"]);

    for missing in ["mallory", "x.alice", "*"] {
        let denied = delv(server, &anchors, &name_of(missing), "TXT").await;
        println!("{denied}");
        assert!(
            denied.contains("; negative response, fully validated"),
            "{missing}: {denied}"
        );
        assert!(denied.contains("NXDOMAIN"), "{missing}: {denied}");
    }
    let no_data = delv(server, &anchors, &name_of("alice"), "A").await;
    assert!(
        no_data.contains("; negative response, fully validated") && no_data.contains("NXRRSET"),
        "{no_data}"
    );

    // Every NSEC3 covers only the hash it denies (white lies): none spans a real name, so
    // asking for names one by one walks nothing.
    let name = Name::from_ascii(format!("{}.", name_of("mallory"))).unwrap();
    let answer = rayo::bip353::check::ask(server, &name, RecordType::TXT)
        .await
        .unwrap();
    let spans = nsec3_spans(&answer);
    assert_eq!(
        spans.len(),
        3,
        "closest encloser, next closer name, wildcard"
    );
    assert!(
        spans.iter().all(|(owner, next)| distance(owner, next) <= 2),
        "{spans:?}"
    );
    let text = dig(server, &[&name_of("mallory"), "TXT", "+dnssec", "+norec"]).await;
    for user in ["alice", "bob", "carol"] {
        assert!(
            !text.contains(&format!("{user}.")),
            "{user} is named: {text}"
        );
    }
}

fn query(name: &str, rtype: RecordType, edns_payload: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(7, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_dnssec_ok(true);
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

/// Sends `bytes` over UDP; the answer, if one comes within `wait`.
fn udp(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(bytes, server).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..len]).expect("a DNS message"))
}

#[tokio::test]
async fn malformed_oversized_and_foreign_questions_are_ignored_or_refused() {
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    dns::wait_for_name(&app, "alice").await;
    let server = app.dns.unwrap();
    let short = Duration::from_millis(300);
    let code = |m: Option<Message>| m.map(|m| m.metadata.response_code);
    tokio::task::spawn_blocking(move || {
        use hickory_proto::op::ResponseCode::*;
        // Too short to be a header, and noise: nothing, or a bare FORMERR, never a crash.
        assert!(udp(server, &[1, 2, 3], short).is_none());
        let noise: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
        let answered = udp(server, &noise, short);
        assert!(
            answered.as_ref().is_none_or(|m| m.answers.is_empty()),
            "{answered:?}"
        );
        // Names outside the zone: refused, not looked up (no recursion).
        assert_eq!(
            code(udp(
                server,
                &query("example.com.", RecordType::A, None),
                short
            )),
            Some(Refused)
        );
        // A zone transfer would list every user.
        assert_eq!(
            code(udp(
                server,
                &query(&format!("{}.", zone()), RecordType::AXFR, None),
                short
            )),
            Some(Refused)
        );
        // Not a query.
        let mut update =
            Message::from_vec(&query(&format!("{}.", zone()), RecordType::SOA, None)).unwrap();
        update.metadata.op_code = OpCode::Update;
        assert_eq!(
            code(udp(server, &update.to_vec().unwrap(), short)),
            Some(NotImp)
        );
        // Another class.
        let mut chaos = Message::new(9, MessageType::Query, OpCode::Query);
        let mut q = Query::query(
            Name::from_ascii(format!("{}.", name_of("alice"))).unwrap(),
            RecordType::TXT,
        );
        q.set_query_class(DNSClass::CH);
        chaos.add_query(q);
        assert_eq!(
            code(udp(server, &chaos.to_vec().unwrap(), short)),
            Some(Refused)
        );
        // Two questions in one message.
        let mut two = Message::from_vec(&query(
            &format!("{}.", name_of("alice")),
            RecordType::TXT,
            None,
        ))
        .unwrap();
        two.add_query(Query::query(
            Name::from_ascii(format!("{}.", name_of("bob"))).unwrap(),
            RecordType::TXT,
        ));
        assert_eq!(
            code(udp(server, &two.to_vec().unwrap(), short)),
            Some(FormErr)
        );
        // And after all that, an honest question is answered.
        let fine = udp(
            server,
            &query(
                &format!("{}.", name_of("alice")),
                RecordType::TXT,
                Some(1232),
            ),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(fine.metadata.response_code, NoError);
        assert!(fine.metadata.authoritative && !fine.metadata.recursion_available);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_udp_flood_is_rate_limited_and_tcp_still_answers() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = spawn_app_with(None, |s| {
        serving_dns(s);
        s.bip353.dns_rate = std::num::NonZeroU32::new(5).unwrap();
    })
    .await;
    app.add_user("alice", json!({})).await;
    dns::wait_for_name(&app, "alice").await;
    let server = app.dns.unwrap();
    let (answered, slipped) = tokio::task::spawn_blocking(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let bytes = query(
            &format!("{}.", name_of("alice")),
            RecordType::TXT,
            Some(1232),
        );
        for _ in 0..200 {
            socket.send_to(&bytes, server).unwrap();
        }
        let (mut answered, mut slipped) = (0, 0);
        let mut buf = [0u8; 4096];
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..len]).unwrap();
            if m.metadata.truncation && m.answers.is_empty() {
                slipped += 1;
            } else {
                answered += 1;
            }
        }
        (answered, slipped)
    })
    .await
    .unwrap();
    println!("200 queries: {answered} answered, {slipped} truncated, the rest dropped");
    assert!(answered <= 15, "{answered} answers got through");
    assert!(slipped > 0, "a limited client is told to retry over TCP");
    assert!(answered + slipped < 150, "most of the flood is dropped");
    let tcp = dig(server, &[&name_of("alice"), "TXT", "+tcp", "+norec"]).await;
    assert!(
        tcp.contains("status: NOERROR") && tcp.contains("bitcoin:?lno="),
        "{tcp}"
    );
}

#[tokio::test]
async fn an_answer_too_big_for_the_clients_buffer_is_truncated_and_whole_over_tcp() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    dns::wait_for_name(&app, "alice").await;
    let server = app.dns.unwrap();
    // A signed denial with three NSEC3 records is bigger than 512 bytes.
    let small = dig(
        server,
        &[
            "mallory.".to_owned() + &zone(),
            "TXT".into(),
            "+dnssec".into(),
            "+bufsize=512".into(),
            "+ignore".into(),
            "+norec".into(),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .await;
    assert!(small.contains(" tc"), "{small}");
    let whole = dig(
        server,
        &[
            &name_of("mallory"),
            "TXT",
            "+dnssec",
            "+bufsize=512",
            "+norec",
        ],
    )
    .await;
    assert!(
        whole.contains("status: NXDOMAIN") && whole.contains("NSEC3") && whole.contains("(TCP)"),
        "dig retries over TCP: {whole}"
    );
    // However much a client offers, no UDP answer is bigger than 1232 bytes.
    let big = dig(
        server,
        &[
            &name_of("mallory"),
            "TXT",
            "+dnssec",
            "+bufsize=4096",
            "+norec",
        ],
    )
    .await;
    assert!(big.contains("udp: 1232"), "{big}");
}

/// This zone's entry of a list of delegations.
fn in_zone(all: Value) -> Value {
    all.as_array()
        .and_then(|zones| zones.iter().find(|z| z["zone"] == zone()))
        .cloned()
        .unwrap_or_else(|| panic!("no {} in {all}", zone()))
}

#[tokio::test]
async fn a_key_rollover_publishes_the_new_key_before_it_retires_the_old() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    dns::wait_for_name(&app, "alice").await;
    let server = app.dns.unwrap();
    let before = delegation(&app).await;
    let old_anchor = strings(&before["trust_anchors"]);

    let started = app
        .admin(reqwest::Method::POST, "/bip353/rollover/start", None)
        .await;
    assert_eq!(started.status(), 200);
    let during = in_zone(started.json().await.unwrap());
    assert_eq!(during["rollover_under_way"], true);
    assert_eq!(
        strings(&during["ds"]).len(),
        2,
        "both DS records, for the parent"
    );
    let new_anchor: Vec<String> = strings(&during["trust_anchors"])
        .into_iter()
        .filter(|a| !old_anchor.contains(a))
        .collect();
    assert_eq!(new_anchor.len(), 1);
    // Resolvers holding either DS validate the zone meanwhile.
    for anchors in [&old_anchor, &new_anchor] {
        let out = delv(server, anchors, &name_of("alice"), "TXT").await;
        assert!(out.contains("; fully validated"), "{out}");
    }
    let again = app
        .admin(reqwest::Method::POST, "/bip353/rollover/start", None)
        .await;
    assert_eq!(again.status(), 409, "one rollover at a time");

    let finished = app
        .admin(reqwest::Method::POST, "/bip353/rollover/finish", None)
        .await;
    assert_eq!(finished.status(), 200);
    let after = in_zone(finished.json().await.unwrap());
    assert_eq!(strings(&after["trust_anchors"]), new_anchor);
    let out = delv(server, &new_anchor, &name_of("alice"), "TXT").await;
    assert!(out.contains("; fully validated"), "{out}");
    let out = delv(server, &old_anchor, &name_of("alice"), "TXT").await;
    assert!(
        !out.contains("fully validated"),
        "the old key is gone: {out}"
    );
    let bad = app
        .admin(reqwest::Method::POST, "/bip353/rollover/sideways", None)
        .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn an_offer_payment_on_the_dev_backend_is_the_users_paid_invoice_with_a_webhook() {
    let receiver = Receiver::start();
    let app = rayo_serving_names().await;
    app.add_user(
        "alice",
        json!({"webhook_url": receiver.url, "comment_allowed": 100}),
    )
    .await;
    dns::wait_for_name(&app, "alice").await;
    let paid = app
        .admin(
            reqwest::Method::POST,
            "/dev/pay-offer/alice",
            Some(json!({"amount_msat": 21_000, "note": "for the coffee\u{7}"})),
        )
        .await;
    assert_eq!(paid.status(), 200);
    let invoice: Value = paid.json().await.unwrap();
    assert_eq!(invoice["user"], "alice");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_msat"], 21_000);
    assert_eq!(
        invoice["comment"], "for the coffee",
        "the note, its control character dropped"
    );
    let hash = invoice["payment_hash"].as_str().unwrap().to_owned();
    assert!(
        app.eventually(10, || async {
            receiver.received().iter().any(|r| r.body.contains(&hash))
        })
        .await,
        "the webhook arrives"
    );
    let body: Value = serde_json::from_str(
        &receiver
            .received()
            .into_iter()
            .find(|r| r.body.contains(&hash))
            .unwrap()
            .body,
    )
    .unwrap();
    println!("{body:#}");
    assert_eq!(app.invoice(&hash).await["status"], "paid");
    // Nobody's offer, or a backend that is not dev: refused, nothing recorded.
    let bad = app
        .admin(
            reqwest::Method::POST,
            "/dev/pay-offer/nobody",
            Some(json!({"amount_msat": 1000})),
        )
        .await;
    assert_eq!(bad.status(), 404);
    let zero = app
        .admin(
            reqwest::Method::POST,
            "/dev/pay-offer/alice",
            Some(json!({"amount_msat": 0})),
        )
        .await;
    assert_eq!(zero.status(), 422);
    assert_eq!(app.invoices().await.len(), 1);
}

#[tokio::test]
async fn a_removed_user_loses_the_name() {
    if !dns::have_bind_tools() {
        return;
    }
    let app = rayo_serving_names().await;
    app.add_user("alice", json!({})).await;
    dns::wait_for_name(&app, "alice").await;
    let gone = app
        .admin(reqwest::Method::DELETE, "/users/alice", None)
        .await;
    assert!(gone.status().is_success());
    let server = app.dns.unwrap();
    assert!(
        app.eventually(10, || async {
            dig(server, &[&name_of("alice"), "TXT", "+norec"])
                .await
                .contains("status: NXDOMAIN")
        })
        .await,
        "the name is denied once the user is gone"
    );
    let printed: Value = app
        .admin(reqwest::Method::GET, "/bip353/records", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(!printed.to_string().contains("alice"), "{printed}");
}

const RUNE: &str = "bip353-rune";

async fn rayo_on_cln(cln: &FakeCln) -> TestApp {
    let url = cln.url.clone();
    spawn_app_with(None, move |s| {
        serving_dns(s);
        s.backend.kind = rayo::config::BackendKind::Cln;
        s.backend.cln_url = Some(url.parse().unwrap());
        s.backend.cln_rune = Some(rayo::domain::Secret::new(RUNE));
        s.backend.network = Some(rayo::config::Network::Regtest);
    })
    .await
}

#[tokio::test]
async fn core_lightning_makes_the_offer_and_its_payments_are_the_users() {
    let cln = FakeCln::start(RUNE);
    let receiver = Receiver::start();
    let app = rayo_on_cln(&cln).await;
    app.add_user(
        "alice",
        json!({"webhook_url": receiver.url, "comment_allowed": 50}),
    )
    .await;
    let uri = dns::wait_for_name(&app, "alice").await;
    let decoded = dns::boltz_decode(offer_of(&uri)).await;
    assert_eq!(
        decoded["signing_pubkey"],
        fake_node::node_id(),
        "CLN's node"
    );
    let (offer_id, active) = cln
        .offers()
        .into_iter()
        .find(|(id, _)| *id == decoded["id"])
        .unwrap();
    assert!(active);

    let hash = cln.pay_offer(&offer_id, 42_000, Some("gm from BOLT12"));
    let invoice = crate::support::poll_until(10, || async {
        let answer = app
            .admin(reqwest::Method::GET, &format!("/invoices/{hash}"), None)
            .await;
        if answer.status() != 200 {
            return None;
        }
        answer.json::<Value>().await.ok()
    })
    .await
    .expect("the payment to the offer is recorded");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["user"], "alice");
    assert_eq!(invoice["amount_msat"], 42_000);
    assert_eq!(invoice["comment"], "gm from BOLT12");
    assert!(
        app.eventually(10, || async {
            receiver.received().iter().any(|r| r.body.contains(&hash))
        })
        .await
    );
    // The user goes: the offer is disabled at the node and the name denied.
    app.admin(reqwest::Method::DELETE, "/users/alice", None)
        .await;
    assert!(
        app.eventually(10, || async {
            cln.offers()
                .iter()
                .any(|(id, active)| *id == offer_id && !active)
        })
        .await,
        "the offer is disabled"
    );
}

#[tokio::test]
async fn offers_a_backend_garbles_are_refused_before_publishing() {
    for fault in ["garbage", "not an offer", "another node", "another address"] {
        let cln = FakeCln::start(RUNE);
        match fault {
            "garbage" => cln.faults.set(Fault::Garbage),
            "not an offer" => cln.answer_offers_with(Some("lno1qqqqthisisnotanoffer")),
            "another node" => cln.faults.set(Fault::ForeignSigner),
            _ => cln.faults.set(Fault::WrongDescription),
        }
        let app = rayo_on_cln(&cln).await;
        app.add_user("alice", json!({})).await;
        let printed: Value = app
            .admin(reqwest::Method::GET, "/bip353/records", None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(printed["records"], json!([]), "{fault}: {printed}");
        let why = printed["lnurl_only"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["user"] == "alice")
            .unwrap_or_else(|| panic!("{fault}: {printed}"))["reason"]
            .as_str()
            .unwrap()
            .to_owned();
        println!("{fault}: {why}");
        if fault != "garbage" {
            assert!(why.contains("refused"), "{fault}: {why}");
        }
        let out = dig(app.dns.unwrap(), &[&name_of("alice"), "TXT", "+norec"]).await;
        assert!(out.contains("NXDOMAIN"), "{out}");
        // Once the node answers well, the next pass publishes the offer.
        cln.faults.set(Fault::None);
        cln.answer_offers_with(None);
        dns::wait_for_name(&app, "alice").await;
    }
}

#[tokio::test]
async fn addresses_on_backends_without_offers_stay_lnurl_only_and_say_why() {
    let phoenixd = crate::support::fake_phoenixd::FakePhoenixd::start("pw");
    let url = phoenixd.url.clone();
    let app = spawn_app_with(None, move |s| {
        serving_dns(s);
        s.backend.kind = rayo::config::BackendKind::Phoenixd;
        s.backend.phoenixd_url = url.parse().unwrap();
        s.backend.phoenixd_password = Some(rayo::domain::Secret::new("pw"));
        s.backend.network = Some(rayo::config::Network::Bitcoin);
    })
    .await;
    app.add_user("alice", json!({})).await;
    let printed: Value = app
        .admin(reqwest::Method::GET, "/bip353/records", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(printed["records"], json!([]));
    let reasons = printed["lnurl_only"].to_string();
    assert!(reasons.contains("node-wide offer"), "{reasons}");
    // The LNURL address works as ever.
    assert!(app.callback("alice", "amount=1000").await["pr"].is_string());
}

/// A person signed in to `app` with a Lightning wallet (LNURL-auth, tests/nostr-tools): their
/// session cookie's value. The wallet is handed the login URL on loopback, as the test's
/// domain resolves nowhere else.
async fn signed_in(app: &TestApp, name: &str) -> String {
    use crate::accounts::{invite_token, set_cookie, wallet_join_code, wallet_scans};
    let token = invite_token(app, json!({})).await;
    let (waiting, code) = wallet_join_code(&app.address, &token, name).await;
    let lnurl = code.trim_start_matches("lightning:").to_lowercase();
    let (_, data) = bech32::decode(&lnurl).unwrap();
    let url = String::from_utf8(data)
        .unwrap()
        .replace(&format!("{HOST}:"), "127.0.0.1:");
    assert_eq!(
        wallet_scans("0f0e0d0c0b0a09080706050403020100", &url).await,
        json!({"status": "OK"})
    );
    let signed_in = crate::accounts::no_redirects()
        .post(format!("{}/login/lnurl", app.address))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", format!("rayo_k1={waiting}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    set_cookie(&signed_in, "rayo_session").expect("a session")
}

#[tokio::test]
async fn the_pay_page_and_the_account_page_show_the_name_and_its_offer() {
    let Some(tools) = crate::pages::browser_tools() else {
        return;
    };
    let app = rayo_serving_names().await;
    let session = signed_in(&app, "alice").await;
    let uri = dns::wait_for_name(&app, "alice").await;
    let account = crate::accounts::get_as(
        &format!("rayo_session={session}"),
        format!("{}/account", app.address),
    )
    .await;
    assert_eq!(account.status(), 200);
    assert!(account.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-store"));
    assert!(account
        .text()
        .await
        .unwrap()
        .contains(&format!("₿alice@{HOST}")));

    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let base = app.address.replace("127.0.0.1", HOST);
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&tools)
        .arg("bip353.mjs")
        .args([&base, &session])
        .arg(&artifacts)
        .arg("alice");
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    println!("{seen:#}");
    assert_eq!(seen["payPageClosed"], true, "folded until asked for");
    assert_eq!(seen["payPageName"], format!("₿alice@{HOST}"));
    assert_eq!(
        seen["payPageQr"],
        uri.as_str(),
        "the QR code is the record's URI"
    );
    assert_eq!(seen["payPageLink"], uri.as_str());
    assert_eq!(seen["accountName"], format!("₿alice@{HOST}"));
    assert_eq!(seen["accountQr"], uri.as_str());
    assert!(
        seen["payPageWidth"].as_u64().unwrap() <= 360,
        "no sideways scrolling"
    );
    assert!(
        seen["accountWidth"].as_u64().unwrap() <= 360,
        "no sideways scrolling"
    );
    assert_eq!(seen["consoleErrors"], json!([]), "nothing the CSP blocked");
    // The dense offer code is an image of its own, loaded when shown: the page stays light.
    assert!(
        seen["payPageBytes"].as_u64().unwrap() < 20_000,
        "{}",
        seen["payPageBytes"]
    );
    let qr = app.get("/@alice/offer.svg").await;
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().starts_with("<svg"));
    assert_eq!(app.get("/@nobody/offer.svg").await.status(), 404);
}

#[tokio::test]
async fn moving_to_another_backend_makes_a_new_offer_and_to_one_without_offers_drops_it() {
    if !dns::have_bind_tools() {
        return;
    }
    let cln = FakeCln::start(RUNE);
    let phoenixd = crate::support::fake_phoenixd::FakePhoenixd::start("pw");
    let (cln_url, phoenixd_url) = (cln.url.clone(), phoenixd.url.clone());
    let app = spawn_app_with(None, move |s| {
        serving_dns(s);
        s.named_backends = vec![
            (
                "node".parse().unwrap(),
                rayo::config::BackendSettings {
                    kind: rayo::config::BackendKind::Cln,
                    cln_url: Some(cln_url.parse().unwrap()),
                    cln_rune: Some(rayo::domain::Secret::new(RUNE)),
                    network: Some(rayo::config::Network::Regtest),
                    ..rayo::config::BackendSettings::default()
                },
            ),
            (
                "phone".parse().unwrap(),
                rayo::config::BackendSettings {
                    kind: rayo::config::BackendKind::Phoenixd,
                    phoenixd_url: phoenixd_url.parse().unwrap(),
                    phoenixd_password: Some(rayo::domain::Secret::new("pw")),
                    network: Some(rayo::config::Network::Regtest),
                    ..rayo::config::BackendSettings::default()
                },
            ),
        ];
    })
    .await;
    app.add_user("alice", json!({})).await;
    let on_dev = dns::wait_for_name(&app, "alice").await;

    let moved = app
        .admin(
            reqwest::Method::PATCH,
            "/users/alice",
            Some(json!({"backend": "node"})),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let on_cln = crate::support::poll_until(15, || async {
        let uri = dns::wait_for_name(&app, "alice").await;
        (uri != on_dev).then_some(uri)
    })
    .await
    .expect("a new offer, from the node the user moved to");
    assert_eq!(
        dns::boltz_decode(offer_of(&on_cln)).await["signing_pubkey"],
        fake_node::node_id()
    );

    let moved = app
        .admin(
            reqwest::Method::PATCH,
            "/users/alice",
            Some(json!({"backend": "phone"})),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let server = app.dns.unwrap();
    assert!(
        app.eventually(15, || async {
            dig(server, &[&name_of("alice"), "TXT", "+norec"])
                .await
                .contains("NXDOMAIN")
        })
        .await,
        "on phoenixd the address is LNURL-only again"
    );
    assert!(
        cln.offers().iter().all(|(_, active)| !active),
        "the node's offer is disabled"
    );
    let shown: Value = app
        .admin(reqwest::Method::GET, "/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        shown["lnurl_only"]
            .as_str()
            .unwrap()
            .contains("node-wide offer"),
        "{shown}"
    );
}
