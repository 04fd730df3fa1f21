//! The account page's forms for the address itself: profile, picture, wallet, webhook and
//! its deliveries, API keys.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::page::{render, secret_page, Csrf};
use super::{at, form_checks, public_url, redirect, refusal, signed_in};
use crate::accounts::{PaymentFilter, ProfileForm, WebhookForm};
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account/profile").route(web::post().to(profile)))
        .service(at("/account/picture").route(web::post().to(picture)))
        .service(at("/account/wallet").route(web::post().to(wallet_connect)))
        .service(at("/account/wallet/disconnect").route(web::post().to(wallet_disconnect)))
        .service(at("/account/webhook").route(web::post().to(webhook)))
        .service(at("/account/webhook/rotate").route(web::post().to(rotate_secret)))
        .service(at("/account/webhook/test").route(web::post().to(test_delivery)))
        .service(at("/account/deliveries/{id}/redeliver").route(web::post().to(redeliver)))
        .service(at("/account/api-keys").route(web::post().to(create_key)))
        .service(at("/account/api-keys/{id}/revoke").route(web::post().to(revoke_key)));
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
pub(in crate::routes) struct PictureForm {
    pub(in crate::routes) csrf: String,
    pub(in crate::routes) file: Option<Vec<u8>>,
    pub(in crate::routes) remove: bool,
}

pub(in crate::routes) enum UploadError {
    TooLarge,
    Unreadable,
}

/// Reads the picture form, refusing it as soon as it grows past `MAX_UPLOAD` in all.
pub(in crate::routes) async fn read_picture_form(
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
            render(
                &req,
                &state,
                &me,
                &PaymentFilter::default(),
                None,
                Some(why),
            )
            .await
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
            render(
                &req,
                &state,
                &me,
                &PaymentFilter::default(),
                None,
                Some(why),
            )
            .await
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
