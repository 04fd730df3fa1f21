//! `/admin/v1`: what the CLI uses while a server runs. Bearer-token auth, JSON in and out,
//! ordinary HTTP statuses.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Admin;
use super::State;
use crate::domain::{blank_is_none, EventId, Hash32, UserSettings, Username};
use crate::invoices::InvoiceQuery;
use crate::operator::WebhookQuery;
use crate::routes::errors::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(256 * 1024)
                    .error_handler(|e, _| ApiError::invalid(format!("request body: {e}")).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::invalid(format!("query: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::invalid(e.to_string()).into()),
            )
            .route("/users", web::get().to(list_users))
            .route("/users", web::post().to(add_user))
            .route("/users/{name}", web::get().to(show_user))
            .route("/users/{name}", web::patch().to(update_user))
            .route("/users/{name}", web::delete().to(remove_user))
            .route("/invoices", web::get().to(list_invoices))
            .route("/invoices/{hash}", web::get().to(show_invoice))
            .route("/dev/settle/{hash}", web::post().to(dev_settle))
            .route("/dev/pay-offer/{name}", web::post().to(dev_pay_offer))
            .route("/bip353/records", web::get().to(bip353_records))
            .route("/bip353/ds", web::get().to(bip353_delegations))
            .route("/bip353/sync", web::get().to(bip353_sync_reports))
            .route("/bip353/sync", web::post().to(bip353_sync_now))
            .route("/bip353/rollover/{step}", web::post().to(bip353_rollover))
            .route("/users/{name}/api-keys", web::post().to(create_api_key))
            .route("/users/{name}/notify/test", web::post().to(notify_test))
            .route(
                "/users/{name}/notify/telegram",
                web::post().to(telegram_code),
            )
            .route("/api-keys", web::get().to(list_api_keys))
            .route("/api-keys/{id}", web::delete().to(revoke_api_key))
            .route("/backup", web::get().to(backup))
            .route("/nostr", web::get().to(show_nostr))
            .route("/nostr/rotate", web::post().to(rotate_nostr))
            .route("/webhooks", web::get().to(list_webhooks))
            .route("/webhooks/{id}", web::get().to(show_webhook))
            .route("/webhooks/{id}/retry", web::post().to(retry_webhook))
            .route("/prune", web::post().to(prune))
            .route("/invites", web::get().to(list_invites))
            .route("/invites", web::post().to(create_invite))
            .route("/invites/{id}", web::delete().to(revoke_invite))
            .route("/operators/invites", web::post().to(create_operator_invite))
            .route("/audit", web::get().to(audit_log))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_found("no such admin endpoint"))
            })),
    );
}

type Answer = Result<HttpResponse, ApiError>;

/// A user's name in a path: any spelling a person would type (`Alice`), the stored name.
fn name(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|e| ApiError::invalid(format!("name: {e}")))
}

fn hash(raw: &str) -> Result<Hash32, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid(format!("'{raw}' is not a 64-character hex payment hash")))
}

fn event(raw: &str) -> Result<EventId, ApiError> {
    raw.parse().map_err(ApiError::invalid)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    settings: UserSettings,
}

async fn list_users(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.users().await?))
}

async fn add_user(admin: Admin, state: web::Data<State>, body: web::Json<NewUser>) -> Answer {
    let NewUser { name, settings } = body.into_inner();
    let name = Username::parse_new(&name).map_err(|e| ApiError::invalid(format!("name: {e}")))?;
    let user = state.services.operator.add_user(name, settings).await?;
    admin
        .audit(&state, &format!("user.add {}", user.name))
        .await;
    Ok(HttpResponse::Created().json(user))
}

async fn show_user(_: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.user(&name(&raw)?).await?))
}

async fn update_user(
    admin: Admin,
    state: web::Data<State>,
    raw: web::Path<String>,
    body: web::Json<UserSettings>,
) -> Answer {
    let user = state
        .services
        .operator
        .update_user(name(&raw)?, body.into_inner())
        .await?;
    admin
        .audit(&state, &format!("user.update {}", user.name))
        .await;
    Ok(HttpResponse::Ok().json(user))
}

async fn remove_user(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let name = name(&raw)?;
    state.services.operator.remove_user(&name).await?;
    admin.audit(&state, &format!("user.remove {name}")).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyTest {
    /// A channel's key (`email:a@b.example`); absent: every channel.
    #[serde(default)]
    channel: Option<String>,
}

/// Queues a test message through one of the user's notification channels, or each.
async fn notify_test(
    admin: Admin,
    state: web::Data<State>,
    raw: web::Path<String>,
    body: Option<web::Json<NotifyTest>>,
) -> Answer {
    let name = name(&raw)?;
    let channel = body.and_then(|b| b.into_inner().channel);
    let queued = state
        .services
        .operator
        .notify_test(&name, channel.as_deref())
        .await?;
    admin
        .audit(&state, &format!("user.notify_test {name}"))
        .await;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "queued": queued })))
}

/// A one-time code (and the bot's link) for the user to link a Telegram chat.
async fn telegram_code(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let name = name(&raw)?;
    let code = state.services.operator.telegram_link_code(&name).await?;
    admin
        .audit(&state, &format!("user.telegram_code {name}"))
        .await;
    Ok(HttpResponse::Created().json(code))
}

async fn list_invoices(
    _: Admin,
    state: web::Data<State>,
    query: web::Query<InvoiceQuery>,
) -> Answer {
    let invoices = state.services.operator.invoices(query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(invoices))
}

async fn show_invoice(_: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.invoice(&hash(&raw)?).await?))
}

async fn dev_settle(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let hash = hash(&raw)?;
    let settled = state.services.operator.dev_settle(&hash).await?;
    admin.audit(&state, &format!("dev.settle {hash}")).await;
    Ok(HttpResponse::Ok().json(settled))
}

#[derive(serde::Deserialize)]
struct PayOffer {
    amount_msat: u64,
    #[serde(default)]
    note: Option<String>,
}

async fn dev_pay_offer(
    admin: Admin,
    state: web::Data<State>,
    raw: web::Path<String>,
    body: web::Json<PayOffer>,
) -> Answer {
    let name = name(&raw)?;
    let PayOffer { amount_msat, note } = body.into_inner();
    let paid = state
        .services
        .operator
        .dev_pay_offer(&name, crate::domain::Msat::from_msat(amount_msat), note)
        .await?;
    admin.audit(&state, &format!("dev.pay_offer {name}")).await;
    Ok(HttpResponse::Ok().json(paid))
}

async fn bip353_records(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.bip353_records().await?))
}

async fn bip353_sync_reports(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.bip353_sync(false).await?))
}

async fn bip353_sync_now(admin: Admin, state: web::Data<State>) -> Answer {
    let reports = state.services.operator.bip353_sync(true).await?;
    admin.audit(&state, "bip353.sync").await;
    Ok(HttpResponse::Ok().json(reports))
}

async fn bip353_delegations(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.bip353_delegations().await?))
}

async fn bip353_rollover(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let step = match raw.as_str() {
        "start" => crate::bip353::keys::Rollover::Start,
        "finish" => crate::bip353::keys::Rollover::Finish,
        other => {
            return Err(ApiError::invalid(format!(
                "rollover step {other:?}: start or finish"
            )))
        }
    };
    let keys = state.services.operator.bip353_rollover(step).await?;
    admin.audit(&state, &format!("bip353.rollover {raw}")).await;
    // Every instance signs with what the store now holds.
    state.services.rebuild_zones().await;
    Ok(HttpResponse::Ok().json(keys))
}

async fn list_webhooks(
    _: Admin,
    state: web::Data<State>,
    query: web::Query<WebhookQuery>,
) -> Answer {
    let events = state.services.operator.webhooks(query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(events))
}

async fn show_webhook(_: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.webhook(&event(&raw)?).await?))
}

async fn retry_webhook(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let id = event(&raw)?;
    let retried = state.services.operator.retry_webhook(&id).await?;
    admin
        .audit(&state, &format!("webhook.redeliver {id}"))
        .await;
    Ok(HttpResponse::Ok().json(retried))
}

#[derive(Deserialize)]
struct PruneQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn prune(admin: Admin, state: web::Data<State>, query: web::Query<PruneQuery>) -> Answer {
    let pruned = state.services.operator.prune(query.dry_run).await?;
    let what = if query.dry_run {
        "prune.dry_run"
    } else {
        "prune"
    };
    admin.audit(&state, what).await;
    Ok(HttpResponse::Ok().json(pruned))
}

async fn create_api_key(admin: Admin, state: web::Data<State>, raw: web::Path<String>) -> Answer {
    let user = name(&raw)?;
    let created = state.services.operator.create_api_key(&user).await?;
    admin.audit(&state, &format!("api_key.create {user}")).await;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize)]
struct KeyQuery {
    #[serde(default, deserialize_with = "blank_is_none")]
    user: Option<Username>,
}

async fn list_api_keys(_: Admin, state: web::Data<State>, query: web::Query<KeyQuery>) -> Answer {
    let keys = state
        .services
        .operator
        .api_keys(query.user.as_ref())
        .await?;
    Ok(HttpResponse::Ok().json(keys))
}

async fn revoke_api_key(admin: Admin, state: web::Data<State>, id: web::Path<String>) -> Answer {
    let revoked = state.services.operator.revoke_api_key(&id).await?;
    admin
        .audit(&state, &format!("api_key.revoke {}", revoked.id))
        .await;
    Ok(HttpResponse::Ok().json(revoked))
}

async fn show_nostr(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.operator.nostr()))
}

async fn rotate_nostr(admin: Admin, state: web::Data<State>) -> Answer {
    let rotated = state.services.operator.rotate_nostr_key().await?;
    admin.audit(&state, "nostr.rotate").await;
    Ok(HttpResponse::Ok().json(rotated))
}

async fn backup(admin: Admin, state: web::Data<State>) -> Answer {
    let backup = state.services.operator.backup().await?;
    admin.audit(&state, "backup.download").await;
    Ok(HttpResponse::Ok().json(backup))
}

async fn list_invites(_: Admin, state: web::Data<State>) -> Answer {
    Ok(HttpResponse::Ok().json(state.services.accounts.invites().await?))
}

async fn create_invite(
    admin: Admin,
    state: web::Data<State>,
    body: web::Json<crate::accounts::InviteRequest>,
) -> Answer {
    let created = state
        .services
        .accounts
        .create_invite(body.into_inner())
        .await?;
    admin
        .audit(&state, &format!("invite.create {}", created.invite.id))
        .await;
    Ok(HttpResponse::Created().json(created))
}

async fn revoke_invite(admin: Admin, state: web::Data<State>, id: web::Path<String>) -> Answer {
    let revoked = state.services.accounts.revoke_invite(&id).await?;
    admin
        .audit(&state, &format!("invite.revoke {}", revoked.id))
        .await;
    Ok(HttpResponse::Ok().json(revoked))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorInviteRequest {
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn create_operator_invite(
    admin: Admin,
    state: web::Data<State>,
    body: web::Json<OperatorInviteRequest>,
) -> Answer {
    let lifetime = body
        .expires_in
        .unwrap_or(crate::accounts::OPERATOR_INVITE_LIFETIME);
    let accounts = &state.services.accounts;
    let created = accounts
        .create_operator_invite(crate::routes::auth::ADMIN_TOKEN, lifetime)
        .await?;
    admin
        .audit(&state, &format!("operator.invite {}", created.id))
        .await;
    let invite = crate::accounts::OperatorInviteUrl::of(state.admin.console_url.base(), &created);
    Ok(HttpResponse::Created().json(invite))
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit_log(_: Admin, state: web::Data<State>, query: web::Query<AuditQuery>) -> Answer {
    let limit = crate::domain::ListLimit::new(query.limit).get();
    Ok(HttpResponse::Ok().json(state.services.accounts.audit_log(limit).await?))
}
