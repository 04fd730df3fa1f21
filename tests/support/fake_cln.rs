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

use secp256k1::{SecretKey, SECP256K1};

use super::fake_node::{self, mint, Description, Fault, Faults};

struct Invoice {
    label: String,
    bolt11: String,
    preimage: [u8; 32],
    amount_msat: u64,
    expires_at: u64,
    paid_at: Option<u64>,
    pay_index: Option<u64>,
    /// For an offer's invoice: the offer's id and the payer's note.
    offer: Option<(String, Option<String>)>,
}

/// An offer `offer` made, by its id.
struct MadeOffer {
    bolt12: String,
    active: bool,
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
    offers: HashMap<String, MadeOffer>,
    /// What `offer` answers as `bolt12` instead of a real offer, when set.
    offer_text: Option<String>,
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
            offers: HashMap::new(),
            offer_text: None,
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/v1/invoice", web::post().to(invoice))
                    .route("/v1/listinvoices", web::post().to(listinvoices))
                    .route("/v1/waitanyinvoice", web::post().to(waitanyinvoice))
                    .route("/v1/getinfo", web::post().to(getinfo))
                    .route("/v1/offer", web::post().to(offer))
                    .route("/v1/disableoffer", web::post().to(disableoffer));
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

    /// A payer pays `amount_msat` to the offer `offer_id` with `note`: CLN answered their
    /// invoice request with an invoice, which is now paid. Returns its payment hash.
    pub fn pay_offer(&self, offer_id: &str, amount_msat: u64, note: Option<&str>) -> String {
        let mut state = self.state.lock().unwrap();
        assert!(
            state.offers.get(offer_id).is_some_and(|o| o.active),
            "the offer is not active"
        );
        let preimage: [u8; 32] = rand_bytes();
        let hash = hex::encode(sha256::Hash::hash(&preimage).to_byte_array());
        let pay_index = state.paid.len() as u64 + 1;
        state.invoices.insert(
            hash.clone(),
            Invoice {
                label: format!("offer-{pay_index}"),
                bolt11: String::new(),
                preimage,
                amount_msat,
                expires_at: fake_node::now_secs() + 7200,
                paid_at: Some(fake_node::now_secs()),
                pay_index: Some(pay_index),
                offer: Some((offer_id.to_owned(), note.map(str::to_owned))),
            },
        );
        state.paid.push(hash.clone());
        state.changes.send_modify(|(paid, _)| *paid += 1);
        hash
    }

    /// Makes `offer` answer `text` as the offer (well-formed JSON around garbage), or a real
    /// offer again with `None`.
    pub fn answer_offers_with(&self, text: Option<&str>) {
        self.state.lock().unwrap().offer_text = text.map(str::to_owned);
    }

    /// The offers made, by id, and whether each is active.
    pub fn offers(&self) -> Vec<(String, bool)> {
        let state = self.state.lock().unwrap();
        state
            .offers
            .iter()
            .map(|(id, o)| (id.clone(), o.active))
            .collect()
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
            offer: None,
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
    if let Some((offer_id, note)) = &i.offer {
        listed["local_offer_id"] = json!(offer_id);
        listed["bolt12"] = json!(format!("lni1fake{}", &hash[..16]));
        if let Some(note) = note {
            listed["invreq_payer_note"] = json!(note);
        }
        listed.as_object_mut().unwrap().remove("bolt11");
    }
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

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes
}

/// `offer`: a real BOLT12 offer (rust-lightning builds it) from the node's key, for any
/// amount; the same parameters give the same offer, as CLN answers `created: false`. Faults
/// make it answer what a broken node might.
async fn offer(req: HttpRequest, state: Shared, params: web::Json<Value>) -> HttpResponse {
    use lightning::offers::offer::OfferBuilder;
    let mut state = state.lock().unwrap();
    if !authorized(&req, &state.rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    let (Some("any"), Some(description)) =
        (params["amount"].as_str(), params["description"].as_str())
    else {
        return cln_error(500, -32602, "missing required parameter");
    };
    let issuer = params["issuer"].as_str().unwrap_or_default();
    let (signer, description) = match state.faults.get() {
        Fault::ForeignSigner => (
            SecretKey::from_slice(&[0x77; 32]).unwrap(),
            description.to_owned(),
        ),
        Fault::WrongDescription => (fake_node::node_key(), format!("{description} (not yours)")),
        _ => (fake_node::node_key(), description.to_owned()),
    };
    if let Some(text) = &state.offer_text {
        return HttpResponse::Created().json(json!({"offer_id": "00", "bolt12": text, "active": true, "single_use": false, "used": false, "created": true}));
    }
    let built = OfferBuilder::new(signer.public_key(SECP256K1))
        .description(description)
        .issuer(issuer.to_owned())
        .chain(lightning::bitcoin::Network::Regtest)
        .build()
        .unwrap();
    let id = hex::encode(built.id().0);
    let created = !state.offers.contains_key(&id);
    let made = state.offers.entry(id.clone()).or_insert(MadeOffer {
        bolt12: built.to_string(),
        active: true,
    });
    made.active = true;
    HttpResponse::Created().json(json!({"offer_id": id, "bolt12": made.bolt12, "active": true, "single_use": false, "used": false, "created": created}))
}

async fn disableoffer(req: HttpRequest, state: Shared, params: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if !authorized(&req, &state.rune) {
        return cln_error(401, 1501, "Not authorized: Not a valid rune");
    }
    let id = params["offer_id"].as_str().unwrap_or_default().to_owned();
    match state.offers.get_mut(&id) {
        Some(offer) => {
            offer.active = false;
            HttpResponse::Created().json(json!({"offer_id": id, "active": false, "single_use": false, "bolt12": offer.bolt12, "used": false}))
        }
        None => cln_error(500, 1000, "Unknown offer"),
    }
}
