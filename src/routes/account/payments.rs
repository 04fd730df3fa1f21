//! The person's payments: as CSV, and live as server-sent events.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::page::PageQuery;
use super::{at, redirect, refusal, signed_in};
use crate::accounts::{csv, PaymentFilter, PaymentRow};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account/payments.csv").route(web::get().to(payments_csv)))
        .service(at("/account/payments/live").route(web::get().to(payments_live)));
}

async fn payments_csv(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    match state
        .services
        .accounts
        .payments(&me.session.user, &query.filter, crate::accounts::EXPORTED)
        .await
    {
        Ok(rows) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-payments.csv\"", me.session.user),
            ))
            .body(csv(&rows)),
        Err(e) => refusal(&state, &e),
    }
}

/// Server-sent events: each of this person's invoices as it reaches its final state, from
/// the same stream the invoice API's followers read. Ends when the session does.
///
/// `since` (unix seconds, the time the page was made) closes the gap between the page and the
/// stream: payments that became final since then are sent first, read from the store after
/// subscribing, so none falls between the two.
async fn payments_live(
    req: HttpRequest,
    query: web::Query<LiveQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return HttpResponse::Unauthorized().finish();
    };
    // Capped like the invoice API's followers: per person and per client address.
    let holder = format!("account:{}", me.session.user);
    let Some(slot) = state.followers.enter(Some(&holder), state.client(&req)) else {
        return HttpResponse::TooManyRequests().finish();
    };
    let services = state.services.clone();
    let user = me.session.user.clone();
    let token = me.token.clone();
    let updates = services.ledger.live().subscribe();
    let caught_up: Vec<Result<web::Bytes, actix_web::Error>> = match query.since {
        Some(since) => services
            .accounts
            .payments(&user, &PaymentFilter::default(), crate::accounts::LISTED)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|row| row.status != "pending" && row.paid_at.unwrap_or(row.created_at) >= since)
            .map(|row| Ok(payment_event(&row)))
            .collect(),
        None => Vec::new(),
    };
    let events = payment_events(Following {
        updates,
        services,
        user,
        token,
        checked: std::time::Instant::now(),
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(
            futures_util::stream::iter(caught_up)
                .chain(events)
                .map(move |chunk| {
                    // The place is held for as long as the stream lives.
                    let _held = &slot;
                    chunk
                }),
        )
}

/// A quiet stream says so this often: a client that left is noticed when that write fails.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);
/// The session behind a stream is read again this often: a stream ends with its session.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// One person's payment stream.
struct Following {
    updates: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::domain::InvoiceRecord>>,
    services: std::sync::Arc<crate::services::Services>,
    user: crate::domain::Username,
    token: String,
    checked: std::time::Instant,
}

/// The person's invoices as they become final, keep-alives while quiet, a "reload" when the
/// stream fell behind; the end when the session did.
fn payment_events(
    following: Following,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    use tokio::sync::broadcast::error::RecvError;
    futures_util::stream::unfold(following, |mut f| async move {
        loop {
            let chunk = match tokio::time::timeout(KEEP_ALIVE, f.updates.recv()).await {
                Ok(Ok(record)) if record.user == f.user => {
                    payment_event(&PaymentRow::of(&record, f.services.clock.unix()))
                }
                Ok(Ok(_)) => continue,
                // Missed some: the page reloads its list.
                Ok(Err(RecvError::Lagged(_))) => {
                    web::Bytes::from_static(b"event: reload\ndata: {}\n\n")
                }
                Ok(Err(RecvError::Closed)) => return None,
                Err(_) => {
                    if f.checked.elapsed() >= SESSION_CHECK {
                        if !matches!(f.services.accounts.session(&f.token).await, Ok(Some(_))) {
                            return None;
                        }
                        f.checked = std::time::Instant::now();
                    }
                    web::Bytes::from_static(b": keep-alive\n\n")
                }
            };
            return Some((Ok(chunk), f));
        }
    })
}

#[derive(Deserialize)]
struct LiveQuery {
    since: Option<u64>,
}

fn payment_event(row: &PaymentRow) -> web::Bytes {
    let data = serde_json::to_string(row).unwrap_or_default();
    web::Bytes::from(format!("event: payment\ndata: {data}\n\n"))
}
