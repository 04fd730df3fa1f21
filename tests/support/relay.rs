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
        let events = self.events.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(events.clone()))
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
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    events: web::Data<Arc<Mutex<Vec<Event>>>>,
) -> HttpResponse {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).unwrap();
    let events = events.into_inner();
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
                Ok(event) if event.verify().is_ok() => {
                    let id = event.id.to_hex();
                    events.lock().unwrap().push(event);
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
