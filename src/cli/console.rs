//! How an operator command reaches the data: through the running server's admin API (sled
//! allows one process per store), or by opening the services itself when no server runs, or
//! always when the store is a database (any number of processes share it).

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::args::{GlobalArgs, ServeArgs};
use crate::config::{ConfigError, Settings};
use crate::domain::{EventId, Hash32, Secret, UserSettings, Username};
use crate::invoices::{InvoiceQuery, OperatorInvoiceView};
use crate::keys::read_admin_token;
use crate::operator::{
    ApiKeyCreated, ApiKeyView, NostrView, OperatorError, UserView, WebhookQuery, WebhookView,
};
use crate::services::{OpenError, Overrides, Services};
use crate::startup::server_url_path;
use crate::store::{PgStore, Pruned, SledStore, StoreError};

/// Who the audit log says acted, when the CLI works on the store itself.
const COMMAND_LINE: &str = "command line";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{message}")]
    Api { status: u16, message: String },
}

impl From<OperatorError> for CliError {
    fn from(e: OperatorError) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
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

/// Where operator commands go: a running server's admin API, or the services opened here.
pub enum Console {
    Remote {
        client: reqwest::Client,
        base: String,
        token: Secret,
    },
    Local(Arc<Services>),
}

/// One operator action, by either way: `$remote` builds the admin API call, `$local` calls
/// the operator service.
macro_rules! either {
    ($console:expr, remote: |$c:ident| $remote:expr, local: |$op:ident| $local:expr) => {
        match $console {
            Console::Remote { .. } => {
                let $c = $console;
                $remote
            }
            Console::Local(services) => {
                let $op = &services.operator;
                Ok($local)
            }
        }
    };
}

impl Console {
    pub async fn connect(global: &GlobalArgs) -> Result<Self, CliError> {
        // A database is shared: the CLI works on it directly, servers running or not, and
        // they hear about what it changed (see `cluster`).
        if global.database_url.is_some() && global.admin_url.is_none() {
            return Ok(Self::Local(open_locally(global).await?));
        }
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
                    None => match read_admin_token(&global.data_dir)
                        .map_err(|e| CliError::Failed(format!("reading the admin token: {e}")))?
                    {
                        Some(token) => token,
                        None => stored_admin_token(global).await?.ok_or_else(|| {
                            CliError::Usage(format!(
                                "a server answers at {base}, but there is no admin token: set RAYO_ADMIN_TOKEN"
                            ))
                        })?,
                    },
                };
                Ok(Self::Remote { client, base, token })
            }
            Ok(answer) => Err(CliError::Failed(format!(
                "{base} answered {} to a health check: is that a rayo server? Set RAYO_ADMIN_URL to the right one",
                answer.status()
            ))),
            Err(_) => Ok(Self::Local(open_locally(global).await?)),
        }
    }

    pub async fn users(&self) -> Result<Vec<UserView>, CliError> {
        either!(self, remote: |c| c.call(Method::GET, "/users", None::<&()>).await,
            local: |op| op.users().await?)
    }

    pub async fn user(&self, name: &Username) -> Result<UserView, CliError> {
        either!(self, remote: |c| c.call(Method::GET, &format!("/users/{}", segment(name.as_str())), None::<&()>).await,
            local: |op| op.user(name).await?)
    }

    pub async fn add_user(
        &self,
        name: Username,
        settings: UserSettings,
    ) -> Result<UserView, CliError> {
        either!(self, remote: |c| {
                let body = serde_json::json!({ "name": name, "settings": settings });
                c.call(Method::POST, "/users", Some(&body)).await
            },
            local: |op| op.add_user(name, settings).await?)
    }

    pub async fn update_user(
        &self,
        name: Username,
        settings: UserSettings,
    ) -> Result<UserView, CliError> {
        either!(self, remote: |c| c.call(Method::PATCH, &format!("/users/{}", segment(name.as_str())), Some(&settings)).await,
            local: |op| op.update_user(name, settings).await?)
    }

    pub async fn remove_user(&self, name: &Username) -> Result<(), CliError> {
        either!(self, remote: |c| c
                .call::<serde_json::Value>(Method::DELETE, &format!("/users/{}", segment(name.as_str())), None::<&()>)
                .await
                .map(|_| ()),
            local: |op| op.remove_user(name).await?)
    }

    /// Queues a test message through `name`'s channel `channel` (a key), or each; how many.
    pub async fn notify_test(
        &self,
        name: &Username,
        channel: Option<&str>,
    ) -> Result<usize, CliError> {
        either!(self, remote: |c| {
                let answer: serde_json::Value = c
                    .call(Method::POST, &format!("/users/{}/notify/test", segment(name.as_str())), Some(&serde_json::json!({ "channel": channel })))
                    .await?;
                Ok(answer["queued"].as_u64().unwrap_or(0) as usize)
            },
            local: |op| op.notify_test(name, channel).await?)
    }

    /// A one-time code for `name` to link a Telegram chat to the bot.
    pub async fn telegram_link_code(
        &self,
        name: &Username,
    ) -> Result<crate::operator::TelegramLinkCode, CliError> {
        either!(self, remote: |c| c
                .call(Method::POST, &format!("/users/{}/notify/telegram", segment(name.as_str())), None::<&()>)
                .await,
            local: |op| op.telegram_link_code(name).await?)
    }

    pub async fn invoices(
        &self,
        query: InvoiceQuery,
    ) -> Result<Vec<OperatorInvoiceView>, CliError> {
        either!(self, remote: |c| {
                let query = serde_urlencoded_string(&query)?;
                c.call(Method::GET, &format!("/invoices?{query}"), None::<&()>).await
            },
            local: |op| op.invoices(query).await?)
    }

    pub async fn invoice(&self, hash: &Hash32) -> Result<OperatorInvoiceView, CliError> {
        either!(self, remote: |c| c.call(Method::GET, &format!("/invoices/{hash}"), None::<&()>).await,
            local: |op| op.invoice(hash).await?)
    }

    pub async fn dev_settle(&self, hash: &Hash32) -> Result<OperatorInvoiceView, CliError> {
        either!(self, remote: |c| c.call(Method::POST, &format!("/dev/settle/{hash}"), None::<&()>).await,
            local: |op| op.dev_settle(hash).await?)
    }

    pub async fn webhooks(&self, query: WebhookQuery) -> Result<Vec<WebhookView>, CliError> {
        either!(self, remote: |c| {
                let query = serde_urlencoded_string(&query)?;
                c.call(Method::GET, &format!("/webhooks?{query}"), None::<&()>).await
            },
            local: |op| op.webhooks(query).await?)
    }

    pub async fn webhook(&self, id: &EventId) -> Result<WebhookView, CliError> {
        either!(self, remote: |c| c.call(Method::GET, &format!("/webhooks/{id}"), None::<&()>).await,
            local: |op| op.webhook(id).await?)
    }

    pub async fn retry_webhook(&self, id: &EventId) -> Result<WebhookView, CliError> {
        either!(self, remote: |c| c.call(Method::POST, &format!("/webhooks/{id}/retry"), None::<&()>).await,
            local: |op| op.retry_webhook(id).await?)
    }

    pub async fn prune(&self, dry_run: bool) -> Result<Pruned, CliError> {
        either!(self, remote: |c| c.call(Method::POST, &format!("/prune?dry_run={dry_run}"), None::<&()>).await,
            local: |op| op.prune(dry_run).await?)
    }

    pub async fn create_api_key(&self, user: &Username) -> Result<ApiKeyCreated, CliError> {
        either!(self, remote: |c| c.call(Method::POST, &format!("/users/{}/api-keys", segment(user.as_str())), None::<&()>).await,
            local: |op| op.create_api_key(user).await?)
    }

    pub async fn api_keys(&self, user: Option<&Username>) -> Result<Vec<ApiKeyView>, CliError> {
        either!(self, remote: |c| {
                let path = match user {
                    Some(user) => format!("/api-keys?user={}", segment(user.as_str())),
                    None => "/api-keys".to_owned(),
                };
                c.call(Method::GET, &path, None::<&()>).await
            },
            local: |op| op.api_keys(user).await?)
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyView, CliError> {
        either!(self, remote: |c| c.call(Method::DELETE, &format!("/api-keys/{}", segment(id)), None::<&()>).await,
            local: |op| op.revoke_api_key(id).await?)
    }

    pub async fn dev_pay_offer(
        &self,
        user: &Username,
        amount_msat: u64,
        note: Option<String>,
    ) -> Result<OperatorInvoiceView, CliError> {
        let body = serde_json::json!({ "amount_msat": amount_msat, "note": note });
        either!(self, remote: |c| c.call(Method::POST, &format!("/dev/pay-offer/{}", segment(user.as_str())), Some(&body)).await,
            local: |op| op.dev_pay_offer(user, crate::domain::Msat::from_msat(amount_msat), note).await?)
    }

    pub async fn bip353_records(&self) -> Result<crate::operator::RecordsView, CliError> {
        either!(self, remote: |c| c.call(Method::GET, "/bip353/records", None::<&()>).await,
            local: |op| op.bip353_records().await?)
    }

    pub async fn bip353_sync(
        &self,
        now: bool,
    ) -> Result<Vec<crate::bip353::providers::SyncReport>, CliError> {
        let method = if now { Method::POST } else { Method::GET };
        either!(self, remote: |c| c.call(method, "/bip353/sync", None::<&()>).await,
            local: |op| op.bip353_sync(now).await?)
    }

    pub async fn bip353_delegations(
        &self,
    ) -> Result<Vec<crate::bip353::publish::Delegation>, CliError> {
        either!(self, remote: |c| c.call(Method::GET, "/bip353/ds", None::<&()>).await,
            local: |op| op.bip353_delegations().await?)
    }

    pub async fn bip353_rollover(
        &self,
        step: crate::bip353::keys::Rollover,
    ) -> Result<Vec<crate::bip353::publish::Delegation>, CliError> {
        let name = match step {
            crate::bip353::keys::Rollover::Start => "start",
            crate::bip353::keys::Rollover::Finish => "finish",
        };
        either!(self, remote: |c| c.call(Method::POST, &format!("/bip353/rollover/{name}"), None::<&()>).await,
            local: |op| op.bip353_rollover(step).await?)
    }

    pub async fn nostr(&self) -> Result<NostrView, CliError> {
        either!(self, remote: |c| c.call(Method::GET, "/nostr", None::<&()>).await,
            local: |op| op.nostr())
    }

    pub async fn rotate_nostr_key(&self) -> Result<NostrView, CliError> {
        either!(self, remote: |c| c.call(Method::POST, "/nostr/rotate", None::<&()>).await,
            local: |op| op.rotate_nostr_key().await?)
    }

    pub async fn create_invite(
        &self,
        request: &crate::accounts::InviteRequest,
    ) -> Result<crate::accounts::InviteCreated, CliError> {
        match self {
            Console::Remote { .. } => self.call(Method::POST, "/invites", Some(request)).await,
            Console::Local(services) => Ok(services
                .accounts
                .create_invite(request.clone())
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?),
        }
    }

    pub async fn invites(&self) -> Result<Vec<crate::accounts::InviteView>, CliError> {
        match self {
            Console::Remote { .. } => self.call(Method::GET, "/invites", None::<&()>).await,
            Console::Local(services) => Ok(services
                .accounts
                .invites()
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?),
        }
    }

    pub async fn revoke_invite(&self, id: &str) -> Result<crate::accounts::InviteView, CliError> {
        match self {
            Console::Remote { .. } => {
                self.call(
                    Method::DELETE,
                    &format!("/invites/{}", segment(id)),
                    None::<&()>,
                )
                .await
            }
            Console::Local(services) => Ok(services
                .accounts
                .revoke_invite(id)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?),
        }
    }

    /// A one-time URL to become an operator of the console.
    pub async fn operator_invite(
        &self,
        lifetime: u64,
    ) -> Result<crate::accounts::OperatorInviteUrl, CliError> {
        match self {
            Console::Remote { .. } => {
                let body = serde_json::json!({ "expires_in": lifetime });
                self.call(Method::POST, "/operators/invites", Some(&body))
                    .await
            }
            Console::Local(services) => {
                let accounts = &services.accounts;
                let failed = |e: crate::accounts::AccountError| CliError::Failed(e.to_string());
                let created = accounts
                    .create_operator_invite(COMMAND_LINE, lifetime)
                    .await
                    .map_err(failed)?;
                accounts
                    .audit(
                        COMMAND_LINE,
                        &format!("operator.invite {}", created.id),
                        "local",
                    )
                    .await
                    .map_err(failed)?;
                let base = services
                    .settings
                    .console_url_for(services.settings.admin_bind);
                Ok(crate::accounts::OperatorInviteUrl::of(
                    base.base(),
                    &created,
                ))
            }
        }
    }

    /// The newest lines of the operators' audit log.
    pub async fn audit_log(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::accounts::AuditEntry>, CliError> {
        match self {
            Console::Remote { .. } => {
                self.call(Method::GET, &format!("/audit?limit={limit}"), None::<&()>)
                    .await
            }
            Console::Local(services) => services
                .accounts
                .audit_log(limit)
                .await
                .map_err(|e| CliError::Failed(e.to_string())),
        }
    }

    pub async fn backup(&self) -> Result<crate::backup::Backup, CliError> {
        either!(self, remote: |c| c.call(Method::GET, "/backup", None::<&()>).await,
            local: |op| op.backup().await?)
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

fn serde_urlencoded_string(query: &impl Serialize) -> Result<String, CliError> {
    let value = serde_json::to_value(query).map_err(|e| CliError::Failed(e.to_string()))?;
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let serde_json::Value::Object(fields) = value {
        for (key, value) in fields {
            match value {
                serde_json::Value::String(s) => out.append_pair(&key, &s),
                serde_json::Value::Null => &mut out,
                other => out.append_pair(&key, &other.to_string()),
            };
        }
    }
    Ok(out.finish())
}

/// The settings the CLI works with when it opens the store itself: the global flags, and what
/// the environment says about the rest (the same variables the server reads).
pub fn settings(global: &GlobalArgs) -> Result<Settings, CliError> {
    Ok(Settings::from_args(global, ServeArgs::from_env()?)?)
}

/// The services, opened by this process (no server runs), or why not in plain words.
async fn open_locally(global: &GlobalArgs) -> Result<Arc<Services>, CliError> {
    Services::open(settings(global)?, Overrides::default())
        .await
        .map_err(|e| match e {
            OpenError::Store(StoreError::Locked(_)) => locked(global),
            other => CliError::Failed(other.to_string()),
        })
}

fn locked(global: &GlobalArgs) -> CliError {
    CliError::Failed(format!(
        "the store at {} is locked by another process, but no rayo server answers at {}. \
         Is a server still starting, or another rayo command running? If the server listens \
         elsewhere, set RAYO_ADMIN_URL.",
        global.data_dir.join("store").display(),
        admin_base_url(global)
    ))
}

/// The store alone, opened by this process (no server runs).
fn open_store(global: &GlobalArgs) -> Result<SledStore, CliError> {
    let path = global.data_dir.join("store");
    crate::data_dir::prepare(&global.data_dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", global.data_dir.display())))?;
    SledStore::open(&path).map_err(|e| match e {
        StoreError::Locked(_) => locked(global),
        other => CliError::Failed(format!("opening the store at {}: {other}", path.display())),
    })
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
    if let Some(url) = &global.database_url {
        return restore_into_database(url.expose().to_owned(), checked, force).await;
    }
    if server_answers(global).await {
        return Err(CliError::Failed(
            "a server is running on this data directory: stop it first, restore needs the store to itself".into(),
        ));
    }
    if !force {
        let store = open_store(global)?;
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

/// The admin token a database keeps (see `keys::STORED_ADMIN_TOKEN`), when there is one.
async fn stored_admin_token(global: &GlobalArgs) -> Result<Option<Secret>, CliError> {
    let Some(url) = global.database_url.as_ref().map(|u| u.expose().to_owned()) else {
        return Ok(None);
    };
    let stored = tokio::task::spawn_blocking(move || {
        use crate::store::Store;
        PgStore::open(&url)?.meta(crate::keys::STORED_ADMIN_TOKEN)
    })
    .await
    .map_err(|e| CliError::Failed(format!("database: {e}")))?
    .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(stored
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Secret::new))
}

/// A restore into PostgreSQL: in one transaction, so a failure leaves the database as it was.
async fn restore_into_database(
    url: String,
    checked: crate::backup::CheckedBackup,
    force: bool,
) -> Result<(usize, usize), CliError> {
    let (users, invoices) = (checked.users(), checked.invoices());
    tokio::task::spawn_blocking(move || {
        if PgStore::server_running(&url).map_err(|e| e.to_string())? {
            return Err(
                "a server is running on this database: stop it first, restore needs the database to itself"
                    .to_owned(),
            );
        }
        let store = PgStore::open(&url).map_err(|e| e.to_string())?;
        if !force {
            crate::backup::refuse_unless_empty(&store).map_err(|e| e.to_string())?;
        }
        store
            .replace(|store| crate::backup::load(store, &checked))
            .map_err(|e| format!("restore: {e}; the database was left as it was"))
    })
    .await
    .map_err(|e| CliError::Failed(format!("restore: {e}")))?
    .map_err(CliError::Failed)?;
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
