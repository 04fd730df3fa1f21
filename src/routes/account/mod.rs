//! The pages of the people behind the addresses: joining by invite, signing in (passkeys,
//! LNURL-auth), and the account page. Thin: each handler parses the request and calls the
//! accounts service (which changes users only through the operator's services). Every answer
//! here is personal: never cached, never framed, and every form that changes state carries
//! the session's CSRF token and comes from this site.

// Before the modules that use it: a macro is seen from where it is written on.
/// Runs a form: the session, the checks, then `act`; on success back to the page (with
/// `done`), on refusal the page again with the error beside the forms.
macro_rules! form {
    ($req:ident, $state:ident, $csrf:expr, |$me:ident| $act:expr, $done:expr) => {{
        let Some($me) = signed_in(&$req, &$state).await else {
            return redirect("/login");
        };
        if let Err(refused) = form_checks(&$req, &$state, &$me.session, $csrf) {
            return *refused;
        }
        match $act {
            Ok(_) => redirect(&format!("/account?done={}", $done)),
            Err(e) => {
                let e: crate::accounts::AccountError = e.into();
                match e {
                    crate::accounts::AccountError::Refused(why) => {
                        render(
                            &$req,
                            &$state,
                            &$me,
                            &PaymentFilter::default(),
                            None,
                            Some(why),
                        )
                        .await
                    }
                    other => refusal(&$state, &other),
                }
            }
        }
    }};
}

mod notifications;
mod notify;
mod page;
mod payments;
mod security;
pub(super) mod settings;
mod signin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::pages::{from_another_site, html, CSP};
use super::{request_host, State};
use crate::accounts::{AccountError, Session, SessionStarted};
use crate::config::PublicUrl;

/// Headers on every account page and answer.
pub(super) fn personal() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/assets/account.js").route(web::get().to(script)))
        .service(web::resource("/assets/jsqr.js").route(web::get().to(qr_reader)));
    signin::configure(cfg);
    page::configure(cfg);
    settings::configure(cfg);
    security::configure(cfg);
    payments::configure(cfg);
    notify::configure(cfg);
    notifications::configure(cfg);
}

/// Form bodies here are small; passkey answers a little larger.
pub(super) const MAX_FORM: usize = 16 * 1024;
pub(super) const MAX_JSON: usize = 64 * 1024;

/// A personal resource: its headers, and its body limits.
fn at(
    path: &str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path)
        .wrap(personal())
        .app_data(web::FormConfig::default().limit(MAX_FORM))
        .app_data(web::JsonConfig::default().limit(MAX_JSON))
}

const SCRIPT: &str = include_str!("../../../templates/assets/account.js");

/// A QR code reader (jsQR), fetched only when someone scans a wallet connection.
const QR_READER: &str = include_str!("../../../templates/assets/jsqr.js");

async fn qr_reader() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(QR_READER)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(SCRIPT)
}

/// The session cookie's name: `__Host-` over https (only this host, only `Secure`, path `/`).
fn cookie_name(url: &PublicUrl, name: &'static str) -> String {
    if url.is_https() {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

const SESSION: &str = "rayo_session";
const LNURL_WAIT: &str = "rayo_k1";

/// The public URL a request came in on (its domain's), else the primary one.
fn public_url<'a>(req: &HttpRequest, state: &'a State) -> &'a PublicUrl {
    let domains = state.services.directory.domains();
    request_host(req)
        .and_then(|host| {
            domains
                .for_host(&host)
                .or_else(|| domains.for_host(host.split(':').next().unwrap_or("")))
        })
        .unwrap_or_else(|| domains.primary())
}

pub(super) fn cookie(
    url: &PublicUrl,
    name: &'static str,
    value: String,
    max_age: u64,
) -> Cookie<'static> {
    Cookie::build(cookie_name(url, name), value)
        .path("/")
        .http_only(true)
        .secure(url.is_https())
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            max_age.min(i64::MAX as u64) as i64,
        ))
        .finish()
}

pub(super) fn removal(url: &PublicUrl, name: &'static str) -> Cookie<'static> {
    let mut gone = cookie(url, name, String::new(), 0);
    gone.make_removal();
    gone
}

pub(super) fn read_cookie(
    req: &HttpRequest,
    url: &PublicUrl,
    name: &'static str,
) -> Option<String> {
    req.cookie(&cookie_name(url, name))
        .map(|c| c.value().to_owned())
}

/// A request's session, if its cookie opens a live one.
struct SignedIn {
    session: Session,
    token: String,
}

async fn signed_in(req: &HttpRequest, state: &State) -> Option<SignedIn> {
    let url = public_url(req, state);
    let token = read_cookie(req, url, SESSION)?;
    let session = state.services.accounts.session(&token).await.ok()??;
    Some(SignedIn { session, token })
}

/// Sets the cookie of a session just started.
fn with_session(
    mut answer: HttpResponse,
    url: &PublicUrl,
    started: &SessionStarted,
    lifetime: u64,
) -> HttpResponse {
    let _ = answer.add_cookie(&cookie(url, SESSION, started.token.clone(), lifetime));
    answer
}

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

#[derive(Template)]
#[template(path = "account/message.html")]
struct Message<'a> {
    domain: &'a str,
    title: &'a str,
    message: &'a str,
    /// A secret shown this once (an API key, a webhook secret).
    secret: Option<&'a str>,
    back: &'a str,
}

fn message(state: &State, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    html(
        status,
        Message {
            domain: state.services.directory.public_url().domain().as_str(),
            title,
            message: text,
            secret: None,
            back: "/account",
        },
    )
}

/// Refuses a form post from another site, or without this session's CSRF token.
fn form_checks(
    req: &HttpRequest,
    state: &State,
    session: &Session,
    csrf: &str,
) -> Result<(), Box<HttpResponse>> {
    match form_refusal(req, state, session, csrf) {
        Some(FormRefusal::OtherSite) => Err(Box::new(message(
            state,
            StatusCode::FORBIDDEN,
            "Refused",
            "Forms on other sites cannot change your account.",
        ))),
        Some(FormRefusal::Expired) => Err(Box::new(message(
            state,
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the page and try again.",
        ))),
        None => Ok(()),
    }
}

/// Why a form that changes something is refused.
pub(super) enum FormRefusal {
    /// Posted by a page of another site.
    OtherSite,
    /// Without the session's CSRF token.
    Expired,
}

/// The rule for every form that changes state, on the account pages and in the console: it
/// comes from this site and carries its session's CSRF token.
pub(super) fn form_refusal(
    req: &HttpRequest,
    state: &State,
    session: &Session,
    csrf: &str,
) -> Option<FormRefusal> {
    if from_another_site(req, state) {
        return Some(FormRefusal::OtherSite);
    }
    if !crate::crypto::secrets_match(csrf.as_bytes(), session.csrf.as_bytes()) {
        return Some(FormRefusal::Expired);
    }
    None
}

/// How an accounts error is answered: its status, and words a person can act on (never the
/// inside of a failure, which goes to the log).
pub(super) fn answer_to(e: &AccountError) -> (StatusCode, String) {
    match e {
        AccountError::Refused(why) => (StatusCode::UNPROCESSABLE_ENTITY, why.clone()),
        AccountError::NotFound(what) => (StatusCode::NOT_FOUND, what.clone()),
        AccountError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        AccountError::Store(_) => {
            tracing::error!(error = %e, "an account request failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side. Try again in a moment.".to_owned(),
            )
        }
    }
}

/// An accounts error as a page.
fn refusal(state: &State, e: &AccountError) -> HttpResponse {
    let (status, text) = answer_to(e);
    message(state, status, "That did not work", &text)
}

/// An accounts error as JSON, for the ceremonies' scripts.
pub(super) fn json_refusal(e: &AccountError) -> HttpResponse {
    let (status, text) = answer_to(e);
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .json(serde_json::json!({"error": text}))
}

/// The session of a ceremony's JSON request from this site's script, which sends the session's
/// CSRF token in `X-CSRF-Token`; or the answer that refuses it.
async fn signed_in_script(req: &HttpRequest, state: &State) -> Result<SignedIn, HttpResponse> {
    let Some(me) = signed_in(req, state).await else {
        return Err(
            HttpResponse::Unauthorized().json(serde_json::json!({"error": "Sign in first."}))
        );
    };
    let csrf = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if form_checks(req, state, &me.session, csrf).is_err() {
        return Err(HttpResponse::Forbidden()
            .json(serde_json::json!({"error": "Reload the page and try again."})));
    }
    Ok(me)
}

pub(super) fn agent(req: &HttpRequest) -> String {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_session_cookie_is_secure_and_host_only() {
        let https = PublicUrl::parse("https://pay.example.com").unwrap();
        let made = cookie(&https, SESSION, "token".into(), 60);
        assert_eq!(made.name(), "__Host-rayo_session");
        assert_eq!(made.secure(), Some(true));
        assert_eq!(made.http_only(), Some(true));
        assert_eq!(made.same_site(), Some(SameSite::Lax));
        assert_eq!((made.path(), made.domain()), (Some("/"), None));

        let http = PublicUrl::parse("http://localhost:8080").unwrap();
        let local = cookie(&http, SESSION, "token".into(), 60);
        assert_eq!(local.name(), "rayo_session");
        assert_eq!(local.secure(), Some(false));
        assert_eq!(
            removal(&https, SESSION).max_age(),
            Some(actix_web::cookie::time::Duration::ZERO)
        );
    }
}
