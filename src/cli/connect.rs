//! How an operator command reaches the data: through the running server's admin API (sled
//! allows one process per store), or by opening the store itself when no server runs.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::GlobalArgs;
use crate::admin::{
    AdminError, ApiKeyCreated, ApiKeyView, InvoiceQuery, InvoiceView, NostrView, Registry,
    UserView, WebhookQuery, WebhookView,
};
use crate::backends::DevBackend;
use crate::clock::SystemClock;
use crate::domain::{Secret, UserSettings};
use crate::keys::{read_admin_token, ServerKeys};
use crate::nostr::NostrIdentity;
use crate::outbox::ZapContext;
use crate::startup::server_url_path;
use crate::store::{Db, SledStore, StoreError};
use crate::watch::Ledger;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{message}")]
    Api { status: u16, message: String },
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        CliError::Failed(e.to_string())
    }
}

pub enum Admin {
    Remote {
        client: reqwest::Client,
        base: String,
        token: Secret,
    },
    Local(Box<Registry>),
}

/// Whether a rayo server answers where the CLI looks for one.
pub async fn server_answers(global: &GlobalArgs) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    client
        .get(format!("{}/healthz", admin_base_url(global)))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok()
}

impl Admin {
    pub async fn connect(global: &GlobalArgs) -> Result<Self, CliError> {
        let base = admin_base_url(global);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
        let probe = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match probe {
            Ok(answer) if answer.status().is_success() => {
                let token = match &global.admin_token {
                    Some(token) => token.clone(),
                    None => read_admin_token(&global.data_dir)
                        .map_err(|e| CliError::Failed(format!("reading the admin token: {e}")))?
                        .ok_or_else(|| {
                            CliError::Usage(format!(
                                "a server answers at {base}, but there is no admin token: set RAYO_ADMIN_TOKEN"
                            ))
                        })?,
                };
                Ok(Self::Remote { client, base, token })
            }
            Ok(answer) => Err(CliError::Failed(format!(
                "{base} answered {} to a health check: is that a rayo server? Set RAYO_ADMIN_URL to the right one",
                answer.status()
            ))),
            Err(_) => Self::open_locally(global, &base).await,
        }
    }

    async fn open_locally(global: &GlobalArgs, base: &str) -> Result<Self, CliError> {
        let store = open_store(global, base)?;
        let domains = global.domains()?;
        let db = Db::new(Arc::new(store));
        let keys = ServerKeys::load_or_create(&db)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let clock = Arc::new(SystemClock);
        let dev = Arc::new(DevBackend::from_seed(&keys.dev_seed, clock.clone()));
        let config = crate::config_file::load(&global.config).map_err(CliError::Usage)?;
        let known = std::iter::once("default".to_owned())
            .chain(config.backends.keys().cloned())
            .collect();
        // Payments recorded here (dev settle) queue their webhooks and zap receipts for the
        // server to deliver, signed with the same stored (or configured) Nostr key.
        let configured_key = std::env::var("RAYO_NOSTR_SECRET_KEY").ok().map(Secret::new);
        let identity = NostrIdentity::load(&db, configured_key.as_ref())
            .await
            .map_err(CliError::Failed)?;
        let relays = std::env::var("RAYO_NOSTR_RELAYS").unwrap_or_default();
        let zaps = ZapContext {
            identity: identity.clone(),
            fallback_relays: relays
                .split(',')
                .filter_map(|r| crate::domain::RelayUrl::parse(r).ok())
                .collect(),
            reach: if std::env::var("RAYO_NOSTR_ALLOW_PRIVATE_RELAYS").is_ok_and(|v| v == "true") {
                crate::net::Reach::Anywhere
            } else {
                crate::net::Reach::Public
            },
        };
        let ledger = Arc::new(
            Ledger::new(
                db.clone(),
                clock.clone(),
                crate::config::Settings::defaults().webhook_window,
            )
            .with_zaps(zaps),
        );
        let registry = Registry::new(db, None, domains, clock, dev, ledger)
            .knowing_backends(known)
            .with_nostr(identity);
        Ok(Self::Local(Box::new(registry)))
    }

    pub async fn users(&self) -> Result<Vec<UserView>, CliError> {
        match self {
            Self::Remote { .. } => self.call(Method::GET, "/users", None::<&()>).await,
            Self::Local(r) => Ok(r.users().await?),
        }
    }

    pub async fn user(&self, name: &str) -> Result<UserView, CliError> {
        match self {
            Self::Remote { .. } => {
                self.call(
                    Method::GET,
                    &format!("/users/{}", segment(name)),
                    None::<&()>,
                )
                .await
            }
            Self::Local(r) => Ok(r.user(name).await?),
        }
    }

    pub async fn add_user(&self, name: &str, settings: UserSettings) -> Result<UserView, CliError> {
        match self {
            Self::Remote { .. } => {
                let body = serde_json::json!({ "name": name, "settings": settings });
                self.call(Method::POST, "/users", Some(&body)).await
            }
            Self::Local(r) => Ok(r.add_user(name, settings).await?),
        }
    }

    pub async fn update_user(
        &self,
        name: &str,
        settings: UserSettings,
    ) -> Result<UserView, CliError> {
        match self {
            Self::Remote { .. } => {
                self.call(
                    Method::PATCH,
                    &format!("/users/{}", segment(name)),
                    Some(&settings),
                )
                .await
            }
            Self::Local(r) => Ok(r.update_user(name, settings).await?),
        }
    }

    pub async fn remove_user(&self, name: &str) -> Result<(), CliError> {
        match self {
            Self::Remote { .. } => self
                .call::<serde_json::Value>(
                    Method::DELETE,
                    &format!("/users/{}", segment(name)),
                    None::<&()>,
                )
                .await
                .map(|_| ()),
            Self::Local(r) => Ok(r.remove_user(name).await?),
        }
    }

    pub async fn invoices(&self, query: InvoiceQuery) -> Result<Vec<InvoiceView>, CliError> {
        match self {
            Self::Remote { .. } => {
                let mut path = String::from("/invoices?");
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                if let Some(user) = &query.user {
                    q.append_pair("user", user);
                }
                if let Some(status) = &query.status {
                    q.append_pair("status", status);
                }
                if let Some(limit) = query.limit {
                    q.append_pair("limit", &limit.to_string());
                }
                path.push_str(&q.finish());
                self.call(Method::GET, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.invoices(query).await?),
        }
    }

    pub async fn invoice(&self, hash: &str) -> Result<InvoiceView, CliError> {
        match self {
            Self::Remote { .. } => {
                self.call(
                    Method::GET,
                    &format!("/invoices/{}", segment(hash)),
                    None::<&()>,
                )
                .await
            }
            Self::Local(r) => Ok(r.invoice(hash).await?),
        }
    }

    pub async fn dev_settle(&self, hash: &str) -> Result<InvoiceView, CliError> {
        match self {
            Self::Remote { .. } => {
                self.call(
                    Method::POST,
                    &format!("/dev/settle/{}", segment(hash)),
                    None::<&()>,
                )
                .await
            }
            Self::Local(r) => Ok(r.dev_settle(hash).await?),
        }
    }

    pub async fn webhooks(&self, query: WebhookQuery) -> Result<Vec<WebhookView>, CliError> {
        match self {
            Self::Remote { .. } => {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                if let Some(state) = &query.state {
                    q.append_pair("state", state);
                }
                if let Some(invoice) = &query.invoice {
                    q.append_pair("invoice", invoice);
                }
                if let Some(limit) = query.limit {
                    q.append_pair("limit", &limit.to_string());
                }
                let path = format!("/webhooks?{}", q.finish());
                self.call(Method::GET, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.webhooks(query).await?),
        }
    }

    pub async fn webhook(&self, id: &str) -> Result<WebhookView, CliError> {
        match self {
            Self::Remote { .. } => {
                let path = format!("/webhooks/{}", segment(id));
                self.call(Method::GET, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.webhook(id).await?),
        }
    }

    pub async fn retry_webhook(&self, id: &str) -> Result<WebhookView, CliError> {
        match self {
            Self::Remote { .. } => {
                let path = format!("/webhooks/{}/retry", segment(id));
                self.call(Method::POST, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.retry_webhook(id).await?),
        }
    }

    pub async fn create_api_key(&self, user: &str) -> Result<ApiKeyCreated, CliError> {
        match self {
            Self::Remote { .. } => {
                let path = format!("/users/{}/api-keys", segment(user));
                self.call(Method::POST, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.create_api_key(user).await?),
        }
    }

    pub async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKeyView>, CliError> {
        match self {
            Self::Remote { .. } => {
                let path = match user {
                    Some(user) => format!("/api-keys?user={}", segment(user)),
                    None => "/api-keys".to_owned(),
                };
                self.call(Method::GET, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.api_keys(user).await?),
        }
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyView, CliError> {
        match self {
            Self::Remote { .. } => {
                let path = format!("/api-keys/{}", segment(id));
                self.call(Method::DELETE, &path, None::<&()>).await
            }
            Self::Local(r) => Ok(r.revoke_api_key(id).await?),
        }
    }

    pub async fn nostr(&self) -> Result<NostrView, CliError> {
        match self {
            Self::Remote { .. } => self.call(Method::GET, "/nostr", None::<&()>).await,
            Self::Local(r) => Ok(r.nostr()?),
        }
    }

    pub async fn rotate_nostr_key(&self) -> Result<NostrView, CliError> {
        match self {
            Self::Remote { .. } => self.call(Method::POST, "/nostr/rotate", None::<&()>).await,
            Self::Local(r) => Ok(r.rotate_nostr_key().await?),
        }
    }

    pub async fn backup(&self) -> Result<crate::backup::Backup, CliError> {
        match self {
            Self::Remote { .. } => self.call(Method::GET, "/backup", None::<&()>).await,
            Self::Local(r) => Ok(r.backup().await?),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CliError> {
        let Self::Remote {
            client,
            base,
            token,
        } = self
        else {
            return Err(CliError::Failed("not connected to a server".into()));
        };
        let mut request = client
            .request(method, format!("{base}/admin/v1{path}"))
            .bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| CliError::Failed(format!("admin API at {base}: {e}")))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| CliError::Failed(format!("admin API at {base}: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            let message = if status == StatusCode::UNAUTHORIZED {
                format!("the server refused the admin token ({message}); check RAYO_ADMIN_TOKEN")
            } else {
                message
            };
            return Err(CliError::Api {
                status: status.as_u16(),
                message,
            });
        }
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes)
            .map_err(|e| CliError::Failed(format!("unexpected answer from {base}: {e}")))
    }
}

/// The store in the data directory, opened by this process (no server runs).
pub fn open_store(global: &GlobalArgs, base: &str) -> Result<SledStore, CliError> {
    let path = global.data_dir.join("store");
    crate::data_dir::prepare(&global.data_dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", global.data_dir.display())))?;
    match SledStore::open(&path) {
        Ok(store) => Ok(store),
        Err(StoreError::Locked(_)) => Err(CliError::Failed(format!(
            "the store at {} is locked by another process, but no rayo server answers at {base}. \
             Is a server still starting, or another rayo command running? If the server listens \
             elsewhere, set RAYO_ADMIN_URL.",
            path.display()
        ))),
        Err(e) => Err(CliError::Failed(format!(
            "opening the store at {}: {e}",
            path.display()
        ))),
    }
}

/// Loads a backup in place of the store: checked whole first, built beside the store, and
/// swapped in only once complete. Needs the store to itself (no server running).
pub async fn restore(
    global: &GlobalArgs,
    backup: crate::backup::Backup,
    force: bool,
) -> Result<(usize, usize), CliError> {
    let checked = crate::backup::check(backup, &global.domains()?)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if server_answers(global).await {
        return Err(CliError::Failed(
            "a server is running on this data directory: stop it first, restore needs the store to itself".into(),
        ));
    }
    let base = admin_base_url(global);
    if !force {
        let store = open_store(global, &base)?;
        crate::backup::refuse_unless_empty(&store).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    crate::data_dir::prepare(&global.data_dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", global.data_dir.display())))?;
    let path = global.data_dir.join("store");
    let (users, invoices) = (checked.users(), checked.invoices());
    tokio::task::spawn_blocking(move || {
        crate::store::replace_sled(&path, |store| crate::backup::load(store, &checked))
    })
    .await
    .map_err(|e| CliError::Failed(format!("restore: {e}")))?
    .map_err(|e| CliError::Failed(format!("restore: {e}; the store was left as it was")))?;
    Ok((users, invoices))
}

fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, NON_ALPHANUMERIC).to_string()
}

/// `RAYO_ADMIN_URL`, else what a running server wrote into the data directory, else the bind
/// address.
fn admin_base_url(global: &GlobalArgs) -> String {
    if let Some(url) = &global.admin_url {
        return url.trim_end_matches('/').to_owned();
    }
    if let Ok(url) = std::fs::read_to_string(server_url_path(&global.data_dir)) {
        let url = url.trim();
        if !url.is_empty() {
            return url.to_owned();
        }
    }
    let mut bind = global.bind;
    if bind.ip().is_unspecified() {
        bind.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{bind}")
}
