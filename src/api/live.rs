//! `GET /api/v1/invoices/{hash}/ws`: the invoice now, then its final state (paid or expired),
//! then the end. As a WebSocket, or as Server-Sent Events with `Accept: text/event-stream`.

use std::time::Duration;

use actix_web::http::header::{ACCEPT, UPGRADE};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::invoices::{find, view};
use super::{AppInvoiceView, Caller};
use crate::domain::Hash32;
use crate::error::ApiError;
use crate::lnurl::Payments;
use crate::watch::Ledger;

/// The store is read again this often while waiting, in case a notification was missed.
const RECHECK_EVERY: Duration = Duration::from_secs(15);

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
async fn final_state(
    payments: &Payments,
    ledger: &Ledger,
    hash: Hash32,
) -> Result<AppInvoiceView, ApiError> {
    // Subscribe before reading, so nothing can happen unseen in between.
    let mut changes = ledger.live().subscribe();
    loop {
        let record = payments
            .db
            .store()
            .invoice(&hash)
            .map_err(|_| ApiError::internal("the store failed"))?
            .ok_or_else(|| ApiError::not_found("no such invoice"))?;
        let current = view(payments, &record);
        if current.is_final() {
            return Ok(current);
        }
        // Past expiry the sweeper will say so; a deadline keeps us from waiting on nothing.
        let until_expiry = record.expires_at.saturating_sub(payments.clock.unix());
        let wait = RECHECK_EVERY.min(Duration::from_secs(until_expiry.max(1)));
        match tokio::time::timeout(wait, changes.recv()).await {
            Ok(Ok(changed)) if changed.payment_hash == hash => {
                let changed = view(payments, &changed);
                if changed.is_final() {
                    return Ok(changed);
                }
            }
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
            Ok(Err(RecvError::Closed)) => return Err(ApiError::internal("shutting down")),
        }
    }
}

pub async fn follow(
    req: HttpRequest,
    body: web::Payload,
    caller: Caller,
    payments: web::Data<Payments>,
    ledger: web::Data<Ledger>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::invoices::rate_limit(&req, &payments)?;
    let record = find(&caller, &payments, &hash)?;
    let first = view(&payments, &record);
    let hash = record.payment_hash;
    let wants_websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_websocket {
        let (response, mut session, _incoming) = actix_ws::handle(&req, body)
            .map_err(|e| ApiError::invalid(format!("websocket: {e}")))?;
        actix_web::rt::spawn(async move {
            if session.text(message("invoice", &first)).await.is_err() {
                return;
            }
            if let Ok(last) = final_state(&payments, &ledger, hash).await {
                let _ = session.text(message(&last.status, &last)).await;
            }
            let _ = session.close(None).await;
        });
        return Ok(response);
    }
    let wants_events = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_events {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "open a WebSocket, or ask for Accept: text/event-stream",
        ));
    }
    let events = futures_util::stream::unfold(Some(0u8), move |step| {
        let payments = payments.clone();
        let ledger = ledger.clone();
        let first = first.clone();
        async move {
            let frame = match step? {
                0 => Some(sse("invoice", &message("invoice", &first))),
                _ => final_state(&payments, &ledger, hash)
                    .await
                    .ok()
                    .map(|last| sse(&last.status, &message(&last.status, &last))),
            }?;
            let next = (step == Some(0) && !first.is_final()).then_some(1);
            Some((Ok::<_, actix_web::Error>(web::Bytes::from(frame)), next))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(events))
}

fn sse(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}
