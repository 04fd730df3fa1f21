//! The `rayo` command line: `serve`, and the operator commands, which talk to the running
//! server's admin API or, when none runs, open the store themselves.

mod connect;
mod output;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::admin::{InvoiceQuery, WebhookQuery};
use std::sync::Arc;

use crate::backends::DevBackend;
use crate::clock::{random_bytes, Clock, SystemClock};
use crate::config::{BackendKind, BackendSettings, LogFormat, Network, PublicUrl, Settings};
use crate::domain::{Image, Msat, PayerDataSpec, Secret, UserSettings};
use crate::startup::Application;

pub use connect::{Admin, CliError};
pub use output::printable;

#[derive(Debug, Parser)]
#[command(
    name = "rayo",
    version,
    about = "A self-hosted Lightning Address server"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the store and generated secrets live.
    #[arg(long, env = "RAYO_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// The URL wallets reach this server at; its host is the Lightning Address domain.
    #[arg(
        long,
        env = "RAYO_PUBLIC_URL",
        default_value = "http://localhost:8080",
        global = true
    )]
    pub public_url: String,
    /// More domains, each as its public URL (comma-separated); users pick one with --domain.
    #[arg(
        long,
        env = "RAYO_EXTRA_PUBLIC_URLS",
        value_delimiter = ',',
        global = true
    )]
    pub extra_public_urls: Vec<String>,
    /// Address to listen on (serve), and where the CLI looks for a running server.
    #[arg(
        long,
        env = "RAYO_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Bearer token for the admin API [default: generated into <data-dir>/admin.token]
    #[arg(long, env = "RAYO_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<Secret>,
    /// Admin API base URL [default: the one a running server wrote into <data-dir>/server.url]
    #[arg(long, env = "RAYO_ADMIN_URL", global = true)]
    pub admin_url: Option<String>,
    /// Named backends beyond the flags' one (see README); a missing file is no configuration.
    #[arg(long, env = "RAYO_CONFIG", default_value = "rayo.toml", global = true)]
    pub config: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl GlobalArgs {
    pub fn extra_domains(&self) -> Result<Vec<PublicUrl>, CliError> {
        self.extra_public_urls
            .iter()
            .filter(|u| !u.trim().is_empty())
            .map(|u| PublicUrl::parse(u.trim()).map_err(CliError::Usage))
            .collect()
    }

    pub fn domains(&self) -> Result<crate::config::Domains, CliError> {
        let primary = PublicUrl::parse(&self.public_url).map_err(CliError::Usage)?;
        crate::config::Domains::new(primary, self.extra_domains()?).map_err(CliError::Usage)
    }
}

// Parsed once per process: variant sizes do not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage users (Lightning Addresses).
    #[command(subcommand)]
    User(UserCommand),
    /// Look at invoices.
    #[command(subcommand)]
    Invoice(InvoiceCommand),
    /// Check the invoice backend.
    #[command(subcommand)]
    Backend(BackendCommand),
    /// Look at and retry webhook deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The server's Nostr identity, which signs zap receipts.
    #[command(subcommand)]
    Nostr(NostrCommand),
    /// Write the whole store (users, invoices, events, keys, settings) to a JSON file.
    Backup { file: PathBuf },
    /// Load a backup into an empty store (the server must be stopped).
    Restore {
        file: PathBuf,
        /// Replace what the store holds.
        #[arg(long)]
        force: bool,
    },
    /// Tools for the dev backend (no real money).
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List queued, delivered and dead-lettered events, newest first.
    List {
        /// pending, delivered or dead
        #[arg(long)]
        state: Option<String>,
        /// Only events about this payment hash.
        #[arg(long)]
        invoice: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one event: its delivery log and exact body.
    Show { id: String },
    /// Deliver an event again now, with a fresh delivery window.
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum NostrCommand {
    /// Show the public key wallets see as `nostrPubkey`.
    Show,
    /// Replace the stored key (zap receipts are signed with the new one from now on).
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key for apps to create and read this user's invoices (shown once).
    Create { user: String },
    /// List keys (ids only; keys are stored hashed).
    List { user: Option<String> },
    /// Revoke a key by its id.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[arg(long, env = "RAYO_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// How long the callback waits for the backend, in milliseconds.
    #[arg(long, env = "RAYO_BACKEND_TIMEOUT_MS", default_value_t = 4000)]
    pub backend_timeout_ms: u64,
    /// Expiry of invoices handed to wallets, in seconds.
    #[arg(long, env = "RAYO_INVOICE_EXPIRY_SECS", default_value_t = 600)]
    pub invoice_expiry_secs: u64,
    /// HTTP worker threads [default: one per core]
    #[arg(long, env = "RAYO_WORKERS")]
    pub workers: Option<usize>,
    /// Create the demo user `satoshi` when the store has no users.
    #[arg(long, env = "RAYO_DEMO_USER", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo_user: bool,
    /// How long a webhook is retried before it is dead-lettered (e.g. 24h, 90m).
    #[arg(long, env = "RAYO_WEBHOOK_WINDOW", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_window: Duration,
    /// Delay before the first webhook retry; later ones double, with jitter, up to an hour.
    #[arg(long, env = "RAYO_WEBHOOK_FIRST_RETRY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_first_retry: Duration,
    /// Shortest expiry an app may ask for through the invoice API, in seconds.
    #[arg(long, env = "RAYO_API_EXPIRY_MIN_SECS", default_value_t = 30)]
    pub api_expiry_min_secs: u64,
    /// Longest expiry an app may ask for through the invoice API, in seconds.
    #[arg(long, env = "RAYO_API_EXPIRY_MAX_SECS", default_value_t = 86400)]
    pub api_expiry_max_secs: u64,
    /// Secret key (hex or nsec) that signs zap receipts [default: generated and kept in the store]
    #[arg(long, env = "RAYO_NOSTR_SECRET_KEY", hide_env_values = true)]
    pub nostr_secret_key: Option<Secret>,
    /// Relays (comma-separated ws:// or wss:// URLs) every zap receipt also goes to.
    #[arg(long, env = "RAYO_NOSTR_RELAYS", value_delimiter = ',')]
    pub nostr_relays: Vec<String>,
    /// Which webhooks may reach private addresses: false, true (users' own webhooks, set by the
    /// operator: "my app runs on the same box") or all (also URLs apps give; only when every
    /// API key holder is trusted).
    #[arg(long, env = "RAYO_WEBHOOK_ALLOW_PRIVATE", default_value = "false")]
    pub webhook_allow_private: crate::outbox::PrivateWebhooks,
    /// Allow relays on private or loopback addresses.
    #[arg(long, env = "RAYO_NOSTR_ALLOW_PRIVATE_RELAYS", default_value_t = false, action = clap::ArgAction::Set)]
    pub nostr_allow_private_relays: bool,
    /// List the users on the landing page (`/`).
    #[arg(long, env = "RAYO_LIST_USERS", default_value_t = false, action = clap::ArgAction::Set)]
    pub list_users: bool,
    /// Callback requests per minute per client IP (0: no limit).
    #[arg(
        long,
        env = "RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_limit_callback_per_minute: u32,
    /// Invoice API requests per minute per client IP (0: no limit).
    #[arg(long, env = "RAYO_RATE_LIMIT_API_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_api_per_minute: u32,
    /// Header a trusted proxy puts the client's IP in (Fly.io: Fly-Client-IP) [default: the socket's peer]
    #[arg(long, env = "RAYO_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Unpaid invoices one user may have at once (0: no cap).
    #[arg(long, env = "RAYO_MAX_PENDING_PER_USER", default_value_t = 1000)]
    pub max_pending_per_user: u32,
    /// Of those, how many one payer (an IPv4 address or IPv6 /64) may hold [default: a tenth]
    #[arg(long, env = "RAYO_MAX_PENDING_PER_CLIENT")]
    pub max_pending_per_client: Option<u32>,
    /// Serve the admin API only on this address (e.g. 127.0.0.1:8081), not on RAYO_BIND.
    #[arg(long, env = "RAYO_ADMIN_BIND")]
    pub admin_bind: Option<SocketAddr>,
    /// Invoice requests to backends in flight at once; more wait for a slot.
    #[arg(long, env = "RAYO_MAX_BACKEND_CALLS", default_value_t = 64)]
    pub max_backend_calls: usize,
    /// Live status followers (WebSocket, SSE) one API key or one client address may hold.
    #[arg(long, env = "RAYO_MAX_FOLLOWERS_PER_CLIENT", default_value_t = 100)]
    pub max_followers_per_client: usize,
}

/// Which backend makes invoices.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Invoice source.
    #[arg(long, env = "RAYO_BACKEND", value_enum, default_value = "dev")]
    pub backend: BackendKind,
    /// LNbits base URL, e.g. https://lnbits.example.com/
    #[arg(long, env = "RAYO_LNBITS_URL")]
    pub lnbits_url: Option<url::Url>,
    /// LNbits wallet invoice key (not the admin key: rayo only creates and reads invoices).
    #[arg(long, env = "RAYO_LNBITS_INVOICE_KEY", hide_env_values = true)]
    pub lnbits_invoice_key: Option<Secret>,
    /// Buda.com API base URL.
    #[arg(long, env = "RAYO_BUDA_URL", default_value = crate::backends::DEFAULT_BUDA_URL)]
    pub buda_url: url::Url,
    /// Buda.com API key.
    #[arg(long, env = "RAYO_BUDA_API_KEY", hide_env_values = true)]
    pub buda_api_key: Option<Secret>,
    /// Buda.com API secret.
    #[arg(long, env = "RAYO_BUDA_API_SECRET", hide_env_values = true)]
    pub buda_api_secret: Option<Secret>,
    /// Core Lightning clnrest base URL.
    #[arg(long, env = "RAYO_CLN_URL")]
    pub cln_url: Option<url::Url>,
    /// A rune limited to the invoice methods (invoice, listinvoices, waitanyinvoice).
    #[arg(long, env = "RAYO_CLN_RUNE", hide_env_values = true)]
    pub cln_rune: Option<Secret>,
    /// clnrest's TLS certificate, pinned: the node must present exactly this certificate.
    #[arg(long, env = "RAYO_CLN_TLS_CERT")]
    pub cln_tls_cert: Option<PathBuf>,
    /// LND REST base URL, e.g. https://127.0.0.1:8080/
    #[arg(long, env = "RAYO_LND_URL")]
    pub lnd_url: Option<url::Url>,
    /// LND invoice macaroon, hex.
    #[arg(long, env = "RAYO_LND_MACAROON", hide_env_values = true)]
    pub lnd_macaroon: Option<Secret>,
    /// LND invoice macaroon file (instead of the hex).
    #[arg(long, env = "RAYO_LND_MACAROON_FILE")]
    pub lnd_macaroon_file: Option<PathBuf>,
    /// LND's tls.cert, pinned: the node must present exactly this certificate.
    #[arg(long, env = "RAYO_LND_TLS_CERT")]
    pub lnd_tls_cert: Option<PathBuf>,
    /// Add private route hints to LND invoices (for nodes with only private channels).
    #[arg(long, env = "RAYO_LND_PRIVATE_ROUTES", default_value_t = false, action = clap::ArgAction::Set)]
    pub lnd_private_routes: bool,
    /// phoenixd base URL.
    #[arg(long, env = "RAYO_PHOENIXD_URL", default_value = crate::config::DEFAULT_PHOENIXD_URL)]
    pub phoenixd_url: url::Url,
    /// phoenixd `http-password` (the limited-access one is enough).
    #[arg(long, env = "RAYO_PHOENIXD_PASSWORD", hide_env_values = true)]
    pub phoenixd_password: Option<Secret>,
    /// phoenixd `webhook-secret`, to accept its webhooks at /hooks/default.
    #[arg(long, env = "RAYO_PHOENIXD_WEBHOOK_SECRET", hide_env_values = true)]
    pub phoenixd_webhook_secret: Option<Secret>,
    /// Network invoices must be for [default: regtest for dev, bitcoin otherwise]
    #[arg(long, env = "RAYO_NETWORK", value_enum)]
    pub network: Option<Network>,
}

impl From<BackendArgs> for BackendSettings {
    fn from(args: BackendArgs) -> Self {
        Self {
            kind: args.backend,
            lnbits_url: args.lnbits_url,
            lnbits_invoice_key: args.lnbits_invoice_key,
            buda_url: args.buda_url,
            buda_api_key: args.buda_api_key,
            buda_api_secret: args.buda_api_secret,
            cln_url: args.cln_url,
            cln_rune: args.cln_rune,
            cln_tls_cert: args.cln_tls_cert,
            lnd_url: args.lnd_url,
            lnd_macaroon: args.lnd_macaroon,
            lnd_macaroon_file: args.lnd_macaroon_file,
            lnd_tls_cert: args.lnd_tls_cert,
            lnd_private_routes: args.lnd_private_routes,
            phoenixd_url: args.phoenixd_url,
            phoenixd_password: args.phoenixd_password,
            phoenixd_webhook_secret: args.phoenixd_webhook_secret,
            network: args.network,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Connect to the configured backend, make and check a 1-sat test invoice, and report.
    Check {
        #[command(flatten)]
        backend: BackendArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        #[command(flatten)]
        settings: UserFlags,
    },
    /// List users.
    List,
    /// Show one user.
    Show { name: String },
    /// Change a user.
    Update {
        name: String,
        #[command(flatten)]
        settings: UserFlags,
        /// Stop serving this address.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Serve this address again.
        #[arg(long)]
        enable: bool,
        /// Replace the webhook secret (shown once); also makes one for users without.
        #[arg(long)]
        rotate_webhook_secret: bool,
    },
    /// Remove a user (their invoices are kept).
    Remove { name: String },
    /// API keys for the invoice API.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Args)]
pub struct UserFlags {
    /// Shown by wallets (`text/plain`).
    #[arg(long)]
    pub description: Option<String>,
    /// LUD-20 long description; "" clears it.
    #[arg(long)]
    pub long_description: Option<String>,
    /// PNG or JPEG file for the metadata image (64 KiB at most).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Smallest payment, in millisatoshis.
    #[arg(long)]
    pub min_sendable: Option<u64>,
    /// Largest payment, in millisatoshis.
    #[arg(long)]
    pub max_sendable: Option<u64>,
    /// LUD-12 comment length in characters (0 refuses comments).
    #[arg(long)]
    pub comment_allowed: Option<u16>,
    /// LUD-18 fields to ask payers for, e.g. `name,email:mandatory`; "" asks for none.
    #[arg(long)]
    pub payer_data: Option<String>,
    /// LUD-09 message shown after paying (with --success-url, the link's description); "" clears.
    #[arg(long)]
    pub success_message: Option<String>,
    /// LUD-09 link shown after paying, on this server's domain; "" clears.
    #[arg(long)]
    pub success_url: Option<String>,
    /// Where to POST payment events; "" removes it.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The configured backend that makes this user's invoices; "" for the default one.
    #[arg(long)]
    pub backend: Option<String>,
    /// The configured domain this address lives on (RAYO_EXTRA_PUBLIC_URLS); "" for the primary.
    #[arg(long)]
    pub domain: Option<String>,
    /// NIP-05 identity: the user's Nostr public key, hex or npub; "" removes it.
    #[arg(long)]
    pub nostr_pubkey: Option<String>,
    /// NIP-05 relays, comma-separated ws:// or wss:// URLs; "" removes them.
    #[arg(long)]
    pub nostr_relays: Option<String>,
}

impl UserFlags {
    fn into_settings(self) -> Result<UserSettings, CliError> {
        let image = match self.image {
            None => None,
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                Some(Image::from_bytes(&bytes).map_err(|e| CliError::Usage(e.to_string()))?)
            }
        };
        let payer_data = self
            .payer_data
            .as_deref()
            .map(PayerDataSpec::parse_list)
            .transpose()
            .map_err(CliError::Usage)?;
        Ok(UserSettings {
            description: self.description,
            long_description: self.long_description,
            image,
            min_sendable: self.min_sendable.map(Msat::from_msat),
            max_sendable: self.max_sendable.map(Msat::from_msat),
            comment_allowed: self.comment_allowed,
            payer_data,
            success_message: self.success_message,
            success_url: self.success_url,
            webhook_url: self.webhook_url,
            rotate_webhook_secret: None,
            disabled: None,
            backend: self.backend,
            domain: self.domain,
            nostr_pubkey: self.nostr_pubkey,
            nostr_relays: self.nostr_relays.map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// List invoices, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        /// pending, paid or expired
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one invoice, with the exact string its description hash commits to.
    Show { payment_hash: String },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Mark a dev-backend invoice paid, as if a wallet had paid it.
    Settle { payment_hash: String },
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let Cli { global, command } = cli;
    match command {
        Command::Serve(args) => serve(&global, args).await,
        Command::User(cmd) => user(&global, cmd).await,
        Command::Invoice(cmd) => invoice(&global, cmd).await,
        Command::Backend(BackendCommand::Check { backend }) => {
            backend_check(backend.into(), global.json).await
        }
        Command::Webhook(cmd) => webhook(&global, cmd).await,
        Command::Backup { file } => {
            let backup = Admin::connect(&global).await?.backup().await?;
            let json = serde_json::to_vec_pretty(&backup)
                .map_err(|e| CliError::Failed(format!("backup: {e}")))?;
            crate::data_dir::write_private(&file, &json)
                .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
            if !global.json {
                output::say!(
                    "wrote {} users and {} invoices to {} (it holds secrets: keep it private)",
                    backup.users.len(),
                    backup.invoices.len(),
                    file.display()
                );
            }
            Ok(())
        }
        Command::Restore { file, force } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let backup: crate::backup::Backup = serde_json::from_slice(&bytes).map_err(|e| {
                CliError::Usage(format!("{}: not a rayo backup: {e}", file.display()))
            })?;
            let (users, invoices) = connect::restore(&global, backup, force).await?;
            if !global.json {
                output::say!("restored {users} users and {invoices} invoices");
            }
            Ok(())
        }
        Command::Nostr(cmd) => {
            let admin = Admin::connect(&global).await?;
            let view = match cmd {
                NostrCommand::Show => admin.nostr().await?,
                NostrCommand::RotateKey => admin.rotate_nostr_key().await?,
            };
            output::nostr(&view, global.json);
            Ok(())
        }
        Command::Dev(DevCommand::Settle { payment_hash }) => {
            let view = Admin::connect(&global)
                .await?
                .dev_settle(&payment_hash)
                .await?;
            output::invoice(&view, global.json);
            Ok(())
        }
    }
}

async fn serve(global: &GlobalArgs, args: ServeArgs) -> Result<(), CliError> {
    crate::telemetry::init(args.log_format);
    let config = crate::config_file::load(&global.config).map_err(CliError::Usage)?;
    let named_backends = config
        .backends(&|key| std::env::var(key).ok())
        .map_err(CliError::Usage)?;
    let settings = Settings {
        bind: global.bind,
        public_url: PublicUrl::parse(&global.public_url).map_err(CliError::Usage)?,
        extra_public_urls: global.extra_domains()?,
        data_dir: global.data_dir.clone(),
        backend: args.backend.into(),
        named_backends,
        default_backend: config.default_backend.clone(),
        admin_token: global.admin_token.clone(),
        log_format: args.log_format,
        backend_timeout: Duration::from_millis(args.backend_timeout_ms),
        invoice_expiry: Duration::from_secs(args.invoice_expiry_secs),
        workers: args.workers,
        demo_user: args.demo_user,
        webhook_window: args.webhook_window,
        webhook_first_retry: args.webhook_first_retry,
        api_expiry_min: Duration::from_secs(args.api_expiry_min_secs),
        api_expiry_max: Duration::from_secs(args.api_expiry_max_secs.max(args.api_expiry_min_secs)),
        nostr_secret_key: args.nostr_secret_key,
        nostr_relays: args
            .nostr_relays
            .iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| {
                crate::domain::RelayUrl::parse(r)
                    .map_err(|e| CliError::Usage(format!("RAYO_NOSTR_RELAYS: {e}")))
            })
            .collect::<Result<_, _>>()?,
        webhook_allow_private: args.webhook_allow_private,
        nostr_allow_private_relays: args.nostr_allow_private_relays,
        list_users: args.list_users,
        rate_limit_callback_per_minute: args.rate_limit_callback_per_minute,
        rate_limit_api_per_minute: args.rate_limit_api_per_minute,
        client_ip_header: args.client_ip_header,
        max_pending_per_user: args.max_pending_per_user,
        max_pending_per_client: args.max_pending_per_client,
        max_backend_calls: args.max_backend_calls.max(1),
        max_followers_per_client: args.max_followers_per_client.max(1),
        request_body_timeout: Settings::defaults().request_body_timeout,
        admin_bind: args.admin_bind,
    };
    let app = Application::build(settings.clone())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    output::banner(&settings, &app);
    app.run_until_stopped()
        .await
        .map_err(|e| CliError::Failed(e.to_string()))
}

async fn backend_check(settings: BackendSettings, as_json: bool) -> Result<(), CliError> {
    let clock = Arc::new(SystemClock);
    // The real dev key lives in the store; a throwaway one exercises the same signing path.
    let dev = Arc::new(DevBackend::from_seed(&random_bytes(), clock.clone()));
    let backend = crate::backends::build(&settings, dev).map_err(CliError::Usage)?;
    let report = crate::backends::check(backend.as_ref(), clock.now()).await;
    output::backend_report(&report, as_json);
    if report.ok() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the {} backend is not usable",
            backend.kind()
        )))
    }
}

async fn user(global: &GlobalArgs, cmd: UserCommand) -> Result<(), CliError> {
    let admin = Admin::connect(global).await?;
    match cmd {
        UserCommand::Add { name, settings } => {
            let view = admin.add_user(&name, settings.into_settings()?).await?;
            output::user(&view, global.json);
        }
        UserCommand::List => output::users(&admin.users().await?, global.json),
        UserCommand::Show { name } => output::user(&admin.user(&name).await?, global.json),
        UserCommand::Update {
            name,
            settings,
            disable,
            enable,
            rotate_webhook_secret,
        } => {
            let mut settings = settings.into_settings()?;
            settings.rotate_webhook_secret = rotate_webhook_secret.then_some(true);
            settings.disabled = if disable {
                Some(true)
            } else if enable {
                Some(false)
            } else {
                None
            };
            output::user(&admin.update_user(&name, settings).await?, global.json);
        }
        UserCommand::Remove { name } => {
            admin.remove_user(&name).await?;
            if !global.json {
                output::say!("removed {name} (their invoices are kept)");
            }
        }
        UserCommand::ApiKey(ApiKeyCommand::Create { user }) => {
            output::api_key_created(&admin.create_api_key(&user).await?, global.json)
        }
        UserCommand::ApiKey(ApiKeyCommand::List { user }) => {
            output::api_keys(&admin.api_keys(user.as_deref()).await?, global.json)
        }
        UserCommand::ApiKey(ApiKeyCommand::Revoke { id }) => {
            output::api_keys(&[admin.revoke_api_key(&id).await?], global.json)
        }
    }
    Ok(())
}

async fn webhook(global: &GlobalArgs, cmd: WebhookCommand) -> Result<(), CliError> {
    let admin = Admin::connect(global).await?;
    match cmd {
        WebhookCommand::List {
            state,
            invoice,
            limit,
        } => {
            let query = WebhookQuery {
                state,
                invoice,
                limit: Some(limit),
            };
            output::webhooks(&admin.webhooks(query).await?, global.json)
        }
        WebhookCommand::Show { id } => output::webhook(&admin.webhook(&id).await?, global.json),
        WebhookCommand::Retry { id } => {
            output::webhook(&admin.retry_webhook(&id).await?, global.json)
        }
    }
    Ok(())
}

async fn invoice(global: &GlobalArgs, cmd: InvoiceCommand) -> Result<(), CliError> {
    let admin = Admin::connect(global).await?;
    match cmd {
        InvoiceCommand::List {
            user,
            status,
            limit,
        } => {
            let views = admin
                .invoices(InvoiceQuery {
                    user,
                    status,
                    limit: Some(limit),
                })
                .await?;
            output::invoices(&views, global.json);
        }
        InvoiceCommand::Show { payment_hash } => {
            output::invoice(&admin.invoice(&payment_hash).await?, global.json)
        }
    }
    Ok(())
}
