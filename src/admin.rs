//! Operator actions on users and invoices, shared by the admin API (server running) and the
//! CLI (opening the store itself when no server runs), and the views both print.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backends::DevBackend;
use crate::clock::{random_bytes, Clock};
use crate::config::Domains;
use crate::directory::Directory;
use crate::domain::{
    ApiKey, Attempt, Delivery, EventId, Hash32, InvoiceRecord, InvoiceStatus, Metadata, OutboxItem,
    PaidDetails, Secret, SuccessAction, User, UserContext, UserSettings, Username,
};
use crate::lnurl::bech32;
use crate::nostr::NostrIdentity;
use crate::store::{Db, StoreError};
use crate::watch::Ledger;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Registry {
    db: Db,
    /// The live LNURL routes' view of users, when a server runs.
    directory: Option<Arc<Directory>>,
    domains: Domains,
    clock: Arc<dyn Clock>,
    dev: Arc<DevBackend>,
    ledger: Arc<Ledger>,
    /// User changes are rare; serialising them keeps the directory in the store's order.
    user_writes: tokio::sync::Mutex<()>,
    /// Backend names users may choose; `None` when unknown (the CLI on its own).
    known_backends: Option<BTreeSet<String>>,
    nostr: Option<NostrIdentity>,
}

/// How a listing of invoices is narrowed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvoiceQuery {
    pub user: Option<String>,
    pub status: Option<String>,
    pub limit: Option<usize>,
}

pub const DEFAULT_LIST_LIMIT: usize = 50;
pub const MAX_LIST_LIMIT: usize = 1000;

impl Registry {
    pub fn new(
        db: Db,
        directory: Option<Arc<Directory>>,
        domains: Domains,
        clock: Arc<dyn Clock>,
        dev: Arc<DevBackend>,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            db,
            directory,
            domains,
            clock,
            dev,
            ledger,
            user_writes: tokio::sync::Mutex::new(()),
            known_backends: None,
            nostr: None,
        }
    }

    /// The Nostr identity `nostr` and `nostr rotate-key` show and change.
    pub fn with_nostr(mut self, identity: NostrIdentity) -> Self {
        self.nostr = Some(identity);
        self
    }

    pub fn nostr(&self) -> Result<NostrView, AdminError> {
        let identity = self
            .nostr
            .as_ref()
            .ok_or_else(|| AdminError::NotFound("no Nostr identity".into()))?;
        Ok(NostrView::of(&identity.public_key_hex()))
    }

    /// A new key for zap receipts; wallets see the new `nostrPubkey` at once.
    pub async fn rotate_nostr_key(&self) -> Result<NostrView, AdminError> {
        let identity = self
            .nostr
            .as_ref()
            .ok_or_else(|| AdminError::NotFound("no Nostr identity".into()))?;
        let public_key = identity
            .rotate(&self.db)
            .await
            .map_err(AdminError::Conflict)?;
        if let Some(directory) = &self.directory {
            directory.set_nostr_key(public_key.clone());
        }
        tracing::info!(nostr_pubkey = %public_key, "Nostr key rotated");
        Ok(NostrView::of(&public_key))
    }

    /// Refuses users that name a backend not in `names`.
    pub fn knowing_backends(mut self, names: BTreeSet<String>) -> Self {
        self.known_backends = Some(names);
        self
    }

    /// The domain `settings` put a user on (`current` if they name none), checked against the
    /// configured ones.
    fn domain_for(
        &self,
        settings: &UserSettings,
        current: Option<&str>,
    ) -> Result<String, AdminError> {
        match settings.domain.as_deref() {
            Some("") => Ok(self.domains.primary().domain().to_owned()),
            Some(wanted) => self
                .domains
                .get(wanted)
                .map(|u| u.domain().to_owned())
                .ok_or_else(|| {
                    let known: Vec<&str> = self.domains.all().map(|u| u.domain()).collect();
                    AdminError::Invalid(format!(
                        "domain: '{wanted}' is not configured (configured: {})",
                        known.join(", ")
                    ))
                }),
            None => Ok(self.domains.for_user(current).domain().to_owned()),
        }
    }

    fn check_backend(&self, settings: &UserSettings) -> Result<(), AdminError> {
        match (&settings.backend, &self.known_backends) {
            (Some(name), Some(known)) if !name.is_empty() && !known.contains(name) => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                Err(AdminError::Invalid(format!(
                    "backend: no backend named '{name}' (configured: {})",
                    names.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    pub async fn users(&self) -> Result<Vec<UserView>, AdminError> {
        let users = self.db.read(|s| s.users()).await?;
        Ok(users
            .iter()
            .map(|u| UserView::of(u, &self.domains, false))
            .collect())
    }

    pub async fn user(&self, name: &str) -> Result<UserView, AdminError> {
        let name = parse_name(name)?;
        let user = self.db.store().user(&name)?.ok_or_else(|| no_user(&name))?;
        Ok(UserView::of(&user, &self.domains, false))
    }

    /// Creates a user. The view shows the webhook secret, this once.
    pub async fn add_user(
        &self,
        name: &str,
        settings: UserSettings,
    ) -> Result<UserView, AdminError> {
        let name =
            Username::parse_new(name).map_err(|e| AdminError::Invalid(format!("name: {e}")))?;
        self.check_backend(&settings)?;
        let domain = self.domain_for(&settings, None)?;
        let now = self.clock.unix();
        self.write_user(move |store| {
            if store.user(&name)?.is_some() {
                return Ok(Err(AdminError::Conflict(format!(
                    "user '{name}' already exists"
                ))));
            }
            let ctx = UserContext {
                domain: &domain,
                now,
                new_secret: &new_webhook_secret,
            };
            let user = match User::create(name, settings, &ctx) {
                Ok(user) => user,
                Err(e) => return Ok(Err(AdminError::Invalid(e.to_string()))),
            };
            store.put_user(&user)?;
            Ok(Ok(Some(user)))
        })
        .await
        .map(|user| UserView::of(&user, &self.domains, true))
    }

    /// Changes a user. The view shows the webhook secret only if this change created one.
    pub async fn update_user(
        &self,
        name: &str,
        settings: UserSettings,
    ) -> Result<UserView, AdminError> {
        let name = parse_name(name)?;
        self.check_backend(&settings)?;
        let requested = settings
            .domain
            .as_ref()
            .map(|_| self.domain_for(&settings, None))
            .transpose()?;
        let domains = self.domains.clone();
        let now = self.clock.unix();
        let (user, fresh_secret) = self
            .write_user_with(move |store| {
                let Some(current) = store.user(&name)? else {
                    return Ok(Err(no_user(&name)));
                };
                let before = current.webhook_secret.clone();
                let domain = requested.clone().unwrap_or_else(|| {
                    domains
                        .for_user(current.domain.as_deref())
                        .domain()
                        .to_owned()
                });
                let ctx = UserContext {
                    domain: &domain,
                    now,
                    new_secret: &new_webhook_secret,
                };
                let updated = match current.updated(settings, &ctx) {
                    Ok(user) => user,
                    Err(e) => return Ok(Err(AdminError::Invalid(e.to_string()))),
                };
                store.put_user(&updated)?;
                let fresh = updated.webhook_secret.is_some() && updated.webhook_secret != before;
                Ok(Ok((Some(updated), fresh)))
            })
            .await?;
        Ok(UserView::of(&user, &self.domains, fresh_secret))
    }

    /// Removes a user and revokes their API keys in the same write, so a user created later
    /// under the same name does not inherit them. Their invoices stay, as records of money.
    pub async fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        let name = parse_name(name)?;
        let _guard = self.user_writes.lock().await;
        let removed_name = name.clone();
        let now = self.clock.unix();
        let removed = self
            .db
            .commit(move |s| {
                if !s.remove_user(&removed_name)? {
                    return Ok(false);
                }
                for mut key in s.api_keys()? {
                    if key.user == removed_name && key.is_active() {
                        key.revoked_at = Some(now);
                        s.put_api_key(&key)?;
                    }
                }
                Ok(true)
            })
            .await?;
        if !removed {
            return Err(no_user(&name));
        }
        if let Some(directory) = &self.directory {
            directory.remove(&name);
        }
        Ok(())
    }

    async fn write_user<F>(&self, op: F) -> Result<User, AdminError>
    where
        F: FnOnce(&dyn crate::store::Store) -> Result<Result<Option<User>, AdminError>, StoreError>
            + Send
            + 'static,
    {
        self.write_user_with(move |s| Ok(op(s)?.map(|user| (user, ()))))
            .await
            .map(|(user, ())| user)
    }

    /// Runs a user change on the store writer, then shows it to the LNURL routes.
    async fn write_user_with<T, F>(&self, op: F) -> Result<(User, T), AdminError>
    where
        T: Send + 'static,
        F: FnOnce(
                &dyn crate::store::Store,
            ) -> Result<Result<(Option<User>, T), AdminError>, StoreError>
            + Send
            + 'static,
    {
        let _guard = self.user_writes.lock().await;
        let domains = self.domains.clone();
        let (user, extra) = self
            .db
            .commit(move |store| {
                let outcome = op(store)?;
                // Invoices refer to the metadata by hash: store it with the user who serves it.
                if let Ok((Some(user), _)) = &outcome {
                    let domain = domains.for_user(user.domain.as_deref()).domain();
                    store.put_metadata(Metadata::for_user(user, domain).as_str())?;
                }
                Ok(outcome)
            })
            .await??;
        let user = user.ok_or_else(|| AdminError::NotFound("user".into()))?;
        if let Some(directory) = &self.directory {
            directory.upsert(user.clone());
        }
        Ok((user, extra))
    }

    pub async fn invoices(&self, query: InvoiceQuery) -> Result<Vec<InvoiceView>, AdminError> {
        let user = query.user.as_deref().map(parse_name).transpose()?;
        let status = match query.status.as_deref() {
            None | Some("") => None,
            Some(s @ ("pending" | "paid" | "expired")) => Some(s.to_owned()),
            Some(other) => {
                return Err(AdminError::Invalid(format!(
                    "status '{other}': use pending, paid or expired"
                )))
            }
        };
        let limit = query
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .clamp(1, MAX_LIST_LIMIT);
        let now = self.clock.unix();
        let records = self
            .db
            .read(move |s| {
                s.invoices(
                    user.as_ref(),
                    None,
                    &mut |r| {
                        status
                            .as_deref()
                            .is_none_or(|want| r.status_at(now).name() == want)
                    },
                    limit,
                )
            })
            .await?;
        Ok(records
            .iter()
            .map(|r| InvoiceView::of(r, now, None))
            .collect())
    }

    /// One invoice, with the exact string its description hash commits to.
    pub async fn invoice(&self, hash: &str) -> Result<InvoiceView, AdminError> {
        let hash = parse_hash(hash)?;
        let record = self
            .db
            .store()
            .invoice(&hash)?
            .ok_or_else(|| no_invoice(&hash))?;
        let hashed = match record.described_by.metadata_hash() {
            Some(metadata_hash) => self
                .db
                .store()
                .metadata(&metadata_hash)?
                .map(|m| format!("{m}{}", record.described_by.payer_data().unwrap_or(""))),
            None => record.described_by.zap_request().map(str::to_owned),
        };
        Ok(InvoiceView::of(&record, self.clock.unix(), hashed))
    }

    /// Marks a dev-backend invoice paid, with the preimage only the dev backend can derive.
    /// No money moves: this exists so every flow can be tried without a node.
    pub async fn dev_settle(&self, hash: &str) -> Result<InvoiceView, AdminError> {
        let hash = parse_hash(hash)?;
        let record = self
            .db
            .store()
            .invoice(&hash)?
            .ok_or_else(|| no_invoice(&hash))?;
        let now = self.clock.unix();
        if record.paid().is_some() {
            return Ok(InvoiceView::of(&record, now, None));
        }
        // Records from before backends had names carry the kind in `backend`.
        let kind = if record.backend_kind.is_empty() {
            record.backend.as_str()
        } else {
            record.backend_kind.as_str()
        };
        if kind != "dev" {
            return Err(AdminError::Conflict(format!(
                "invoice {hash} was made by the '{}' backend ({kind}); only dev invoices can be settled by hand",
                record.backend
            )));
        }
        if record.status_at(now) == InvoiceStatus::Expired {
            return Err(AdminError::Conflict(format!("invoice {hash} has expired")));
        }
        let preimage = self.dev.preimage_for(&record.bolt11).ok_or_else(|| {
            AdminError::Conflict(format!(
                "invoice {hash} was not made by this server's dev node key"
            ))
        })?;
        let paid = InvoiceStatus::Paid(PaidDetails {
            paid_at: now,
            preimage: Some(preimage),
            amount_received_msat: record.amount_msat,
        });
        // Through the ledger, like any backend's payment: webhooks and live views follow.
        self.ledger.record(vec![(hash, paid)], None).await?;
        tracing::info!(payment_hash = %hash, "dev invoice settled by hand");
        let stored = self
            .db
            .store()
            .invoice(&hash)?
            .ok_or_else(|| no_invoice(&hash))?;
        Ok(InvoiceView::of(&stored, now, None))
    }
}

/// How a listing of webhook events is narrowed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookQuery {
    /// `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    pub invoice: Option<String>,
    pub limit: Option<usize>,
}

impl Registry {
    pub async fn webhooks(&self, query: WebhookQuery) -> Result<Vec<WebhookView>, AdminError> {
        let state = match query.state.as_deref() {
            None | Some("") => None,
            Some(s @ ("pending" | "delivered" | "dead")) => Some(s.to_owned()),
            Some(other) => {
                return Err(AdminError::Invalid(format!(
                    "state '{other}': use pending, delivered or dead"
                )))
            }
        };
        let invoice = query.invoice.as_deref().map(parse_hash).transpose()?;
        let limit = query
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .clamp(1, MAX_LIST_LIMIT);
        let items = self
            .db
            .read(move |s| {
                s.outbox_items(
                    &mut |i| {
                        state.as_deref().is_none_or(|w| i.delivery.name() == w)
                            && invoice.is_none_or(|h| i.payment_hash == h)
                    },
                    limit,
                )
            })
            .await?;
        Ok(items.iter().map(|i| WebhookView::of(i, false)).collect())
    }

    pub async fn webhook(&self, id: &str) -> Result<WebhookView, AdminError> {
        let id: EventId = id.parse().map_err(AdminError::Invalid)?;
        let item = self
            .db
            .store()
            .outbox_item(&id)?
            .ok_or_else(|| AdminError::NotFound(format!("no event {id}")))?;
        Ok(WebhookView::of(&item, true))
    }

    /// Sends an event again now, with a fresh delivery window: for dead-lettered events once
    /// the receiver is fixed, or to hurry a pending one.
    pub async fn retry_webhook(&self, id: &str) -> Result<WebhookView, AdminError> {
        let id: EventId = id.parse().map_err(AdminError::Invalid)?;
        let now = self.clock.unix();
        let window = self.ledger.delivery_window().as_secs();
        let item = self
            .db
            .commit(move |s| {
                let Some(mut item) = s.outbox_item(&id)? else {
                    return Ok(None);
                };
                let requeued = item.delivery != Delivery::Pending;
                item.delivery = Delivery::Pending;
                item.next_attempt_at = now;
                item.deadline = now.saturating_add(window);
                s.put_outbox_item(&item)?;
                Ok(Some((item, requeued)))
            })
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no event {id}")))?;
        let (item, requeued) = item;
        if requeued {
            self.ledger.metrics().outbox_backlog.inc();
        }
        self.ledger.outbox_wake().notify_one();
        Ok(WebhookView::of(&item, true))
    }
}

impl Registry {
    /// A new API key for `user`: returned once, stored only as a hash.
    pub async fn create_api_key(&self, user: &str) -> Result<ApiKeyCreated, AdminError> {
        let name = parse_name(user)?;
        if self.db.store().user(&name)?.is_none() {
            return Err(no_user(&name));
        }
        let (record, key) = ApiKey::issue(name, random_bytes(), self.clock.unix());
        let stored = record.clone();
        self.db.commit(move |s| s.put_api_key(&stored)).await?;
        Ok(ApiKeyCreated {
            key,
            view: ApiKeyView::of(&record),
        })
    }

    pub async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKeyView>, AdminError> {
        let user = user.map(parse_name).transpose()?;
        let mut keys = self.db.read(|s| s.api_keys()).await?;
        keys.retain(|k| user.as_ref().is_none_or(|u| &k.user == u));
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys.iter().map(ApiKeyView::of).collect())
    }

    /// Revokes a key by its id (`key_...`); requests with it are refused from now on.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyView, AdminError> {
        let id = id.to_owned();
        let now = self.clock.unix();
        let revoked = self
            .db
            .commit(move |s| {
                let Some(mut key) = s.api_keys()?.into_iter().find(|k| k.id == id) else {
                    return Ok(None);
                };
                key.revoked_at.get_or_insert(now);
                s.put_api_key(&key)?;
                Ok(Some(key))
            })
            .await?
            .ok_or_else(|| AdminError::NotFound("no such API key".into()))?;
        Ok(ApiKeyView::of(&revoked))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub user: String,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
}

impl ApiKeyView {
    fn of(key: &ApiKey) -> Self {
        Self {
            id: key.id.clone(),
            user: key.user.to_string(),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A new key: the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub key: String,
    #[serde(flatten)]
    pub view: ApiKeyView,
}

impl Registry {
    /// The whole store as a backup document.
    pub async fn backup(&self) -> Result<crate::backup::Backup, AdminError> {
        let now = self.clock.unix();
        Ok(self.db.read(move |s| crate::backup::export(s, now)).await?)
    }
}

/// The server's Nostr identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NostrView {
    /// x-only, lowercase hex: what `nostrPubkey` advertises.
    pub pubkey: String,
    pub npub: String,
}

impl NostrView {
    fn of(hex: &str) -> Self {
        use nostr::ToBech32;
        let npub = nostr::PublicKey::from_hex(hex)
            .ok()
            .and_then(|k| k.to_bech32().ok())
            .unwrap_or_default();
        Self {
            pubkey: hex.to_owned(),
            npub,
        }
    }
}

/// A queued event as the admin API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payment_hash: String,
    pub url: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub created_at: u64,
    pub next_attempt_at: u64,
    pub deadline: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// The delivery log and exact body (single-event views only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WebhookView {
    pub fn of(item: &OutboxItem, detailed: bool) -> Self {
        let url = item.target.url();
        Self {
            id: item.id.to_string(),
            kind: item.kind.as_str().to_owned(),
            payment_hash: item.payment_hash.to_hex(),
            url: url.to_string(),
            state: item.delivery.name().to_owned(),
            attempts: item.attempts,
            created_at: item.created_at,
            next_attempt_at: item.next_attempt_at,
            deadline: item.deadline,
            finished_at: match item.delivery {
                Delivery::Delivered { at } | Delivery::Dead { at } => Some(at),
                Delivery::Pending => None,
            },
            last_outcome: item.log.last().map(|a| a.outcome.clone()),
            log: if detailed {
                item.log.clone()
            } else {
                Vec::new()
            },
            body: detailed.then(|| item.body.clone()),
        }
    }
}

fn new_webhook_secret() -> Secret {
    Secret::new(format!("whsec_{}", hex::encode(random_bytes())))
}

fn parse_name(name: &str) -> Result<Username, AdminError> {
    Username::parse(name).map_err(|e| AdminError::Invalid(format!("name: {e}")))
}

fn parse_hash(hash: &str) -> Result<Hash32, AdminError> {
    hash.parse().map_err(|_| {
        AdminError::Invalid(format!("'{hash}' is not a 64-character hex payment hash"))
    })
}

fn no_user(name: &Username) -> AdminError {
    AdminError::NotFound(format!("no user '{name}'"))
}

fn no_invoice(hash: &Hash32) -> AdminError {
    AdminError::NotFound(format!("no invoice {hash}"))
}

/// A user as the admin API and CLI show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub address: String,
    /// The domain the address lives on.
    #[serde(default)]
    pub domain: String,
    pub lnurl: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub min_sendable: u64,
    pub max_sendable: u64,
    pub comment_allowed: u16,
    pub payer_data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_action: Option<SuccessAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Shown once, when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr_pubkey: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nostr_relays: Vec<String>,
    pub disabled: bool,
    pub created_at: u64,
}

impl UserView {
    pub fn of(user: &User, domains: &Domains, reveal_secret: bool) -> Self {
        let public_url = domains.for_user(user.domain.as_deref());
        let well_known = public_url.join(&format!("/.well-known/lnurlp/{}", user.name));
        Self {
            name: user.name.to_string(),
            address: format!("{}@{}", user.name, public_url.domain()),
            domain: public_url.domain().to_owned(),
            lnurl: bech32::encode(&well_known).unwrap_or_default(),
            description: user.description.clone(),
            long_description: user.long_description.clone(),
            image: user.image.as_ref().map(|i| i.mime.clone()),
            min_sendable: user.min_sendable.msat(),
            max_sendable: user.max_sendable.msat(),
            comment_allowed: user.comment_allowed,
            payer_data: user.payer_data.to_list(),
            success_action: user.success_action.clone(),
            webhook_url: user.webhook_url.as_ref().map(|u| u.to_string()),
            webhook_secret: user
                .webhook_secret
                .as_ref()
                .filter(|_| reveal_secret)
                .map(|s| s.expose().to_owned()),
            backend: user.backend.clone(),
            nostr_pubkey: user.nostr_pubkey.clone(),
            nostr_relays: user.nostr_relays.iter().map(|r| r.to_string()).collect(),
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// An invoice as the admin API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub payment_hash: String,
    pub user: String,
    pub amount_msat: u64,
    /// `pending`, `paid` or `expired`, as of now.
    pub status: String,
    pub bolt11: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_hash: Option<String>,
    /// The exact string `description_hash` is the SHA-256 of (single-invoice views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_data: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_received_msat: Option<u64>,
    /// The configured backend's name, and what kind of backend it was.
    pub backend: String,
    #[serde(default)]
    pub backend_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
}

impl InvoiceView {
    pub fn of(r: &InvoiceRecord, now: u64, hashed_description: Option<String>) -> Self {
        let paid = r.paid();
        Self {
            payment_hash: r.payment_hash.to_hex(),
            user: r.user.to_string(),
            amount_msat: r.amount_msat.msat(),
            status: r.status_at(now).name().to_owned(),
            bolt11: r.bolt11.clone(),
            description_hash: r.description_hash.map(|h| h.to_hex()),
            hashed_description,
            memo: match &r.described_by {
                crate::domain::DescriptionSource::Memo { memo } => Some(memo.clone()),
                _ => None,
            },
            comment: r.comment.as_ref().map(|c| c.as_str().to_owned()),
            payer_data: r.described_by.payer_data().map(str::to_owned),
            created_at: r.created_at,
            expires_at: r.expires_at,
            paid_at: paid.map(|p| p.paid_at),
            preimage: paid.and_then(|p| p.preimage).map(|p| p.0.to_hex()),
            amount_received_msat: paid.map(|p| p.amount_received_msat.msat()),
            backend: r.backend.clone(),
            backend_kind: r.backend_kind.clone(),
            backend_ref: r.backend_ref.clone(),
        }
    }
}
