//! The links notifications carry, opened without a sign-in: confirming an email address for
//! payment alerts, and turning a channel off (RFC 8058 one-click unsubscribe). Opening a link
//! (GET) only shows a button: mail scanners that fetch every link change nothing. The POST
//! acts; the MAC in its query authorizes it, for exactly this person and channel.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::at;
use crate::domain::Username;
use crate::operator::OperatorError;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        at("/notify/confirm")
            .route(web::get().to(confirm_page))
            .route(web::post().to(confirm)),
    )
    .service(
        at("/notify/unsubscribe")
            .route(web::get().to(unsubscribe_page))
            .route(web::post().to(unsubscribe)),
    );
}

#[derive(Template)]
#[template(path = "account/notify_link.html")]
struct LinkPage<'a> {
    domain: &'a str,
    title: &'a str,
    message: &'a str,
    button: Option<&'a str>,
    action: &'a str,
}

fn page(
    state: &State,
    status: StatusCode,
    title: &str,
    message: &str,
    button: Option<&str>,
    action: &str,
) -> HttpResponse {
    html(
        status,
        LinkPage {
            domain: state.services.directory.public_url().domain().as_str(),
            title,
            message,
            button,
            action,
        },
    )
}

#[derive(Deserialize)]
struct ConfirmQuery {
    u: String,
    a: String,
    x: u64,
    t: String,
}

#[derive(Deserialize)]
struct UnsubscribeQuery {
    u: String,
    c: String,
    t: String,
}

fn action(req: &actix_web::HttpRequest) -> String {
    format!("{}?{}", req.path(), req.query_string())
}

fn refused(state: &State, e: OperatorError) -> HttpResponse {
    let status = match e {
        OperatorError::NotFound(_) => StatusCode::NOT_FOUND,
        OperatorError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let words = match e {
        OperatorError::Store(_) => {
            "Something went wrong on our side. Try the link again in a minute.".to_owned()
        }
        other => other.to_string(),
    };
    page(state, status, "This link did not work", &words, None, "")
}

fn bad_link(state: &State) -> HttpResponse {
    page(
        state,
        StatusCode::BAD_REQUEST,
        "This link did not work",
        "This link is not valid: it may have been cut short when it was copied.",
        None,
        "",
    )
}

async fn confirm_page(
    req: actix_web::HttpRequest,
    state: web::Data<State>,
    query: Option<web::Query<ConfirmQuery>>,
) -> HttpResponse {
    let Some(query) = query else {
        return bad_link(&state);
    };
    // Checked before anything is shown: a forged link puts no words on this site.
    let Ok(name) = Username::parse(&query.u) else {
        return bad_link(&state);
    };
    let now = state.services.clock.unix();
    let links = state.services.notifier.links();
    if let Err(e) = links.check_confirm(&name, &query.a, query.x, &query.t, now) {
        return page(
            &state,
            StatusCode::BAD_REQUEST,
            "This link did not work",
            &e.to_string(),
            None,
            "",
        );
    }
    let message = format!("Send payment alerts for {name} to {}?", query.a);
    page(
        &state,
        StatusCode::OK,
        "Confirm your address",
        &message,
        Some("Yes, send them here"),
        &action(&req),
    )
}

async fn confirm(state: web::Data<State>, query: Option<web::Query<ConfirmQuery>>) -> HttpResponse {
    let Some(query) = query else {
        return bad_link(&state);
    };
    let Ok(name) = Username::parse(&query.u) else {
        return bad_link(&state);
    };
    match state
        .services
        .operator
        .confirm_email(&name, &query.a, query.x, &query.t)
        .await
    {
        Ok(()) => page(
            &state,
            StatusCode::OK,
            "Address confirmed",
            &format!("Payment alerts for {name} will be mailed to {}.", query.a),
            None,
            "",
        ),
        Err(e) => refused(&state, e),
    }
}

async fn unsubscribe_page(
    req: actix_web::HttpRequest,
    state: web::Data<State>,
    query: Option<web::Query<UnsubscribeQuery>>,
) -> HttpResponse {
    let Some(query) = query else {
        return bad_link(&state);
    };
    let Ok(name) = Username::parse(&query.u) else {
        return bad_link(&state);
    };
    let links = state.services.notifier.links();
    if links.check_unsubscribe(&name, &query.c, &query.t).is_err() {
        return bad_link(&state);
    }
    let message = format!("Stop payment alerts for {name} through {}?", query.c);
    page(
        &state,
        StatusCode::OK,
        "Turn off payment alerts",
        &message,
        Some("Turn them off"),
        &action(&req),
    )
}

/// The form's button, or a mail client's one-click POST (`List-Unsubscribe=One-Click`).
async fn unsubscribe(
    state: web::Data<State>,
    query: Option<web::Query<UnsubscribeQuery>>,
) -> HttpResponse {
    let Some(query) = query else {
        return bad_link(&state);
    };
    let Ok(name) = Username::parse(&query.u) else {
        return bad_link(&state);
    };
    match state.services.operator.unsubscribe(&name, &query.c, &query.t).await {
        Ok(()) => page(
            &state,
            StatusCode::OK,
            "Alerts turned off",
            &format!("Nothing more goes to {} for {name}. You can turn alerts on again on your account page.", query.c),
            None,
            "",
        ),
        Err(e) => refused(&state, e),
    }
}
