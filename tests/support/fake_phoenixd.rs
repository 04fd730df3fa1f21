//! An in-process phoenixd: its routes, Basic auth, form fields, JSON field names, plain-text
//! errors and 404 "Not found", with real signed BOLT11 invoices. Tests settle invoices on it and
//! make it misbehave. Payments are pushed on `/websocket` and, when a webhook URL is set, as
//! webhooks signed with `X-Phoenix-Signature: hex(HMAC-SHA256(webhook secret, body))`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use lightning_invoice::Currency;
use serde_json::json;

use super::fake_node::{self, mint, Description, Faults};

struct Invoice {
    preimage: [u8; 32],
    amount_sat: u64,
    bolt11: String,
    paid_at_ms: Option<u64>,
}

struct State {
    password: String,
    invoices: HashMap<String, Invoice>,
    faults: Faults,
    /// What each open websocket is sent; `None` tells sockets to close.
    pushes: tokio::sync::broadcast::Sender<Option<String>>,
    websocket_enabled: bool,
    sockets_opened: usize,
    sockets_refused: usize,
    webhook: Option<(String, String)>,
    getinfo_calls: usize,
}

#[derive(Clone)]
pub struct FakePhoenixd {
    pub url: String,
    state: Arc<Mutex<State>>,
    pub faults: Faults,
}

impl FakePhoenixd {
    pub fn start(password: &str) -> Self {
        let faults = Faults::new();
        let state = Arc::new(Mutex::new(State {
            faults: faults.clone(),
            password: password.into(),
            invoices: HashMap::new(),
            pushes: tokio::sync::broadcast::channel(64).0,
            websocket_enabled: true,
            sockets_opened: 0,
            sockets_refused: 0,
            webhook: None,
            getinfo_calls: 0,
        }));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/createinvoice", web::post().to(create))
                    .route("/payments/incoming/{hash}", web::get().to(incoming))
                    .route("/getinfo", web::get().to(getinfo))
                    .route("/websocket", web::get().to(websocket));
            },
            faults.clone(),
            None,
        );
        Self { url, state, faults }
    }

    /// As if a payer paid the invoice in full: open websockets hear of it, and so does the
    /// webhook, if one is set.
    /// How many times `getinfo` was asked (rayo asks to learn the node's key).
    pub fn getinfo_calls(&self) -> usize {
        self.state.lock().unwrap().getinfo_calls
    }

    pub async fn settle(&self, payment_hash: &str) {
        let now = fake_node::now_secs() * 1000;
        let (message, webhook) = {
            let mut state = self.state.lock().unwrap();
            let invoice = state
                .invoices
                .get_mut(payment_hash)
                .expect("the fake made this invoice");
            invoice.paid_at_ms = Some(now);
            let message = json!({"type": "payment_received", "timestamp": now, "amountSat": invoice.amount_sat, "paymentHash": payment_hash, "externalId": null}).to_string();
            let _ = state.pushes.send(Some(message.clone()));
            (message, state.webhook.clone())
        };
        if let Some((url, secret)) = webhook {
            let signature = hex::encode(rayo::crypto::hmac_sha256(
                secret.as_bytes(),
                message.as_bytes(),
            ));
            let answer = reqwest::Client::new()
                .post(url)
                .header("X-Phoenix-Signature", signature)
                .header("Content-Type", "application/json")
                .body(message)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "rayo accepts phoenixd's webhook");
        }
    }

    /// Closes every open websocket.
    pub fn drop_sockets(&self) {
        let _ = self.state.lock().unwrap().pushes.send(None);
    }

    /// Refuses websocket upgrades (503), so only webhooks can tell.
    pub fn disable_websocket(&self) {
        self.state.lock().unwrap().websocket_enabled = false;
    }

    pub fn enable_websocket(&self) {
        self.state.lock().unwrap().websocket_enabled = true;
    }

    pub fn sockets_opened(&self) -> usize {
        self.state.lock().unwrap().sockets_opened
    }

    /// Websocket upgrades refused while websockets were disabled.
    pub fn sockets_refused(&self) -> usize {
        self.state.lock().unwrap().sockets_refused
    }

    /// Also POSTs each payment to `url`, signed with `secret`.
    pub fn send_webhooks_to(&self, url: &str, secret: &str) {
        self.state.lock().unwrap().webhook = Some((url.into(), secret.into()));
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
    let Some(amount_sat) = form.get("amountSat").and_then(|a| a.parse::<u64>().ok()) else {
        return HttpResponse::BadRequest().body("Missing or invalid parameter: amountSat");
    };
    let description = match (form.get("descriptionHash"), form.get("description")) {
        (Some(h), None) => match hex::decode(h)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            Some(bytes) => Description::Hash(bytes),
            None => return HttpResponse::BadRequest().body("Invalid parameter: descriptionHash"),
        },
        (None, Some(m)) => Description::Memo(m),
        _ => {
            return HttpResponse::BadRequest()
                .body("Must provide either a description or descriptionHash")
        }
    };
    let expiry = form
        .get("expirySeconds")
        .and_then(|e| e.parse().ok())
        .unwrap_or(3600);
    let minted = mint(
        &state.faults,
        Currency::Bitcoin,
        amount_sat * 1000,
        description,
        Duration::from_secs(expiry),
    );
    let answer = json!({"amountSat": amount_sat, "paymentHash": minted.payment_hash, "serialized": minted.bolt11});
    let invoice = Invoice {
        preimage: minted.preimage,
        amount_sat,
        bolt11: minted.bolt11,
        paid_at_ms: None,
    };
    state.invoices.insert(minted.payment_hash, invoice);
    HttpResponse::Ok().json(answer)
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

async fn getinfo(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    if !authorized(&req, &state.password) {
        return HttpResponse::Unauthorized().body("Invalid authentication");
    }
    state.getinfo_calls += 1;
    let node_id = fake_node::reported_node_id(&state.faults);
    HttpResponse::Ok().json(json!({"nodeId": node_id, "channels": [], "chain": "mainnet"}))
}

async fn websocket(req: HttpRequest, body: web::Payload, state: Shared) -> HttpResponse {
    let mut pushes = {
        let mut state = state.lock().unwrap();
        if !authorized(&req, &state.password) {
            return HttpResponse::Unauthorized().body("Invalid authentication");
        }
        if !state.websocket_enabled {
            state.sockets_refused += 1;
            return HttpResponse::ServiceUnavailable().body("websocket disabled");
        }
        state.sockets_opened += 1;
        state.pushes.subscribe()
    };
    let (response, mut session, _incoming) = actix_ws::handle(&req, body).unwrap();
    actix_web::rt::spawn(async move {
        while let Ok(Some(message)) = pushes.recv().await {
            if session.text(message).await.is_err() {
                return;
            }
        }
        let _ = session.close(None).await;
    });
    response
}
