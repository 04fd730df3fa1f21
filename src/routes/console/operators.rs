//! `/admin/operators`: who runs the server, inviting and removing operators, and the audit
//! log (what `rayo audit` prints).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{audit, back_to, form_allowed, message, refusal, typed, when, Frame, Staff};
use crate::accounts::{AuditEntry, OperatorInvite, OperatorView, OPERATOR_INVITE_LIFETIME};
use crate::domain::Username;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operators", web::get().to(operators_page))
        .route("/operators/invite", web::post().to(invite_operator))
        .route("/operators/{name}/remove", web::post().to(remove_operator));
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

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
    if let Err(refused) = typed(&form.confirm, name.as_str(), "Not removed", ".") {
        return *refused;
    }
    match state.services.accounts.remove_operator(&name).await {
        Ok(()) => {
            audit(&state, &staff, &format!("operator.remove {name}")).await;
            back_to("/admin/operators?done=removed")
        }
        Err(e) => refusal(&e),
    }
}
