//! `/admin/backends` and `/admin/prices`: what `rayo backend check` and `rayo prices` say,
//! each backend checked on demand.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::overview::{price_rows, PriceRowView};
use super::{audit, form_allowed, Frame, Staff};
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backends", web::get().to(backends_page))
        .route("/backends/check", web::post().to(check_backends))
        .route("/prices", web::get().to(prices_page));
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

struct Report {
    name: String,
    kind: &'static str,
    capabilities: String,
    ok: bool,
    facts: Vec<String>,
    warnings: Vec<String>,
    problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/backends.html")]
struct BackendsPage<'a> {
    frame: Frame<'a>,
    reports: Vec<Report>,
    checked: bool,
}

fn listed(state: &State) -> Vec<Report> {
    state
        .services
        .backends()
        .iter()
        .map(|(name, backend)| Report {
            name: name.to_string(),
            kind: backend.kind(),
            capabilities: backend.capabilities().summary(),
            ok: true,
            facts: Vec::new(),
            warnings: Vec::new(),
            problems: Vec::new(),
        })
        .collect()
}

async fn backends_page(staff: Staff, state: web::Data<State>) -> HttpResponse {
    html(
        StatusCode::OK,
        BackendsPage {
            frame: Frame::of(&staff, "backends"),
            reports: listed(&state),
            checked: false,
        },
    )
}

/// Runs `backend check` on every configured backend now (each asks its backend for a small
/// real invoice, checks it as the callback would, and looks it up).
async fn check_backends(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let services = &state.services;
    let checks = services
        .backends()
        .iter()
        .map(|(name, backend)| async move {
            let started = std::time::Instant::now();
            let report = crate::operator::check_backend(
                backend.as_ref(),
                services.clock.now(),
                services.random.as_ref(),
            )
            .await;
            services.metrics.health.record(
                name.as_str(),
                crate::metrics::HealthEntry {
                    at: services.clock.unix(),
                    latency_ms: started.elapsed().as_millis() as u64,
                    asked: "check",
                    error: report.problems.first().cloned(),
                    failing_since: None,
                },
            );
            Report {
                name: name.to_string(),
                kind: backend.kind(),
                capabilities: backend.capabilities().summary(),
                ok: report.ok(),
                facts: report.facts,
                warnings: report.warnings,
                problems: report.problems,
            }
        });
    let reports = futures_util::future::join_all(checks).await;
    audit(&state, &staff, "backend.check").await;
    html(
        StatusCode::OK,
        BackendsPage {
            frame: Frame::of(&staff, "backends"),
            reports,
            checked: true,
        },
    )
}

#[derive(Template)]
#[template(path = "console/prices.html")]
struct PricesPage<'a> {
    frame: Frame<'a>,
    prices: Vec<PriceRowView>,
    unmet: Vec<String>,
}

async fn prices_page(staff: Staff, state: web::Data<State>) -> HttpResponse {
    let book = &state.services.prices;
    html(
        StatusCode::OK,
        PricesPage {
            frame: Frame::of(&staff, "prices"),
            prices: price_rows(&book.report()),
            unmet: book
                .unmet()
                .iter()
                .map(|u| format!("{}: {}", u.currency, u.reason))
                .collect(),
        },
    )
}
