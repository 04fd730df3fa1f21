//! `/admin/maintenance` and `/admin/backup`: the retention rules, a prune (a dry run first),
//! a streamed backup that `rayo restore` reads, and on PostgreSQL `rayo db status`.

use std::io::Write;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{audit, form_allowed, message, operator_refusal, typed, when, Frame, Staff};
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/maintenance", web::get().to(maintenance_page))
        .route("/maintenance/prune", web::post().to(prune))
        .route("/backup", web::get().to(backup));
}

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
    let dry_run = match form.mode.as_str() {
        "dry-run" => true,
        "prune" => {
            if let Err(refused) = typed(
                &form.confirm,
                "prune",
                "Nothing was removed",
                ": what a prune removes is gone for good. A dry run first shows how much.",
            ) {
                return *refused;
            }
            false
        }
        _ => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That did not work",
                "Pick a dry run or a prune.",
            )
        }
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
