//! `/admin/`: the operator console, a second face of the services the CLI and the admin API
//! use. It lives where the admin API lives (the admin address when there is one, and
//! nowhere else), opens only with an operator's console session (never a person's session,
//! never the admin token), and follows the account pages' rules: no caching, no framing, a
//! CSRF token and this site's origin on every form that changes state. Every change lands in
//! the audit log.

mod backends;
mod charts;
mod deliveries;
mod invites;
mod invoices;
mod maintenance;
mod operators;
mod overview;
mod signin;
mod users;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::account::{
    answer_to, form_refusal, personal, read_cookie, FormRefusal, MAX_FORM, MAX_JSON,
};
use super::pages::html;
use super::State;
use crate::accounts::{AccountError, Session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/assets/console.js").route(web::get().to(script)))
        .service(web::resource("/assets/console.css").route(web::get().to(style)));
    cfg.service(
        web::scope("/admin")
            .wrap(personal())
            .app_data(web::FormConfig::default().limit(MAX_FORM))
            .app_data(web::JsonConfig::default().limit(MAX_JSON))
            .configure(signin::configure)
            .configure(overview::configure)
            // Before the users' routes: `/users/invites` is not a user.
            .configure(invites::configure)
            .configure(users::configure)
            .configure(invoices::configure)
            .configure(deliveries::configure)
            .configure(backends::configure)
            .configure(maintenance::configure)
            .configure(operators::configure)
            .default_service(web::to(not_here)),
    );
}

const SCRIPT: &str = include_str!("../../../templates/assets/console.js");
const STYLE: &str = include_str!("../../../templates/assets/console.css");

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(SCRIPT)
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE)
}

/// The console's cookie: its own name, so a person's session cookie (sent to every port of
/// the same host) is never read here.
const CONSOLE_SESSION: &str = "rayo_console";

/// Why a console request is not served.
#[derive(Debug)]
pub(super) enum Gate {
    /// On the public address while the console has one of its own: it does not exist here.
    Hidden,
    /// No live console session: sign in first.
    SignIn,
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Gate::Hidden => "no such page",
            Gate::SignIn => "sign in first",
        })
    }
}

impl ResponseError for Gate {
    fn error_response(&self) -> HttpResponse {
        match self {
            Gate::Hidden => HttpResponse::NotFound()
                .content_type(ContentType::plaintext())
                .body("no such page"),
            Gate::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin/login"))
                .finish(),
        }
    }
}

fn state_of(req: &HttpRequest) -> Option<web::Data<State>> {
    req.app_data::<web::Data<State>>().cloned()
}

async fn not_here(req: HttpRequest) -> Result<HttpResponse, Gate> {
    let _ = OnConsole::check(&req)?;
    Ok(HttpResponse::NotFound()
        .content_type(ContentType::plaintext())
        .body("no such console page"))
}

/// A request that came in where the console lives (signed in or not).
struct OnConsole;

impl OnConsole {
    fn check(req: &HttpRequest) -> Result<web::Data<State>, Gate> {
        let state = state_of(req).ok_or(Gate::Hidden)?;
        if !state.admin.reachable_from(req) {
            return Err(Gate::Hidden);
        }
        Ok(state)
    }
}

impl FromRequest for OnConsole {
    type Error = Gate;
    type Future = std::future::Ready<Result<Self, Gate>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::check(req).map(|_| OnConsole))
    }
}

/// A signed-in operator: their console session, on the console's address.
pub(super) struct Staff {
    session: Session,
    token: String,
    /// Where the request came from, for the audit log.
    from: String,
}

impl Staff {
    fn name(&self) -> &str {
        self.session.user.as_str()
    }
}

fn from_of(req: &HttpRequest, state: &State) -> String {
    super::client_ip(req, state.services.settings.client_ip_header.as_deref())
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

impl FromRequest for Staff {
    type Error = Gate;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Gate>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = OnConsole::check(&req)?;
            let url = &state.admin.console_url;
            let token = read_cookie(&req, url, CONSOLE_SESSION).ok_or(Gate::SignIn)?;
            let session = state
                .services
                .accounts
                .console_session(&token)
                .await
                .ok()
                .flatten()
                .ok_or(Gate::SignIn)?;
            Ok(Staff {
                session,
                token,
                from: from_of(&req, &state),
            })
        })
    }
}

/// A form that changes something: from the console's own page, with the session's token.
fn form_allowed(
    req: &HttpRequest,
    state: &State,
    staff: &Staff,
    csrf: &str,
) -> Result<(), Box<HttpResponse>> {
    match form_refusal(req, state, &staff.session, csrf) {
        None => Ok(()),
        Some(FormRefusal::OtherSite) => Err(Box::new(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "Forms on other sites cannot act in the console.",
        ))),
        Some(FormRefusal::Expired) => Err(Box::new(message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the page and try again.",
        ))),
    }
}

/// The rule for every destructive action: its confirmation typed as `word`, or a refusal
/// titled `title` that says `why` after asking for the word. Nothing happens without it.
fn typed(confirm: &str, word: &str, title: &str, why: &str) -> Result<(), Box<HttpResponse>> {
    if confirm.trim() == word {
        return Ok(());
    }
    Err(Box::new(message(
        StatusCode::UNPROCESSABLE_ENTITY,
        title,
        &format!("Type '{word}' to confirm{why}"),
    )))
}

/// Writes one line of the audit log for `staff` (a failure to is logged: the action is done).
async fn audit(state: &State, staff: &Staff, what: &str) {
    audit_as(state, staff.name(), &staff.from, what).await;
}

/// Writes one line of the audit log for `who` (an operator just signed in or joined).
async fn audit_as(state: &State, who: &str, from: &str, what: &str) {
    if let Err(e) = state.services.accounts.audit(who, what, from).await {
        tracing::error!(error = %e, what, "could not write the audit log");
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct Message<'a> {
    title: &'a str,
    message: &'a str,
    /// A secret shown this once (an invite's URL).
    secret: Option<&'a str>,
}

fn message(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    html(
        status,
        Message {
            title,
            message: text,
            secret: None,
        },
    )
}

/// An accounts error as a page: what a person can act on (never the inside of a failure).
fn refusal(e: &AccountError) -> HttpResponse {
    let (status, text) = answer_to(e);
    message(status, "That did not work", &text)
}

/// An operator error as a page.
fn operator_refusal(e: crate::operator::OperatorError) -> HttpResponse {
    refusal(&e.into())
}

fn back_to(to: &str) -> HttpResponse {
    super::account::redirect(to)
}

/// What every console page shows around its own part.
pub(super) struct Frame<'a> {
    pub me: &'a str,
    pub csrf: &'a str,
    /// Which section the page is in, for the navigation.
    pub section: &'static str,
    pub sections: &'static [(&'static str, &'static str, &'static str)],
}

impl<'a> Frame<'a> {
    fn of(staff: &'a Staff, section: &'static str) -> Self {
        Self {
            me: staff.name(),
            csrf: &staff.session.csrf,
            section,
            sections: &SECTIONS,
        }
    }

    /// Whether `key` is the page's section.
    pub fn current(&self, key: &str) -> bool {
        key == self.section
    }
}

/// The navigation: `(section, path, label)`.
pub(super) const SECTIONS: [(&str, &str, &str); 8] = [
    ("overview", "/admin/", "Overview"),
    ("users", "/admin/users", "Users"),
    ("invoices", "/admin/invoices", "Invoices"),
    ("deliveries", "/admin/deliveries", "Deliveries"),
    ("backends", "/admin/backends", "Backends"),
    ("prices", "/admin/prices", "Prices"),
    ("maintenance", "/admin/maintenance", "Maintenance"),
    ("operators", "/admin/operators", "Operators"),
];

/// A time as operators read it.
fn when(at: u64) -> String {
    crate::accounts::when(at)
}

/// Parses a date field (`2026-12-07`) as the start of that day, UTC.
fn day_start(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    humantime::parse_rfc3339(&format!("{raw}T00:00:00Z"))
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_field_is_that_day_from_midnight_utc_and_nonsense_is_nothing() {
        assert_eq!(day_start("2026-12-07"), Some(1_796_601_600));
        assert_eq!(day_start(""), None);
        assert_eq!(day_start("yesterday"), None);
        assert_eq!(day_start("2026-13-40"), None);
    }
}
