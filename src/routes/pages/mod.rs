//! Pages for people with a browser: the landing page, each user's pay page, and the checkout
//! page for one invoice. Templates are askama (escaped by default); CSS and the small
//! progressive-enhancement script are served by rayo itself, never from a CDN.

pub(super) mod bip353;
pub(super) mod qr;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Serialize;

use super::{request_host, State};
use crate::domain::{DescriptionSource, Hash32};
use crate::invoices::lookup::{self, Viewer};
use crate::lnurl::FormAmount;
use crate::payments::Ask;

const CSS: &str = include_str!("../../../templates/assets/rayo.css");
const JS: &str = include_str!("../../../templates/assets/rayo.js");
const ICON: &str = include_str!("../../../templates/assets/icon.svg");
/// Pages load only what rayo serves; inline SVG and data: images are the exceptions.
pub(super) const CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub(super) fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

/// The page routes. `/{name}` is registered last by the caller, so it never shadows an
/// endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .wrap(security_headers())
            .route(web::get().to(landing)),
    )
    .service(web::resource("/assets/rayo.css").route(web::get().to(css)))
    .service(web::resource("/assets/rayo.js").route(web::get().to(js)))
    .service(web::resource("/assets/icon.svg").route(web::get().to(icon)))
    .service(web::resource("/favicon.ico").route(web::get().to(icon)))
    .service(
        web::resource("/@{name}")
            .wrap(security_headers())
            .route(web::get().to(pay_page)),
    )
    .service(
        web::resource("/@{name}/offer.svg")
            .wrap(security_headers())
            .route(web::get().to(bip353::offer_qr)),
    )
    .service(
        web::resource("/@{name}/pay")
            .wrap(security_headers())
            .route(web::post().to(pay_form))
            // Only the form's POST makes an invoice: a link, a prefetch or a crawler that
            // GETs this address sees the pay page.
            .route(web::get().to(pay_page)),
    )
    .service(
        web::resource("/pay/{hash}")
            .wrap(security_headers())
            .route(web::get().to(checkout)),
    )
    .service(web::resource("/pay/{hash}/status").route(web::get().to(checkout_status)));
}

/// `/{name}` as a short pay-page address, for names that are users; anything else is 404.
pub fn configure_short_names(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{name}")
            .wrap(security_headers())
            .route(web::get().to(pay_page)),
    );
}

pub(super) fn html(status: StatusCode, page: impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "could not render a page");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound<'a> {
    domain: &'a str,
    message: &'a str,
}

fn not_found(state: &State, message: &str) -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        NotFound {
            domain: state.services.directory.public_url().domain().as_str(),
            message,
        },
    )
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing<'a> {
    domain: &'a str,
    users: Vec<String>,
}

/// The landing page lists at most this many users, by name: a directory of a large server
/// is not a page anyone reads, and building it must stay cheap.
const LISTED_USERS: usize = 500;

async fn landing(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let directory = &state.services.directory;
    let domains = directory.domains();
    let host = request_host(&req);
    let Some(public_url) = (match host.as_deref() {
        Some(host) if domains.is_multi() => domains.for_host(host),
        _ => Some(domains.primary()),
    }) else {
        return not_found(&state, "This server does not serve that domain.");
    };
    let users: Vec<String> = if state.services.settings.list_users {
        directory
            .first_users(LISTED_USERS)
            .await
            .into_iter()
            .filter(|user| !user.disabled)
            .filter(|user| directory.public_url_for(user).domain() == public_url.domain())
            .map(|user| user.name.to_string())
            .collect()
    } else {
        Vec::new()
    };
    html(
        StatusCode::OK,
        Landing {
            domain: public_url.domain().as_str(),
            users,
        },
    )
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

async fn icon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(ICON)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(JS)
}

#[derive(Template)]
#[template(path = "pay.html")]
struct PayPage<'a> {
    domain: &'a str,
    name: &'a str,
    address: String,
    description: &'a str,
    long_description: Option<&'a str>,
    image: Option<String>,
    lnurl: String,
    qr_svg: String,
    min_sats: u64,
    max_sats: u64,
    /// The amount form in the user's currency, when it has a usable rate.
    currency: Option<CurrencyForm>,
    comment_allowed: u16,
    error: Option<String>,
    /// The BIP-353 name and its offer, where the address has one.
    bip353: Option<bip353::Bip353View>,
}

/// The pay page's amount field in the user's currency, with what it is worth in sats.
struct CurrencyForm {
    code: &'static str,
    symbol: &'static str,
    /// The input's step: one smallest unit ("0.01", "1").
    step: String,
    min: String,
    max: String,
    /// One unit of the currency in sats, and the rate, for the line under the field.
    sats_per_unit: String,
    rate: String,
    sources: String,
}

impl CurrencyForm {
    fn of(user: &crate::domain::User, prices: &crate::prices::PriceBook) -> Option<Self> {
        use crate::domain::Decimal;
        use crate::prices::convert;
        let currency = prices.offered(user.currency.as_deref()?)?;
        let rate = prices.rate(currency.code).ok()?;
        let range = crate::lnurl::Sendable::of(user, prices);
        let unit = 10u64.checked_pow(currency.decimals)?;
        let (min, max) = range.in_currency(currency, &rate.price)?;
        let one = convert::to_msat(unit, currency, &rate.price).ok()?;
        Some(Self {
            code: currency.code,
            symbol: currency.symbol,
            step: Decimal::new(1, currency.decimals).to_string(),
            min: Decimal::new(u128::from(min), currency.decimals).to_string(),
            max: Decimal::new(u128::from(max), currency.decimals).to_string(),
            sats_per_unit: Decimal::new(u128::from(one.msat()), 3).to_string(),
            rate: rate.price.to_string(),
            sources: rate.sources.join(", "),
        })
    }
}

async fn render_pay_page(
    state: &State,
    host: Option<&str>,
    name: &str,
    error: Option<String>,
) -> HttpResponse {
    let Ok(profile) = state.services.directory.payable(host, name).await else {
        return not_found(state, "No such Lightning Address here.");
    };
    let user = &profile.user;
    let public_url = state.services.directory.public_url_for(user);
    let lnurl = crate::lnurl::lnurl(public_url, &user.name);
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(
        status,
        PayPage {
            domain: public_url.domain().as_str(),
            name: user.name.as_str(),
            address: crate::lnurl::address(public_url, &user.name),
            description: &user.description,
            long_description: user.long_description.as_deref(),
            image: user
                .image
                .as_ref()
                .map(|i| format!("data:{};base64,{}", i.mime, i.base64)),
            qr_svg: qr::svg(&format!("LIGHTNING:{lnurl}")),
            lnurl,
            min_sats: user.min_sendable.msat().div_ceil(1000).max(1),
            max_sats: user.max_sendable.msat() / 1000,
            currency: CurrencyForm::of(user, &state.services.prices),
            comment_allowed: user.comment_allowed,
            error,
            bip353: bip353::Bip353View::of(&state.services, &user.name).await,
        },
    )
}

async fn pay_page(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    render_pay_page(&state, request_host(&req).as_deref(), &name, None).await
}

#[derive(serde::Deserialize)]
struct PayForm {
    amount: Option<String>,
    /// An amount in the user's currency, in its unit ("1000", "5.00").
    fiat: Option<String>,
    comment: Option<String>,
}

/// Marks an answer that concerns one visitor's payment as theirs alone: never cached, by the
/// browser's back-forward cache or by anything in between.
pub(super) fn private(mut answer: HttpResponse) -> HttpResponse {
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store, private"),
    );
    answer
}

/// Whether a form post comes from a page of another site (submitting the form for a visitor,
/// against their invoice budget). Browsers say where a request comes from in
/// `Sec-Fetch-Site`, and older ones in `Origin`; a client that sends neither is no browser
/// page.
pub(super) fn from_another_site(req: &HttpRequest, state: &State) -> bool {
    let said = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = said("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match said("origin") {
        None => false,
        Some(origin) => {
            let ours = |url: &crate::config::PublicUrl| url.base().eq_ignore_ascii_case(origin);
            !(state.services.directory.domains().all().any(ours) || ours(&state.admin.console_url))
        }
    }
}

/// The pay page's form (a POST): an invoice through the same callback wallets use, then its
/// checkout page (a redirect, so reloading the checkout page never makes another invoice).
async fn pay_form(
    req: HttpRequest,
    name: web::Path<String>,
    form: web::Form<PayForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let host = request_host(&req);
    let host = host.as_deref();
    if from_another_site(&req, &state) {
        let mut refused = render_pay_page(
            &state,
            host,
            &name,
            Some(
                "Open this pay page to pay: forms on other sites cannot make invoices here.".into(),
            ),
        )
        .await;
        if refused.status() != StatusCode::NOT_FOUND {
            *refused.status_mut() = StatusCode::FORBIDDEN;
        }
        return private(refused);
    }
    private(make_invoice(&req, host, &name, &form, &state).await)
}

async fn make_invoice(
    req: &HttpRequest,
    host: Option<&str>,
    name: &str,
    form: &PayForm,
    state: &State,
) -> HttpResponse {
    let amount = match form.fiat.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(raw) => FormAmount::Currency(raw),
        None => FormAmount::Sats(form.amount.as_deref().unwrap_or_default()),
    };
    let ask = Ask::Form {
        amount,
        comment: form.comment.as_deref(),
    };
    let paid = state
        .services
        .payments()
        .pay(host, name, state.client(req), ask)
        .await;
    match paid {
        Ok(paid) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/pay/{}", paid.payment_hash)))
            .finish(),
        Err(e) => render_pay_page(state, host, name, Some(e.reason)).await,
    }
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct Checkout<'a> {
    domain: &'a str,
    payment_hash: String,
    user: String,
    amount_sats: String,
    description: Option<String>,
    bolt11: &'a str,
    qr_svg: String,
    status: &'a str,
    expires_at: u64,
    expires_in: String,
    return_url: Option<&'a str>,
}

async fn find(state: &State, hash: &str) -> Option<crate::domain::InvoiceRecord> {
    let hash: Hash32 = hash.parse().ok()?;
    // The hash is the capability: whoever has it was handed this page.
    lookup::find(&state.services.db, &hash, Viewer::Anyone)
        .await
        .ok()
        .flatten()
}

async fn checkout(hash: web::Path<String>, state: web::Data<State>) -> HttpResponse {
    private(checkout_page(&hash, &state).await)
}

async fn checkout_page(hash: &str, state: &State) -> HttpResponse {
    let Some(record) = find(state, hash).await else {
        return not_found(state, "No such invoice.");
    };
    let now = state.services.clock.unix();
    let status = record.status_at(now);
    let left = record.expires_at.saturating_sub(now);
    let profile = state.services.directory.get(&record.user).await;
    let description = match &record.described_by {
        DescriptionSource::Memo { memo } => Some(memo.to_string()),
        _ => profile.as_ref().map(|p| p.user.description.clone()),
    };
    let public_url = match &profile {
        Some(p) => state.services.directory.public_url_for(&p.user),
        None => state.services.directory.public_url(),
    };
    html(
        StatusCode::OK,
        Checkout {
            domain: public_url.domain().as_str(),
            payment_hash: record.payment_hash.to_hex(),
            user: crate::lnurl::address(public_url, &record.user),
            amount_sats: record.amount_msat.sats_decimal(),
            description,
            bolt11: &record.bolt11,
            qr_svg: qr::svg(&format!("LIGHTNING:{}", record.bolt11.to_uppercase())),
            status: status.name(),
            expires_at: record.expires_at,
            expires_in: format!("{}:{:02}", left / 60, left % 60),
            // In the paid section, which stays hidden until the invoice is paid.
            return_url: record
                .app
                .as_ref()
                .and_then(|a| a.return_url.as_ref().map(|u| u.as_str())),
        },
    )
}

#[derive(Serialize)]
struct CheckoutStatus {
    status: &'static str,
    expires_at: u64,
}

/// What the checkout page polls. Only the status: the payment hash is no secret to whoever
/// holds the invoice, and nothing here is more than the invoice itself says.
async fn checkout_status(hash: web::Path<String>, state: web::Data<State>) -> HttpResponse {
    let Some(record) = find(&state, &hash).await else {
        return HttpResponse::NotFound().json(
            serde_json::json!({"error": {"code": "not_found", "message": "no such invoice"}}),
        );
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CheckoutStatus {
            status: record.status_at(state.services.clock.unix()).name(),
            expires_at: record.expires_at,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_read_as_sats() {
        use crate::domain::Msat;
        assert_eq!(Msat::from_msat(21_000).sats_decimal(), "21");
        assert_eq!(Msat::from_msat(1_500).sats_decimal(), "1.5");
        assert_eq!(Msat::from_msat(1).sats_decimal(), "0.001");
    }
}
