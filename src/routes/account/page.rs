//! `/account`: the person's own page, and every form on it. Each handler finds the session,
//! checks the form (same site, CSRF token), and calls the accounts service for the session's
//! own user: no id in a request can name another person's anything.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{
    at, form_checks, json_refusal, public_url, redirect, refusal, signed_in, Message, SignedIn,
};
use crate::accounts::{
    csv, Account, LoginAction, PaymentFilter, PaymentRow, ProfileForm, SessionView, WebhookForm,
};
use crate::operator::{ApiKeyView, UserView};
use crate::routes::pages::{html, qr};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account").route(web::get().to(account_page)))
        .service(at("/account/profile").route(web::post().to(profile)))
        .service(at("/account/picture").route(web::post().to(picture)))
        .service(at("/account/wallet").route(web::post().to(wallet_connect)))
        .service(at("/account/wallet/disconnect").route(web::post().to(wallet_disconnect)))
        .service(at("/account/webhook").route(web::post().to(webhook)))
        .service(at("/account/webhook/rotate").route(web::post().to(rotate_secret)))
        .service(at("/account/webhook/test").route(web::post().to(test_delivery)))
        .service(at("/account/deliveries/{id}/redeliver").route(web::post().to(redeliver)))
        .service(at("/account/api-keys").route(web::post().to(create_key)))
        .service(at("/account/api-keys/{id}/revoke").route(web::post().to(revoke_key)))
        .service(at("/account/passkeys/start").route(web::post().to(passkey_start)))
        .service(at("/account/passkeys/finish").route(web::post().to(passkey_finish)))
        .service(at("/account/passkeys/{id}/rename").route(web::post().to(passkey_rename)))
        .service(at("/account/passkeys/{id}/remove").route(web::post().to(passkey_remove)))
        .service(at("/account/wallets/link").route(web::get().to(wallet_link)))
        .service(at("/account/wallets/{key}/rename").route(web::post().to(wallet_rename)))
        .service(at("/account/wallets/{key}/remove").route(web::post().to(wallet_remove)))
        .service(at("/account/sessions/{id}/end").route(web::post().to(session_end)))
        .service(at("/account/sessions/end-others").route(web::post().to(sessions_end_others)))
        .service(at("/account/delete").route(web::post().to(delete)))
        .service(at("/account/payments.csv").route(web::get().to(payments_csv)))
        .service(at("/account/payments/live").route(web::get().to(payments_live)));
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
}

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
struct PageQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
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
    let filter = PaymentFilter {
        status: query.status.clone(),
        q: query.q.clone(),
    };
    render(&req, &state, &me, &filter, notice(&query.done), None).await
}

async fn render(
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
        },
    )
}

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

#[derive(Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct ProfilePost {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: ProfileForm,
}

async fn profile(
    req: HttpRequest,
    post: web::Form<ProfilePost>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    form!(
        req,
        state,
        &post.csrf,
        |me| services
            .accounts
            .update_profile(&services.operator, &me.session.user, &post.form)
            .await,
        "profile"
    )
}

#[derive(Deserialize)]
struct WebhookPost {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: WebhookForm,
}

async fn webhook(
    req: HttpRequest,
    post: web::Form<WebhookPost>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    form!(
        req,
        state,
        &post.csrf,
        |me| services
            .accounts
            .update_webhook(&services.operator, &me.session.user, &post.form)
            .await,
        "webhook"
    )
}

/// An upload is read only this far: a picture of at most `MAX_IMAGE_BYTES`, the token, and the
/// multipart framing around them.
const MAX_UPLOAD: usize = crate::domain::MAX_IMAGE_BYTES + 4 * 1024;

/// What the picture form sent: its token, a file or the wish to remove the picture.
#[derive(Default)]
struct PictureForm {
    csrf: String,
    file: Option<Vec<u8>>,
    remove: bool,
}

enum UploadError {
    TooLarge,
    Unreadable,
}

/// Reads the picture form, refusing it as soon as it grows past `MAX_UPLOAD` in all.
async fn read_picture_form(
    mut form: actix_multipart::Multipart,
) -> Result<PictureForm, UploadError> {
    let mut read = PictureForm::default();
    let mut total = 0usize;
    let mut fields = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|_| UploadError::Unreadable)?;
        fields += 1;
        if fields > 4 {
            return Err(UploadError::Unreadable);
        }
        let name = field.name().unwrap_or_default().to_owned();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| UploadError::Unreadable)?;
            total += chunk.len();
            if total > MAX_UPLOAD {
                return Err(UploadError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => read.csrf = String::from_utf8_lossy(&data).into_owned(),
            "picture" if !data.is_empty() => read.file = Some(data),
            "remove" => read.remove = true,
            _ => {}
        }
    }
    Ok(read)
}

/// The picture form (multipart): a new picture, checked for type and size, or none.
async fn picture(
    req: HttpRequest,
    form: actix_multipart::Multipart,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    let limit = crate::domain::MAX_IMAGE_BYTES / 1024;
    let read = match read_picture_form(form).await {
        Ok(read) => read,
        Err(UploadError::TooLarge) => {
            let mut refused = super::message(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "That picture is too large",
                &format!("A picture is a PNG or JPEG file of at most {limit} KiB."),
            );
            // The rest of the upload is not read: the connection ends with this answer.
            refused
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return refused;
        }
        Err(UploadError::Unreadable) => {
            return super::message(
                &state,
                StatusCode::BAD_REQUEST,
                "That did not work",
                "The upload could not be read. Try again.",
            )
        }
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &read.csrf) {
        return *refused;
    }
    let services = &state.services;
    let change = match (&read.file, read.remove) {
        (_, true) => None,
        (Some(bytes), false) => Some(bytes.as_slice()),
        (None, false) => {
            return render(
                &req,
                &state,
                &me,
                &PaymentFilter::default(),
                None,
                Some("Choose a picture to upload.".into()),
            )
            .await
        }
    };
    match services
        .accounts
        .update_picture(&services.operator, &me.session.user, change)
        .await
    {
        Ok(_) => redirect("/account?done=picture"),
        Err(crate::accounts::AccountError::Refused(why)) => {
            let mut page = render(
                &req,
                &state,
                &me,
                &PaymentFilter::default(),
                None,
                Some(why),
            )
            .await;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
        Err(e) => refusal(&state, &e),
    }
}

#[derive(Template)]
#[template(path = "account/wallet.html")]
struct WalletReport<'a> {
    domain: &'a str,
    saved: bool,
    facts: &'a [String],
    warnings: &'a [String],
    problems: &'a [String],
}

#[derive(Deserialize)]
struct WalletPost {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nwc: String,
}

/// Connects the person's own wallet, after trying it as `backend check` does; the page says
/// what was found. The connection itself is never shown again.
async fn wallet_connect(
    req: HttpRequest,
    post: web::Form<WalletPost>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &post.csrf) {
        return *refused;
    }
    let services = &state.services;
    match services
        .accounts
        .connect_wallet(&services.operator, &me.session.user, &post.nwc)
        .await
    {
        Ok(report) => html(
            if report.ok() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            WalletReport {
                domain: public_url(&req, &state).domain().as_str(),
                saved: report.ok(),
                facts: &report.facts,
                warnings: &report.warnings,
                problems: &report.problems,
            },
        ),
        Err(crate::accounts::AccountError::Refused(why)) => {
            let mut page = render(
                &req,
                &state,
                &me,
                &PaymentFilter::default(),
                None,
                Some(why),
            )
            .await;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
        Err(e) => refusal(&state, &e),
    }
}

async fn wallet_disconnect(
    req: HttpRequest,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    form!(
        req,
        state,
        &post.csrf,
        |me| services
            .accounts
            .disconnect_wallet(&services.operator, &me.session.user)
            .await,
        "wallet"
    )
}

/// A page that shows a secret this once.
fn secret_page(state: &State, title: &str, text: &str, secret: &str) -> HttpResponse {
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

async fn rotate_secret(
    req: HttpRequest,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &post.csrf) {
        return *refused;
    }
    let services = &state.services;
    match services.accounts.rotate_webhook_secret(&services.operator, &me.session.user).await {
        Ok(view) => match view.webhook_secret.as_deref() {
            Some(secret) => secret_page(&state, "Your new webhook secret", "Webhooks are signed with this secret from now on. Copy it now: it is not shown again.", secret),
            None => redirect("/account"),
        },
        Err(e) => refusal(&state, &e),
    }
}

async fn test_delivery(
    req: HttpRequest,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let operator = &state.services.operator;
    form!(
        req,
        state,
        &post.csrf,
        |me| operator.test_webhook(&me.session.user).await,
        "test"
    )
}

async fn redeliver(
    req: HttpRequest,
    id: web::Path<String>,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let operator = &state.services.operator;
    form!(
        req,
        state,
        &post.csrf,
        |me| match id.parse::<crate::domain::EventId>() {
            Ok(event) => operator.retry_webhook_of(&me.session.user, &event).await,
            Err(_) => Err(crate::operator::OperatorError::NotFound(
                "no such event".into()
            )),
        },
        "redelivered"
    )
}

async fn create_key(
    req: HttpRequest,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    if let Err(refused) = form_checks(&req, &state, &me.session, &post.csrf) {
        return *refused;
    }
    match state
        .services
        .operator
        .create_api_key(&me.session.user)
        .await
    {
        Ok(created) => secret_page(
            &state,
            "Your new API key",
            "Apps use this key for the invoice API. Copy it now: it is not shown again.",
            &created.key,
        ),
        Err(e) => refusal(&state, &e.into()),
    }
}

async fn revoke_key(
    req: HttpRequest,
    id: web::Path<String>,
    post: web::Form<Csrf>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    form!(
        req,
        state,
        &post.csrf,
        |me| async {
            // Only a key of this person's: another's id finds nothing.
            let own = services.operator.api_keys(Some(&me.session.user)).await?;
            if !own.iter().any(|k| k.id == *id) {
                return Err(crate::operator::OperatorError::NotFound(
                    "no such API key".into(),
                ));
            }
            services.operator.revoke_api_key(&id).await
        }
        .await,
        "revoked"
    )
}

async fn passkey_start(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": "Sign in first."}));
    };
    let csrf = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if form_checks(&req, &state, &me.session, csrf).is_err() {
        return HttpResponse::Forbidden()
            .json(serde_json::json!({"error": "Reload the page and try again."}));
    }
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
    let Some(me) = signed_in(&req, &state).await else {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": "Sign in first."}));
    };
    let csrf = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if form_checks(&req, &state, &me.session, csrf).is_err() {
        return HttpResponse::Forbidden()
            .json(serde_json::json!({"error": "Reload the page and try again."}));
    }
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

#[derive(Deserialize)]
struct Rename {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
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

async fn payments_csv(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return redirect("/login");
    };
    let filter = PaymentFilter {
        status: query.status.clone(),
        q: query.q.clone(),
    };
    match state
        .services
        .accounts
        .payments(&me.session.user, &filter, crate::accounts::EXPORTED)
        .await
    {
        Ok(rows) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-payments.csv\"", me.session.user),
            ))
            .body(csv(&rows)),
        Err(e) => refusal(&state, &e),
    }
}

/// Server-sent events: each of this person's invoices as it reaches its final state, from
/// the same stream the invoice API's followers read. Ends when the session does.
///
/// `since` (unix seconds, the time the page was made) closes the gap between the page and the
/// stream: payments that became final since then are sent first, read from the store after
/// subscribing, so none falls between the two.
async fn payments_live(
    req: HttpRequest,
    query: web::Query<LiveQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(me) = signed_in(&req, &state).await else {
        return HttpResponse::Unauthorized().finish();
    };
    // Capped like the invoice API's followers: per person and per client address.
    let holder = format!("account:{}", me.session.user);
    let Some(slot) = state.followers.enter(Some(&holder), state.client(&req)) else {
        return HttpResponse::TooManyRequests().finish();
    };
    let services = state.services.clone();
    let user = me.session.user.clone();
    let token = me.token.clone();
    let updates = services.ledger.live().subscribe();
    let caught_up: Vec<Result<web::Bytes, actix_web::Error>> = match query.since {
        Some(since) => services
            .accounts
            .payments(&user, &PaymentFilter::default(), crate::accounts::LISTED)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|row| row.status != "pending" && row.paid_at.unwrap_or(row.created_at) >= since)
            .map(|row| Ok(payment_event(&row)))
            .collect(),
        None => Vec::new(),
    };
    let events = payment_events(Following {
        updates,
        services,
        user,
        token,
        checked: std::time::Instant::now(),
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(
            futures_util::stream::iter(caught_up)
                .chain(events)
                .map(move |chunk| {
                    // The place is held for as long as the stream lives.
                    let _held = &slot;
                    chunk
                }),
        )
}

/// A quiet stream says so this often: a client that left is noticed when that write fails.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);
/// The session behind a stream is read again this often: a stream ends with its session.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// One person's payment stream.
struct Following {
    updates: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::domain::InvoiceRecord>>,
    services: std::sync::Arc<crate::services::Services>,
    user: crate::domain::Username,
    token: String,
    checked: std::time::Instant,
}

/// The person's invoices as they become final, keep-alives while quiet, a "reload" when the
/// stream fell behind; the end when the session did.
fn payment_events(
    following: Following,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    use tokio::sync::broadcast::error::RecvError;
    futures_util::stream::unfold(following, |mut f| async move {
        loop {
            let chunk = match tokio::time::timeout(KEEP_ALIVE, f.updates.recv()).await {
                Ok(Ok(record)) if record.user == f.user => {
                    payment_event(&PaymentRow::of(&record, f.services.clock.unix()))
                }
                Ok(Ok(_)) => continue,
                // Missed some: the page reloads its list.
                Ok(Err(RecvError::Lagged(_))) => {
                    web::Bytes::from_static(b"event: reload\ndata: {}\n\n")
                }
                Ok(Err(RecvError::Closed)) => return None,
                Err(_) => {
                    if f.checked.elapsed() >= SESSION_CHECK {
                        if !matches!(f.services.accounts.session(&f.token).await, Ok(Some(_))) {
                            return None;
                        }
                        f.checked = std::time::Instant::now();
                    }
                    web::Bytes::from_static(b": keep-alive\n\n")
                }
            };
            return Some((Ok(chunk), f));
        }
    })
}

#[derive(Deserialize)]
struct LiveQuery {
    since: Option<u64>,
}

fn payment_event(row: &PaymentRow) -> web::Bytes {
    let data = serde_json::to_string(row).unwrap_or_default();
    web::Bytes::from(format!("event: payment\ndata: {data}\n\n"))
}
