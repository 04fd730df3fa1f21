//! An in-process clnrest: `POST /v1/invoice` and `/v1/listinvoices` with the `rune` header,
//! 201 on success, `{"code", "message"}` errors, unique labels (code 900). Like CLN it hashes
//! the `description` itself when `deschashonly` is set, so the invoice commits to exactly the
//! string rayo sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::Currency;
use serde_json::{json, Value};

use super::fake_node::{self, mint, Description, Faults};

struct Invoice {
    label: String,
    bolt11: String,
    preimage: [u8; 32],
    amount_msat: u64,
    expires_at: u64,
    paid_at: Option<u64>,
}

struct State {
    faults: Faults,
    rune: String,
    invoices: HashMap<String, Invoice>,
}

#[derive(Clone)]
pub struct FakeCln {
    pub url: String,
    state: Arc<Mutex<State>>,
    pub faults: Faults,
}

impl FakeCln {
    pub fn start(rune: &str) -> Self {
        let faults = Faults::new();
        let state = Arc::new(Mutex::new(State {
            faults: faults.clone(),
            rune: rune.into(),
            invoices: HashMap::new(),
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/v1/invoice", web::post().to(invoice))
                    .route("/v1/listinvoices", web::post().to(listinvoices))
                    .route("/v1/getinfo", web::post().to(getinfo));
            },
            faults.clone(),
            None,
        );
        Self { url, state, faults }
    }

    pub fn settle(&self, payment_hash: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .invoices
            .get_mut(payment_hash)
            .expect("the fake made this invoice")
            .paid_at = Some(fake_node::now_secs());
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn cln_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"code": code, "message": message}))
}

fn authorized(req: &HttpRequest, rune: &str) -> bool {
    req.headers().get("rune").and_then(|v| v.to_str().ok()) == Some(rune)
}

async fn invoice(req: HttpRequest, state: Shared, params: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if !authorized(&req, &state.rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    let (Some(amount_msat), Some(label), Some(description)) = (
        params["amount_msat"].as_u64(),
        params["label"].as_str(),
        params["description"].as_str(),
    ) else {
        return cln_error(500, -32602, "missing required parameter");
    };
    if state.invoices.values().any(|i| i.label == label) {
        return cln_error(500, 900, &format!("Duplicate label '{label}'"));
    }
    let expiry = params["expiry"].as_u64().unwrap_or(604_800);
    let committed = if params["deschashonly"].as_bool() == Some(true) {
        Description::Hash(sha256::Hash::hash(description.as_bytes()).to_byte_array())
    } else {
        Description::Memo(description)
    };
    let minted = mint(
        &state.faults,
        Currency::Regtest,
        amount_msat,
        committed,
        Duration::from_secs(expiry),
    );
    let expires_at = fake_node::now_secs() + expiry;
    let answer = json!({"bolt11": minted.bolt11, "payment_hash": minted.payment_hash, "payment_secret": "00", "expires_at": expires_at});
    state.invoices.insert(
        minted.payment_hash,
        Invoice {
            label: label.into(),
            bolt11: minted.bolt11,
            preimage: minted.preimage,
            amount_msat,
            expires_at,
            paid_at: None,
        },
    );
    HttpResponse::Created().json(answer)
}

async fn listinvoices(req: HttpRequest, state: Shared, params: web::Json<Value>) -> HttpResponse {
    let state = state.lock().unwrap();
    if !authorized(&req, &state.rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    let wanted = params["payment_hash"].as_str().unwrap_or_default();
    let invoices: Vec<Value> = state
        .invoices
        .iter()
        .filter(|(hash, _)| hash.as_str() == wanted)
        .map(|(hash, i)| {
            let status = match i.paid_at {
                Some(_) => "paid",
                None if i.expires_at <= fake_node::now_secs() => "expired",
                None => "unpaid",
            };
            let mut listed = json!({"label": i.label, "bolt11": i.bolt11, "payment_hash": hash, "status": status, "expires_at": i.expires_at, "amount_msat": i.amount_msat});
            if let Some(paid_at) = i.paid_at {
                listed["paid_at"] = json!(paid_at);
                listed["amount_received_msat"] = json!(i.amount_msat);
                listed["payment_preimage"] = json!(hex::encode(i.preimage));
            }
            listed
        })
        .collect();
    HttpResponse::Created().json(json!({ "invoices": invoices }))
}

async fn getinfo(req: HttpRequest, state: Shared) -> HttpResponse {
    if !authorized(&req, &state.lock().unwrap().rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    HttpResponse::Created()
        .json(json!({"id": fake_node::node_id(), "alias": "fake-cln", "network": "regtest"}))
}
