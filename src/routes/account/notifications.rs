//! The account page's Notifications section: a person adds and removes their channels, links
//! a Telegram chat, chooses digests and what messages may say, and sends a test through each.
//! Every change goes through the operator's user services, as the CLI's do.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::page::render;
use super::{at, form_checks, redirect, refusal, signed_in};
use crate::accounts::PaymentFilter;
use crate::domain::UserSettings;
use crate::routes::pages::{html, qr};
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/account/notify/add").route(web::post().to(add)))
        .service(at("/account/notify/remove").route(web::post().to(remove)))
        .service(at("/account/notify/test").route(web::post().to(test)))
        .service(at("/account/notify/settings").route(web::post().to(settings)))
        .service(at("/account/notify/telegram").route(web::post().to(telegram)));
}

#[derive(Deserialize)]
struct AddPost {
    #[serde(default)]
    csrf: String,
    /// nostr, email or ntfy.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct ChannelPost {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct SettingsPost {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    digest: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    details: Option<String>,
}

async fn add(req: HttpRequest, post: web::Form<AddPost>, state: web::Data<State>) -> HttpResponse {
    let operator = &state.services.operator;
    let kind = post.kind.trim();
    // Telegram is linked by its code, never by typing a chat id here.
    let raw = match kind {
        "nostr" | "email" | "ntfy" => format!("{kind}:{}", post.value.trim()),
        _ => "unknown:".to_owned(),
    };
    form!(
        req,
        state,
        &post.csrf,
        |me| operator.add_channel(&me.session.user, &raw).await,
        if kind == "email" {
            "channel-email"
        } else {
            "channel"
        }
    )
}

async fn remove(
    req: HttpRequest,
    post: web::Form<ChannelPost>,
    state: web::Data<State>,
) -> HttpResponse {
    let operator = &state.services.operator;
    form!(
        req,
        state,
        &post.csrf,
        |me| operator.remove_channel(&me.session.user, &post.key).await,
        "channel-removed"
    )
}

async fn test(
    req: HttpRequest,
    post: web::Form<ChannelPost>,
    state: web::Data<State>,
) -> HttpResponse {
    let operator = &state.services.operator;
    form!(
        req,
        state,
        &post.csrf,
        |me| operator
            .notify_test(&me.session.user, Some(&post.key))
            .await,
        "notify-test"
    )
}

async fn settings(
    req: HttpRequest,
    post: web::Form<SettingsPost>,
    state: web::Data<State>,
) -> HttpResponse {
    let operator = &state.services.operator;
    let settings = UserSettings {
        notify_digest: Some(post.digest.clone()),
        notify_details: Some(post.details.is_some()),
        ..UserSettings::default()
    };
    form!(
        req,
        state,
        &post.csrf,
        |me| operator
            .update_user(me.session.user.clone(), settings)
            .await,
        "notify-settings"
    )
}

#[derive(Template)]
#[template(path = "account/telegram.html")]
struct TelegramPage<'a> {
    domain: &'a str,
    link: &'a str,
    bot: &'a str,
    code: &'a str,
    qr_svg: String,
}

async fn telegram(
    req: HttpRequest,
    post: web::Form<super::page::Csrf>,
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
        .telegram_link_code(&me.session.user)
        .await
    {
        Ok(code) => html(
            StatusCode::OK,
            TelegramPage {
                domain: state.services.directory.public_url().domain().as_str(),
                link: &code.link,
                bot: &code.bot,
                code: &code.code,
                qr_svg: qr::svg(&code.link),
            },
        ),
        Err(crate::operator::OperatorError::Invalid(why)) => {
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
        Err(e) => refusal(&state, &e.into()),
    }
}
