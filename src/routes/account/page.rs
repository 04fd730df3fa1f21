//! `/account`: the person's own page, and what its forms share (the forms themselves are in
//! `settings`, `security` and `payments`). Each handler finds the session,
//! checks the form (same site, CSRF token), and calls the accounts service for the session's
//! own user: no id in a request can name another person's anything.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{at, public_url, redirect, signed_in, Message, SignedIn};
use crate::accounts::{Account, PaymentFilter, PaymentRow, SessionView};
use crate::operator::{ApiKeyView, UserView};
use crate::routes::pages::{html, qr};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account").route(web::get().to(account_page)));
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage<'a> {
    domain: &'a str,
    csrf: &'a str,
    user: &'a UserView,
    address: String,
    lnurl: String,
    qr_svg: String,
    account: &'a Account,
    payments: Vec<PaymentRow>,
    filter: &'a PaymentFilter,
    sessions: Vec<SessionView>,
    keys: Vec<ApiKeyView>,
    deliveries: Vec<DeliveryRow>,
    /// The picture as a data URL.
    picture: Option<String>,
    success_message: String,
    /// When the page was made: the live list catches up from here.
    now: u64,
    notice: Option<&'a str>,
    error: Option<String>,
    /// Whether this server sends mail, and has a Telegram bot: which channels can be added.
    mail: bool,
    telegram: bool,
    /// The digest choices, and the one chosen ("" for a message per payment).
    digests: &'static [(&'static str, &'static str)],
    digest: String,
    /// The BIP-353 name, or why the address has none.
    bip353: Option<crate::routes::pages::bip353::Bip353View>,
    lnurl_only: Option<String>,
}

/// What the digest menu offers.
const DIGESTS: &[(&str, &str)] = &[
    ("", "A message per payment"),
    ("5m", "One every 5 minutes"),
    ("10m", "One every 10 minutes"),
    ("30m", "One every 30 minutes"),
    ("60m", "One an hour"),
    ("1440m", "One a day"),
];

/// One of the person's webhook events, as the integrations section lists it.
struct DeliveryRow {
    id: String,
    kind: String,
    state: &'static str,
    attempts: u32,
    when: String,
    /// The last attempt's outcome (an HTTP status, or what went wrong): shown as text.
    outcome: String,
}

/// The delivery log lists this many events, newest first.
const DELIVERIES_LISTED: usize = 20;

#[derive(Deserialize, Default)]
pub(super) struct PageQuery {
    #[serde(flatten)]
    pub(super) filter: PaymentFilter,
    /// Which form just succeeded, for the notice.
    #[serde(default)]
    done: String,
}

/// What a finished form says on the page it returns to.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile is saved. Wallets see it at once.",
        "picture" => "Your picture is saved.",
        "wallet" => "Payments now go to this server's wallet.",
        "webhook" => "Your webhook is saved.",
        "passkey" => "Passkey saved.",
        "removed" => "Removed.",
        "session" => "Session ended.",
        "sessions" => "Every other session ended.",
        "revoked" => "API key revoked.",
        "test" => "A test delivery is on its way to your webhook; it shows below.",
        "redelivered" => "The event is on its way again.",
        "channel" => "Channel added.",
        "channel-email" => {
            "We mailed a link to that address: open it to confirm, and alerts start."
        }
        "channel-removed" => "Channel removed: nothing more goes there.",
        "notify-test" => "A test message is on its way; the channel's state shows how it went.",
        "notify-settings" => "Your notification settings are saved.",
        _ => return None,
    })
}

async fn account_page(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    render(&req, &state, &me, &query.filter, notice(&query.done), None).await
}

pub(super) async fn render(
    req: &HttpRequest,
    state: &State,
    me: &SignedIn,
    filter: &PaymentFilter,
    notice: Option<&str>,
    error: Option<String>,
) -> HttpResponse {
    let services = &state.services;
    let name = &me.session.user;
    let (user, account) = match (
        services.operator.user(name).await,
        services.accounts.account(name).await,
    ) {
        (Ok(user), Ok(Some(account))) => (user, account),
        _ => return redirect("/login"),
    };
    let (payments, filter_error) = match services
        .accounts
        .payments(name, filter, crate::accounts::LISTED)
        .await
    {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let sessions = services
        .accounts
        .sessions(name, &me.token)
        .await
        .unwrap_or_default();
    let keys = services
        .operator
        .api_keys(Some(name))
        .await
        .unwrap_or_default();
    let deliveries = services
        .operator
        .webhooks_of(name, DELIVERIES_LISTED)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|event| DeliveryRow {
            state: event.state.as_str(),
            when: crate::accounts::when(event.created_at),
            outcome: event.last_outcome.unwrap_or_default(),
            id: event.id,
            kind: event.kind,
            attempts: event.attempts,
        })
        .collect();
    let profile = services.directory.get(name).await;
    let url = match &profile {
        Some(profile) => services.directory.public_url_for(&profile.user).clone(),
        None => public_url(req, state).clone(),
    };
    let picture = profile
        .as_ref()
        .and_then(|p| p.user.image.as_ref())
        .map(|i| format!("data:{};base64,{}", i.mime, i.base64));
    let lnurl = crate::lnurl::lnurl(&url, name);
    let bip353 = crate::routes::pages::bip353::Bip353View::of(services, name).await;
    let lnurl_only = match &bip353 {
        Some(_) => None,
        None => match services.operator.lnurl_only_because(name).await {
            Ok(Some(why)) => Some(why),
            // It could have one: the keeper makes it within its next pass.
            Ok(None) if crate::bip353::can_have_names(url.host()) => {
                Some("your BIP-353 name is being prepared; look again in a minute".into())
            }
            Ok(None) => Some("this server's domain cannot carry BIP-353 names".into()),
            Err(_) => None,
        },
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(
        status,
        AccountPage {
            domain: url.domain().as_str(),
            csrf: &me.session.csrf,
            address: crate::lnurl::address(&url, name),
            qr_svg: qr::svg(&format!("LIGHTNING:{lnurl}")),
            lnurl,
            user: &user,
            account: &account,
            payments,
            filter,
            sessions,
            keys: keys
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .collect(),
            deliveries,
            picture,
            now: services.clock.unix(),
            success_message: match &user.success_action {
                Some(crate::domain::SuccessAction::Message { message }) => message.clone(),
                Some(crate::domain::SuccessAction::Url { description, .. }) => description.clone(),
                None => String::new(),
            },
            notice,
            error: error.or(filter_error),
            mail: services.notifier.has_mail(),
            telegram: services.notifier.telegram().is_some(),
            digests: DIGESTS,
            digest: user.notify_digest.clone().unwrap_or_default(),
            lnurl_only,
            bip353,
        },
    )
}

#[derive(Deserialize)]
pub(in crate::routes) struct Csrf {
    #[serde(default)]
    pub(super) csrf: String,
}

#[derive(Deserialize)]
pub(super) struct Rename {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) label: String,
}

/// A page that shows a secret this once.
pub(super) fn secret_page(state: &State, title: &str, text: &str, secret: &str) -> HttpResponse {
    html(
        StatusCode::OK,
        Message {
            domain: state.services.directory.public_url().domain().as_str(),
            title,
            message: text,
            secret: Some(secret),
            back: "/account",
        },
    )
}
