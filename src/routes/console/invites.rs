//! People's invites, from the Users page: made (the URL shown once) and revoked, through the
//! accounts service `rayo invite` uses.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{audit, back_to, form_allowed, message, refusal, Staff};
use crate::accounts::InviteRequest;
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/invites", web::post().to(create_invite))
        .route("/users/invites/{id}/revoke", web::post().to(revoke_invite));
}

#[derive(Deserialize)]
struct InviteForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "for")]
    for_user: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    uses: String,
    #[serde(default)]
    domain: String,
}

async fn create_invite(
    staff: Staff,
    req: HttpRequest,
    form: web::Form<InviteForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    let some = |raw: &str| Some(raw.trim().to_owned()).filter(|v| !v.is_empty());
    let number = |raw: &str, what: &str| -> Result<Option<u64>, Box<HttpResponse>> {
        match raw.trim() {
            "" => Ok(None),
            raw => raw.parse().map(Some).map_err(|_| {
                Box::new(message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "That did not work",
                    &format!("{what}: a whole number"),
                ))
            }),
        }
    };
    let days = match number(&form.days, "days") {
        Ok(days) => days,
        Err(answer) => return *answer,
    };
    let uses = match number(&form.uses, "uses") {
        Ok(uses) => uses,
        Err(answer) => return *answer,
    };
    let request = InviteRequest {
        name: some(&form.name),
        for_user: some(&form.for_user),
        domain: some(&form.domain),
        expires_in: days.map(|d| d.saturating_mul(86_400)),
        uses: uses.map(|u| u32::try_from(u).unwrap_or(u32::MAX)),
    };
    match state.services.accounts.create_invite(request).await {
        Ok(created) => {
            audit(
                &state,
                &staff,
                &format!("invite.create {}", created.invite.id),
            )
            .await;
            html(
                StatusCode::OK,
                super::Message {
                    title: "Invite made",
                    message: "Send this URL to the person: it is shown once.",
                    secret: Some(&created.url),
                },
            )
        }
        Err(e) => refusal(&e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn revoke_invite(
    staff: Staff,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(refused) = form_allowed(&req, &state, &staff, &form.csrf) {
        return *refused;
    }
    match state.services.accounts.revoke_invite(&id).await {
        Ok(_) => {
            audit(&state, &staff, &format!("invite.revoke {id}")).await;
            back_to("/admin/users?done=revoked")
        }
        Err(e) => refusal(&e),
    }
}
