//! `/admin/`: is everything working? Backends, today's and this week's counts, the outbox,
//! prices, the store, the instances, and the pictures; kept current by `/admin/live`.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use futures_util::StreamExt;

use super::charts::{self, Chart};
use super::{refusal, when, Frame, Staff};
use crate::console::Overview;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(overview_page))
        .route("/live", web::get().to(live));
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage<'a> {
    frame: Frame<'a>,
    o: &'a Overview,
    charts: Vec<Chart>,
    backends: Vec<BackendRow>,
    instances: Vec<InstanceRow>,
    prices: Vec<PriceRow>,
    uptime: String,
    retention: String,
    store_size: String,
}

struct BackendRow {
    name: String,
    kind: &'static str,
    asked: String,
    when: String,
    latency: String,
    ok: bool,
    error: String,
}

struct InstanceRow {
    id: String,
    client: String,
    since: String,
    this: bool,
    leads: String,
}

struct PriceRow {
    currency: &'static str,
    rate: String,
    age: String,
    problem: String,
}

/// `3d 4h`, `5h 12m`, `42s`: how long, as people say it.
pub(super) fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Bytes as people read them.
pub(super) fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

pub(super) fn price_rows(reports: &[crate::prices::CurrencyReport]) -> Vec<PriceRowView> {
    reports
        .iter()
        .map(|r| PriceRowView {
            currency: r.currency,
            rate: r
                .rate
                .as_ref()
                .map_or_else(|| "none".to_owned(), |rate| rate.price.to_string()),
            sources: r
                .quotes
                .iter()
                .map(|q| {
                    format!(
                        "{}: {}{}{}",
                        q.source,
                        q.price.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                        q.age_secs
                            .map_or(String::new(), |a| format!(" ({} old)", span(a))),
                        q.note.as_ref().map_or(String::new(), |n| format!(", {n}"))
                    )
                })
                .collect(),
            age: r
                .quotes
                .iter()
                .filter_map(|q| q.age_secs)
                .max()
                .map_or_else(|| "never read".to_owned(), |a| format!("{} old", span(a))),
            problem: r.problem.clone().unwrap_or_default(),
        })
        .collect()
}

/// A currency's price as the console shows it.
pub(super) struct PriceRowView {
    pub currency: &'static str,
    pub rate: String,
    pub sources: Vec<String>,
    pub age: String,
    pub problem: String,
}

async fn overview_page(staff: Staff, state: web::Data<State>) -> HttpResponse {
    // The configured backends are asked now (the readiness probe, shared and cached for a
    // few seconds), so their row says how they are, not how they were at the last invoice.
    state.readiness.current(&state.services).await;
    let o = match state.console.overview(&state.services).await {
        Ok(o) => o,
        Err(e) => return refusal(&crate::accounts::AccountError::Store(e)),
    };
    let backends = o
        .backends
        .iter()
        .map(|b| match &b.last {
            Some(last) => BackendRow {
                name: b.name.clone(),
                kind: b.kind,
                asked: last.asked.to_owned(),
                when: when(last.at),
                latency: format!("{} ms", last.latency_ms),
                ok: last.error.is_none(),
                error: last.error.clone().unwrap_or_default(),
            },
            None => BackendRow {
                name: b.name.clone(),
                kind: b.kind,
                asked: "-".into(),
                when: "not since start".into(),
                latency: "-".into(),
                ok: true,
                error: String::new(),
            },
        })
        .collect();
    let instances = o
        .cluster
        .as_ref()
        .map(|c| {
            c.instances
                .iter()
                .map(|i| InstanceRow {
                    id: i.id.clone(),
                    client: i.client.clone(),
                    since: when(i.since),
                    this: i.id == c.this,
                    leads: c
                        .leases
                        .iter()
                        .filter(|l| l.holder == i.id)
                        .map(|l| l.role.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect()
        })
        .unwrap_or_default();
    let prices = price_rows(&o.prices)
        .into_iter()
        .map(|p| PriceRow {
            currency: p.currency,
            rate: p.rate,
            age: p.age,
            problem: p.problem,
        })
        .collect();
    let retention = state.services.settings.retention.describe();
    let page = OverviewPage {
        frame: Frame::of(&staff, "overview"),
        charts: vec![
            charts::invoices(&o.tallies.days),
            charts::sats(&o.tallies.days),
            charts::latency(&o.latency),
            charts::deliveries(&o.tallies.days),
        ],
        backends,
        instances,
        prices,
        uptime: span(o.uptime_secs),
        retention,
        store_size: o
            .upkeep
            .store_bytes
            .map_or_else(|| "unknown".to_owned(), bytes),
        o: &o,
    };
    html(StatusCode::OK, page)
}

/// A quiet stream says so this often; the counts are looked at as often.
const TICK: std::time::Duration = std::time::Duration::from_secs(5);
/// The session behind a stream is read again this often: a stream ends with its session.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Server-sent events for open console pages: `changed` when an invoice became final, or the
/// counts no invoice event tells of moved (invoices made, deliveries); the page then fetches
/// itself again. Capped like every live follower, per operator and per client address.
async fn live(staff: Staff, req: actix_web::HttpRequest, state: web::Data<State>) -> HttpResponse {
    let holder = format!("console:{}", staff.name());
    let Some(slot) = state.followers.enter(Some(&holder), state.client(&req)) else {
        return HttpResponse::TooManyRequests().finish();
    };
    let following = Following {
        updates: state.services.ledger.live().subscribe(),
        state: state.clone(),
        token: staff.token,
        seen: None,
        checked: std::time::Instant::now(),
    };
    let events = futures_util::stream::unfold(following, |mut f| async move {
        use tokio::sync::broadcast::error::RecvError;
        let chunk = match tokio::time::timeout(TICK, f.updates.recv()).await {
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {
                // The counts just changed: the page's next look must not get the cached ones.
                f.state.console.tallies_changed();
                changed()
            }
            Ok(Err(RecvError::Closed)) => return None,
            Err(_) => {
                if f.checked.elapsed() >= SESSION_CHECK {
                    let live = f.state.services.accounts.console_session(&f.token).await;
                    if !matches!(live, Ok(Some(_))) {
                        return None;
                    }
                    f.checked = std::time::Instant::now();
                }
                // What no invoice event tells (invoices made, deliveries), and what a look
                // taken too soon after one missed.
                let now = f
                    .state
                    .console
                    .tallies(&f.state.services)
                    .await
                    .ok()
                    .map(|(t, c)| {
                        [
                            t.today.made,
                            t.today.paid,
                            t.today.expired,
                            t.today.sats,
                            c.backlog,
                            c.dead_letters,
                        ]
                    });
                match (now, f.seen) {
                    (Some(now), Some(seen)) if now != seen => {
                        f.seen = Some(now);
                        changed()
                    }
                    _ => {
                        f.seen = now.or(f.seen);
                        web::Bytes::from_static(b": keep-alive\n\n")
                    }
                }
            }
        };
        Some((Ok::<_, actix_web::Error>(chunk), f))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(events.map(move |chunk| {
            let _held = &slot;
            chunk
        }))
}

struct Following {
    updates: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::domain::InvoiceRecord>>,
    state: web::Data<State>,
    token: String,
    /// Today's counts and the outbox's, when last looked.
    seen: Option<[u64; 6]>,
    checked: std::time::Instant,
}

fn changed() -> web::Bytes {
    web::Bytes::from_static(b"event: changed\ndata: {}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_people_say_them() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(5 * 60), "5m");
        assert_eq!(span(3 * 3600 + 12 * 60), "3h 12m");
        assert_eq!(span(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
