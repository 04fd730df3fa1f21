//! Joining and signing in: `/join/{token}` (and `/join` where sign-up is open), `/login`
//! with a passkey or a Lightning wallet (LNURL-auth), `/auth/lnurl` (the wallet's callback),
//! and `/logout`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{
    agent, at, cookie, form_checks, json_refusal, public_url, read_cookie, redirect, refusal,
    removal, signed_in, with_session, LNURL_WAIT, SESSION,
};
use crate::accounts::{AccountError, LoginAction, LoginWait};
use crate::config::Signup;
use crate::routes::pages::{from_another_site, html, qr};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/join").route(web::get().to(join_open)))
        .service(at("/join/start").route(web::post().to(join_start)))
        .service(at("/join/finish").route(web::post().to(join_finish)))
        .service(at("/join/wallet").route(web::post().to(join_wallet)))
        .service(at("/join/{token}").route(web::get().to(join_page)))
        .service(at("/login").route(web::get().to(login_page)))
        .service(at("/login/passkey/start").route(web::post().to(passkey_start)))
        .service(at("/login/passkey/finish").route(web::post().to(passkey_finish)))
        .service(
            at("/login/lnurl")
                .route(web::get().to(lnurl_status))
                .route(web::post().to(lnurl_continue)),
        )
        .service(at("/logout").route(web::post().to(logout)))
        // The wallet's callback: an LNURL endpoint, answered as LNURL endpoints are.
        .service(web::resource("/auth/lnurl").route(web::get().to(lnurl_callback)));
}

#[derive(Template)]
#[template(path = "account/join.html")]
struct JoinPage<'a> {
    domain: &'a str,
    /// The invite's token, for the script (empty: open sign-up).
    token: &'a str,
    /// The name the invite gives, if it fixes one.
    fixed_name: Option<String>,
    handing_over: bool,
}

async fn join_page(
    req: HttpRequest,
    token: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    let accounts = &state.services.accounts;
    let invite = match accounts.invite(&token).await {
        Ok(invite) => invite,
        Err(e) => return refusal(&state, &e),
    };
    let url = public_url(&req, &state);
    html(
        StatusCode::OK,
        JoinPage {
            domain: url.domain().as_str(),
            token: &token,
            fixed_name: invite
                .for_user
                .clone()
                .or(invite.name.clone())
                .map(|n| n.to_string()),
            handing_over: invite.for_user.is_some(),
        },
    )
}

async fn join_open(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if state.services.accounts.signup != Signup::Open {
        return super::message(
            &state,
            StatusCode::NOT_FOUND,
            "Joining needs an invite",
            "Ask the operator of this server for an invite link.",
        );
    }
    let url = public_url(&req, &state);
    html(
        StatusCode::OK,
        JoinPage {
            domain: url.domain().as_str(),
            token: "",
            fixed_name: None,
            handing_over: false,
        },
    )
}

#[derive(Deserialize)]
struct JoinStart {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
}

/// Ceremonies are JSON from this site's own script: a cross-site form cannot send JSON, and a
/// cross-site script is refused by `from_another_site`.
fn cross_site(req: &HttpRequest, state: &State) -> Option<HttpResponse> {
    from_another_site(req, state).then(|| {
        HttpResponse::Forbidden()
            .json(serde_json::json!({"error": "Requests from other sites are refused."}))
    })
}

async fn join_start(
    req: HttpRequest,
    body: web::Json<JoinStart>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    let url = public_url(&req, &state);
    let accounts = &state.services.accounts;
    let client = state.client(&req);
    let token = (!body.token.is_empty()).then_some(body.token.as_str());
    match accounts.start_join(token, &body.name, url, client).await {
        Ok((challenge, options)) => {
            HttpResponse::Ok().json(serde_json::json!({"challenge": challenge, "options": options}))
        }
        Err(e) => json_refusal(&e),
    }
}

#[derive(Deserialize)]
struct Finish<C> {
    challenge: String,
    credential: C,
}

fn signed_in_answer(
    state: &State,
    req: &HttpRequest,
    started: &crate::accounts::SessionStarted,
) -> HttpResponse {
    let url = public_url(req, state);
    let lifetime = state.services.settings.session_lifetime.as_secs();
    with_session(
        HttpResponse::Ok().json(serde_json::json!({"next": "/account"})),
        url,
        started,
        lifetime,
    )
}

async fn join_finish(
    req: HttpRequest,
    body: web::Json<Finish<RegisterPublicKeyCredential>>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    let services = &state.services;
    match services
        .accounts
        .finish_join(
            &services.operator,
            &body.challenge,
            &body.credential,
            &agent(&req),
        )
        .await
    {
        Ok(started) => signed_in_answer(&state, &req, &started),
        Err(e) => json_refusal(&e),
    }
}

#[derive(Deserialize)]
struct JoinWallet {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
}

/// Joining with a Lightning wallet instead of a passkey (and without JavaScript): the name is
/// checked now, and the wallet's signature makes the account (see `lnurl_auth_callback`).
async fn join_wallet(
    req: HttpRequest,
    form: web::Form<JoinWallet>,
    state: web::Data<State>,
) -> HttpResponse {
    if from_another_site(&req, &state) {
        return super::message(
            &state,
            StatusCode::FORBIDDEN,
            "Refused",
            "Forms on other sites cannot make accounts here.",
        );
    }
    let url = public_url(&req, &state);
    let accounts = &state.services.accounts;
    let client = state.client(&req);
    let token = (!form.token.is_empty()).then_some(form.token.as_str());
    let (invite, name, domain) = match accounts.joining(token, &form.name, url, client).await {
        Ok(joining) => joining,
        Err(e) => return refusal(&state, &e),
    };
    let action = LoginAction::Join {
        invite,
        name,
        domain,
    };
    let auth = match accounts.start_lnurl_auth(action, url, client).await {
        Ok(auth) => auth,
        Err(e) => return refusal(&state, &e),
    };
    super::security::wallet_code(url, auth, "Join with a Lightning wallet", "Scan this with your wallet: its signature makes your account, and signs you in from then on.")
}

#[derive(Template)]
#[template(path = "account/login.html")]
struct LoginPage<'a> {
    domain: &'a str,
    lnurl: String,
    qr_svg: String,
    /// Where sign-up is open, a link to it.
    open_signup: bool,
    error: Option<&'a str>,
}

async fn login_page(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if signed_in(&req, &state).await.is_some() {
        return redirect("/account");
    }
    let url = public_url(&req, &state);
    let accounts = &state.services.accounts;
    let auth = match accounts
        .start_lnurl_auth(LoginAction::Login, url, state.client(&req))
        .await
    {
        Ok(auth) => auth,
        Err(e) => return refusal(&state, &e),
    };
    let mut page = html(
        StatusCode::OK,
        LoginPage {
            domain: url.domain().as_str(),
            qr_svg: qr::svg(&format!("LIGHTNING:{}", auth.lnurl)),
            lnurl: auth.lnurl,
            open_signup: accounts.signup == Signup::Open,
            error: None,
        },
    );
    let waiting = format!("{}.{}", auth.k1, auth.browser_secret);
    let _ = page.add_cookie(&cookie(
        url,
        LNURL_WAIT,
        waiting,
        crate::accounts::CHALLENGE_LIFETIME,
    ));
    page
}

async fn passkey_start(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    let url = public_url(&req, &state);
    match state
        .services
        .accounts
        .start_sign_in(url, state.client(&req))
        .await
    {
        Ok((challenge, options)) => {
            HttpResponse::Ok().json(serde_json::json!({"challenge": challenge, "options": options}))
        }
        Err(e) => json_refusal(&e),
    }
}

async fn passkey_finish(
    req: HttpRequest,
    body: web::Json<Finish<PublicKeyCredential>>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req, &state) {
        return refused;
    }
    match state
        .services
        .accounts
        .finish_sign_in(
            &body.challenge,
            &body.credential,
            state.client(&req),
            &agent(&req),
        )
        .await
    {
        Ok(started) => signed_in_answer(&state, &req, &started),
        Err(e) => json_refusal(&e),
    }
}

/// What the login page's browser learns about its `k1` (from its own cookie).
async fn lnurl_wait(req: &HttpRequest, state: &State) -> Result<(LoginWait, bool), AccountError> {
    let url = public_url(req, state);
    let Some(waiting) = read_cookie(req, url, LNURL_WAIT) else {
        return Ok((LoginWait::Gone, false));
    };
    let Some((k1, secret)) = waiting.split_once('.') else {
        return Ok((LoginWait::Gone, true));
    };
    Ok((
        state
            .services
            .accounts
            .lnurl_auth_wait(k1, secret, &agent(req))
            .await?,
        true,
    ))
}

/// Polled by the login page's script.
async fn lnurl_status(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let url = public_url(&req, &state);
    let lifetime = state.services.settings.session_lifetime.as_secs();
    match lnurl_wait(&req, &state).await {
        Ok((LoginWait::SignedIn(started), _)) => {
            let mut answer = with_session(
                HttpResponse::Ok()
                    .json(serde_json::json!({"status": "signed_in", "next": "/account"})),
                url,
                &started,
                lifetime,
            );
            let _ = answer.add_cookie(&removal(url, LNURL_WAIT));
            answer
        }
        Ok((LoginWait::Waiting, _)) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "waiting"}))
        }
        Ok((LoginWait::Linked, _)) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "linked", "next": "/account"}))
        }
        Ok((LoginWait::Refused(why), _)) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "refused", "reason": why}))
        }
        Ok((LoginWait::Gone, _)) => HttpResponse::Ok().json(serde_json::json!({"status": "gone"})),
        Err(e) => json_refusal(&e),
    }
}

/// Without a script: the person presses "I have signed in" after scanning.
async fn lnurl_continue(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if from_another_site(&req, &state) {
        return super::message(
            &state,
            StatusCode::FORBIDDEN,
            "Refused",
            "Forms on other sites cannot sign you in.",
        );
    }
    let url = public_url(&req, &state);
    let lifetime = state.services.settings.session_lifetime.as_secs();
    match lnurl_wait(&req, &state).await {
        Ok((LoginWait::SignedIn(started), _)) => with_session(redirect("/account"), url, &started, lifetime),
        Ok((LoginWait::Linked, _)) => redirect("/account"),
        Ok((LoginWait::Waiting, _)) => super::message(&state, StatusCode::ACCEPTED, "Not yet", "Your wallet has not signed in yet. Scan the code with it, then press the button again."),
        Ok((LoginWait::Refused(why), _)) => super::message(&state, StatusCode::FORBIDDEN, "Sign-in refused", &why),
        Ok((LoginWait::Gone, _)) => redirect("/login"),
        Err(e) => refusal(&state, &e),
    }
}

#[derive(Deserialize)]
struct WalletCall {
    #[serde(default)]
    k1: String,
    #[serde(default)]
    sig: String,
    #[serde(default)]
    key: String,
}

/// LUD-04: the wallet's signed answer. LNURL errors are HTTP 200 with a reason.
async fn lnurl_callback(query: web::Query<WalletCall>, state: web::Data<State>) -> HttpResponse {
    let answer = match state
        .services
        .accounts
        .lnurl_auth_callback(&state.services.operator, &query.k1, &query.sig, &query.key)
        .await
    {
        Ok(()) => serde_json::json!({"status": "OK"}),
        Err(e) => serde_json::json!({"status": "ERROR", "reason": e.to_string()}),
    };
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(answer)
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    req: HttpRequest,
    form: web::Form<CsrfOnly>,
    state: web::Data<State>,
) -> HttpResponse {
    let url = public_url(&req, &state);
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &form.csrf) {
        return *refused;
    }
    if let Err(e) = state.services.accounts.end_session(&me.token).await {
        return refusal(&state, &e);
    }
    let mut answer = redirect("/login");
    let _ = answer.add_cookie(&removal(url, SESSION));
    answer
}
