//! `GET /api/v1/invoices/{hash}/ws`: the invoice now, then its final state (paid or expired),
//! then the end. As a WebSocket, or as Server-Sent Events with `Accept: text/event-stream`.
//!
//! A follower holds a connection and a task for as long as its invoice stays open (up to a day
//! for API invoices), so followers are capped per API key and per client address, and each one
//! ends as soon as its client is gone: a WebSocket when the client closes, stops answering
//! pings or drops the connection; an event stream at the next keep-alive it cannot write.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::{ACCEPT, UPGRADE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::invoices::{find, view};
use crate::domain::Hash32;
use crate::invoices::lookup::{self, Viewer};
use crate::invoices::AppInvoiceView;
use crate::limits::ClientKey;
use crate::routes::errors::ApiError;
use crate::routes::{Caller, State};
use crate::services::Services;

/// The store is read again this often while waiting, in case a notification was missed.
const RECHECK_EVERY: Duration = Duration::from_secs(15);
/// A WebSocket client is pinged this often, and given up on after two pings without a word.
const PING_EVERY: Duration = Duration::from_secs(20);
/// An event stream gets a comment this often, so a client that left is noticed.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Key(String),
    Client(ClientKey),
}

/// Live followers by who holds them, capped per API key and per client address.
pub struct Followers {
    cap: usize,
    held: Mutex<HashMap<Holder, usize>>,
    total: prometheus_client::metrics::gauge::Gauge,
}

impl Followers {
    /// `cap`: followers one API key, or one client address, may hold at once.
    pub fn new(cap: usize, total: prometheus_client::metrics::gauge::Gauge) -> Self {
        Self {
            cap: cap.max(1),
            held: Mutex::new(HashMap::new()),
            total,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Holder, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more follower, unless its key or its client holds as many as allowed.
    pub fn enter(self: &Arc<Self>, key: Option<&str>, client: Option<ClientKey>) -> Option<Slot> {
        let holders: Vec<Holder> = key
            .map(|k| Holder::Key(k.to_owned()))
            .into_iter()
            .chain(client.map(Holder::Client))
            .collect();
        let mut held = self.held();
        if holders
            .iter()
            .any(|h| held.get(h).copied().unwrap_or(0) >= self.cap)
        {
            return None;
        }
        for holder in &holders {
            *held.entry(holder.clone()).or_insert(0) += 1;
        }
        self.total.inc();
        Some(Slot {
            followers: self.clone(),
            holders,
        })
    }

    /// Followers running now.
    pub fn count(&self) -> i64 {
        self.total.get()
    }
}

/// One follower's place; given back when the follower ends, however it ends.
pub struct Slot {
    followers: Arc<Followers>,
    holders: Vec<Holder>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.followers.held();
        for holder in &self.holders {
            if let Some(count) = held.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    held.remove(holder);
                }
            }
        }
        self.followers.total.dec();
    }
}

#[derive(Serialize)]
struct Message<'a> {
    /// `invoice` first; then `paid` or `expired`.
    event: &'a str,
    invoice: &'a AppInvoiceView,
}

fn message(event: &str, invoice: &AppInvoiceView) -> String {
    serde_json::to_string(&Message { event, invoice }).unwrap_or_default()
}

/// Waits until the invoice is paid or expired; returns it then.
async fn final_state(services: &Services, hash: Hash32) -> Result<AppInvoiceView, ApiError> {
    // Subscribe before reading, so nothing can happen unseen in between.
    let mut changes = services.ledger.live().subscribe();
    loop {
        // The caller was shown this invoice by `find` before waiting on it.
        let record = lookup::find(&services.db, &hash, Viewer::Anyone)
            .await?
            .ok_or_else(|| ApiError::not_found("no such invoice"))?;
        let current = view(services, &record).await;
        if current.is_final() {
            return Ok(current);
        }
        // Past expiry the sweeper will say so; a deadline keeps us from waiting on nothing.
        let until_expiry = record.expires_at.saturating_sub(services.clock.unix());
        let wait = RECHECK_EVERY.min(Duration::from_secs(until_expiry.max(1)));
        match tokio::time::timeout(wait, changes.recv()).await {
            Ok(Ok(changed)) if changed.payment_hash == hash => {
                let changed = view(services, &changed).await;
                if changed.is_final() {
                    return Ok(changed);
                }
            }
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
            Ok(Err(RecvError::Closed)) => return Err(ApiError::internal("shutting down")),
        }
    }
}

type Last = Pin<Box<dyn Future<Output = Result<AppInvoiceView, ApiError>>>>;

pub async fn follow(
    req: HttpRequest,
    body: web::Payload,
    caller: Caller,
    state: web::Data<State>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let services = state.services.clone();
    let record = find(&caller, &services, &hash).await?;
    let first = view(&services, &record).await;
    let hash = record.payment_hash;
    let key = match &caller {
        Caller::App { key, .. } => Some(key.as_str()),
        Caller::Operator => None,
    };
    let slot = state
        .followers
        .enter(key, state.client(&req))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_followers",
                "this API key or address follows as many invoices as allowed; close some first",
            )
        })?;
    let last: Last = Box::pin(async move { final_state(&services, hash).await });
    let wants_websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_websocket {
        let (response, session, incoming) = actix_ws::handle(&req, body)
            .map_err(|e| ApiError::invalid(format!("websocket: {e}")))?;
        actix_web::rt::spawn(websocket(session, incoming, first, last, slot));
        return Ok(response);
    }
    let wants_events = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_events {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "open a WebSocket, or ask for Accept: text/event-stream",
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(event_stream(first, last, slot)))
}

/// The first message, then the last one; meanwhile pings out and whatever comes in, until the
/// client closes or falls silent.
async fn websocket(
    mut session: actix_ws::Session,
    mut incoming: actix_ws::MessageStream,
    first: AppInvoiceView,
    mut last: Last,
    _slot: Slot,
) {
    if session.text(message("invoice", &first)).await.is_err() || first.is_final() {
        let _ = session.close(None).await;
        return;
    }
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.tick().await;
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            outcome = &mut last => {
                if let Ok(last) = outcome {
                    let _ = session.text(message(last.status.as_str(), &last)).await;
                }
                break;
            }
            received = incoming.next() => match received {
                Some(Ok(actix_ws::Message::Ping(payload))) => {
                    heard = Instant::now();
                    if session.pong(&payload).await.is_err() {
                        break;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => heard = Instant::now(),
            },
            _ = pings.tick() => {
                if heard.elapsed() > PING_EVERY * 2 || session.ping(b"").await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = session.close(None).await;
}

enum Stage {
    First,
    Waiting(Last, tokio::time::Interval),
    Done,
}

/// `event: invoice`, keep-alive comments while waiting, then `event: paid|expired`.
fn event_stream(
    first: AppInvoiceView,
    last: Last,
    slot: Slot,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    let mut last = Some(last);
    futures_util::stream::unfold(Stage::First, move |stage| {
        // Held by the stream: dropped, with the stream, when the client is gone.
        let _ = &slot;
        let waiting = last.take();
        let first = first.clone();
        async move {
            let (frame, next) = match stage {
                Stage::First => {
                    let next = match waiting {
                        Some(last) if !first.is_final() => {
                            let mut keep_alive = tokio::time::interval(KEEP_ALIVE_EVERY);
                            keep_alive.tick().await;
                            Stage::Waiting(last, keep_alive)
                        }
                        _ => Stage::Done,
                    };
                    (sse("invoice", &message("invoice", &first)), next)
                }
                Stage::Waiting(mut last, mut keep_alive) => {
                    tokio::select! {
                        outcome = &mut last => match outcome {
                            Ok(last) => {
                                let event = last.status.as_str();
                                (sse(event, &message(event, &last)), Stage::Done)
                            }
                            Err(_) => return None,
                        },
                        _ = keep_alive.tick() => (": keep-alive\n\n".to_owned(), Stage::Waiting(last, keep_alive)),
                    }
                }
                Stage::Done => return None,
            };
            Some((Ok(web::Bytes::from(frame)), next))
        }
    })
}

fn sse(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}
