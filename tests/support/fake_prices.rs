//! The public price APIs rayo reads, in-process, each in its exact wire format and under a
//! path of its own (`<url>buda/`, `<url>kraken/`, ...): the tests set the prices and make a
//! source answer garbage, HTML, a 5xx, or nothing at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::fake_node::{self, Faults};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    Garbage,
    Html,
    ServerError,
    Hang,
}

#[derive(Default)]
struct State {
    /// Price of a bitcoin per (source, currency), as the decimal text the API writes.
    prices: HashMap<(String, String), String>,
    faults: HashMap<String, Misbehaviour>,
}

#[derive(Clone)]
pub struct FakePrices {
    pub url: String,
    state: Arc<Mutex<State>>,
}

type Shared = web::Data<Arc<Mutex<State>>>;

impl FakePrices {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let url = fake_node::serve(
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(shared.clone()))
                    .route("/buda/api/v2/markets/{market}/ticker", web::get().to(buda))
                    .route("/kraken/0/public/Ticker", web::get().to(kraken))
                    .route("/coinbase/v2/prices/{pair}/spot", web::get().to(coinbase))
                    .route("/bitstamp/api/v2/ticker/{pair}/", web::get().to(bitstamp))
                    .route("/yadio/exrates/BTC", web::get().to(yadio));
            },
            Faults::new(),
            None,
        );
        Self { url, state }
    }

    pub fn set(&self, source: &str, currency: &str, price: &str) {
        self.state
            .lock()
            .unwrap()
            .prices
            .insert((source.into(), currency.into()), price.into());
    }

    pub fn misbehave(&self, source: &str, how: Misbehaviour) {
        self.state.lock().unwrap().faults.insert(source.into(), how);
    }

    /// `RAYO_PRICE_SOURCES` pointing every source here.
    pub fn sources(&self) -> String {
        ["buda", "kraken", "coinbase", "bitstamp", "yadio"]
            .iter()
            .map(|s| format!("{s}={}{s}/", self.url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every price source, pointed here: what `settings.price_sources` takes.
    pub fn tickers(&self) -> Vec<rayo::prices::Ticker> {
        self.sources()
            .split(',')
            .map(|entry| {
                let (name, url) = entry.split_once('=').unwrap();
                let mut source = rayo::prices::Ticker::public()
                    .into_iter()
                    .find(|p| p.name() == name)
                    .unwrap();
                source.base = url.parse().unwrap();
                source
            })
            .collect()
    }
}

/// The fault set for `source`, as an answer; `None`: answer normally.
async fn fault(state: &Shared, source: &str) -> Option<HttpResponse> {
    let how = state.lock().unwrap().faults.get(source).copied()?;
    Some(match how {
        Misbehaviour::Garbage => HttpResponse::Ok().json(json!({"unexpected": [1, 2, 3]})),
        Misbehaviour::Html => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        Misbehaviour::ServerError => HttpResponse::ServiceUnavailable().body("maintenance"),
        Misbehaviour::Hang => {
            // Never answers: the caller's timeout is what ends it.
            std::future::pending().await
        }
    })
}

/// The time the APIs say their prices were true: now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn price(state: &Shared, source: &str, currency: &str) -> Option<String> {
    state
        .lock()
        .unwrap()
        .prices
        .get(&(source.to_owned(), currency.to_owned()))
        .cloned()
}

async fn buda(state: Shared, market: web::Path<String>) -> HttpResponse {
    if let Some(answer) = fault(&state, "buda").await {
        return answer;
    }
    let currency = market.trim_start_matches("btc-").to_uppercase();
    match price(&state, "buda", &currency) {
        Some(p) => HttpResponse::Ok().json(json!({"ticker": {
            "market_id": format!("BTC-{currency}"),
            "last_price": [p, currency],
            "min_ask": [p, currency],
            "max_bid": [p, currency],
            "volume": ["12.5", "BTC"],
            "price_variation_24h": "0.012",
            "price_variation_7d": "-0.031"
        }})),
        None => HttpResponse::NotFound().json(json!({"message": "Not found", "code": "not_found"})),
    }
}

async fn kraken(state: Shared, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = fault(&state, "kraken").await {
        return answer;
    }
    let pair = req.query_string().trim_start_matches("pair=XBT").to_owned();
    match price(&state, "kraken", &pair) {
        Some(p) => {
            let last = format!("{p}.00000");
            HttpResponse::Ok().json(json!({"error": [], "result": {
                format!("XXBTZ{pair}"): {
                    "a": [last, "1", "1.000"], "b": [last, "1", "1.000"], "c": [last, "0.00100000"],
                    "v": ["10", "20"], "p": [last, last], "t": [100, 200], "l": [last, last],
                    "h": [last, last], "o": last
                }
            }}))
        }
        None => HttpResponse::Ok().json(json!({"error": ["EQuery:Unknown asset pair"]})),
    }
}

async fn coinbase(state: Shared, pair: web::Path<String>) -> HttpResponse {
    if let Some(answer) = fault(&state, "coinbase").await {
        return answer;
    }
    let currency = pair.trim_start_matches("BTC-").to_owned();
    match price(&state, "coinbase", &currency) {
        Some(p) => HttpResponse::Ok()
            .json(json!({"data": {"amount": p, "base": "BTC", "currency": currency}})),
        None => HttpResponse::NotFound()
            .json(json!({"errors": [{"id": "not_found", "message": "Invalid currency"}]})),
    }
}

async fn bitstamp(state: Shared, pair: web::Path<String>) -> HttpResponse {
    if let Some(answer) = fault(&state, "bitstamp").await {
        return answer;
    }
    let currency = pair.trim_start_matches("btc").to_uppercase();
    match price(&state, "bitstamp", &currency) {
        Some(p) => HttpResponse::Ok().json(json!({
            "timestamp": now().to_string(), "open": p, "high": p, "low": p, "last": p,
            "volume": "1234.5", "vwap": p, "bid": p, "ask": p, "side": "0",
            "open_24": p, "percent_change_24": "0.50"
        })),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn yadio(state: Shared) -> HttpResponse {
    if let Some(answer) = fault(&state, "yadio").await {
        return answer;
    }
    let rates: serde_json::Map<String, serde_json::Value> = state
        .lock()
        .unwrap()
        .prices
        .iter()
        .filter(|((source, _), _)| source == "yadio")
        .map(|((_, currency), p)| {
            // Yadio writes JSON numbers, not strings.
            (currency.clone(), serde_json::from_str(p).unwrap())
        })
        .collect();
    HttpResponse::Ok().json(json!({"BTC": rates, "base": "BTC", "timestamp": now() * 1000}))
}
