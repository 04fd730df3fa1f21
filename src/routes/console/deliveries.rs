//! `/admin/deliveries`: webhook and zap receipt events waiting, delivered and given up, each
//! with its last outcome; redeliver one, or every dead letter (with a typed confirmation).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::invoices::{event_row, EventRow};
use super::{audit, back_to, form_allowed, message, operator_refusal, typed, when, Frame, Staff};
use crate::domain::{DeliveryName, EventId};
use crate::operator::{WebhookQuery, WebhookView};
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/deliveries", web::get().to(deliveries_page))
        .route("/deliveries/redeliver-dead", web::post().to(redeliver_dead))
        .route("/deliveries/{id}", web::get().to(delivery_page))
        .route("/deliveries/{id}/redeliver", web::post().to(redeliver));
}

/// Listed at once, newest first.
const LISTED: usize = 200;
/// Dead letters redelivered by one press.
const REDELIVERED_AT_MOST: usize = 1000;

#[derive(Deserialize, Default)]
struct DeliveriesQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    done: String,
}

struct Row {
    view: WebhookView,
    created: String,
    next: String,
}

#[derive(Template)]
#[template(path = "console/deliveries.html")]
struct DeliveriesPage<'a> {
    frame: Frame<'a>,
    state: &'a str,
    rows: Vec<Row>,
    dead: usize,
    notice: Option<String>,
}

async fn deliveries_page(
    staff: Staff,
    query: web::Query<DeliveriesQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let wanted = match query.state.trim() {
        "" => None,
        raw => match raw.parse::<DeliveryName>() {
            Ok(name) => Some(name),
            Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, "That did not work", &e),
        },
    };
    let operator = &state.services.operator;
    let listed = operator
        .webhooks(WebhookQuery {
            state: wanted,
            limit: Some(LISTED),
            ..WebhookQuery::default()
        })
        .await;
    let rows = match listed {
        Ok(views) => views
            .into_iter()
            .map(|view| Row {
                created: when(view.created_at),
                next: if view.finished_at.is_none() {
                    when(view.next_attempt_at)
                } else {
                    "-".into()
                },
                view,
            })
            .collect(),
        Err(e) => return operator_refusal(e),
    };
    let counts = state
        .console
        .counts_now(&state.services)
        .await
        .unwrap_or_default();
    let notice = match query.done.as_str() {
        "redelivered" => Some("The event is on its way again.".to_owned()),
        done => done
            .strip_prefix("redelivered-")
            .and_then(|n| n.parse::<usize>().ok())
            .map(|n| format!("{n} dead letters are on their way again.")),
    };
    html(
        StatusCode::OK,
        DeliveriesPage {
            frame: Frame::of(&staff, "deliveries"),
            state: query.state.trim(),
            rows,
            dead: counts.dead_letters as usize,
            notice,
        },
    )
}

#[derive(Template)]
#[template(path = "console/delivery.html")]
struct DeliveryPage<'a> {
    frame: Frame<'a>,
    event: EventRow,
    body: String,
}

fn event_id(raw: &str) -> Result<EventId, Box<HttpResponse>> {
    raw.parse()
        .map_err(|e: String| Box::new(message(StatusCode::NOT_FOUND, "No such event", &e)))
}

async fn delivery_page(
    staff: Staff,
    raw: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    let id = match event_id(&raw) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match state.services.operator.webhook(&id).await {
        Ok(view) => html(
            StatusCode::OK,
            DeliveryPage {
                frame: Frame::of(&staff, "deliveries"),
                body: view.body.clone().unwrap_or_default(),
                event: event_row(view),
            },
        ),
        Err(e) => operator_refusal(e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn redeliver(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let id = match event_id(&raw) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match state.services.operator.retry_webhook(&id).await {
        Ok(_) => {
            audit(&state, &staff, &format!("webhook.redeliver {id}")).await;
            back_to(&format!("/admin/deliveries/{id}?done=redelivered"))
        }
        Err(e) => operator_refusal(e),
    }
}

#[derive(Deserialize)]
struct AllForm {
    csrf: String,
    /// `redeliver`, typed: every dead letter goes out again at once.
    #[serde(default)]
    confirm: String,
}

async fn redeliver_dead(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<AllForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    if let Err(refused) = typed(
        &form.confirm,
        "redeliver",
        "Nothing was sent",
        ": every dead letter goes out again at once.",
    ) {
        return *refused;
    }
    let operator = &state.services.operator;
    let dead = match operator
        .webhooks(WebhookQuery {
            state: Some(DeliveryName::Dead),
            limit: Some(REDELIVERED_AT_MOST),
            ..WebhookQuery::default()
        })
        .await
    {
        Ok(dead) => dead,
        Err(e) => return operator_refusal(e),
    };
    let mut sent = 0;
    for view in &dead {
        if let Ok(id) = view.id.parse::<EventId>() {
            match operator.retry_webhook(&id).await {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::warn!(event = %id, error = %e, "could not redeliver a dead letter")
                }
            }
        }
    }
    audit(
        &state,
        &staff,
        &format!("webhook.redeliver_dead ({sent} events)"),
    )
    .await;
    back_to(&format!(
        "/admin/deliveries?state=pending&done=redelivered-{sent}"
    ))
}
