//! The account page's forms for signing in and leaving: passkeys, linked wallets, sessions,
//! deleting the account.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::page::{render, Csrf, Rename};
use super::{
    at, form_checks, json_refusal, public_url, redirect, refusal, signed_in, signed_in_script,
};
use crate::accounts::{LoginAction, PaymentFilter};
use crate::routes::pages::{html, qr};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account/passkeys/start").route(web::post().to(passkey_start)))
        .service(at("/account/passkeys/finish").route(web::post().to(passkey_finish)))
        .service(at("/account/passkeys/{id}/rename").route(web::post().to(passkey_rename)))
        .service(at("/account/passkeys/{id}/remove").route(web::post().to(passkey_remove)))
        .service(at("/account/wallets/link").route(web::get().to(wallet_link)))
        .service(at("/account/wallets/{key}/rename").route(web::post().to(wallet_rename)))
        .service(at("/account/wallets/{key}/remove").route(web::post().to(wallet_remove)))
        .service(at("/account/sessions/{id}/end").route(web::post().to(session_end)))
        .service(at("/account/sessions/end-others").route(web::post().to(sessions_end_others)))
        .service(at("/account/delete").route(web::post().to(delete)));
}

async fn passkey_start(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let me = match signed_in_script(&req, &state).await {
        Ok(me) => me,
        Err(refused) => return refused,
    };
    let url = public_url(&req, &state);
    match state
        .services
        .accounts
        .start_add_passkey(&me.session.user, url)
        .await
    {
        Ok((challenge, options)) => {
            HttpResponse::Ok().json(serde_json::json!({"challenge": challenge, "options": options}))
        }
        Err(e) => json_refusal(&e),
    }
}

#[derive(Deserialize)]
struct AddPasskey {
    challenge: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    label: String,
}

async fn passkey_finish(
    req: HttpRequest,
    body: web::Json<AddPasskey>,
    state: web::Data<State>,
) -> HttpResponse {
    let me = match signed_in_script(&req, &state).await {
        Ok(me) => me,
        Err(refused) => return refused,
    };
    let label = if body.label.trim().is_empty() {
        "Passkey"
    } else {
        body.label.as_str()
    };
    match state
        .services
        .accounts
        .finish_add_passkey(&me.session.user, &body.challenge, &body.credential, label)
        .await
    {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"next": "/account?done=passkey"})),
        Err(e) => json_refusal(&e),
    }
}

async fn passkey_rename(
    req: HttpRequest,
    id: web::Path<String>,
    post: web::Form<Rename>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts
            .rename_passkey(&me.session.user, &id, &post.label)
            .await,
        "passkey"
    )
}

async fn passkey_remove(
    req: HttpRequest,
    id: web::Path<String>,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts.remove_passkey(&me.session.user, &id).await,
        "removed"
    )
}

#[derive(Template)]
#[template(path = "account/link.html")]
struct LinkPage<'a> {
    domain: &'a str,
    title: &'a str,
    text: &'a str,
    lnurl: String,
    qr_svg: String,
}

/// A page with an LNURL-auth code for a wallet to scan, and the cookie that lets only this
/// browser collect the outcome.
pub(super) fn wallet_code(
    url: &crate::config::PublicUrl,
    auth: crate::accounts::LnurlAuth,
    title: &str,
    text: &str,
) -> HttpResponse {
    let mut page = html(
        StatusCode::OK,
        LinkPage {
            domain: url.domain().as_str(),
            title,
            text,
            qr_svg: qr::svg(&format!("LIGHTNING:{}", auth.lnurl)),
            lnurl: auth.lnurl,
        },
    );
    let waiting = format!("{}.{}", auth.k1, auth.browser_secret);
    let _ = page.add_cookie(&super::cookie(
        url,
        super::LNURL_WAIT,
        waiting,
        crate::accounts::CHALLENGE_LIFETIME,
    ));
    page
}

/// A page with a fresh `k1` to link a wallet with (as the login page has one to sign in with).
async fn wallet_link(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    let url = public_url(&req, &state);
    let action = LoginAction::Link(me.session.user.clone());
    let auth = match state
        .services
        .accounts
        .start_lnurl_auth(action, url, state.client(&req))
        .await
    {
        Ok(auth) => auth,
        Err(e) => return refusal(&state, &e),
    };
    wallet_code(
        url,
        auth,
        "Link a Lightning wallet",
        "Scan this with your wallet: it signs in to this account from then on.",
    )
}

async fn wallet_rename(
    req: HttpRequest,
    key: web::Path<String>,
    post: web::Form<Rename>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts
            .rename_wallet(&me.session.user, &key, &post.label)
            .await,
        "passkey"
    )
}

async fn wallet_remove(
    req: HttpRequest,
    key: web::Path<String>,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts.remove_wallet(&me.session.user, &key).await,
        "removed"
    )
}

async fn session_end(
    req: HttpRequest,
    id: web::Path<String>,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts.end_session_by_id(&me.session.user, &id).await,
        "session"
    )
}

async fn sessions_end_others(
    req: HttpRequest,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    form!(
        req,
        state,
        &post.csrf,
        |me| accounts
            .end_sessions(&me.session.user, Some(&me.token))
            .await,
        "sessions"
    )
}

#[derive(Deserialize)]
struct DeletePost {
    #[serde(default)]
    csrf: String,
    /// The person types their name to confirm.
    #[serde(default)]
    confirm: String,
}

async fn delete(
    req: HttpRequest,
    post: web::Form<DeletePost>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &post.csrf) {
        return *refused;
    }
    if post.confirm.trim() != me.session.user.as_str() {
        return render(
            &req,
            &state,
            &me,
            &PaymentFilter::default(),
            None,
            Some(format!(
                "To delete your account, type its name, {}, in the box.",
                me.session.user
            )),
        )
        .await;
    }
    let services = &state.services;
    match services
        .accounts
        .delete_account(&services.operator, &me.session.user)
        .await
    {
        Ok(()) => {
            let url = public_url(&req, &state);
            let mut answer = super::message(&state, StatusCode::OK, "Your account is deleted", "Your address no longer takes payments, and your passkeys and sessions are gone. Payments already received stay on record as the server's retention says.");
            let _ = answer.add_cookie(&super::removal(url, super::SESSION));
            answer
        }
        Err(e) => refusal(&state, &e),
    }
}
