//! Builds the running server from settings: store, keys, backend, users, HTTP. `main` and the
//! tests both come through here (tests on port 0 with their own data directory).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::admin::{Registry, UserView};
use crate::backends::{self, Backends, DevBackend, InvoiceBackend};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::directory::Directory;
use crate::directory::ZapAdvert;
use crate::domain::Delivery;
use crate::domain::{Secret, UserSettings};
use crate::keys::{check_admin_token, load_or_create_admin_token, ServerKeys};
use crate::limits::{PendingCounts, RateLimits};
use crate::lnurl::{Payments, VerifyKey};
use crate::metrics::Metrics;
use crate::nostr::NostrIdentity;
use crate::outbox::{Deliverer, DeliveryPolicy, ZapContext};
use crate::routes::{self, AdminToken};
use crate::store::{Db, SledStore, StoreError};
use crate::watch::{self, Ledger, Watcher};

pub const DEMO_USER: &str = "satoshi";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("could not create the demo user: {0}")]
    DemoUser(String),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// Parts a test may replace.
#[derive(Default)]
pub struct Overrides {
    pub backend: Option<Arc<dyn InvoiceBackend>>,
    pub clock: Option<Arc<dyn Clock>>,
}

pub struct Application {
    server: Server,
    port: u16,
    admin_token: Secret,
    /// A user to show in the start-up banner: the demo user, or the first one there is.
    pub example_user: Option<UserView>,
    pub backend_kind: &'static str,
    server_url_file: PathBuf,
    /// Watchers, sweeper and webhook delivery; stopped when the application is dropped.
    background: Background,
    /// Held so the store's writer outlives the HTTP server and flushes last.
    _db: Db,
}

/// Tasks that run beside the HTTP server. Every step they take is committed before the
/// next, so stopping them anywhere loses nothing.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Background {
    async fn stop(mut self) {
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

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind)?;
        Self::build_on(settings, listener, Overrides::default()).await
    }

    pub async fn build_on(
        settings: Settings,
        listener: TcpListener,
        overrides: Overrides,
    ) -> Result<Self, StartupError> {
        let data_dir = settings.data_dir.clone();
        let dir_error = |source| StartupError::DataDir {
            path: data_dir.clone(),
            source,
        };
        crate::data_dir::prepare(&data_dir).map_err(dir_error)?;
        let db = Db::new(Arc::new(SledStore::open(&settings.store_path())?));
        // What the store just created, whatever the process umask.
        crate::data_dir::tighten(&data_dir).map_err(dir_error)?;
        let keys = ServerKeys::load_or_create(&db).await?;
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let dev = Arc::new(DevBackend::from_seed(&keys.dev_seed, clock.clone()));
        let backends = match overrides.backend {
            Some(backend) => Backends::single("default", backend),
            None => configured_backends(&settings, &dev)?,
        };
        for (name, backend) in backends.iter() {
            if backend.kind() == "dev" {
                tracing::warn!(
                    backend = name,
                    "the dev backend signs regtest invoices with a local key: no real money moves"
                );
            }
            if !backend.capabilities().description_hash {
                tracing::warn!(
                    backend = name,
                    kind = backend.kind(),
                    "this backend cannot commit to a description hash: invoices carry a memo, and wallets that check `h` will refuse them"
                );
            }
        }

        let nostr = NostrIdentity::load(&db, settings.nostr_secret_key.as_ref())
            .await
            .map_err(StartupError::Config)?;
        for relay in &settings.nostr_relays {
            crate::net::check_url(relay.url(), settings.relay_reach())
                .map_err(|e| StartupError::Config(format!("RAYO_NOSTR_RELAYS: {relay}: {e}")))?;
        }
        let metrics = Arc::new(Metrics::new());
        let backlog = db
            .read(|s| {
                Ok(
                    s.outbox_items(&mut |i| i.delivery == Delivery::Pending, usize::MAX)?
                        .len(),
                )
            })
            .await?;
        metrics.outbox_backlog.set(backlog as i64);
        let pending_users = db
            .read(|s| {
                Ok(s.expiring(u64::MAX, usize::MAX)?
                    .into_iter()
                    .map(|r| (r.user, r.payer)))
            })
            .await?;
        let pending = Arc::new(PendingCounts::new(
            settings.max_pending_per_user,
            settings.pending_share(),
            pending_users,
        ));
        let limits = Arc::new(RateLimits::new(
            settings.rate_limit_callback_per_minute,
            settings.rate_limit_api_per_minute,
            settings.client_ip_header.clone(),
        ));
        let ledger = Arc::new(
            Ledger::new(db.clone(), clock.clone(), settings.webhook_window)
                .with_zaps(ZapContext {
                    identity: nostr.clone(),
                    fallback_relays: settings.nostr_relays.clone(),
                    reach: settings.relay_reach(),
                })
                .with_metrics(metrics.clone())
                .with_pending_counts(pending.clone()),
        );
        let (hints, mut tasks) = watch::start_all(
            backends
                .iter()
                .map(|(name, backend)| {
                    Watcher::new(
                        name,
                        backend.clone(),
                        ledger.clone(),
                        db.clone(),
                        clock.clone(),
                    )
                })
                .collect(),
        );
        let grace = backends
            .iter()
            .map(|(name, backend)| (name.to_owned(), Watcher::expiry_grace(backend.as_ref())))
            .collect();
        tasks.push(tokio::spawn(watch::run_sweeper(
            db.clone(),
            ledger.clone(),
            clock.clone(),
            grace,
        )));
        let policy = DeliveryPolicy {
            window: settings.webhook_window,
            first_retry: settings.webhook_first_retry,
            relay_reach: settings.relay_reach(),
            private_webhooks: settings.webhook_allow_private,
            ..DeliveryPolicy::default()
        };
        let deliverer = Arc::new(
            Deliverer::new(
                db.clone(),
                clock.clone(),
                policy,
                ledger.outbox_wake(),
                metrics.clone(),
            )
            .map_err(StartupError::Config)?,
        );
        tasks.push(tokio::spawn(deliverer.run()));

        let users = db.read(|s| s.users()).await?;
        let first_start = users.is_empty();
        let hash_capable: std::collections::BTreeMap<String, bool> = backends
            .iter()
            .map(|(name, b)| (name.to_owned(), b.capabilities().description_hash))
            .collect();
        let default_backend = backends.default_backend().0.to_owned();
        let zaps = ZapAdvert {
            public_key: std::sync::RwLock::new(nostr.public_key_hex()),
            capable: Box::new(move |backend: Option<&str>| {
                hash_capable
                    .get(backend.unwrap_or(&default_backend))
                    .copied()
                    .unwrap_or(false)
            }),
        };
        let domains = settings.domains().map_err(StartupError::Config)?;
        let directory = Arc::new(Directory::with_zaps(domains.clone(), users, Some(zaps)));
        let known = backends.iter().map(|(name, _)| name.to_owned()).collect();
        let registry = Registry::new(
            db.clone(),
            Some(directory.clone()),
            domains,
            clock.clone(),
            dev,
            ledger.clone(),
        )
        .knowing_backends(known)
        .with_nostr(nostr.clone());
        let example_user = if first_start && settings.demo_user {
            let demo = UserSettings {
                description: Some("Demo address on a rayo dev server: no real money moves".into()),
                success_message: Some("Thanks! (This was a demo payment.)".into()),
                ..UserSettings::default()
            };
            Some(
                registry
                    .add_user(DEMO_USER, demo)
                    .await
                    .map_err(|e| StartupError::DemoUser(e.to_string()))?,
            )
        } else {
            registry
                .users()
                .await
                .ok()
                .and_then(|users| users.into_iter().next())
        };

        let admin_token = match &settings.admin_token {
            Some(token) => {
                check_admin_token(token, "RAYO_ADMIN_TOKEN").map_err(StartupError::Config)?;
                token.clone()
            }
            None => {
                let token = load_or_create_admin_token(&data_dir).map_err(dir_error)?;
                let file = crate::keys::admin_token_path(&data_dir);
                check_admin_token(&token, &file.display().to_string())
                    .map_err(StartupError::Config)?;
                token
            }
        };
        let backend_kind = backends.default_backend().1.kind();
        let payments = web::Data::new(Payments {
            directory,
            backends,
            db: db.clone(),
            clock,
            verify_key: VerifyKey::new(keys.verify_key),
            backend_timeout: settings.backend_timeout,
            invoice_expiry: settings.invoice_expiry,
            metrics: metrics.clone(),
            pending,
            backend_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.max_backend_calls.max(1),
            )),
            limits: limits.clone(),
            client_tag_key: crate::clock::hmac_sha256(&keys.verify_key, b"rayo client tag"),
        });
        let limiter = limits.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                limiter.forget_idle();
            }
        }));
        let background = Background(tasks);
        let limits = web::Data::from(limits);
        let metrics_data = web::Data::from(metrics.clone());
        let readiness = web::Data::new(crate::routes::ReadinessCache::default());
        let hook_refusals = web::Data::new(crate::routes::HookRefusals::default());
        let body_deadline =
            web::Data::new(crate::routes::BodyDeadline(settings.request_body_timeout));
        let registry = web::Data::new(registry);
        let hints = web::Data::new(hints);
        let list_users = web::Data::new(crate::pages::ListUsers(settings.list_users));
        let expiry_range = web::Data::new(crate::api::ExpiryRange {
            min: settings.api_expiry_min,
            max: settings.api_expiry_max,
            webhook_reach: settings.webhook_allow_private.reach(false),
        });
        let ledger = web::Data::from(ledger);
        let followers = web::Data::new(crate::api::Followers::new(
            settings.max_followers_per_client,
            metrics.live_followers.clone(),
        ));
        let token = web::Data::new(AdminToken(admin_token.clone()));

        let port = listener.local_addr()?.port();
        let admin_listener = match settings.admin_bind {
            Some(address) => Some(TcpListener::bind(address)?),
            None => None,
        };
        let admin_address = admin_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let admin_only = admin_address.map(|a| web::Data::new(crate::routes::AdminAddress(a)));
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(payments.clone())
                .app_data(registry.clone())
                .app_data(token.clone())
                .app_data(hints.clone())
                .app_data(metrics_data.clone())
                .app_data(readiness.clone())
                .app_data(hook_refusals.clone())
                .app_data(limits.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::record_request,
                ))
                .wrap(actix_web::middleware::from_fn(crate::routes::limit_headers))
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::limit_body_time,
                ))
                .app_data(body_deadline.clone())
                .app_data(list_users.clone())
                .app_data(expiry_range.clone())
                .app_data(ledger.clone())
                .app_data(followers.clone())
                .configure(|cfg| {
                    if let Some(admin) = &admin_only {
                        cfg.app_data(admin.clone());
                    }
                })
                .configure(routes::configure)
        })
        .listen(listener)?
        // Slow clients: a request head must arrive within 5 s, a body within its deadline
        // (`limit_body_time`), and a client gets 1 s to take its last answer and go.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(1))
        .shutdown_timeout(10);
        if let Some(admin_listener) = admin_listener {
            server = server.listen(admin_listener)?;
        }
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.run();

        // Tells the CLI where this server's admin API is, whatever address it was bound to.
        let admin_at = admin_address.unwrap_or(std::net::SocketAddr::new(settings.bind.ip(), port));
        let local = if admin_at.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            admin_at.ip().to_string()
        };
        let server_url_file = server_url_path(&data_dir);
        std::fs::write(
            &server_url_file,
            format!("http://{local}:{}\n", admin_at.port()),
        )
        .map_err(dir_error)?;

        Ok(Self {
            server,
            port,
            admin_token,
            example_user,
            backend_kind,
            server_url_file,
            background,
            _db: db,
        })
    }

    /// Stops the server from elsewhere (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Where the admin API answers: its own address, or the main one.
    pub fn admin_url(&self) -> Result<String, std::io::Error> {
        std::fs::read_to_string(&self.server_url_file).map(|s| s.trim().to_owned())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_token(&self) -> &Secret {
        &self.admin_token
    }

    /// Serves until SIGINT/SIGTERM: stops accepting, lets in-flight requests finish, then the
    /// store writer drains and flushes as it is dropped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.background.stop().await;
        let _ = std::fs::remove_file(&self.server_url_file);
        result
    }
}

/// The `default` backend the flags describe, and the named ones from `rayo.toml`.
fn configured_backends(
    settings: &Settings,
    dev: &Arc<DevBackend>,
) -> Result<Backends, StartupError> {
    let mut by_name = std::collections::BTreeMap::new();
    by_name.insert(
        "default".to_owned(),
        backends::build(&settings.backend, dev.clone()).map_err(StartupError::Config)?,
    );
    for (name, named) in &settings.named_backends {
        let backend = backends::build(named, dev.clone())
            .map_err(|e| StartupError::Config(format!("backend '{name}': {e}")))?;
        by_name.insert(name.clone(), backend);
    }
    let default = settings
        .default_backend
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    Backends::new(default, by_name).map_err(StartupError::Config)
}

/// The file a running server writes its admin base URL into.
pub fn server_url_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("server.url")
}
