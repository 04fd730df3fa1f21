//! An in-process phoenixd: its routes, Basic auth, form fields, JSON field names, plain-text
//! errors and 404 "Not found", with real signed BOLT11 invoices. Tests settle invoices on it and
//! make it misbehave.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use secp256k1::{SecretKey, SECP256K1};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    WrongAmount,
    ServerError,
    Garbage,
}

struct Invoice {
    preimage: [u8; 32],
    amount_sat: u64,
    bolt11: String,
    paid_at_ms: Option<u64>,
}

struct State {
    password: String,
    invoices: HashMap<String, Invoice>,
    fault: Fault,
}

#[derive(Clone)]
pub struct FakePhoenixd {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakePhoenixd {
    pub fn start(password: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            password: password.into(),
            invoices: HashMap::new(),
            fault: Fault::None,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/createinvoice", web::post().to(create))
                .route("/payments/incoming/{hash}", web::get().to(incoming))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, state }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// As if a payer paid the invoice in full.
    pub fn settle(&self, payment_hash: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let mut state = self.state.lock().unwrap();
        state
            .invoices
            .get_mut(payment_hash)
            .expect("the fake made this invoice")
            .paid_at_ms = Some(now);
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn authorized(req: &HttpRequest, password: &str) -> bool {
    let Some(value) = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    // phoenixd ignores the username.
    String::from_utf8_lossy(&decoded)
        .split_once(':')
        .is_some_and(|(_, p)| p == password)
}

async fn create(
    req: HttpRequest,
    state: Shared,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if !authorized(&req, &state.password) {
        return HttpResponse::Unauthorized().body(
            "Invalid authentication (use basic auth with the http password set in phoenix.conf)",
        );
    }
    match state.fault {
        Fault::ServerError => return HttpResponse::InternalServerError().body("internal error"),
        Fault::Garbage => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"amountSat\":")
        }
        _ => {}
    }
    let Some(amount_sat) = form.get("amountSat").and_then(|a| a.parse::<u64>().ok()) else {
        return HttpResponse::BadRequest().body("Missing or invalid parameter: amountSat");
    };
    let (hash, memo) = (form.get("descriptionHash"), form.get("description"));
    if hash.is_some() == memo.is_some() {
        return HttpResponse::BadRequest()
            .body("Must provide either a description or descriptionHash");
    }
    let expiry = form
        .get("expirySeconds")
        .and_then(|e| e.parse().ok())
        .unwrap_or(3600);
    let preimage = rayo::clock::random_bytes();
    let payment_hash = sha256::Hash::hash(&preimage);
    let minted_sat = if state.fault == Fault::WrongAmount {
        amount_sat + 1
    } else {
        amount_sat
    };
    let builder = InvoiceBuilder::new(Currency::Bitcoin)
        .amount_milli_satoshis(minted_sat * 1000)
        .payment_hash(payment_hash)
        .payment_secret(PaymentSecret(rayo::clock::random_bytes()))
        .duration_since_epoch(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
        .expiry_time(Duration::from_secs(expiry))
        .min_final_cltv_expiry_delta(144);
    let key = SecretKey::from_slice(&[0x51; 32]).unwrap();
    let sign = |m: &secp256k1::Message| SECP256K1.sign_ecdsa_recoverable(m, &key);
    let invoice = match (hash, memo) {
        (Some(h), _) => {
            let Some(bytes) = hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                return HttpResponse::BadRequest().body("Invalid parameter: descriptionHash");
            };
            builder
                .description_hash(sha256::Hash::from_byte_array(bytes))
                .build_signed(sign)
        }
        (None, Some(m)) => builder.description(m.clone()).build_signed(sign),
        (None, None) => unreachable!(),
    }
    .unwrap();
    let hash_hex = hex::encode(payment_hash.to_byte_array());
    let bolt11 = invoice.to_string();
    state.invoices.insert(
        hash_hex.clone(),
        Invoice {
            preimage,
            amount_sat,
            bolt11: bolt11.clone(),
            paid_at_ms: None,
        },
    );
    HttpResponse::Ok()
        .json(json!({"amountSat": amount_sat, "paymentHash": hash_hex, "serialized": bolt11}))
}

async fn incoming(req: HttpRequest, state: Shared, hash: web::Path<String>) -> HttpResponse {
    let state = state.lock().unwrap();
    if !authorized(&req, &state.password) {
        return HttpResponse::Unauthorized().body("Invalid authentication");
    }
    let Some(invoice) = state.invoices.get(hash.as_str()) else {
        return HttpResponse::NotFound().body("Not found");
    };
    HttpResponse::Ok().json(json!({
        "paymentHash": hash.as_str(),
        "preimage": hex::encode(invoice.preimage),
        "invoice": invoice.bolt11,
        "isPaid": invoice.paid_at_ms.is_some(),
        "receivedSat": if invoice.paid_at_ms.is_some() { invoice.amount_sat } else { 0 },
        "fees": 0,
        "completedAt": invoice.paid_at_ms,
        "createdAt": 0,
    }))
}
