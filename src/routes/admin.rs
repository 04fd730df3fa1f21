//! `/admin/v1`: what the CLI uses while a server runs. Bearer-token auth, JSON in and out,
//! ordinary HTTP statuses.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::admin::{AdminError, InvoiceQuery, Registry, WebhookQuery};
use crate::clock::secrets_match;
use crate::domain::{Secret, UserSettings};
use crate::error::ApiError;

/// The token admin requests must present.
pub struct AdminToken(pub Secret);

/// Where the admin API listens, when it has an address of its own: elsewhere it does not exist.
pub struct AdminAddress(pub std::net::SocketAddr);

/// Whether `req` came in where operator endpoints live: the admin address if there is one,
/// else anywhere.
pub fn on_admin_address(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AdminAddress>>()
        .is_none_or(|admin| req.app_config().local_addr() == admin.0)
}

/// Whether `req` may see what operators see: it came in on the admin address (when there is
/// one) and carries the admin token.
pub fn has_admin_access(req: &HttpRequest) -> bool {
    on_admin_address(req)
        && match req.app_data::<web::Data<AdminAddress>>() {
            Some(_) => true,
            None => bearer(req).is_some_and(|token| {
                req.app_data::<web::Data<AdminToken>>()
                    .is_some_and(|expected| {
                        secrets_match(token.as_bytes(), expected.0.expose().as_bytes())
                    })
            }),
        }
}

/// The bearer token a request carries, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

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
            .route("/users", web::get().to(list_users))
            .route("/users", web::post().to(add_user))
            .route("/users/{name}", web::get().to(show_user))
            .route("/users/{name}", web::patch().to(update_user))
            .route("/users/{name}", web::delete().to(remove_user))
            .route("/invoices", web::get().to(list_invoices))
            .route("/invoices/{hash}", web::get().to(show_invoice))
            .route("/dev/settle/{hash}", web::post().to(dev_settle))
            .route("/users/{name}/api-keys", web::post().to(create_api_key))
            .route("/api-keys", web::get().to(list_api_keys))
            .route("/api-keys/{id}", web::delete().to(revoke_api_key))
            .route("/backup", web::get().to(backup))
            .route("/nostr", web::get().to(show_nostr))
            .route("/nostr/rotate", web::post().to(rotate_nostr))
            .route("/webhooks", web::get().to(list_webhooks))
            .route("/webhooks/{id}", web::get().to(show_webhook))
            .route("/webhooks/{id}/retry", web::post().to(retry_webhook))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_found("no such admin endpoint"))
            })),
    );
}

/// Proof that the request carried the admin token. Compared in constant time.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if !on_admin_address(req) {
            return ready(Err(ApiError::not_found("no such endpoint")));
        }
        let presented = bearer(req);
        let expected = req.app_data::<web::Data<AdminToken>>();
        ready(match (presented, expected) {
            (Some(token), Some(expected))
                if secrets_match(token.as_bytes(), expected.0.expose().as_bytes()) =>
            {
                Ok(Admin)
            }
            _ => Err(ApiError::unauthorized()),
        })
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        use actix_web::http::StatusCode;
        match e {
            AdminError::NotFound(m) => ApiError::not_found(m),
            AdminError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AdminError::Invalid(m) => ApiError::invalid(m),
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin request failed in the store");
                ApiError::internal("the store failed; see the server log")
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    settings: UserSettings,
}

async fn list_users(_: Admin, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.users().await?))
}

async fn add_user(
    _: Admin,
    registry: web::Data<Registry>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let NewUser { name, settings } = body.into_inner();
    Ok(HttpResponse::Created().json(registry.add_user(&name, settings).await?))
}

async fn show_user(
    _: Admin,
    registry: web::Data<Registry>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.user(&name).await?))
}

async fn update_user(
    _: Admin,
    registry: web::Data<Registry>,
    name: web::Path<String>,
    body: web::Json<UserSettings>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.update_user(&name, body.into_inner()).await?))
}

async fn remove_user(
    _: Admin,
    registry: web::Data<Registry>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    registry.remove_user(&name).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_invoices(
    _: Admin,
    registry: web::Data<Registry>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.invoices(query.into_inner()).await?))
}

async fn show_invoice(
    _: Admin,
    registry: web::Data<Registry>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.invoice(&hash).await?))
}

async fn dev_settle(
    _: Admin,
    registry: web::Data<Registry>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.dev_settle(&hash).await?))
}

async fn list_webhooks(
    _: Admin,
    registry: web::Data<Registry>,
    query: web::Query<WebhookQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.webhooks(query.into_inner()).await?))
}

async fn show_webhook(
    _: Admin,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.webhook(&id).await?))
}

async fn retry_webhook(
    _: Admin,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.retry_webhook(&id).await?))
}

async fn create_api_key(
    _: Admin,
    registry: web::Data<Registry>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(registry.create_api_key(&name).await?))
}

#[derive(Deserialize)]
struct KeyQuery {
    user: Option<String>,
}

async fn list_api_keys(
    _: Admin,
    registry: web::Data<Registry>,
    query: web::Query<KeyQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.api_keys(query.user.as_deref()).await?))
}

async fn revoke_api_key(
    _: Admin,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.revoke_api_key(&id).await?))
}

async fn show_nostr(_: Admin, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.nostr()?))
}

async fn rotate_nostr(_: Admin, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.rotate_nostr_key().await?))
}

async fn backup(_: Admin, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.backup().await?))
}
