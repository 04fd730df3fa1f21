//! An in-process LND REST API over TLS with a self-signed CA:TRUE certificate, like LND's own
//! `tls.cert`. It checks the macaroon header, speaks proto JSON (int64 as strings, bytes as
//! base64), and answers errors as `{"code", "message"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use lightning_invoice::Currency;
use serde_json::{json, Value};

use super::fake_node::{self, mint, Description, Faults};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Invoice {
    bolt11: String,
    preimage: [u8; 32],
    value_msat: u64,
    settle_date: Option<u64>,
    add_index: u64,
    settle_index: u64,
}

struct State {
    faults: Faults,
    macaroon_hex: String,
    invoices: HashMap<[u8; 32], Invoice>,
    /// Settled invoices in settle order: `settled[i]` has settle_index `i + 1`.
    settled: Vec<[u8; 32]>,
    /// Bumped on every settlement (streams wake) and every `drop_streams` (streams end).
    changes: tokio::sync::watch::Sender<(usize, u64)>,
    /// The `settle_index` each subscription asked to resume from.
    pub subscriptions: Vec<Option<u64>>,
}

pub struct FakeLnd {
    pub url: String,
    /// The PEM of the certificate it serves: what an operator copies from `~/.lnd/tls.cert`.
    pub tls_cert_pem: String,
    state: Arc<Mutex<State>>,
    pub faults: Faults,
}

/// A self-signed CA:TRUE certificate for localhost, like LND makes.
pub fn lnd_style_certificate() -> (String, Vec<u8>, Vec<u8>) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

/// A TLS server configuration with a fresh self-signed certificate, and that certificate's PEM.
pub fn self_signed_tls() -> (String, rustls::ServerConfig) {
    let (pem, cert_der, key_der) = lnd_style_certificate();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls_pki_types::CertificateDer::from(cert_der)],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .unwrap();
    (pem, tls)
}

impl FakeLnd {
    pub fn start(macaroon_hex: &str) -> Self {
        let (pem, tls) = self_signed_tls();
        let faults = Faults::new();
        let state = Arc::new(Mutex::new(State {
            macaroon_hex: macaroon_hex.into(),
            invoices: HashMap::new(),
            faults: faults.clone(),
            settled: Vec::new(),
            changes: tokio::sync::watch::channel((0, 0)).0,
            subscriptions: Vec::new(),
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/v1/invoices", web::post().to(add_invoice))
                    .route("/v2/invoices/lookup", web::get().to(lookup))
                    .route("/v1/invoices/subscribe", web::get().to(subscribe))
                    .route("/v1/getinfo", web::get().to(getinfo));
            },
            faults.clone(),
            Some(tls),
        );
        Self {
            url,
            tls_cert_pem: pem,
            state,
            faults,
        }
    }

    /// Marks the invoice paid (as a payer's HTLC arriving would) and tells open streams.
    pub fn settle(&self, payment_hash_hex: &str) {
        let hash: [u8; 32] = hex::decode(payment_hash_hex).unwrap().try_into().unwrap();
        let mut state = self.state.lock().unwrap();
        let settle_index = state.settled.len() as u64 + 1;
        let invoice = state
            .invoices
            .get_mut(&hash)
            .expect("the fake made this invoice");
        invoice.settle_date = Some(fake_node::now_secs());
        invoice.settle_index = settle_index;
        state.settled.push(hash);
        state.changes.send_modify(|(settled, _)| *settled += 1);
    }

    /// Ends every open subscription, as a restarting node or a flaky proxy would.
    pub fn drop_streams(&self) {
        let state = self.state.lock().unwrap();
        state
            .changes
            .send_modify(|(_, generation)| *generation += 1);
    }

    /// The `settle_index` each subscription resumed from, in order.
    pub fn subscriptions(&self) -> Vec<Option<u64>> {
        self.state.lock().unwrap().subscriptions.clone()
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn lnd_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"code": code, "message": message, "details": []}))
}

/// LND's words when the macaroon is missing or wrong (HTTP 500, code 2).
fn macaroon_refusal(req: &HttpRequest, state: &State) -> Option<&'static str> {
    match req
        .headers()
        .get("Grpc-Metadata-macaroon")
        .and_then(|v| v.to_str().ok())
    {
        None => Some("expected 1 macaroon, got 0"),
        Some(m) if m == state.macaroon_hex => None,
        Some(_) => Some("verification failed: signature mismatch after caveat verification"),
    }
}

async fn add_invoice(req: HttpRequest, state: Shared, body: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if let Some(why) = macaroon_refusal(&req, &state) {
        return lnd_error(500, 2, why);
    }
    let Some(value_msat) = body["value_msat"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return lnd_error(400, 3, "value_msat must be an int64 string");
    };
    let expiry = body["expiry"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(86_400);
    let description = match body["description_hash"].as_str() {
        Some(h) => match B64
            .decode(h)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            Some(hash) => Description::Hash(hash),
            None => return lnd_error(400, 3, "invalid description_hash"),
        },
        None => Description::Memo(body["memo"].as_str().unwrap_or("")),
    };
    let minted = mint(
        &state.faults,
        Currency::Bitcoin,
        value_msat,
        description,
        Duration::from_secs(expiry),
    );
    let hash: [u8; 32] = hex::decode(&minted.payment_hash)
        .unwrap()
        .try_into()
        .unwrap();
    let add_index = state.invoices.len() as u64 + 1;
    state.invoices.insert(
        hash,
        Invoice {
            bolt11: minted.bolt11.clone(),
            preimage: minted.preimage,
            value_msat,
            settle_date: None,
            add_index,
            settle_index: 0,
        },
    );
    HttpResponse::Ok().json(json!({
        "r_hash": B64.encode(hash),
        "payment_request": minted.bolt11,
        "add_index": add_index.to_string(),
        "payment_addr": B64.encode([0u8; 32]),
    }))
}

async fn lookup(
    req: HttpRequest,
    state: Shared,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let state = state.lock().unwrap();
    if let Some(why) = macaroon_refusal(&req, &state) {
        return lnd_error(500, 2, why);
    }
    let hash = query
        .get("payment_hash")
        .and_then(|h| base64::engine::general_purpose::URL_SAFE.decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    let Some(invoice) = hash.and_then(|h| state.invoices.get(&h)) else {
        return lnd_error(404, 5, "unable to locate invoice");
    };
    HttpResponse::Ok().json(invoice_json(hash.unwrap(), invoice))
}

/// An Invoice message as LND's REST gateway renders it.
fn invoice_json(hash: [u8; 32], invoice: &Invoice) -> Value {
    let settled = invoice.settle_date.is_some();
    json!({
        "r_hash": B64.encode(hash),
        "payment_request": invoice.bolt11,
        "value_msat": invoice.value_msat.to_string(),
        "state": if settled { "SETTLED" } else { "OPEN" },
        "r_preimage": B64.encode(invoice.preimage),
        "settle_date": invoice.settle_date.unwrap_or(0).to_string(),
        "amt_paid_msat": if settled { invoice.value_msat } else { 0 }.to_string(),
        "add_index": invoice.add_index.to_string(),
        "settle_index": invoice.settle_index.to_string(),
    })
}

/// `GET /v1/invoices/subscribe?settle_index=N`: replays settlements after N, then follows new
/// ones, one `{"result": Invoice}` per line, until the fake drops its streams.
async fn subscribe(
    req: HttpRequest,
    state: Shared,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let changes = {
        let mut locked = state.lock().unwrap();
        if let Some(why) = macaroon_refusal(&req, &locked) {
            return lnd_error(500, 2, why);
        }
        let resume = query.get("settle_index").and_then(|i| i.parse().ok());
        locked.subscriptions.push(resume);
        locked.changes.subscribe()
    };
    let generation = changes.borrow().1;
    let sent = query
        .get("settle_index")
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or_else(|| state.lock().unwrap().settled.len());
    let state = state.into_inner();
    let lines = futures_util::stream::unfold(
        (state, changes, sent),
        move |(state, mut changes, sent)| async move {
            loop {
                let next = {
                    let locked = state.lock().unwrap();
                    locked.settled.get(sent).map(|hash| {
                        let line = json!({"result": invoice_json(*hash, &locked.invoices[hash])});
                        format!("{line}\n")
                    })
                };
                if let Some(line) = next {
                    let bytes = web::Bytes::from(line);
                    return Some((Ok::<_, actix_web::Error>(bytes), (state, changes, sent + 1)));
                }
                if changes.changed().await.is_err() || changes.borrow().1 != generation {
                    return None;
                }
            }
        },
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(lines)
}

async fn getinfo(req: HttpRequest, state: Shared) -> HttpResponse {
    if let Some(why) = macaroon_refusal(&req, &state.lock().unwrap()) {
        return lnd_error(500, 2, why);
    }
    HttpResponse::Ok().json(json!({"identity_pubkey": fake_node::node_id(), "alias": "fake-lnd", "synced_to_chain": true}))
}
