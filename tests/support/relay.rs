//! A small Nostr relay on a real port: accepts `["EVENT", ...]`, checks the event's id and
//! signature, stores it and answers `["OK", id, true|false, reason]`. It can be reserved
//! before it starts listening, to play a relay that is down.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use nostr::{Event, JsonUtil};

pub struct Relay {
    pub url: String,
    host: &'static str,
    port: u16,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Relay {
    /// A relay address nothing listens on yet.
    pub fn reserve() -> Self {
        Self::reserve_on("127.0.0.1")
    }

    fn reserve_on(host: &'static str) -> Self {
        let port = TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = if host.contains(':') {
            format!("ws://[{host}]:{port}")
        } else {
            format!("ws://{host}:{port}")
        };
        Self {
            url,
            host,
            port,
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
        let relay = Self::reserve_on("::1");
        relay.listen();
        relay
    }

    pub fn listen(&self) {
        let events = self.events.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(events.clone()))
                .route("/", web::get().to(connect))
        })
        .workers(1)
        .bind((self.host, self.port))
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
