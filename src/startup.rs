//! The running server: `Services` opened from settings, what runs beside them, and the HTTP
//! server around them. `main` and the tests both come through here (tests on port 0 with
//! their own data directory).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::{ConfigError, Settings};
use crate::domain::{Secret, UserSettings, Username};
use crate::keys::{check_admin_token, load_or_create_admin_token};
use crate::operator::UserView;
use crate::routes::{self, AdminAccess, State};
use crate::services::{Background, OpenError, Services};

pub use crate::services::Overrides;

pub const DEMO_USER: &str = "satoshi";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("could not create the demo user: {0}")]
    DemoUser(String),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
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
    _services: Arc<Services>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = match crate::config::inherited_listener()? {
            Some(listener) => listener,
            None => TcpListener::bind(settings.bind)?,
        };
        Self::build_on(settings, listener, Overrides::default()).await
    }

    pub async fn build_on(
        settings: Settings,
        listener: TcpListener,
        overrides: Overrides,
    ) -> Result<Self, StartupError> {
        let data_dir = settings.data_dir.clone();
        // With a database and no RAYO_ADMIN_TOKEN, the token is the one stored there.
        let preset = match (&settings.admin_token, &settings.database_url) {
            (None, Some(_)) => None,
            _ => Some(admin_token(&settings)?),
        };
        let services = Services::open(settings, overrides).await?;
        services
            .db
            .claim_for_server()
            .await
            .map_err(OpenError::Store)?;
        let admin_token = match preset {
            Some(token) => token,
            None => stored_admin_token(&services).await?,
        };
        let (hints, mut background) = services.start_background().await?;
        let example_user = example_user(&services).await?;
        let settings = &services.settings;

        let port = listener.local_addr()?.port();
        let admin_listener = match settings.admin_bind {
            Some(address) => Some(TcpListener::bind(address)?),
            None => None,
        };
        let admin_address = admin_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let console_url = settings.console_url_for(admin_address);
        if let Err(e) = services.accounts.relying.set_console(&console_url) {
            tracing::warn!(error = %e, "operators cannot sign in to the console");
        }
        let state = web::Data::new(State::new(
            services.clone(),
            AdminAccess {
                token: admin_token.clone(),
                address: admin_address,
                console_url,
            },
            hints,
        ));
        background.keep(tokio::spawn(crate::console::sample_latency(
            state.console.clone(),
            services.metrics.clone(),
            services.clock.clone(),
        )));
        // The operator's alerts, from one instance (incidents are watched where they are seen).
        if !services.notifier.operator_channels().is_empty() {
            let (services, state) = (services.clone(), state.clone());
            background.keep(tokio::spawn(async move {
                let cluster = services.cluster.clone();
                cluster
                    .lead("alerts", || {
                        let probe_state = state.clone();
                        crate::console::alerts::watch_forever(
                            services.clone(),
                            state.console.clone(),
                            services.settings.notify.alerts.clone(),
                            move || {
                                let state = probe_state.clone();
                                async move { crate::routes::probe_backends(&state).await }
                            },
                        )
                    })
                    .await
            }));
        }
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<crate::routes::RequestSpan>::new())
                .app_data(state.clone())
                .wrap(actix_web::middleware::from_fn(routes::record_request))
                .wrap(actix_web::middleware::from_fn(routes::limit_headers))
                .wrap(actix_web::middleware::from_fn(routes::limit_body_time))
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
        .map_err(|source| OpenError::DataDir {
            path: data_dir.clone(),
            source,
        })?;

        Ok(Self {
            server,
            port,
            admin_token,
            example_user,
            backend_kind: services.backends().default_backend().1.kind(),
            server_url_file,
            background,
            _services: services,
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

    /// Where the BIP-353 DNS server answers, when `RAYO_DNS_BIND` started one.
    pub fn dns_address(&self) -> Option<std::net::SocketAddr> {
        self._services.dns_address.get().copied()
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

/// The configured admin token, or the one generated into the data directory; at least 32
/// characters either way.
fn admin_token(settings: &Settings) -> Result<Secret, StartupError> {
    let data_dir = &settings.data_dir;
    let (token, source) = match &settings.admin_token {
        Some(token) => (token.clone(), "RAYO_ADMIN_TOKEN".to_owned()),
        None => {
            crate::data_dir::prepare(data_dir).map_err(|source| OpenError::DataDir {
                path: data_dir.clone(),
                source,
            })?;
            let token = load_or_create_admin_token(data_dir, &crate::clock::OsRandom).map_err(
                |source| OpenError::DataDir {
                    path: data_dir.clone(),
                    source,
                },
            )?;
            let file = crate::keys::admin_token_path(data_dir);
            (token, file.display().to_string())
        }
    };
    check_admin_token(&token, &source)?;
    Ok(token)
}

/// The admin token kept in the database, copied into the data directory (0600) for the CLI
/// on this machine.
async fn stored_admin_token(services: &Services) -> Result<Secret, StartupError> {
    let token =
        crate::keys::load_or_create_stored_admin_token(&services.db, &crate::clock::OsRandom)
            .await
            .map_err(OpenError::Store)?;
    check_admin_token(&token, "the database's stored admin token")?;
    let data_dir = &services.settings.data_dir;
    crate::data_dir::write_private(
        &crate::keys::admin_token_path(data_dir),
        token.expose().as_bytes(),
    )
    .map_err(|source| OpenError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    Ok(token)
}

/// On a first start, the demo user (unless turned off); else the first user there is.
async fn example_user(services: &Services) -> Result<Option<UserView>, StartupError> {
    // One user read, not all of them: a store may hold hundreds of thousands.
    let first = services.operator.first_user().await.unwrap_or_default();
    if first.is_some() || !services.settings.demo_user {
        return Ok(first);
    }
    let demo = UserSettings {
        description: Some("Demo address on a rayo dev server: no real money moves".into()),
        success_message: Some("Thanks! (This was a demo payment.)".into()),
        ..UserSettings::default()
    };
    let name = Username::parse(DEMO_USER).map_err(|e| StartupError::DemoUser(e.to_string()))?;
    services
        .operator
        .add_user(name, demo)
        .await
        .map(Some)
        .map_err(|e| StartupError::DemoUser(e.to_string()))
}

/// The file a running server writes its admin base URL into.
pub fn server_url_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("server.url")
}
