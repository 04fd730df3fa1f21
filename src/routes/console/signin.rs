//! Operators joining by invite and signing in, with passkeys only: `/admin/join/{token}`,
//! `/admin/login`, `/admin/logout`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{
    audit, audit_as, form_allowed, from_of, message, refusal, OnConsole, Staff, CONSOLE_SESSION,
};
use crate::routes::account::{agent, cookie, json_refusal, read_cookie, redirect, removal};
use crate::routes::pages::{from_another_site, html};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login/start", web::post().to(login_start))
        .route("/login/finish", web::post().to(login_finish))
        .route("/join/start", web::post().to(join_start))
        .route("/join/finish", web::post().to(join_finish))
        .route("/join/{token}", web::get().to(join_page))
        .route("/logout", web::post().to(logout));
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage;

async fn login_page(_: OnConsole, req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    // Already signed in: straight to the overview.
    if let Some(token) = read_cookie(&req, &state.admin.console_url, CONSOLE_SESSION) {
        if let Ok(Some(_)) = state.services.accounts.console_session(&token).await {
            return redirect("/admin/");
        }
    }
    html(StatusCode::OK, LoginPage)
}

#[derive(Template)]
#[template(path = "console/join.html")]
struct JoinPage<'a> {
    token: &'a str,
}

async fn join_page(
    _: OnConsole,
    token: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    if !state
        .services
        .accounts
        .operator_invite_is_usable(&token)
        .await
    {
        return message(
            StatusCode::NOT_FOUND,
            "This invite cannot be used",
            "It has been used or has expired. Ask an operator for a new one, or run `rayo operator invite` on the server.",
        );
    }
    html(StatusCode::OK, JoinPage { token: &token })
}

fn cross_site(req: &HttpRequest, state: &State) -> Option<HttpResponse> {
    from_another_site(req, state).then(|| {
        HttpResponse::Forbidden()
            .json(serde_json::json!({"error": "Requests from other sites are refused."}))
    })
}

#[derive(Deserialize)]
struct JoinStart {
    token: String,
    name: String,
}

#[derive(Deserialize)]
struct Finish<C> {
    challenge: String,
    credential: C,
}

async fn join_start(
    _: OnConsole,
    req: HttpRequest,
    body: web::Json<JoinStart>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    match state
        .services
        .accounts
        .start_operator_join(&body.token, &body.name, state.client(&req))
        .await
    {
        Ok((challenge, options)) => {
            HttpResponse::Ok().json(serde_json::json!({"challenge": challenge, "options": options}))
        }
        Err(e) => json_refusal(&e),
    }
}

/// The answer that starts a console session: its cookie, and where the script goes next.
fn signed_in(state: &State, started: &crate::accounts::SessionStarted) -> HttpResponse {
    let lifetime = state.services.settings.session_lifetime.as_secs();
    let mut answer = HttpResponse::Ok().json(serde_json::json!({"next": "/admin/"}));
    let _ = answer.add_cookie(&cookie(
        &state.admin.console_url,
        CONSOLE_SESSION,
        started.token.clone(),
        lifetime,
    ));
    answer
}

async fn join_finish(
    _: OnConsole,
    req: HttpRequest,
    body: web::Json<Finish<RegisterPublicKeyCredential>>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    let accounts = &state.services.accounts;
    match accounts
        .finish_operator_join(&body.challenge, &body.credential, &agent(&req))
        .await
    {
        Ok((operator, started)) => {
            let what = format!(
                "operator.join {} (invited by {})",
                operator.name, operator.invited_by
            );
            audit_as(
                &state,
                operator.name.as_str(),
                &from_of(&req, &state),
                &what,
            )
            .await;
            signed_in(&state, &started)
        }
        Err(e) => json_refusal(&e),
    }
}

async fn login_start(_: OnConsole, req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    match state
        .services
        .accounts
        .start_operator_sign_in(state.client(&req))
        .await
    {
        Ok((challenge, options)) => {
            HttpResponse::Ok().json(serde_json::json!({"challenge": challenge, "options": options}))
        }
        Err(e) => json_refusal(&e),
    }
}

async fn login_finish(
    _: OnConsole,
    req: HttpRequest,
    body: web::Json<Finish<PublicKeyCredential>>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    let accounts = &state.services.accounts;
    match accounts
        .finish_operator_sign_in(
            &body.challenge,
            &body.credential,
            state.client(&req),
            &agent(&req),
        )
        .await
    {
        Ok((operator, started)) => {
            audit_as(
                &state,
                operator.name.as_str(),
                &from_of(&req, &state),
                "sign in",
            )
            .await;
            signed_in(&state, &started)
        }
        Err(e) => json_refusal(&e),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<CsrfOnly>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    if let Err(e) = state
        .services
        .accounts
        .end_session_in(crate::accounts::Realm::Console, &staff.token)
        .await
    {
        return refusal(&e);
    }
    audit(&state, &staff, "sign out").await;
    let mut answer = redirect("/admin/login");
    let _ = answer.add_cookie(&removal(&state.admin.console_url, CONSOLE_SESSION));
    answer
}
