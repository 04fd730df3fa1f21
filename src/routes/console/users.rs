//! `/admin/users`: search, add, edit every setting the CLI can, disable, remove (typed
//! confirmation), people's invites, and the reserved names. Every change goes through the
//! operator's services, exactly as `rayo user …` and the admin API do.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    audit, back_to, form_allowed, message, operator_refusal, refusal, typed, when, Frame, Staff,
};
use crate::accounts::InviteView;
use crate::domain::{Msat, UserSettings, Username};
use crate::operator::UserView;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_page))
        .route("/users", web::post().to(add_user))
        .route("/users/{name}", web::get().to(user_page))
        .route("/users/{name}", web::post().to(update_user))
        .route("/users/{name}/disabled", web::post().to(set_disabled))
        .route("/users/{name}/picture", web::post().to(set_picture))
        .route("/users/{name}/remove", web::post().to(remove_user));
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage<'a> {
    frame: Frame<'a>,
    q: &'a str,
    users: Vec<UserView>,
    total: usize,
    invites: Vec<InviteRow>,
    reserved: Vec<&'a str>,
    quarantined: Vec<(String, String)>,
    backends: Vec<String>,
    domains: Vec<String>,
    notice: Option<&'static str>,
}

struct InviteRow {
    view: InviteView,
    expires: String,
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    done: String,
}

fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "removed" => "The user was removed.",
        "revoked" => "The invite was revoked.",
        _ => return None,
    })
}

/// Users shown at once; a search narrows them.
const LISTED: usize = 500;

async fn users_page(
    staff: Staff,
    query: web::Query<UsersQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    let all = match services.operator.users().await {
        Ok(users) => users,
        Err(e) => return operator_refusal(e),
    };
    let total = all.len();
    let words = query.q.trim().to_lowercase();
    let users = all
        .into_iter()
        .filter(|u| {
            words.is_empty()
                || u.name.contains(&words)
                || u.address.to_lowercase().contains(&words)
                || u.description.to_lowercase().contains(&words)
        })
        .take(LISTED)
        .collect();
    let invites = match services.accounts.invites().await {
        Ok(invites) => invites
            .into_iter()
            .map(|view| InviteRow {
                expires: when(view.expires_at),
                view,
            })
            .collect(),
        Err(e) => return refusal(&e),
    };
    let quarantined = services
        .accounts
        .quarantined()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(name, until)| (name, when(until)))
        .collect();
    html(
        StatusCode::OK,
        UsersPage {
            frame: Frame::of(&staff, "users"),
            q: &query.q,
            users,
            total,
            invites,
            reserved: services.accounts.names.reserved().collect(),
            quarantined,
            backends: backend_names(&state),
            domains: domain_names(&state),
            notice: notice(&query.done),
        },
    )
}

fn backend_names(state: &State) -> Vec<String> {
    state
        .services
        .backends()
        .iter()
        .map(|(name, _)| name.to_string())
        .collect()
}

fn domain_names(state: &State) -> Vec<String> {
    state
        .services
        .directory
        .domains()
        .all()
        .map(|url| url.domain().to_string())
        .collect()
}

#[derive(Deserialize)]
struct NewUserForm {
    csrf: String,
    name: String,
    description: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    domain: String,
}

async fn add_user(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<NewUserForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let name = match Username::parse_new(form.name.trim()) {
        Ok(name) => name,
        Err(e) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That did not work",
                &format!("name: {e}"),
            )
        }
    };
    let settings = UserSettings {
        description: Some(form.description.clone()),
        backend: Some(form.backend.clone()).filter(|b| !b.is_empty()),
        domain: Some(form.domain.clone()).filter(|d| !d.is_empty()),
        ..UserSettings::default()
    };
    match state
        .services
        .operator
        .add_user(name.clone(), settings)
        .await
    {
        Ok(user) => {
            audit(&state, &staff, &format!("user.add {}", user.name)).await;
            back_to(&format!("/admin/users/{}?done=added", user.name))
        }
        Err(e) => operator_refusal(e),
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    frame: Frame<'a>,
    user: UserView,
    relays: String,
    min_sats: String,
    max_sats: String,
    success_message: String,
    success_url: String,
    backends: Vec<String>,
    domains: Vec<String>,
    notice: Option<&'static str>,
}

fn user_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "added" => "The user was added: set the rest here.",
        "saved" => "Saved. Wallets see the change at once.",
        "disabled" => "Disabled: the address answers that it cannot be paid.",
        "enabled" => "Enabled: the address can be paid again.",
        _ => return None,
    })
}

fn user_name(raw: &str) -> Result<Username, Box<HttpResponse>> {
    Username::parse(raw).map_err(|e| {
        Box::new(message(
            StatusCode::NOT_FOUND,
            "No such user",
            &format!("'{raw}' is not a user name: {e}"),
        ))
    })
}

async fn user_page(
    staff: Staff,
    raw: web::Path<String>,
    query: web::Query<UsersQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let name = match user_name(&raw) {
        Ok(name) => name,
        Err(answer) => return *answer,
    };
    let user = match state.services.operator.user(&name).await {
        Ok(user) => user,
        Err(e) => return operator_refusal(e),
    };
    let (success_message, success_url) = match &user.success_action {
        Some(crate::domain::SuccessAction::Message { message }) => (message.clone(), String::new()),
        Some(crate::domain::SuccessAction::Url { description, url }) => {
            (description.clone(), url.clone())
        }
        None => (String::new(), String::new()),
    };
    html(
        StatusCode::OK,
        UserPage {
            frame: Frame::of(&staff, "users"),
            success_message,
            success_url,
            relays: user.nostr_relays.join("\n"),
            min_sats: Msat::from_msat(user.min_sendable).sats_decimal(),
            max_sats: Msat::from_msat(user.max_sendable).sats_decimal(),
            user,
            backends: backend_names(&state),
            domains: domain_names(&state),
            notice: user_notice(&query.done),
        },
    )
}

/// The user a form acts on, once the form is allowed (this site's, with the token).
fn acting_on(
    req: &HttpRequest,
    state: &State,
    staff: &Staff,
    csrf: &str,
    raw: &str,
) -> Result<Username, Box<HttpResponse>> {
    form_allowed(req, state, staff, csrf)?;
    user_name(raw)
}

/// Every setting `rayo user update` takes, as a form: text fields as typed (empty clears an
/// optional one), amounts in sats, checkboxes present when ticked.
#[derive(Deserialize)]
struct UserForm {
    csrf: String,
    description: String,
    #[serde(default)]
    long_description: String,
    #[serde(default)]
    min_sats: String,
    #[serde(default)]
    max_sats: String,
    #[serde(default)]
    comment_allowed: String,
    #[serde(default)]
    payer_data: String,
    #[serde(default)]
    success_message: String,
    #[serde(default)]
    success_url: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    rotate_webhook_secret: Option<String>,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    fiat_min: String,
    #[serde(default)]
    fiat_max: String,
    /// A new wallet connection; empty keeps the current one.
    #[serde(default)]
    nwc: String,
    #[serde(default)]
    remove_nwc: Option<String>,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    nostr_pubkey: String,
    #[serde(default)]
    nostr_relays: String,
    #[serde(default)]
    remove_image: Option<String>,
}

fn sats(raw: &str, field: &str) -> Result<Option<Msat>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let sats: u64 = raw
        .parse()
        .map_err(|_| format!("{field}: a whole number of sats"))?;
    Msat::from_sat(sats)
        .map(Some)
        .ok_or_else(|| format!("{field}: too large"))
}

impl UserForm {
    fn settings(&self) -> Result<UserSettings, String> {
        let text = |raw: &str| Some(raw.trim().to_owned());
        let comment_allowed = match self.comment_allowed.trim() {
            "" => None,
            raw => Some(
                raw.parse::<u16>()
                    .map_err(|_| "comment length: a number from 0 to 2000".to_owned())?,
            ),
        };
        let payer_data = crate::domain::PayerDataSpec::parse_list(self.payer_data.trim())
            .map_err(|e| format!("payer data: {e}"))?;
        Ok(UserSettings {
            description: text(&self.description),
            long_description: text(&self.long_description),
            min_sendable: sats(&self.min_sats, "smallest amount")?,
            max_sendable: sats(&self.max_sats, "largest amount")?,
            comment_allowed,
            payer_data: Some(payer_data),
            success_message: text(&self.success_message),
            success_url: text(&self.success_url),
            webhook_url: text(&self.webhook_url),
            rotate_webhook_secret: self.rotate_webhook_secret.as_ref().map(|_| true),
            currency: text(&self.currency),
            fiat_min: text(&self.fiat_min),
            fiat_max: text(&self.fiat_max),
            nwc: if self.remove_nwc.is_some() {
                Some(String::new())
            } else {
                Some(self.nwc.trim().to_owned()).filter(|n| !n.is_empty())
            },
            backend: text(&self.backend),
            domain: text(&self.domain),
            nostr_pubkey: text(&self.nostr_pubkey),
            nostr_relays: Some(
                self.nostr_relays
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            remove_image: self.remove_image.as_ref().map(|_| true),
            ..UserSettings::default()
        })
    }
}

async fn update_user(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: web::Form<UserForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let name = match acting_on(&req, &state, &staff, &form.csrf, &raw) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let settings = match form.settings() {
        Ok(settings) => settings,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, "That did not work", &why),
    };
    let rotated = settings.rotate_webhook_secret == Some(true);
    match state
        .services
        .operator
        .update_user(name.clone(), settings)
        .await
    {
        Ok(user) => {
            audit(&state, &staff, &format!("user.update {name}")).await;
            match (rotated, &user.webhook_secret) {
                // A new secret is shown this once.
                (true, Some(secret)) => html(
                    StatusCode::OK,
                    super::Message {
                        title: "Saved, with a new webhook secret",
                        message: "Give the receiver this secret: it is shown once.",
                        secret: Some(secret),
                    },
                ),
                _ => back_to(&format!("/admin/users/{name}?done=saved")),
            }
        }
        Err(e) => operator_refusal(e),
    }
}

/// A new picture (multipart: the account page's form, read the same way), or its removal.
async fn set_picture(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: actix_multipart::Multipart,
    state: web::Data<State>,
) -> HttpResponse {
    use crate::routes::account::settings::{read_picture_form, UploadError};
    let read = match read_picture_form(form).await {
        Ok(read) => read,
        Err(UploadError::TooLarge) => {
            let mut refused = message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "That picture is too large",
                &format!(
                    "A picture is a PNG or JPEG file of at most {} KiB.",
                    crate::domain::MAX_IMAGE_BYTES / 1024
                ),
            );
            refused
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return refused;
        }
        Err(UploadError::Unreadable) => {
            return message(
                StatusCode::BAD_REQUEST,
                "That did not work",
                "The upload could not be read. Try again.",
            )
        }
    };
    let name = match acting_on(&req, &state, &staff, &read.csrf, &raw) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let change = match (&read.file, read.remove) {
        (_, true) => None,
        (Some(bytes), false) => Some(bytes.as_slice()),
        (None, false) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That did not work",
                "Choose a picture to upload.",
            )
        }
    };
    let services = &state.services;
    match services
        .accounts
        .update_picture(&services.operator, &name, change)
        .await
    {
        Ok(_) => {
            let what = if change.is_some() { "set" } else { "remove" };
            audit(&state, &staff, &format!("user.picture.{what} {name}")).await;
            back_to(&format!("/admin/users/{name}?done=saved"))
        }
        Err(e) => refusal(&e),
    }
}

#[derive(Deserialize)]
struct DisabledForm {
    csrf: String,
    disabled: String,
}

async fn set_disabled(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: web::Form<DisabledForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let name = match acting_on(&req, &state, &staff, &form.csrf, &raw) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let disabled = form.disabled == "true";
    let settings = UserSettings {
        disabled: Some(disabled),
        ..UserSettings::default()
    };
    match state
        .services
        .operator
        .update_user(name.clone(), settings)
        .await
    {
        Ok(_) => {
            let what = if disabled { "disable" } else { "enable" };
            audit(&state, &staff, &format!("user.{what} {name}")).await;
            back_to(&format!("/admin/users/{name}?done={what}d"))
        }
        Err(e) => operator_refusal(e),
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf: String,
    /// The user's name typed again: removing is for good.
    #[serde(default)]
    confirm: String,
}

async fn remove_user(
    staff: Staff,
    req: HttpRequest,
    raw: web::Path<String>,
    form: web::Form<RemoveForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let name = match acting_on(&req, &state, &staff, &form.csrf, &raw) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    if let Err(refused) = typed(
        &form.confirm,
        name.as_str(),
        "Not removed",
        ": removing a user is for good.",
    ) {
        return *refused;
    }
    match state.services.operator.remove_user(&name).await {
        Ok(()) => {
            audit(&state, &staff, &format!("user.remove {name}")).await;
            back_to("/admin/users?done=removed")
        }
        Err(e) => operator_refusal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &str) -> UserForm {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn the_edit_form_becomes_the_settings_the_cli_would_send() {
        let settings = form(
            "csrf=x&description=Tips&min_sats=10&max_sats=&comment_allowed=140&payer_data=name,email&nostr_relays=wss%3A%2F%2Fa.example%0D%0A%0D%0Awss%3A%2F%2Fb.example&remove_image=on",
        )
        .settings()
        .unwrap();
        assert_eq!(settings.description.as_deref(), Some("Tips"));
        assert_eq!(settings.min_sendable, Some(Msat::from_msat(10_000)));
        assert_eq!(settings.max_sendable, None, "empty keeps the amount");
        assert_eq!(settings.comment_allowed, Some(140));
        assert_eq!(
            settings.nostr_relays.as_deref(),
            Some(&["wss://a.example".to_owned(), "wss://b.example".to_owned()][..])
        );
        assert_eq!(settings.remove_image, Some(true));
        assert_eq!(settings.nwc, None, "an empty connection keeps the wallet");
        assert_eq!(settings.webhook_url.as_deref(), Some(""), "empty clears");
    }

    #[test]
    fn a_bad_number_is_refused_in_words() {
        for (pairs, says) in [
            ("csrf=x&description=d&min_sats=ten", "smallest amount"),
            ("csrf=x&description=d&comment_allowed=-1", "comment length"),
            ("csrf=x&description=d&payer_data=shoe_size", "payer data"),
        ] {
            let refused = form(pairs).settings().unwrap_err();
            assert!(refused.contains(says), "{pairs}: {refused}");
        }
    }
}
