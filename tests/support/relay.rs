//! A small Nostr relay on a real port: accepts `["EVENT", ...]`, checks the event's id and
//! signature, stores it and answers `["OK", id, true|false, reason]`. It can be reserved
//! before it starts listening, to play a relay that is down.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use nostr::{Event, JsonUtil};

use super::ports::ReservedPort;

pub struct Relay {
    pub url: String,
    /// Bound but not listening until `listen`: connections are refused meanwhile.
    socket: Mutex<Option<std::net::TcpListener>>,
    reserved: Mutex<Option<ReservedPort>>,
    events: Arc<Mutex<Vec<Event>>>,
    /// Events refused (when refusing), by id.
    refused: Arc<Mutex<Vec<String>>>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    /// A relay that is down: its address refuses connections until `listen`.
    pub fn reserve() -> Self {
        let reserved = ReservedPort::new();
        Self {
            url: format!("ws://{}", reserved.address()),
            socket: Mutex::new(None),
            reserved: Mutex::new(Some(reserved)),
            events: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(Mutex::new(Vec::new())),
            refusing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    pub fn start() -> Self {
        let relay = Self::reserve();
        relay.listen();
        relay
    }

    /// A relay on IPv6 loopback, named by its literal (`ws://[::1]:port`).
    pub fn start_on_ipv6() -> Self {
        let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
        let relay = Self {
            url: format!("ws://{}", listener.local_addr().unwrap()),
            socket: Mutex::new(Some(listener)),
            reserved: Mutex::new(None),
            events: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(Mutex::new(Vec::new())),
            refusing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        relay.listen();
        relay
    }

    pub fn listen(&self) {
        let listener = match self.reserved.lock().unwrap().take() {
            Some(reserved) => reserved.listen(),
            None => self
                .socket
                .lock()
                .unwrap()
                .take()
                .expect("not listening yet"),
        };
        let relay = Shared {
            events: self.events.clone(),
            refused: self.refused.clone(),
            refusing: self.refusing.clone(),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(relay.clone()))
                .route("/", web::get().to(connect))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// From now on, answers every event `["OK", id, false, "blocked: …"]`, as a relay with a
    /// policy against it does.
    pub fn refuse_everything(&self) {
        self.refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The ids of the events refused.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<Vec<Event>>>,
    refused: Arc<Mutex<Vec<String>>>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

async fn connect(req: HttpRequest, body: web::Payload, relay: web::Data<Shared>) -> HttpResponse {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).unwrap();
    let relay = relay.into_inner();
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            let actix_ws::Message::Text(text) = message else {
                continue;
            };
            let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
                continue;
            };
            if parts.first().and_then(|v| v.as_str()) != Some("EVENT") {
                continue;
            }
            let Some(raw) = parts.get(1) else { continue };
            let answer = match Event::from_json(raw.to_string()) {
                Ok(event) if relay.refusing.load(std::sync::atomic::Ordering::SeqCst) => {
                    let id = event.id.to_hex();
                    relay.refused.lock().unwrap().push(id.clone());
                    serde_json::json!(["OK", id, false, "blocked: this relay takes no such events"])
                }
                Ok(event) if event.verify().is_ok() => {
                    let id = event.id.to_hex();
                    relay.events.lock().unwrap().push(event);
                    serde_json::json!(["OK", id, true, ""])
                }
                _ => serde_json::json!(["OK", raw["id"], false, "invalid: bad event"]),
            };
            if session.text(answer.to_string()).await.is_err() {
                return;
            }
        }
    });
    response
}
