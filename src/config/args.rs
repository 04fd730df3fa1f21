//! Where settings come in from outside: command-line flags, `RAYO_*` environment variables
//! and `.env` (clap reads all three, flags winning), and `rayo.toml` (see `file`). Nothing
//! outside `config` reads them; everything else takes `Settings`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use super::{
    BackendKind, BackendSettings, ConfigError, Domains, LogFormat, Network, PublicUrl, Settings,
};
use crate::domain::{RelayUrl, Secret};
use crate::net::PrivateWebhooks;
use crate::store::retention::{Retention, SHORTEST};

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
    /// A PostgreSQL connection string (`postgres://user:pass@host/db` or key=value) to keep the
    /// store in instead of sled in the data directory.
    #[arg(long, env = "RAYO_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<Secret>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl GlobalArgs {
    fn extra_domains(&self) -> Result<Vec<PublicUrl>, ConfigError> {
        self.extra_public_urls
            .iter()
            .filter(|u| !u.trim().is_empty())
            .map(|u| PublicUrl::parse(u.trim()))
            .collect()
    }

    /// The domains served: the public URL's, and the extra ones.
    pub fn domains(&self) -> Result<Domains, ConfigError> {
        Domains::new(PublicUrl::parse(&self.public_url)?, self.extra_domains()?)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[arg(long, env = "RAYO_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// What to log, in tracing's filter syntax (`info`, `warn,rayo=debug`, ...).
    #[arg(long, env = "RAYO_LOG", default_value = "info")]
    pub log: String,
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
    pub webhook_allow_private: PrivateWebhooks,
    /// The SMTP server payment alerts are mailed through: smtps://user:pass@host:465 (TLS) or
    /// smtp://host:587 (STARTTLS when offered; required when there are credentials).
    #[arg(long, env = "RAYO_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// The sender of payment alerts: `rayo <alerts@example.com>` or an address.
    #[arg(long, env = "RAYO_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// A PEM certificate to trust for the SMTP server, besides the web's roots (a private relay).
    #[arg(long, env = "RAYO_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// How long one email may take to send: connecting, TLS and the whole SMTP conversation.
    #[arg(long, env = "RAYO_SMTP_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub smtp_timeout: Duration,
    /// A Telegram bot's token (from @BotFather): people link a chat to get payment alerts there.
    #[arg(long, env = "RAYO_TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<Secret>,
    /// Where the Telegram Bot API is (a mirror, or a test).
    #[arg(
        long,
        env = "RAYO_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api_url: String,
    /// Let ntfy topic URLs point at private addresses (an ntfy server on this network). Applies
    /// to every person's ntfy URL.
    #[arg(long, env = "RAYO_NOTIFY_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub notify_allow_private: bool,
    /// The operator's own alert channels, comma-separated, as `--notify` takes them
    /// (email:ops@example.com,ntfy:https://ntfy.sh/ops-x7).
    #[arg(long, env = "RAYO_OPERATOR_NOTIFY", value_delimiter = ',')]
    pub operator_notify: Vec<String>,
    /// How often the operator's alerts look at the server.
    #[arg(long, env = "RAYO_ALERT_EVERY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub alert_every: Duration,
    /// Alert when a configured backend has failed for this long.
    #[arg(long, env = "RAYO_ALERT_BACKEND_DOWN", default_value = "5m", value_parser = humantime::parse_duration)]
    pub alert_backend_down: Duration,
    /// Alert when a person's own (NWC) wallet has failed for this long.
    #[arg(long, env = "RAYO_ALERT_WALLET_DOWN", default_value = "1h", value_parser = humantime::parse_duration)]
    pub alert_wallet_down: Duration,
    /// Alert when this many dead letters wait.
    #[arg(long, env = "RAYO_ALERT_DEAD_LETTERS", default_value_t = 10)]
    pub alert_dead_letters: u64,
    /// Alert when the data directory's disk has less than this much free, in percent.
    #[arg(long, env = "RAYO_ALERT_DISK_FREE", default_value_t = 10)]
    pub alert_disk_free: u8,
    /// A directory of notification templates (paid.txt, digest.txt, test.txt, confirm.txt,
    /// alert.txt) replacing the built-in ones.
    #[arg(long, env = "RAYO_NOTIFY_TEMPLATES")]
    pub notify_templates: Option<PathBuf>,
    /// Messages one person may get per hour (after a burst of as many); beyond it, payments
    /// are told in a digest.
    #[arg(long, env = "RAYO_NOTIFY_PER_PERSON_HOURLY", default_value_t = 60)]
    pub notify_per_person_hourly: u32,
    /// Serve the BIP-353 zones (user._bitcoin-payment.<domain>) as their authoritative DNS
    /// server here, over UDP and TCP (e.g. [::]:53). Off by default.
    #[arg(long, env = "RAYO_DNS_BIND")]
    pub dns_bind: Option<std::net::SocketAddr>,
    /// UDP on another address than RAYO_DNS_BIND, by host name and port: on Fly.io,
    /// `fly-global-services:53` (Fly routes UDP only there; TCP stays on RAYO_DNS_BIND).
    #[arg(long, env = "RAYO_DNS_UDP_BIND")]
    pub dns_udp_bind: Option<String>,
    /// The zones' name servers, comma-separated host names [default: each domain's host].
    #[arg(long, env = "RAYO_DNS_NS", value_delimiter = ',')]
    pub dns_ns: Vec<String>,
    /// UDP answers per second to one client network (/24, /56), after a burst of twice that.
    #[arg(long, env = "RAYO_DNS_RATE", default_value_t = 20)]
    pub dns_rate: u32,
    /// Domains whose BIP-353 records rayo keeps at a DNS host that signs them, comma-separated:
    /// `<domain>=desec[:<domain at deSEC>]` or `<domain>=cloudflare:<zone id>`.
    #[arg(long, env = "RAYO_BIP353_SYNC", value_delimiter = ',')]
    pub bip353_sync: Vec<String>,
    /// deSEC's API token (a token that may manage the domain's RRsets).
    #[arg(long, env = "RAYO_DESEC_TOKEN", hide_env_values = true)]
    pub desec_token: Option<Secret>,
    #[arg(
        long,
        env = "RAYO_DESEC_API_URL",
        default_value = "https://desec.io/api/v1"
    )]
    pub desec_api_url: String,
    /// Cloudflare's API token (Zone.DNS edit on the zone).
    #[arg(long, env = "RAYO_CLOUDFLARE_TOKEN", hide_env_values = true)]
    pub cloudflare_token: Option<Secret>,
    #[arg(
        long,
        env = "RAYO_CLOUDFLARE_API_URL",
        default_value = "https://api.cloudflare.com/client/v4"
    )]
    pub cloudflare_api_url: String,
    /// How long one call to deSEC or Cloudflare may take before it is tried again.
    #[arg(long, env = "RAYO_DNS_HOST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub dns_host_timeout: Duration,
    /// How often BOLT12 offers are checked and the zones rebuilt, beyond every user change.
    #[arg(long, env = "RAYO_BIP353_REFRESH", default_value = "60s", value_parser = humantime::parse_duration)]
    pub bip353_refresh: Duration,
    /// Allow relays on private or loopback addresses.
    #[arg(long, env = "RAYO_NOSTR_ALLOW_PRIVATE_RELAYS", default_value_t = false, action = clap::ArgAction::Set)]
    pub nostr_allow_private_relays: bool,
    /// Who may claim an address on the account pages: invite (default), open or closed.
    #[arg(long, env = "RAYO_SIGNUP", value_enum, default_value_t = super::Signup::Invite)]
    pub signup: super::Signup,
    /// Names people may not claim, beyond the built-in list (comma-separated).
    #[arg(long, env = "RAYO_RESERVED_NAMES", value_delimiter = ',')]
    pub reserved_names: Vec<String>,
    /// A session ends after this long unused (e.g. 7d).
    #[arg(long, env = "RAYO_SESSION_IDLE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not (e.g. 30d).
    #[arg(long, env = "RAYO_SESSION_LIFETIME", default_value = "30d", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,
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
    /// The URL operators open the console (/admin/) at: https, or http://localhost (passkeys
    /// are bound to it) [default: http://localhost:<port> of RAYO_ADMIN_BIND, else RAYO_PUBLIC_URL]
    #[arg(long, env = "RAYO_CONSOLE_URL")]
    pub console_url: Option<String>,
    /// Invoice requests in flight at once to each configured backend (a user's own wallet gets
    /// an eighth); more wait for a slot of that backend's share.
    #[arg(long, env = "RAYO_MAX_BACKEND_CALLS", default_value_t = 64)]
    pub max_backend_calls: usize,
    /// Live status followers (WebSocket, SSE) one API key or one client address may hold.
    #[arg(long, env = "RAYO_MAX_FOLLOWERS_PER_CLIENT", default_value_t = 100)]
    pub max_followers_per_client: usize,
    /// How long expired unpaid invoices are kept after their expiry (e.g. 7d, 36h; at least 1h).
    #[arg(long, env = "RAYO_RETENTION_UNPAID", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retention_unpaid: Duration,
    /// How long paid invoices are kept after payment [default: forever: they are records of money]
    #[arg(long, env = "RAYO_RETENTION_PAID", value_parser = humantime::parse_duration)]
    pub retention_paid: Option<Duration>,
    /// How long delivered webhook and zap receipt events are kept (dead letters: 90 days).
    #[arg(long, env = "RAYO_RETENTION_EVENTS", default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention_events: Duration,
    /// Currencies payers may name amounts in (ISO codes, comma-separated: USD,EUR,CLP);
    /// none by default.
    #[arg(long, env = "RAYO_CURRENCIES", value_delimiter = ',')]
    pub currencies: Vec<String>,
    /// A price older than this (by its source's own clock, where it states one) is never used.
    #[arg(long, env = "RAYO_PRICE_MAX_AGE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub price_max_age: Duration,
    /// A quote further than this from the median of all quotes is left out, in percent.
    #[arg(long, env = "RAYO_PRICE_BAND", default_value = "3", value_parser = band_ppm)]
    pub price_band: u128,
    /// How many price sources must agree before a currency has a rate.
    #[arg(long, env = "RAYO_PRICE_MIN_SOURCES", default_value_t = 2)]
    pub price_min_sources: usize,
    /// Currencies one price source alone may price (a currency with one market). Then that
    /// source alone sets the rate: a wrong or manipulated price there is what payers pay.
    #[arg(long, env = "RAYO_PRICE_SINGLE_SOURCE", value_delimiter = ',')]
    pub price_single_source: Vec<String>,
    /// While no price can be had, a user's limits in a currency are enforced with the last
    /// good rate for this long after it was true; then payments to them wait for a price.
    #[arg(long, env = "RAYO_PRICE_LIMITS_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub price_limits_grace: Duration,
    /// How often prices are read again.
    #[arg(long, env = "RAYO_PRICE_REFRESH", default_value = "60s", value_parser = humantime::parse_duration)]
    pub price_refresh: Duration,
    /// The price sources to use (buda, kraken, coinbase, bitstamp, yadio), each optionally
    /// `name=URL` to read it elsewhere (a mirror); all of them by default.
    #[arg(long, env = "RAYO_PRICE_SOURCES", value_delimiter = ',')]
    pub price_sources: Vec<String>,
}

/// The currencies named, each one rayo knows.
fn currencies(codes: &[String]) -> Result<Vec<&'static crate::prices::Currency>, ConfigError> {
    currencies_named("RAYO_CURRENCIES", codes)
}

/// The currencies a setting names, each one rayo knows.
fn currencies_named(
    setting: &str,
    codes: &[String],
) -> Result<Vec<&'static crate::prices::Currency>, ConfigError> {
    let mut found = Vec::new();
    for code in codes.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let currency = crate::prices::Currency::find(code).ok_or_else(|| {
            let known: Vec<&str> = crate::prices::CURRENCIES.iter().map(|c| c.code).collect();
            ConfigError::new(
                setting,
                format!("unknown currency {code:?}; known: {}", known.join(", ")),
            )
        })?;
        if !found.contains(&currency) {
            found.push(currency);
        }
    }
    Ok(found)
}

/// A percentage between 0.1 and 20, in parts per million.
fn band_ppm(raw: &str) -> Result<u128, String> {
    let percent = crate::domain::Decimal::parse_at_most(raw.trim().trim_end_matches('%'), 4)
        .map_err(|e| e.to_string())?;
    let ppm = percent.units_at(4).ok_or("out of range")?;
    if !(1_000..=200_000).contains(&ppm) {
        return Err("the band is a percentage between 0.1 and 20".into());
    }
    Ok(ppm)
}

/// The price sources named (all by default), at their public address or the one given.
fn price_sources(named: &[String]) -> Result<Vec<crate::prices::Ticker>, ConfigError> {
    let all = crate::prices::Ticker::public();
    let named: Vec<&str> = named
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    if named.is_empty() {
        return Ok(all);
    }
    named
        .into_iter()
        .map(|entry| {
            let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
            let mut source = all
                .iter()
                .find(|s| s.name() == name)
                .cloned()
                .ok_or_else(|| {
                    ConfigError::new(
                        "RAYO_PRICE_SOURCES",
                        format!(
                            "unknown source {name:?}: buda, kraken, coinbase, bitstamp or yadio"
                        ),
                    )
                })?;
            if !url.is_empty() {
                source.base = url::Url::parse(url)
                    .map_err(|e| ConfigError::new("RAYO_PRICE_SOURCES", format!("{name}: {e}")))?;
            }
            Ok(source)
        })
        .collect()
}

/// Retention from the flags: each at least `retention::SHORTEST`.
fn retention(args: &ServeArgs) -> Result<Retention, ConfigError> {
    let at_least = |setting: &str, age: Duration| {
        if age.as_secs() < SHORTEST {
            Err(ConfigError::new(
                setting,
                "must be at least 1h (finished invoices are pruned only once sealed, minutes after they finish)",
            ))
        } else {
            Ok(age.as_secs())
        }
    };
    Ok(Retention {
        unpaid: at_least("RAYO_RETENTION_UNPAID", args.retention_unpaid)?,
        paid: args
            .retention_paid
            .map(|age| at_least("RAYO_RETENTION_PAID", age))
            .transpose()?,
        events: at_least("RAYO_RETENTION_EVENTS", args.retention_events)?,
        ..Retention::default()
    })
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
    #[arg(long, env = "RAYO_BUDA_URL", default_value = super::DEFAULT_BUDA_URL)]
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
    #[arg(long, env = "RAYO_PHOENIXD_URL", default_value = super::DEFAULT_PHOENIXD_URL)]
    pub phoenixd_url: url::Url,
    /// phoenixd `http-password` (the limited-access one is enough).
    #[arg(long, env = "RAYO_PHOENIXD_PASSWORD", hide_env_values = true)]
    pub phoenixd_password: Option<Secret>,
    /// phoenixd `webhook-secret`, to accept its webhooks at /hooks/default.
    #[arg(long, env = "RAYO_PHOENIXD_WEBHOOK_SECRET", hide_env_values = true)]
    pub phoenixd_webhook_secret: Option<Secret>,
    /// Nostr Wallet Connect URI (nostr+walletconnect://...): a receive-only connection.
    #[arg(long, env = "RAYO_NWC_URI", hide_env_values = true)]
    pub nwc_uri: Option<Secret>,
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
            nwc_uri: args.nwc_uri,
            network: args.network,
        }
    }
}

impl ServeArgs {
    /// The serve settings from the environment alone: what commands other than `serve` use
    /// (the offline CLI opens the same store, keys and backends a server would).
    pub fn from_env() -> Result<Self, ConfigError> {
        #[derive(Parser)]
        #[command(name = "rayo")]
        struct EnvOnly {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let matches = EnvOnly::command()
            .try_get_matches_from(["rayo"])
            .map_err(|e| ConfigError::new("environment", e.to_string()))?;
        EnvOnly::from_arg_matches(&matches)
            .map(|e| e.serve)
            .map_err(|e| ConfigError::new("environment", e.to_string()))
    }
}

impl Settings {
    /// Settings from the global flags and the serve flags, with `rayo.toml`'s named backends.
    pub fn from_args(global: &GlobalArgs, args: ServeArgs) -> Result<Self, ConfigError> {
        let file = super::file::load(&global.config)?;
        let named_backends = file.backends(&|key| std::env::var(key).ok())?;
        let nostr_relays = args
            .nostr_relays
            .iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| RelayUrl::parse(r).map_err(|e| ConfigError::new("RAYO_NOSTR_RELAYS", e)))
            .collect::<Result<_, _>>()?;
        global.domains()?;
        let retention = retention(&args)?;
        let currencies = currencies(&args.currencies)?;
        let price_sources = price_sources(&args.price_sources)?;
        Ok(Self {
            retention,
            database_url: global.database_url.clone(),
            bind: global.bind,
            public_url: PublicUrl::parse(&global.public_url)?,
            extra_public_urls: global.extra_domains()?,
            data_dir: global.data_dir.clone(),
            backend: args.backend.into(),
            named_backends,
            default_backend: file.default_backend.clone(),
            admin_token: global.admin_token.clone(),
            log_format: args.log_format,
            log_filter: args.log,
            backend_timeout: Duration::from_millis(args.backend_timeout_ms),
            invoice_expiry: Duration::from_secs(args.invoice_expiry_secs),
            workers: args.workers,
            demo_user: args.demo_user,
            webhook_window: args.webhook_window,
            webhook_first_retry: args.webhook_first_retry,
            api_expiry_min: Duration::from_secs(args.api_expiry_min_secs),
            api_expiry_max: Duration::from_secs(
                args.api_expiry_max_secs.max(args.api_expiry_min_secs),
            ),
            nostr_secret_key: args.nostr_secret_key,
            nostr_relays,
            webhook_allow_private: args.webhook_allow_private,
            nostr_allow_private_relays: args.nostr_allow_private_relays,
            notify: super::NotifyConfig {
                smtp_url: args.smtp_url.filter(|u| !u.expose().is_empty()),
                smtp_from: args.smtp_from.filter(|f| !f.trim().is_empty()),
                smtp_ca_file: args.smtp_ca_file,
                smtp_timeout: args.smtp_timeout.max(Duration::from_secs(1)),
                telegram_bot_token: args.telegram_bot_token.filter(|t| !t.expose().is_empty()),
                telegram_api_url: args.telegram_api_url,
                allow_private: args.notify_allow_private,
                operator: args
                    .operator_notify
                    .iter()
                    .filter(|c| !c.trim().is_empty())
                    .map(|c| {
                        crate::domain::Channel::parse(c)
                            .map(|mut c| {
                                // The operator's own address needs no confirming.
                                if let crate::domain::Channel::Email { verified, .. } = &mut c {
                                    *verified = true;
                                }
                                c
                            })
                            .map_err(|e| ConfigError::new("RAYO_OPERATOR_NOTIFY", e))
                    })
                    .collect::<Result<_, _>>()?,
                templates: args.notify_templates,
                alerts: super::AlertRules {
                    every: args.alert_every,
                    backend_down: args.alert_backend_down,
                    wallet_down: args.alert_wallet_down,
                    dead_letters: args.alert_dead_letters.max(1),
                    disk_free_percent: args.alert_disk_free.min(100),
                },
                per_person_hourly: args.notify_per_person_hourly.max(1),
            },
            list_users: args.list_users,
            signup: args.signup,
            reserved_names: args.reserved_names,
            session_idle: args.session_idle,
            session_lifetime: args.session_lifetime.max(args.session_idle),
            rate_limit_callback_per_minute: args.rate_limit_callback_per_minute,
            rate_limit_api_per_minute: args.rate_limit_api_per_minute,
            client_ip_header: args.client_ip_header,
            max_pending_per_user: args.max_pending_per_user,
            max_pending_per_client: args.max_pending_per_client,
            max_backend_calls: args.max_backend_calls.max(1),
            max_followers_per_client: args.max_followers_per_client.max(1),
            request_body_timeout: Settings::defaults().request_body_timeout,
            admin_bind: args.admin_bind,
            bip353: super::Bip353Config {
                dns_bind: args.dns_bind,
                dns_udp_bind: args.dns_udp_bind.filter(|b| !b.trim().is_empty()),
                nameservers: args
                    .dns_ns
                    .iter()
                    .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
                    .collect(),
                dns_rate: std::num::NonZeroU32::new(args.dns_rate)
                    .unwrap_or(std::num::NonZeroU32::MIN),
                refresh: args.bip353_refresh.max(Duration::from_secs(1)),
                sync: args
                    .bip353_sync
                    .iter()
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| {
                        super::SyncTarget::parse(t)
                            .map_err(|e| ConfigError::new("RAYO_BIP353_SYNC", e))
                    })
                    .collect::<Result<_, _>>()?,
                desec_token: args.desec_token.filter(|t| !t.expose().is_empty()),
                desec_api: args.desec_api_url,
                cloudflare_token: args.cloudflare_token.filter(|t| !t.expose().is_empty()),
                cloudflare_api: args.cloudflare_api_url,
                host_timeout: args.dns_host_timeout.max(Duration::from_millis(100)),
            },
            console_url: args
                .console_url
                .as_deref()
                .filter(|url| !url.is_empty())
                .map(super::PublicUrl::parse)
                .transpose()?,
            currencies,
            price_sources,
            price_policy: crate::prices::PricePolicy {
                max_age: args.price_max_age.max(Duration::from_secs(1)),
                band_ppm: args.price_band,
                min_sources: args.price_min_sources.max(1),
                limits_grace: args.price_limits_grace,
                single_source: currencies_named(
                    "RAYO_PRICE_SINGLE_SOURCE",
                    &args.price_single_source,
                )?
                .iter()
                .map(|c| c.code)
                .collect(),
            },
            price_refresh: args.price_refresh.max(Duration::from_secs(5)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::band_ppm;

    #[test]
    fn the_price_band_is_a_percentage_between_a_tenth_and_twenty() {
        assert_eq!(band_ppm("3"), Ok(30_000));
        assert_eq!(band_ppm("2.5%"), Ok(25_000));
        assert_eq!(band_ppm(" 0.1 "), Ok(1_000));
        assert_eq!(band_ppm("20"), Ok(200_000));
        for bad in ["0", "0.05", "20.01", "-3", "3.00001", "x", ""] {
            assert!(band_ppm(bad).is_err(), "{bad:?}");
        }
    }
}
