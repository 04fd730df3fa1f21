//! An in-process clnrest: `POST /v1/invoice` and `/v1/listinvoices` with the `rune` header,
//! 201 on success, `{"code", "message"}` errors, unique labels (code 900). Like CLN it hashes
//! the `description` itself when `deschashonly` is set, so the invoice commits to exactly the
//! string rayo sent. `waitanyinvoice` long-polls for the next paid invoice after
//! `lastpay_index`, answering error 904 when its `timeout` runs out.

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
    pay_index: Option<u64>,
}

struct State {
    faults: Faults,
    rune: String,
    invoices: HashMap<String, Invoice>,
    /// Payment hashes in the order they were paid: `paid[i]` has pay_index `i + 1`.
    paid: Vec<String>,
    /// Bumped on every payment (waiters wake) and every `drop_waits` (waiters fail).
    changes: tokio::sync::watch::Sender<(usize, u64)>,
    /// The `lastpay_index` each `waitanyinvoice` call asked for.
    waits: Vec<Option<u64>>,
}

#[derive(Clone)]
pub struct FakeCln {
    pub url: String,
    state: Arc<Mutex<State>>,
    pub faults: Faults,
}

impl FakeCln {
    pub fn start(rune: &str) -> Self {
        Self::serve(rune, None)
    }

    /// Over TLS with a certificate of its own, like clnrest; returns its PEM too.
    pub fn start_tls(rune: &str) -> (Self, String) {
        let (pem, tls) = super::fake_lnd::self_signed_tls();
        (Self::serve(rune, Some(tls)), pem)
    }

    fn serve(rune: &str, tls: Option<rustls::ServerConfig>) -> Self {
        let faults = Faults::new();
        let state = Arc::new(Mutex::new(State {
            faults: faults.clone(),
            rune: rune.into(),
            invoices: HashMap::new(),
            paid: Vec::new(),
            changes: tokio::sync::watch::channel((0, 0)).0,
            waits: Vec::new(),
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/v1/invoice", web::post().to(invoice))
                    .route("/v1/listinvoices", web::post().to(listinvoices))
                    .route("/v1/waitanyinvoice", web::post().to(waitanyinvoice))
                    .route("/v1/getinfo", web::post().to(getinfo));
            },
            faults.clone(),
            tls,
        );
        Self { url, state, faults }
    }

    pub fn settle(&self, payment_hash: &str) {
        let mut state = self.state.lock().unwrap();
        let pay_index = state.paid.len() as u64 + 1;
        let invoice = state
            .invoices
            .get_mut(payment_hash)
            .expect("the fake made this invoice");
        invoice.paid_at = Some(fake_node::now_secs());
        invoice.pay_index = Some(pay_index);
        state.paid.push(payment_hash.to_owned());
        state.changes.send_modify(|(paid, _)| *paid += 1);
    }

    /// Fails every `waitanyinvoice` in progress, as a restarting clnrest would.
    pub fn drop_waits(&self) {
        let state = self.state.lock().unwrap();
        state
            .changes
            .send_modify(|(_, generation)| *generation += 1);
    }

    /// The `lastpay_index` of each `waitanyinvoice` call so far.
    pub fn waits(&self) -> Vec<Option<u64>> {
        self.state.lock().unwrap().waits.clone()
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
            pay_index: None,
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
        .map(|(hash, i)| listing(hash, i))
        .collect();
    HttpResponse::Created().json(json!({ "invoices": invoices }))
}

/// An invoice as `listinvoices` and `waitanyinvoice` show it.
fn listing(hash: &str, i: &Invoice) -> Value {
    let status = match i.paid_at {
        Some(_) => "paid",
        None if i.expires_at <= fake_node::now_secs() => "expired",
        None => "unpaid",
    };
    let mut listed = json!({"label": i.label, "bolt11": i.bolt11, "payment_hash": hash, "status": status, "expires_at": i.expires_at, "amount_msat": i.amount_msat});
    if let Some(paid_at) = i.paid_at {
        listed["paid_at"] = json!(paid_at);
        listed["pay_index"] = json!(i.pay_index);
        listed["amount_received_msat"] = json!(i.amount_msat);
        listed["payment_preimage"] = json!(hex::encode(i.preimage));
    }
    listed
}

async fn waitanyinvoice(req: HttpRequest, state: Shared, params: web::Json<Value>) -> HttpResponse {
    let (mut changes, next, timeout) = {
        let mut locked = state.lock().unwrap();
        if !authorized(&req, &locked.rune) {
            return cln_error(401, 1501, "Not authorized: Not a valid rune");
        }
        let lastpay_index = params["lastpay_index"].as_u64();
        locked.waits.push(lastpay_index);
        // Without an index, CLN waits for the next payment from now on.
        let next = lastpay_index.map_or(locked.paid.len(), |i| i as usize);
        let timeout = params["timeout"].as_u64().unwrap_or(u64::MAX / 4);
        (locked.changes.subscribe(), next, timeout)
    };
    let generation = changes.borrow().1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        {
            let locked = state.lock().unwrap();
            if let Some(hash) = locked.paid.get(next) {
                return HttpResponse::Created().json(listing(hash, &locked.invoices[hash]));
            }
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Err(_) => return cln_error(500, 904, "Timed out"),
            Ok(Err(_)) => return HttpResponse::InternalServerError().body("gone"),
            Ok(Ok(())) if changes.borrow().1 != generation => {
                return HttpResponse::BadGateway().body("connection reset by proxy")
            }
            Ok(Ok(())) => {}
        }
    }
}

async fn getinfo(req: HttpRequest, state: Shared) -> HttpResponse {
    if !authorized(&req, &state.lock().unwrap().rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    HttpResponse::Created()
        .json(json!({"id": fake_node::node_id(), "alias": "fake-cln", "network": "regtest"}))
}
