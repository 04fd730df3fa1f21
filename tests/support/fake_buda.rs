//! An in-process Buda.com API: checks the key, a strictly growing nonce and the HMAC-SHA384
//! signature over the exact path and body bytes, answers in Buda's shapes (201 with
//! `{"invoice": ...}`, paginated deposits, `{"message", "code"}` errors), and signs real
//! memo invoices. Tests settle invoices by adding a confirmed deposit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bitcoin_hashes::{hmac, sha384, Hash, HashEngine};
use lightning_invoice::Currency;
use serde_json::{json, Value};

use super::fake_node::{self, mint, Description, Faults};

struct State {
    faults: Faults,
    key: String,
    secret: String,
    last_nonce: u64,
    next_id: u64,
    /// Newest first, as Buda lists them.
    deposits: Vec<Value>,
    invoices: Vec<(String, u64)>,
}

#[derive(Clone)]
pub struct FakeBuda {
    pub url: String,
    state: Arc<Mutex<State>>,
    pub faults: Faults,
}

impl FakeBuda {
    pub fn start(key: &str, secret: &str) -> Self {
        let faults = Faults::new();
        let state = Arc::new(Mutex::new(State {
            faults: faults.clone(),
            key: key.into(),
            secret: secret.into(),
            last_nonce: 0,
            next_id: 10_000,
            deposits: Vec::new(),
            invoices: Vec::new(),
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/api/v2/lightning_network_invoices", web::post().to(create))
                    .route("/api/v2/currencies/btc/deposits", web::get().to(deposits));
            },
            faults.clone(),
            None,
        );
        Self { url, state, faults }
    }

    /// The last nonce it accepted.
    pub fn last_nonce(&self) -> u64 {
        self.state.lock().unwrap().last_nonce
    }

    /// As if the invoice were paid: a confirmed deposit appears, followed by `newer` others, so
    /// that it can end up on a later page of the listing.
    pub fn settle(&self, bolt11: &str, newer: usize) {
        let mut state = self.state.lock().unwrap();
        let sats = state
            .invoices
            .iter()
            .find(|(b, _)| b == bolt11)
            .expect("the fake made this invoice")
            .1;
        state.deposits.insert(0, deposit(1, bolt11, sats));
        for n in 0..newer {
            let other = mint(
                &Faults::new(),
                Currency::Bitcoin,
                1000,
                Description::Memo("other"),
                Duration::from_secs(60),
            );
            state
                .deposits
                .insert(0, deposit(2 + n as u64, &other.bolt11, 1));
        }
    }
}

fn deposit(id: u64, bolt11: &str, sats: u64) -> Value {
    json!({
        "id": id,
        "state": "confirmed",
        "currency": "BTC",
        "amount": [format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000), "BTC"],
        "created_at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        "deposit_data": {"type": "lightning_network_deposit_data", "invoice": {"encoded_payment_request": bolt11}},
    })
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn buda_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"message": message, "code": code}))
}

/// Buda's checks, in its order: key, nonce, signature.
fn authenticate(req: &HttpRequest, body: &[u8], state: &mut State) -> Result<(), &'static str> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("X-SBTC-APIKEY").as_deref() != Some(state.key.as_str()) {
        return Err("Invalid API key");
    }
    let nonce: u64 = header("X-SBTC-NONCE")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if nonce <= state.last_nonce {
        return Err("Invalid nonce");
    }
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_owned(),
    };
    let message = if body.is_empty() {
        format!("{} {path} {nonce}", req.method())
    } else {
        format!(
            "{} {path} {} {nonce}",
            req.method(),
            base64::engine::general_purpose::STANDARD.encode(body)
        )
    };
    let mut engine = hmac::HmacEngine::<sha384::Hash>::new(state.secret.as_bytes());
    engine.input(message.as_bytes());
    let expected = hex::encode(hmac::Hmac::<sha384::Hash>::from_engine(engine).to_byte_array());
    if header("X-SBTC-SIGNATURE").as_deref() != Some(expected.as_str()) {
        return Err("Invalid signature");
    }
    state.last_nonce = nonce;
    Ok(())
}

async fn create(req: HttpRequest, state: Shared, body: Bytes) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if let Err(why) = authenticate(&req, &body, &mut state) {
        return buda_error(401, "not_authorized", why);
    }
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return buda_error(422, "invalid_record", "Invalid JSON");
    };
    let (Some(sats), Some(memo)) = (params["amount_satoshis"].as_u64(), params["memo"].as_str())
    else {
        return buda_error(
            422,
            "invalid_record",
            "amount_satoshis and memo are required",
        );
    };
    let expiry = params["expiry_seconds"].as_u64().unwrap_or(3600);
    let minted = mint(
        &state.faults,
        Currency::Bitcoin,
        sats * 1000,
        Description::Memo(memo),
        Duration::from_secs(expiry),
    );
    state.next_id += 1;
    let id = state.next_id;
    state.invoices.push((minted.bolt11.clone(), sats));
    HttpResponse::Created().json(
        json!({"invoice": {"id": id, "currency": "BTC", "encoded_payment_request": minted.bolt11}}),
    )
}

async fn deposits(
    req: HttpRequest,
    state: Shared,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if let Err(why) = authenticate(&req, &[], &mut state) {
        return buda_error(401, "not_authorized", why);
    }
    let per: usize = query.get("per").and_then(|p| p.parse().ok()).unwrap_or(25);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let total_pages = state.deposits.len().div_ceil(per).max(1);
    let shown: Vec<Value> = state
        .deposits
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .cloned()
        .collect();
    HttpResponse::Ok().json(json!({
        "deposits": shown,
        "meta": {"current_page": page, "total_count": state.deposits.len(), "total_pages": total_pages},
    }))
}
