//! The rest of the console: backends checked on demand (`rayo backend check`), prices
//! (`rayo prices`), maintenance (retention and prune, a streamed backup, `rayo db status`),
//! and the operators with their invites and the audit log (`rayo audit`).

use std::io::Write;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::overview::{price_rows, PriceRowView};
use super::{audit, back_to, form_allowed, message, operator_refusal, refusal, when, Frame, Staff};
use crate::accounts::{AuditEntry, OperatorInvite, OperatorView, OPERATOR_INVITE_LIFETIME};
use crate::domain::Username;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backends", web::get().to(backends_page))
        .route("/backends/check", web::post().to(check_backends))
        .route("/prices", web::get().to(prices_page))
        .route("/maintenance", web::get().to(maintenance_page))
        .route("/maintenance/prune", web::post().to(prune))
        .route("/backup", web::get().to(backup))
        .route("/operators", web::get().to(operators_page))
        .route("/operators/invite", web::post().to(invite_operator))
        .route("/operators/{name}/remove", web::post().to(remove_operator));
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

// Backends.

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

// Prices.

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

// Maintenance.

#[derive(Template)]
#[template(path = "console/maintenance.html")]
struct MaintenancePage<'a> {
    frame: Frame<'a>,
    retention: String,
    /// What the last prune (or dry run) said.
    pruned: Option<(bool, crate::store::Pruned)>,
    db: Option<Result<DbRows, String>>,
    store: &'static str,
}

struct DbRows {
    schema: String,
    servers: i64,
    leases: Vec<String>,
    public_can: Vec<String>,
}

async fn db_status(state: &State) -> Option<Result<DbRows, String>> {
    let url = state.services.settings.database_url.clone()?;
    let status = tokio::task::spawn_blocking(move || crate::store::PgStore::status(url.expose()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|s| s.map_err(|e| e.to_string()));
    Some(status.map(|s| {
        DbRows {
            schema: format!("{} (this rayo knows {})", s.schema_version, s.known_version),
            servers: s.servers,
            leases: s
                .leases
                .iter()
                .map(|l| format!("{} by pid {} from {}", l.role, l.pid, l.client))
                .collect(),
            public_can: s.public_can,
        }
    }))
}

async fn maintenance(
    staff: &Staff,
    state: &State,
    pruned: Option<(bool, crate::store::Pruned)>,
) -> HttpResponse {
    let settings = &state.services.settings;
    html(
        StatusCode::OK,
        MaintenancePage {
            frame: Frame::of(staff, "maintenance"),
            retention: settings.retention.describe(),
            pruned,
            db: db_status(state).await,
            store: if settings.database_url.is_some() {
                "PostgreSQL"
            } else {
                "sled"
            },
        },
    )
}

async fn maintenance_page(staff: Staff, state: web::Data<State>) -> HttpResponse {
    maintenance(&staff, &state, None).await
}

#[derive(Deserialize)]
struct PruneForm {
    csrf: String,
    /// `dry-run` counts; `prune` removes, and needs `confirm` typed as `prune`.
    mode: String,
    #[serde(default)]
    confirm: String,
}

async fn prune(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<PruneForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let dry_run = match (form.mode.as_str(), form.confirm.trim()) {
        ("dry-run", _) => true,
        ("prune", "prune") => false,
        ("prune", _) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Nothing was removed",
                "Type 'prune' to confirm: what a prune removes is gone for good. A dry run first shows how much.",
            )
        }
        _ => return message(StatusCode::UNPROCESSABLE_ENTITY, "That did not work", "Pick a dry run or a prune."),
    };
    match state.services.operator.prune(dry_run).await {
        Ok(pruned) => {
            let what = if dry_run { "prune.dry_run" } else { "prune" };
            audit(
                &state,
                &staff,
                &format!(
                    "{what} ({} unpaid, {} paid invoices, {} events, {} dead letters)",
                    pruned.unpaid_invoices,
                    pruned.paid_invoices,
                    pruned.events,
                    pruned.dead_letters
                ),
            )
            .await;
            if !dry_run {
                state.console.upkeep_changed();
            }
            maintenance(&staff, &state, Some((dry_run, pruned))).await
        }
        Err(e) => operator_refusal(e),
    }
}

/// A writer that hands what is written to the response in chunks, from a blocking thread.
struct Chunks {
    sender: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = web::Bytes::from(std::mem::take(&mut self.buffer));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the download was abandoned"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// The whole store as `rayo restore` reads it, streamed as it is written (the document is
/// never held whole as text). On sled it is one consistent moment of the store.
async fn backup(staff: Staff, state: web::Data<State>) -> HttpResponse {
    let snapshot = match state.services.operator.backup().await {
        Ok(backup) => backup,
        Err(e) => return operator_refusal(e),
    };
    audit(&state, &staff, "backup.download").await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let written = serde_json::to_writer(&mut out, &snapshot)
            .map_err(std::io::Error::other)
            .and_then(|()| out.flush());
        if let Err(e) = written {
            // The client sees a broken download, never a truncated file that looks whole.
            let _ = sender.blocking_send(Err(e));
        }
    });
    let name = format!(
        "attachment; filename=\"rayo-backup-{}.json\"",
        when(state.services.clock.unix())
            .replace([' ', ':'], "-")
            .trim_end_matches("-UTC")
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CONTENT_DISPOSITION, name))
        .streaming(futures_util::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|chunk| (chunk, r))
        }))
}

// Operators and the audit log.

#[derive(Template)]
#[template(path = "console/operators.html")]
struct OperatorsPage<'a> {
    frame: Frame<'a>,
    operators: Vec<(OperatorView, String)>,
    invites: Vec<(OperatorInvite, String, &'static str)>,
    log: Vec<(AuditEntry, String)>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// Lines of the audit log shown.
const LOG_SHOWN: usize = 200;

async fn operators_page(
    staff: Staff,
    query: web::Query<Done>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    let now = state.services.clock.unix();
    let (operators, invites, log) = match (
        accounts.operators().await,
        accounts.operator_invites().await,
        accounts.audit_log(LOG_SHOWN).await,
    ) {
        (Ok(o), Ok(i), Ok(l)) => (o, i, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return refusal(&e),
    };
    html(
        StatusCode::OK,
        OperatorsPage {
            frame: Frame::of(&staff, "operators"),
            operators: operators
                .into_iter()
                .map(|o| {
                    let seen = o.last_used_at.map_or_else(|| "never".into(), when);
                    (o, seen)
                })
                .collect(),
            invites: invites
                .into_iter()
                .map(|i| {
                    let status = i.status(now);
                    (i.clone(), when(i.expires_at), status)
                })
                .collect(),
            log: log
                .into_iter()
                .map(|e| {
                    let at = when(e.at);
                    (e, at)
                })
                .collect(),
            notice: match query.done.as_str() {
                "removed" => Some("The operator was removed; their sessions ended."),
                _ => None,
            },
        },
    )
}

async fn invite_operator(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    match state
        .services
        .accounts
        .create_operator_invite(staff.name(), OPERATOR_INVITE_LIFETIME)
        .await
    {
        Ok(created) => {
            audit(&state, &staff, &format!("operator.invite {}", created.id)).await;
            let url =
                crate::accounts::OperatorInviteUrl::of(state.admin.console_url.base(), &created)
                    .url;
            html(
                StatusCode::OK,
                super::Message {
                    title: "Operator invite made",
                    message: "Send this URL to the new operator over a channel you trust: it works once, for a day, and gives them the whole server.",
                    secret: Some(&url),
                },
            )
        }
        Err(e) => refusal(&e),
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn remove_operator(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: web::Form<RemoveForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let Ok(name) = Username::parse(&raw) else {
        return message(
            StatusCode::NOT_FOUND,
            "No such operator",
            "That is not an operator's name.",
        );
    };
    if form.confirm.trim() != name.as_str() {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not removed",
            &format!("Type the name '{name}' to confirm."),
        );
    }
    match state.services.accounts.remove_operator(&name).await {
        Ok(()) => {
            audit(&state, &staff, &format!("operator.remove {name}")).await;
            back_to("/admin/operators?done=removed")
        }
        Err(e) => refusal(&e),
    }
}
