//! `rayo bip353 check alice`: asks a DNS server for the name as a payer's wallet would, checks
//! the TXT record's signature against the zone's key (the key whose DS the parent holds),
//! decodes the offer and compares it with the offer the user's backend made.
//!
//! The chain above the zone (root, TLD, the domain's DS) is the resolver's business: when
//! asking a validating resolver, the report also says whether it set the AD bit.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY};
use hickory_proto::dnssec::Verifier;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

/// What a check found, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub server: String,
    pub steps: Vec<Step>,
    pub uri: Option<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

impl CheckReport {
    fn step(&mut self, what: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.steps.push(Step {
            what: what.to_owned(),
            ok,
            detail: detail.into(),
        });
        self.ok &= ok;
        ok
    }
}

/// What the record should hold: the zone's published keys and the stored offer.
pub struct Expectation {
    pub dnskeys: Vec<DNSKEY>,
    pub uri: Option<String>,
}

/// One question with DNSSEC records asked for, over UDP, and again over TCP if truncated.
pub async fn ask(server: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, String> {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    let bytes = message.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bind")?
    } else {
        "[::]:0".parse().map_err(|_| "bind")?
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send_to(&bytes, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    // One deadline for the answer, however many stray packets arrive meanwhile.
    let waited = tokio::time::timeout(TIMEOUT, async {
        loop {
            let (len, from) = socket
                .recv_from(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            if from != server {
                continue;
            }
            let Ok(answer) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if answer.metadata.id == message.metadata.id {
                return Ok::<Message, String>(answer);
            }
        }
    })
    .await;
    let answer =
        waited.map_err(|_| format!("{server} did not answer within {}s", TIMEOUT.as_secs()))??;
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    let mut tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(server))
        .await
        .map_err(|_| "TCP connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long")?;
    tcp.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tcp.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut len))
        .await
        .map_err(|_| "TCP answer timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Message::from_vec(&body).map_err(|e| e.to_string())
}

fn rand_id() -> u16 {
    let mut id = [0u8; 2];
    let _ = getrandom::getrandom(&mut id);
    u16::from_be_bytes(id)
}

/// The RRSIGs in `records` covering `rtype`.
fn signatures(records: &[Record], rtype: RecordType) -> Vec<&hickory_proto::dnssec::rdata::RRSIG> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig)
            }
            _ => None,
        })
        .collect()
}

/// Whether one of `keys` signed `rtype` in `records` at `name`, valid at `now`.
fn signed_by(
    records: &[Record],
    name: &Name,
    rtype: RecordType,
    keys: &[DNSKEY],
    now: u32,
) -> Result<u16, String> {
    let set: Vec<&Record> = records
        .iter()
        .filter(|r| r.record_type() == rtype)
        .collect();
    let sigs = signatures(records, rtype);
    if sigs.is_empty() {
        return Err(format!("no RRSIG covers the {rtype} records"));
    }
    let mut why = String::new();
    for sig in sigs {
        let input = sig.input();
        if input.sig_inception.get() > now || input.sig_expiration.get() < now {
            why = "the signature is not valid now".into();
            continue;
        }
        for key in keys {
            let Ok(tag) = key.calculate_key_tag() else {
                continue;
            };
            if tag != input.key_tag {
                continue;
            }
            match key.verify_rrsig(name, DNSClass::IN, sig, set.iter().copied()) {
                Ok(()) => return Ok(tag),
                Err(e) => why = format!("the signature by key {tag} does not verify: {e}"),
            }
        }
        if why.is_empty() {
            why = format!("signed by key {}, which is not the zone's", input.key_tag);
        }
    }
    Err(why)
}

/// Runs the check of `name` against `server`.
pub async fn check(
    name: &Name,
    server: SocketAddr,
    expected: &Expectation,
    now: u64,
) -> CheckReport {
    let mut report = CheckReport {
        name: name.to_string(),
        server: server.to_string(),
        steps: Vec::new(),
        uri: None,
        ok: true,
    };
    let now32 = u32::try_from(now).unwrap_or(u32::MAX);
    let answer = match ask(server, name, RecordType::TXT).await {
        Ok(answer) => answer,
        Err(e) => {
            report.step("ask", false, e);
            return report;
        }
    };
    if !report.step(
        "answer",
        answer.metadata.response_code == ResponseCode::NoError,
        format!(
            "{} with {} answer records",
            answer.metadata.response_code,
            answer.answers.len()
        ),
    ) {
        return report;
    }
    let uris: Vec<String> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .filter(|t| t.to_ascii_lowercase().starts_with("bitcoin:"))
        .collect();
    if !report.step(
        "one bitcoin: record",
        uris.len() == 1,
        format!("{} found", uris.len()),
    ) {
        return report;
    }
    let uri = uris[0].clone();
    report.uri = Some(uri.clone());
    report.step(
        "resolver's validation",
        true,
        if answer.metadata.authentic_data {
            "AD set: the resolver validated the chain"
        } else {
            "AD not set (an authoritative server never sets it; rayo checks the zone's key itself)"
        },
    );
    match signed_by(
        &answer.answers,
        name,
        RecordType::TXT,
        &expected.dnskeys,
        now32,
    ) {
        Ok(tag) => report.step(
            "signed by the zone's key",
            true,
            format!("key tag {tag}, algorithm 13"),
        ),
        Err(e) => report.step("signed by the zone's key", false, e),
    };
    let offer = uri
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| {
            pair.strip_prefix("lno=")
                .or_else(|| pair.strip_prefix("LNO="))
        })
        .unwrap_or_default();
    match offer.parse::<lightning::offers::offer::Offer>() {
        Ok(decoded) => report.step(
            "the offer decodes",
            true,
            format!(
                "description {:?}, issuer {:?}, node {}",
                decoded
                    .description()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                decoded.issuer().map(|d| d.to_string()).unwrap_or_default(),
                decoded
                    .issuer_signing_pubkey()
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "behind blinded paths".into())
            ),
        ),
        Err(e) => report.step("the offer decodes", false, format!("{e:?}")),
    };
    match &expected.uri {
        Some(want) => report.step(
            "it is the user's offer",
            *want == uri,
            if *want == uri {
                "the same offer the user's backend made".to_owned()
            } else {
                "the record holds another offer than the stored one (stale or tampered)".to_owned()
            },
        ),
        None => report.step(
            "it is the user's offer",
            false,
            "rayo has no offer for this user",
        ),
    };
    report
}
