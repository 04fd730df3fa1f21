//! Everything rayo is made of, built once from `Settings`: the store, the server's keys, the
//! backends, the ledger, the issuer, the operator service, the Nostr identity. The server
//! (`startup`) and the CLI on its own (no server running) both open it here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::backends::{self, Backends, DevBackend, NodeKeys};
use crate::backends::{AnyBackend, Backend};
use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::cluster::{pending_invoices, Cluster};
use crate::config::{ConfigError, Settings};
use crate::directory::{Directory, ZapAdvert};
use crate::domain::BackendName;
use crate::invoices::{Issuer, IssuerParts};
use crate::keys::ServerKeys;
use crate::limits::{PendingCounts, RateLimits};
use crate::lnurl::VerifyKey;
use crate::metrics::Metrics;
use crate::nostr::{IdentityError, NostrIdentity};
use crate::operator::{Operator, OperatorParts};
use crate::outbox::{Deliverer, DeliveryPolicy, ZapContext};
use crate::store::Change;
use crate::store::{Db, PgStore, SledStore, Store, StoreError};
use crate::watch::{self, Hints, Ledger, Watcher};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("Nostr identity: {0}")]
    Nostr(#[from] IdentityError),
    #[error("webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("notifications: {0}")]
    Notify(String),
}

/// Parts a test may replace.
#[derive(Default)]
pub struct Overrides {
    pub backend: Option<AnyBackend>,
    pub clock: Option<Arc<dyn Clock>>,
    pub random: Option<Arc<dyn Random>>,
}

pub struct Services {
    pub settings: Settings,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub metrics: Arc<Metrics>,
    /// The users the LNURL routes serve, in memory.
    pub directory: Arc<Directory>,
    pub issuer: Issuer,
    pub ledger: Arc<Ledger>,
    pub operator: Operator,
    /// The people behind the addresses: invites, passkeys, linked wallets, sessions.
    pub accounts: crate::accounts::Accounts,
    pub nostr: NostrIdentity,
    pub verify_key: VerifyKey,
    pub limits: Arc<RateLimits>,
    pub pending: Arc<PendingCounts>,
    /// The other instances on a shared store, if any.
    pub cluster: Cluster,
    /// Prices of the currencies payers may name amounts in.
    pub prices: Arc<crate::prices::PriceBook>,
    /// Payment alerts: what they say, and the channels they go through.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Every address's BOLT12 offer, kept in step with its user.
    pub offers: Arc<crate::offers::Keeper>,
    /// The DNS hosts BIP-353 records are kept at, if any.
    pub syncer: Option<Arc<crate::bip353::sync::Syncer>>,
    /// The BIP-353 zones as last built, for the DNS server.
    pub zones: Arc<crate::bip353::server::Published>,
    /// Where the DNS server listens, once it does.
    pub dns_address: std::sync::OnceLock<std::net::SocketAddr>,
}

impl Services {
    /// Paying an address, the one use case behind callbacks, the pay form and the invoice API.
    pub fn payments(&self) -> crate::payments::Payments<'_> {
        crate::payments::Payments {
            issuer: &self.issuer,
            directory: &self.directory,
            prices: &self.prices,
            verify_key: &self.verify_key,
            expiry: self.settings.invoice_expiry,
        }
    }

    pub async fn open(settings: Settings, overrides: Overrides) -> Result<Arc<Self>, OpenError> {
        let data_dir = settings.data_dir.clone();
        let dir_error = |source| OpenError::DataDir {
            path: data_dir.clone(),
            source,
        };
        crate::data_dir::prepare(&data_dir).map_err(dir_error)?;
        let (db, cluster) = match &settings.database_url {
            Some(url) => {
                let url = url.expose().to_owned();
                let store = tokio::task::spawn_blocking(move || PgStore::open(&url))
                    .await
                    .map_err(|e| StoreError::Io(format!("opening the database: {e}")))??;
                let cluster = Cluster::shared(Arc::new(store.coordination()));
                (Db::shared(Arc::new(store)), cluster)
            }
            None => {
                let store: Arc<dyn Store> = Arc::new(SledStore::open(&settings.store_path())?);
                (Db::new(store), Cluster::alone())
            }
        };
        // What the store just created, whatever the process umask.
        crate::data_dir::tighten(&data_dir).map_err(dir_error)?;

        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let random = overrides.random.unwrap_or_else(|| Arc::new(OsRandom));
        let keys = ServerKeys::load_or_create(&db, random.as_ref()).await?;
        let dev = Arc::new(DevBackend::from_seed(
            &keys.dev_seed,
            clock.clone(),
            random.clone(),
        ));
        let backends = configured_backends(&settings, overrides.backend, &dev, &db)?;
        let nostr =
            NostrIdentity::load(&db, settings.nostr_secret_key.as_ref(), random.as_ref()).await?;
        for relay in &settings.nostr_relays {
            crate::net::check_url(relay.url(), settings.relay_reach())
                .map_err(|e| ConfigError::new("RAYO_NOSTR_RELAYS", format!("{relay}: {e}")))?;
        }
        let metrics = Arc::new(Metrics::new());
        let pending_invoices = db.read(pending_invoices).await?;
        let pending = Arc::new(PendingCounts::new(
            settings.max_pending_per_user,
            settings.pending_share(),
            pending_invoices,
        ));
        let limits = Arc::new(RateLimits::new(
            settings.rate_limit_callback_per_minute,
            settings.rate_limit_api_per_minute,
        ));
        let domains = settings.domains()?;
        let notifier = Arc::new(notifier(&settings, &db, &clock, &nostr, &domains, &keys)?);
        let ledger = Arc::new(
            Ledger::new(db.clone(), clock.clone(), settings.webhook_window)
                .with_notifier(notifier.clone())
                .with_zaps(ZapContext {
                    identity: nostr.clone(),
                    fallback_relays: settings.nostr_relays.clone(),
                    reach: settings.relay_reach(),
                })
                .with_metrics(metrics.clone())
                .with_pending_counts(pending.clone()),
        );
        let prices = Arc::new(crate::prices::PriceBook::new(
            settings.currencies.clone(),
            settings.price_sources.clone(),
            settings.price_policy.clone(),
            clock.clone(),
        ));
        let directory = Arc::new(Directory::new(
            domains.clone(),
            db.clone(),
            Some(zap_advert(&backends, &nostr)),
        ));
        let user_wallets = Arc::new(crate::backends::UserWallets::new(
            settings.relay_reach(),
            settings.backend.network().into(),
        ));
        let accounts = crate::accounts::Accounts::new(
            &settings,
            domains.clone(),
            db.clone(),
            clock.clone(),
            random.clone(),
        );
        let offers = Arc::new(crate::offers::Keeper::new(
            db.clone(),
            backends.clone(),
            domains.clone(),
            clock.clone(),
            directory.changes(),
        ));
        let syncer = crate::bip353::sync::Syncer::new(
            &settings.bip353,
            domains.clone(),
            db.clone(),
            clock.clone(),
            random.clone(),
        )?
        .map(Arc::new);
        let operator = Operator::new(OperatorParts {
            offers: offers.clone(),
            syncer: syncer.clone(),
            nameservers: settings.bip353.nameservers.clone(),
            db: db.clone(),
            directory: directory.clone(),
            domains,
            clock: clock.clone(),
            random: random.clone(),
            dev: dev.clone(),
            ledger: ledger.clone(),
            backends: backends.names().cloned().collect(),
            nostr: nostr.clone(),
            webhook_reach: settings.webhook_allow_private.reach(true),
            relay_reach: settings.relay_reach(),
            retention: settings.retention,
            currencies: settings.currencies.clone(),
            prices: prices.clone(),
            user_wallets: user_wallets.clone(),
            notifier: notifier.clone(),
        });
        let issuer = Issuer::new(IssuerParts {
            backends,
            user_wallets,
            node_keys: Arc::new(NodeKeys::new(metrics.clone())),
            db: db.clone(),
            pending: pending.clone(),
            limits: limits.clone(),
            clock: clock.clone(),
            random: random.clone(),
            metrics: metrics.clone(),
            backend_timeout: settings.backend_timeout,
            max_backend_calls: settings.max_backend_calls,
            client_tag_key: crate::crypto::hmac_sha256(&keys.verify_key, b"rayo client tag"),
        });
        Ok(Arc::new(Self {
            syncer,
            offers,
            zones: Arc::default(),
            dns_address: std::sync::OnceLock::new(),
            settings,
            db,
            clock,
            random,
            metrics,
            directory,
            issuer,
            ledger,
            operator,
            accounts,
            nostr,
            verify_key: VerifyKey::new(keys.verify_key),
            limits,
            pending,
            cluster,
            prices,
            notifier,
        }))
    }

    /// What the Telegram bot answers a chat's message.
    async fn telegram_answer(&self, chat: i64, text: &str) -> Option<String> {
        use crate::operator::TelegramReply;
        match self.operator.telegram_message(chat, text).await {
            Ok(TelegramReply::Linked(words)) => Some(words),
            Ok(TelegramReply::Unlinked(0)) => Some("This chat gets no payment alerts.".into()),
            Ok(TelegramReply::Unlinked(_)) => {
                Some("Done: this chat gets no more payment alerts.".into())
            }
            Ok(TelegramReply::Refused(words)) => Some(words.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not handle a Telegram message");
                Some("Something went wrong on our side; try again in a minute.".into())
            }
        }
    }

    pub fn backends(&self) -> &Backends {
        self.issuer.backends()
    }

    /// Starts what runs beside the HTTP server: one watcher per backend, the sweeper, webhook
    /// and receipt delivery, and the forgetting of idle rate-limit entries. Every step they
    /// take is committed before the next, so stopping them anywhere loses nothing.
    pub async fn start_background(self: &Arc<Self>) -> Result<(Hints, Background), OpenError> {
        let mut tasks_before = Vec::new();
        for (name, backend) in self.backends().iter() {
            if backend.kind() == "dev" {
                tracing::warn!(backend = %name, "the dev backend signs regtest invoices with a local key: no real money moves");
            }
            if !backend.capabilities().description_hash {
                tracing::warn!(backend = %name, kind = backend.kind(), "this backend cannot commit to a description hash: invoices carry a memo, and wallets that check `h` will refuse them");
            }
        }
        if let Some(changes) = self.cluster.changes().await {
            // Counted again now that changes are heard: none falls between.
            let pending = self.db.read(pending_invoices).await?;
            self.pending.recount(pending);
            let services = self.clone();
            tasks_before.push(tokio::spawn(follow_the_others(services, changes)));
        }
        let backlog = self
            .db
            // The pending events' own index, not every event ever queued.
            .read(|s| Ok(s.outbox_due(u64::MAX, usize::MAX)?.len()))
            .await?;
        self.metrics.outbox_backlog.set(backlog as i64);
        let watchers = self
            .backends()
            .iter()
            .map(|(name, backend)| {
                Watcher::new(
                    name,
                    backend.clone(),
                    self.ledger.clone(),
                    self.db.clone(),
                    self.clock.clone(),
                    self.random.clone(),
                )
            })
            .collect();
        let (hints, mut tasks) = watch::start_all(watchers, &self.cluster);
        tasks.append(&mut tasks_before);
        self.watch_user_wallets().await?;
        for (name, backend) in self.backends().iter() {
            let (keys, name, backend) = (
                self.issuer.node_keys().clone(),
                name.clone(),
                backend.clone(),
            );
            tasks.push(tokio::spawn(async move { keys.learn(name, backend).await }));
        }
        let mut grace: BTreeMap<BackendName, _> = self
            .backends()
            .iter()
            .map(|(name, backend)| (name.clone(), Watcher::expiry_grace(backend.as_ref())))
            .collect();
        // Users' own wallets push their payments, like every NWC wallet.
        grace.insert(
            BackendName::user_wallet(),
            std::time::Duration::from_secs(2),
        );
        tasks.push(tokio::spawn(crate::store::upkeep::seal_forever(
            self.db.clone(),
            self.clock.clone(),
        )));
        let (cluster, db, clock, retention) = (
            self.cluster.clone(),
            self.db.clone(),
            self.clock.clone(),
            self.settings.retention,
        );
        tasks.push(tokio::spawn(async move {
            cluster
                .lead("prune", || {
                    crate::store::upkeep::prune_forever(db.clone(), clock.clone(), retention)
                })
                .await
        }));
        let (cluster, db, ledger, clock) = (
            self.cluster.clone(),
            self.db.clone(),
            self.ledger.clone(),
            self.clock.clone(),
        );
        tasks.push(tokio::spawn(async move {
            cluster
                .lead("sweep", || {
                    watch::run_sweeper(db.clone(), ledger.clone(), clock.clone(), grace.clone())
                })
                .await
        }));
        let policy = DeliveryPolicy {
            window: self.settings.webhook_window,
            first_retry: self.settings.webhook_first_retry,
            relay_reach: self.settings.relay_reach(),
            private_webhooks: self.settings.webhook_allow_private,
            ..DeliveryPolicy::default()
        };
        let deliverer = Arc::new(
            Deliverer::new(
                self.db.clone(),
                self.clock.clone(),
                self.random.clone(),
                policy,
                self.ledger.outbox_wake(),
                self.metrics.clone(),
            )?
            .with_notifier(self.notifier.clone()),
        );
        tasks.push(tokio::spawn(deliverer.run()));
        // One instance reads what people send the Telegram bot (`getUpdates` takes one reader).
        if let Some(bot) = self.notifier.telegram().cloned() {
            let services = self.clone();
            tasks.push(tokio::spawn(async move {
                let cluster = services.cluster.clone();
                cluster
                    .lead("telegram", || {
                        let services = services.clone();
                        crate::notify::telegram::listen(
                            bot.clone(),
                            services.db.clone(),
                            move |chat, text| {
                                let services = services.clone();
                                async move { services.telegram_answer(chat, &text).await }
                            },
                        )
                    })
                    .await
            }));
        }
        // Prices are read off the request path, and only when currencies are offered.
        let client = crate::prices::client()?;
        tasks.push(tokio::spawn(
            self.prices
                .clone()
                .refresh_forever(client, self.settings.price_refresh),
        ));
        let (limits, services) = (self.limits.clone(), self.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                limits.forget_idle();
                services.accounts.limits.forget_idle();
                // Sign-ins nobody finished (every login page makes a k1) are removed once they
                // expire, so their records cannot pile up.
                match services.accounts.sweep().await {
                    Ok(0) => {}
                    Ok(swept) => tracing::debug!(swept, "removed expired sign-in ceremonies"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep sign-in ceremonies"),
                }
            }
        }));
        self.start_bip353(&mut tasks).await?;
        Ok((hints, Background(tasks)))
    }

    /// Keeps the offers and the BIP-353 zones, and serves the zones when `RAYO_DNS_BIND` says.
    async fn start_bip353(
        self: &Arc<Self>,
        tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<(), OpenError> {
        let config = self.settings.bip353.clone();
        let mut published = self.offers.published();
        tasks.push(tokio::spawn(self.offers.clone().run(config.refresh)));
        // One instance keeps the DNS hosts in step: two would race each other's repairs.
        if let Some(syncer) = self.syncer.clone() {
            let (cluster, changes) = (self.cluster.clone(), self.offers.published());
            tasks.push(tokio::spawn(async move {
                cluster
                    .lead("bip353-sync", || {
                        syncer.clone().run(config.refresh, changes.clone())
                    })
                    .await
            }));
        }
        let Some(bind) = config.dns_bind else {
            return Ok(());
        };
        self.rebuild_zones().await;
        let services = self.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                // Rebuilt when offers change here, and every refresh for changes made
                // elsewhere (another instance's offers, a key rollover).
                let _ = tokio::time::timeout(config.refresh, published.changed()).await;
                services.rebuild_zones().await;
            }
        }));
        let limit = Arc::new(crate::bip353::server::ResponseLimit::new(config.dns_rate));
        let handler = crate::bip353::server::DnsHandler::new(
            self.zones.clone(),
            limit.clone(),
            self.clock.clone(),
        );
        let (at, mut server) =
            crate::bip353::server::serve(bind, config.dns_udp_bind.as_deref(), handler)
                .await
                .map_err(|e| ConfigError::new("RAYO_DNS_BIND", format!("{bind}: {e}")))?;
        let _ = self.dns_address.set(at);
        tracing::info!(address = %at, "serving the BIP-353 zones over UDP and TCP");
        tasks.push(tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    done = server.block_until_done() => {
                        if let Err(e) = done {
                            tracing::error!(error = %e, "the DNS server stopped");
                        }
                        return;
                    }
                    _ = every_minute.tick() => limit.forget_quiet(),
                }
            }
        }));
        Ok(())
    }

    /// Builds the zones from the stored offers and keys, and publishes them.
    pub async fn rebuild_zones(&self) {
        let domains = match self.settings.domains() {
            Ok(domains) => domains,
            Err(e) => return tracing::error!(error = %e, "no domains for the BIP-353 zones"),
        };
        match crate::bip353::publish::build_zones(
            &self.db,
            &domains,
            &self.settings.bip353.nameservers,
            self.clock.unix(),
        )
        .await
        {
            Ok(zones) => self.zones.set(zones),
            Err(e) => tracing::error!(error = %e, "could not build the BIP-353 zones"),
        }
    }
}

impl Services {
    /// Users' own wallets are watched from now on, each once it is used; those with unpaid
    /// invoices at once.
    async fn watch_user_wallets(self: &Arc<Self>) -> Result<(), OpenError> {
        let (ledger, db, clock, random, cluster) = (
            self.ledger.clone(),
            self.db.clone(),
            self.clock.clone(),
            self.random.clone(),
            self.cluster.clone(),
        );
        self.issuer
            .user_wallets()
            .watch_with(Box::new(move |user, backend| {
                let watcher = Watcher::new(
                    &BackendName::user_wallet(),
                    backend,
                    ledger.clone(),
                    db.clone(),
                    clock.clone(),
                    random.clone(),
                )
                .only_for(user.clone());
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    let role = format!("watch user-wallet {user}");
                    cluster.lead(&role, || watcher.clone().run()).await
                })
            }));
        let owners = self
            .db
            .read(|s| {
                let mut owners: Vec<_> = s
                    .expiring(u64::MAX, usize::MAX)?
                    .into_iter()
                    .filter(|r| r.backend == BackendName::user_wallet())
                    .map(|r| r.user)
                    .collect();
                owners.sort();
                owners.dedup();
                owners
                    .into_iter()
                    .map(|name| s.user(&name))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        for user in owners.into_iter().flatten() {
            self.issuer.user_wallets().connect(&user);
        }
        Ok(())
    }
}

/// Tasks that run beside the HTTP server; stopped when dropped.
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Background {
    /// Keeps `task` with the rest: stopped with them.
    pub fn keep(&mut self, task: tokio::task::JoinHandle<()>) {
        self.0.push(task);
    }

    pub async fn stop(mut self) {
        for task in std::mem::take(&mut self.0) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Zaps are advertised for users whose backend can commit to a zap request's hash.
fn zap_advert(backends: &Backends, nostr: &NostrIdentity) -> ZapAdvert {
    let capable: BTreeMap<BackendName, bool> = backends
        .iter()
        .map(|(name, b)| (name.clone(), b.capabilities().description_hash))
        .collect();
    let default = backends.default_backend().0.clone();
    ZapAdvert {
        public_key: std::sync::RwLock::new(nostr.public_key_hex()),
        capable: Box::new(move |backend: Option<&BackendName>| {
            capable
                .get(backend.unwrap_or(&default))
                .copied()
                .unwrap_or(false)
        }),
    }
}

/// The `default` backend the flags describe, and the named ones from `rayo.toml`.
/// The backends the settings describe; `instead_of_default` (a test's double) takes the place
/// of the one the flags and `RAYO_*` variables describe.
fn configured_backends(
    settings: &Settings,
    instead_of_default: Option<AnyBackend>,
    dev: &Arc<Backend<DevBackend>>,
    db: &Db,
) -> Result<Backends, ConfigError> {
    // The operator's NWC relays, like the other upstreams they configure, may be anywhere.
    let relays = backends::RelayPool::new(crate::net::Reach::Anywhere);
    let mut by_name = BTreeMap::new();
    let default = match instead_of_default {
        Some(backend) => backend,
        None => backends::build(&settings.backend, dev.clone(), Some(db), &relays)?,
    };
    by_name.insert(BackendName::default_name(), default);
    for (name, named) in &settings.named_backends {
        let backend = backends::build(named, dev.clone(), Some(db), &relays)
            .map_err(|e| ConfigError::new(format!("backend '{name}'"), e))?;
        by_name.insert(name.clone(), backend);
    }
    let default = settings
        .default_backend
        .clone()
        .unwrap_or_else(BackendName::default_name);
    Backends::new(default, by_name)
}

/// Applies the other instances' changes (see `cluster`) to this one's memory, for as long as
/// it runs.
async fn follow_the_others(
    services: Arc<Services>,
    mut changes: tokio::sync::broadcast::Receiver<Change>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind the other instances' changes");
                Change::Resync
            }
            Err(RecvError::Closed) => return,
        };
        apply(&services, change).await;
    }
}

async fn apply(services: &Services, change: Change) {
    match change {
        Change::Added { user, payer, .. } => services.pending.opened_elsewhere(&user, payer),
        Change::Moved {
            payment_hash,
            user,
            payer,
            was_pending,
        } => {
            if was_pending {
                services.pending.closed(&user, payer);
            }
            let live = services.ledger.live();
            if live.followed() {
                match services.db.read(move |s| s.invoice(&payment_hash)).await {
                    Ok(Some(record)) => live.publish(record),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "could not read an invoice paid elsewhere")
                    }
                }
            }
        }
        Change::User(name) => {
            services.directory.remove(&name);
            let read = name.clone();
            match services.db.point(move |s| s.user(&read)).await {
                Ok(user) => services.issuer.user_wallets().refresh(&name, user.as_ref()),
                Err(e) => tracing::error!(error = %e, "could not read a user changed elsewhere"),
            }
        }
        Change::Queued => services.ledger.outbox_wake().notify_one(),
        Change::Meta(key) if crate::nostr::NostrIdentity::stored_under(&key) => {
            reload_nostr_key(services).await
        }
        Change::Meta(_) => {}
        Change::Resync => {
            services.directory.forget_all();
            match services.db.read(pending_invoices).await {
                Ok(pending) => services.pending.recount(pending),
                Err(e) => tracing::error!(error = %e, "could not count the unpaid invoices again"),
            }
            services.ledger.outbox_wake().notify_one();
            reload_nostr_key(services).await;
        }
    }
}

/// Another instance rotated the Nostr key: sign and advertise the new one here too.
async fn reload_nostr_key(services: &Services) {
    match services.nostr.reload(&services.db).await {
        Ok(Some(public_key)) => {
            tracing::info!(nostr_pubkey = %public_key, "Nostr key rotated by another instance");
            services.directory.set_nostr_key(public_key);
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not read the rotated Nostr key"),
    }
}

/// The notifier the settings describe: templates checked, mail set up, the operator's
/// channels read.
fn notifier(
    settings: &Settings,
    db: &Db,
    clock: &Arc<dyn Clock>,
    nostr: &NostrIdentity,
    domains: &crate::config::Domains,
    keys: &ServerKeys,
) -> Result<crate::notify::Notifier, OpenError> {
    use crate::notify::{Composer, Dms, Links, Notifier, NotifyParts};
    let config = &settings.notify;
    let composer = Composer::new(domains.clone(), config.templates.as_deref())
        .map_err(|e| OpenError::Notify(format!("RAYO_NOTIFY_TEMPLATES: {e}")))?;
    let mail = match (&config.smtp_url, &config.smtp_from) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(OpenError::Notify(
                "RAYO_SMTP_URL is set but RAYO_SMTP_FROM is not: say who alerts come from".into(),
            ))
        }
        (Some(url), Some(from)) => {
            let root = config
                .smtp_ca_file
                .as_ref()
                .map(|path| {
                    std::fs::read(path).map_err(|e| {
                        OpenError::Notify(format!("RAYO_SMTP_CA_FILE {}: {e}", path.display()))
                    })
                })
                .transpose()?;
            Some(crate::notify::MailSettings {
                url: url.clone(),
                from: from.clone(),
                extra_root: root,
                timeout: config.smtp_timeout,
            })
        }
    };
    Notifier::new(NotifyParts {
        db: db.clone(),
        clock: clock.clone(),
        composer: Arc::new(composer),
        links: Links::new(keys.notify_key),
        dms: Dms {
            identity: nostr.clone(),
            fallback: settings.nostr_relays.clone(),
            reach: settings.relay_reach(),
        },
        mail,
        telegram: config
            .telegram_bot_token
            .clone()
            .map(|token| (token, config.telegram_api_url.clone())),
        ntfy_reach: if config.allow_private {
            crate::net::Reach::Anywhere
        } else {
            crate::net::Reach::Public
        },
        operator: config.operator.clone(),
        per_person_hourly: config.per_person_hourly,
        window: settings.webhook_window,
    })
    .map_err(OpenError::Notify)
}
