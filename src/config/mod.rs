//! Typed settings, built here and nowhere else. Sources, weakest first: built-in defaults,
//! `rayo.toml` (named backends), `.env`, `RAYO_*` environment variables, command-line flags
//! (see `args` and `file`).

pub mod args;
pub mod file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::domain::{BackendName, Domain, RelayUrl, Secret};
use crate::net::PrivateWebhooks;
use crate::net::Reach;

/// A setting that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// Serve the admin API only on this address (e.g. 127.0.0.1:8081), not on `bind`.
    pub admin_bind: Option<SocketAddr>,
    /// Where operators open the console; see `console_url_for`.
    pub console_url: Option<PublicUrl>,
    /// Currencies payers may name amounts in, and where their prices come from.
    pub currencies: Vec<&'static crate::prices::Currency>,
    pub price_sources: Vec<crate::prices::Ticker>,
    /// How rates are taken from quotes (age, band, agreeing sources); prices are read again
    /// this often.
    pub price_policy: crate::prices::PricePolicy,
    pub price_refresh: Duration,
    /// How long finished invoices and events are kept.
    pub retention: crate::store::Retention,
    /// PostgreSQL instead of sled, when set.
    pub database_url: Option<Secret>,
    /// The primary domain's public URL.
    pub public_url: PublicUrl,
    /// More domains served by this server, each with its own public URL.
    pub extra_public_urls: Vec<PublicUrl>,
    pub data_dir: PathBuf,
    /// The backend the flags describe, known as `default`.
    pub backend: BackendSettings,
    /// More backends by name (from `rayo.toml`), and which one is the default.
    pub named_backends: Vec<(BackendName, BackendSettings)>,
    pub default_backend: Option<BackendName>,
    /// `None`: use (or create) the token file in the data directory.
    pub admin_token: Option<Secret>,
    pub log_format: LogFormat,
    /// What to log (tracing's filter syntax).
    pub log_filter: String,
    /// How long the callback waits for the backend; wallets give up around 5 s.
    pub backend_timeout: Duration,
    pub invoice_expiry: Duration,
    /// HTTP worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// Create the demo user `satoshi` when the store has no users.
    pub demo_user: bool,
    /// Webhooks are retried for this long, then dead-lettered.
    pub webhook_window: Duration,
    /// The first webhook retry waits about this long; later ones back off exponentially.
    pub webhook_first_retry: Duration,
    /// The range an app's `expiry_secs` is clamped to.
    pub api_expiry_min: Duration,
    pub api_expiry_max: Duration,
    /// The key that signs zap receipts; `None`: generated once and kept in the store.
    pub nostr_secret_key: Option<Secret>,
    /// Relays every zap receipt goes to, besides those the zap request names.
    pub nostr_relays: Vec<RelayUrl>,
    /// Allow relays on private addresses (a relay on the same host; tests).
    pub nostr_allow_private_relays: bool,
    /// Which webhook URLs may reach private addresses.
    pub webhook_allow_private: PrivateWebhooks,
    /// Payment alerts: mail, Telegram, ntfy's reach, the operator's channels, templates.
    pub notify: NotifyConfig,
    /// BIP-353 names: the DNS server rayo may run, and how offers are kept.
    pub bip353: Bip353Config,
    /// List users on the landing page.
    pub list_users: bool,
    /// Requests per minute per client IP; 0 turns a limit off.
    pub rate_limit_callback_per_minute: u32,
    pub rate_limit_api_per_minute: u32,
    /// Take the client's IP from this header (set by a trusted proxy: `Fly-Client-IP`).
    pub client_ip_header: Option<String>,
    /// Unpaid invoices a user may have at once; 0: no cap.
    pub max_pending_per_user: u32,
    /// Of those, how many one payer (an IPv4 address, an IPv6 /64) may hold; `None`: a tenth
    /// of the cap; 0: no limit.
    pub max_pending_per_client: Option<u32>,
    /// Invoice requests to backends in flight at once.
    pub max_backend_calls: usize,
    /// Live status followers one API key, or one client address, may hold at once.
    pub max_followers_per_client: usize,
    /// How long a request body may take to arrive (slow clients are cut off).
    pub request_body_timeout: Duration,
    /// Who may claim an address on the account pages.
    pub signup: Signup,
    /// Names people may not claim, beyond the built-in list.
    pub reserved_names: Vec<String>,
    /// A session ends after this long unused, and after `session_lifetime` in any case.
    pub session_idle: Duration,
    pub session_lifetime: Duration,
}

/// Who may claim an address on the account pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Signup {
    /// Only with an invite from the operator.
    #[default]
    Invite,
    /// Anyone may claim a free name (rate-limited per client).
    Open,
    /// Nobody: invites are refused too.
    Closed,
}

impl Settings {
    /// The embedded defaults: everything `rayo serve` needs with no configuration at all.
    pub fn defaults() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: PublicUrl::parse("http://localhost:8080")
                .unwrap_or_else(|_| unreachable!()),
            extra_public_urls: Vec::new(),
            admin_bind: None,
            console_url: None,
            currencies: Vec::new(),
            price_sources: crate::prices::Ticker::public(),
            price_policy: crate::prices::PricePolicy::default(),
            price_refresh: Duration::from_secs(60),
            retention: crate::store::Retention::default(),
            database_url: None,
            data_dir: PathBuf::from("data"),
            backend: BackendSettings::default(),
            named_backends: Vec::new(),
            default_backend: None,
            admin_token: None,
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            backend_timeout: Duration::from_secs(4),
            invoice_expiry: Duration::from_secs(600),
            workers: None,
            demo_user: true,
            webhook_window: Duration::from_secs(24 * 3600),
            webhook_first_retry: Duration::from_secs(5),
            api_expiry_min: Duration::from_secs(30),
            api_expiry_max: Duration::from_secs(24 * 3600),
            nostr_secret_key: None,
            nostr_relays: Vec::new(),
            nostr_allow_private_relays: false,
            webhook_allow_private: PrivateWebhooks::None,
            notify: NotifyConfig::default(),
            bip353: Bip353Config::default(),
            list_users: false,
            signup: Signup::Invite,
            reserved_names: Vec::new(),
            session_idle: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            rate_limit_callback_per_minute: 600,
            rate_limit_api_per_minute: 600,
            client_ip_header: None,
            max_pending_per_user: 1000,
            max_pending_per_client: None,
            max_backend_calls: 64,
            max_followers_per_client: 100,
            request_body_timeout: Duration::from_secs(10),
        }
    }

    pub fn domains(&self) -> Result<Domains, ConfigError> {
        Domains::new(self.public_url.clone(), self.extra_public_urls.clone())
    }

    /// Where operators open the console, given the admin address as bound: the configured
    /// URL; else, with an admin address of its own, `http://localhost:<its port>` (reached
    /// through a tunnel: a browser treats localhost as secure, so passkeys work); else the
    /// public URL, where the console then is.
    pub fn console_url_for(&self, admin: Option<SocketAddr>) -> PublicUrl {
        if let Some(url) = &self.console_url {
            return url.clone();
        }
        admin
            .and_then(|admin| PublicUrl::parse(&format!("http://localhost:{}", admin.port())).ok())
            .unwrap_or_else(|| self.public_url.clone())
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// How many of a user's unpaid invoices one payer may hold (0: no limit).
    pub fn pending_share(&self) -> u32 {
        self.max_pending_per_client
            .unwrap_or((self.max_pending_per_user / 10).max(1))
            .min(self.max_pending_per_user)
    }

    /// Where zap receipts may be published.
    pub fn relay_reach(&self) -> Reach {
        if self.nostr_allow_private_relays {
            Reach::Anywhere
        } else {
            Reach::Public
        }
    }
}

/// A listening socket handed over by whoever started rayo (systemd socket activation, or a
/// test harness that keeps the port): `LISTEN_FDS=1` with the socket as fd 3, and
/// `LISTEN_PID`, when set, naming this process. Served instead of binding `RAYO_BIND`.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, ConfigError> {
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID") {
        if pid.trim().parse::<u32>() != Ok(std::process::id()) {
            return Ok(None);
        }
    }
    if count.trim() != "1" {
        return Err(ConfigError::new(
            "LISTEN_FDS",
            format!("rayo serves exactly one inherited socket, not {count}"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        const FIRST_INHERITED_FD: i32 = 3;
        // SAFETY: by the socket-activation protocol, fd 3 is an open socket handed to this
        // process, which nothing else here owns. It is made to listen (a no-op for one that
        // already does), so a bound socket will do as well.
        let listener = unsafe {
            libc::listen(FIRST_INHERITED_FD, 1024);
            std::net::TcpListener::from_raw_fd(FIRST_INHERITED_FD)
        };
        listener
            .local_addr()
            .map_err(|e| ConfigError::new("LISTEN_FDS", format!("fd 3 is not a socket: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ConfigError::new("LISTEN_FDS", e))?;
        Ok(Some(listener))
    }
    #[cfg(not(unix))]
    Ok(None)
}

/// Which backend makes invoices, and what it needs.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub kind: BackendKind,
    /// LNbits: base URL and the wallet's invoice key.
    pub lnbits_url: Option<Url>,
    pub lnbits_invoice_key: Option<Secret>,
    /// Buda.com: base URL, API key and secret.
    pub buda_url: Url,
    pub buda_api_key: Option<Secret>,
    pub buda_api_secret: Option<Secret>,
    /// Core Lightning's clnrest: base URL and a rune limited to the invoice methods.
    pub cln_url: Option<Url>,
    pub cln_rune: Option<Secret>,
    /// clnrest's certificate, pinned (it is self-made, so no public root vouches for it).
    pub cln_tls_cert: Option<std::path::PathBuf>,
    /// LND REST: base URL, an invoice macaroon (hex, or a file), the node's `tls.cert` to pin,
    /// and whether invoices carry private route hints.
    pub lnd_url: Option<Url>,
    pub lnd_macaroon: Option<Secret>,
    pub lnd_macaroon_file: Option<std::path::PathBuf>,
    pub lnd_tls_cert: Option<std::path::PathBuf>,
    pub lnd_private_routes: bool,
    /// phoenixd: base URL and its `http-password` (or limited-access password).
    pub phoenixd_url: Url,
    pub phoenixd_password: Option<Secret>,
    /// phoenixd's `webhook-secret`, to accept its webhooks at `/hooks/{backend}`.
    pub phoenixd_webhook_secret: Option<Secret>,
    /// Nostr Wallet Connect: the connection URI the wallet handed out (a secret).
    pub nwc_uri: Option<Secret>,
    /// The network invoices must be for [default: regtest for dev, bitcoin otherwise].
    pub network: Option<Network>,
}

impl BackendSettings {
    /// The network invoices must be for: as configured, else regtest beside the dev backend,
    /// else bitcoin. Users' own wallets are on the server's network too.
    pub fn network(&self) -> Network {
        match (self.network, self.kind) {
            (Some(network), _) => network,
            (None, BackendKind::Dev) => Network::Regtest,
            (None, _) => Network::Bitcoin,
        }
    }
}

/// phoenixd listens here unless told otherwise.
pub const DEFAULT_PHOENIXD_URL: &str = "http://127.0.0.1:9740/";
/// Buda.com's API.
pub const DEFAULT_BUDA_URL: &str = "https://www.buda.com/";

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            kind: BackendKind::Dev,
            lnbits_url: None,
            lnbits_invoice_key: None,
            buda_url: Url::parse(DEFAULT_BUDA_URL).unwrap_or_else(|_| unreachable!()),
            buda_api_key: None,
            buda_api_secret: None,
            cln_url: None,
            cln_rune: None,
            cln_tls_cert: None,
            lnd_url: None,
            lnd_macaroon: None,
            lnd_macaroon_file: None,
            lnd_tls_cert: None,
            lnd_private_routes: false,
            phoenixd_url: Url::parse(DEFAULT_PHOENIXD_URL).unwrap_or_else(|_| unreachable!()),
            phoenixd_password: None,
            phoenixd_webhook_secret: None,
            nwc_uri: None,
            network: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Built-in: signs regtest invoices, moves no money.
    #[default]
    Dev,
    /// An LNbits wallet (RAYO_LNBITS_URL, RAYO_LNBITS_INVOICE_KEY).
    Lnbits,
    /// A Buda.com account (RAYO_BUDA_API_KEY, RAYO_BUDA_API_SECRET). Memo invoices only.
    Buda,
    /// Core Lightning through clnrest (RAYO_CLN_URL, RAYO_CLN_RUNE).
    Cln,
    /// LND's REST API (RAYO_LND_URL, RAYO_LND_MACAROON[_FILE], RAYO_LND_TLS_CERT).
    Lnd,
    /// phoenixd (RAYO_PHOENIXD_URL, RAYO_PHOENIXD_PASSWORD).
    Phoenixd,
    /// A wallet over Nostr Wallet Connect (RAYO_NWC_URI).
    Nwc,
}

/// Which chain invoices are for; an invoice for another one is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Bitcoin,
    Testnet,
    Signet,
    Regtest,
}

impl From<Network> for lightning_invoice::Currency {
    fn from(network: Network) -> Self {
        match network {
            Network::Bitcoin => Self::Bitcoin,
            Network::Testnet => Self::BitcoinTestnet,
            Network::Signet => Self::Signet,
            Network::Regtest => Self::Regtest,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The base URL wallets reach this server at. Every URL rayo hands out is built from it, never
/// from request headers, and the Lightning Address domain is its host (and port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    base: String,
    domain: Domain,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let setting = format!("public URL '{raw}'");
        let url = Url::parse(raw).map_err(|e| ConfigError::new(&setting, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(setting, "must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::new(
                setting,
                "must be the bare origin (Lightning Addresses live at /.well-known on the host)",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| ConfigError::new(&setting, "has no host"))?;
        let domain = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            base: url.as_str().trim_end_matches('/').to_owned(),
            domain: Domain::parse(&domain).map_err(|e| ConfigError::new(&setting, e))?,
        })
    }

    /// `https://example.com` (no trailing slash)
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `example.com`, or `localhost:8080`: what follows the `@` of an address.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Whether browsers reach it over TLS (cookies are then `Secure`, with the `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// The host alone, without a port: a passkey's relying party id.
    pub fn host(&self) -> &str {
        let authority = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, a)| a);
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    }

    /// `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The domains this server answers for: the primary one (users who name none live there) and
/// any others. Each has its own public URL; every URL handed out comes from these.
/// When the operator is alerted (see `console::alerts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    pub every: Duration,
    pub backend_down: Duration,
    pub wallet_down: Duration,
    pub dead_letters: u64,
    pub disk_free_percent: u8,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(60),
            backend_down: Duration::from_secs(5 * 60),
            wallet_down: Duration::from_secs(3600),
            dead_letters: 10,
            disk_free_percent: 10,
        }
    }
}

/// How notifications are sent.
/// BIP-353 names and the zones rayo may serve for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bip353Config {
    /// Where the authoritative DNS server listens (UDP and TCP); `None`: it does not run.
    pub dns_bind: Option<std::net::SocketAddr>,
    /// Where UDP listens instead, by name (Fly.io's `fly-global-services:53`).
    pub dns_udp_bind: Option<String>,
    /// The zones' name servers (`RAYO_DNS_NS`); empty: each domain's own host.
    pub nameservers: Vec<String>,
    /// UDP answers per second per client network, and twice that in a burst.
    pub dns_rate: std::num::NonZeroU32,
    /// How often offers are checked and the zones rebuilt, beyond every user change.
    pub refresh: Duration,
    /// Domains whose records rayo keeps at a DNS host (`RAYO_BIP353_SYNC`).
    pub sync: Vec<SyncTarget>,
    pub desec_token: Option<Secret>,
    pub desec_api: String,
    pub cloudflare_token: Option<Secret>,
    pub cloudflare_api: String,
    /// How long one call to a DNS host may take before it is tried again.
    pub host_timeout: Duration,
}

/// One domain's records, kept at a DNS host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTarget {
    /// The address domain's host (`example.com`).
    pub host: String,
    pub provider: SyncProvider,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProvider {
    /// deSEC, with the domain as registered there (the host or a parent of it).
    Desec { domain: String },
    /// Cloudflare, by the zone's id.
    Cloudflare { zone_id: String },
}

impl SyncTarget {
    /// `<host>=desec[:<domain at deSEC>]` or `<host>=cloudflare:<zone id>`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (host, how) = raw.trim().split_once('=').ok_or_else(|| {
            format!("{raw:?}: <domain>=desec[:<domain at deSEC>] or <domain>=cloudflare:<zone id>")
        })?;
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if !crate::domain::can_have_names(&host) {
            return Err(format!("{host:?} cannot carry BIP-353 names"));
        }
        let (kind, arg) = how.split_once(':').unwrap_or((how, ""));
        let provider = match kind.trim() {
            "desec" => {
                let domain = if arg.is_empty() {
                    host.clone()
                } else {
                    arg.trim().trim_end_matches('.').to_ascii_lowercase()
                };
                if host != domain && !host.ends_with(&format!(".{domain}")) {
                    return Err(format!("{host} is not under {domain}, its domain at deSEC"));
                }
                SyncProvider::Desec { domain }
            }
            "cloudflare" if !arg.trim().is_empty() => SyncProvider::Cloudflare {
                zone_id: arg.trim().to_owned(),
            },
            "cloudflare" => {
                return Err(format!(
                    "{raw:?}: cloudflare needs the zone id (<domain>=cloudflare:<zone id>)"
                ))
            }
            other => {
                return Err(format!(
                    "{raw:?}: unknown DNS host {other:?} (desec or cloudflare)"
                ))
            }
        };
        Ok(Self { host, provider })
    }
}

impl Default for Bip353Config {
    fn default() -> Self {
        Self {
            dns_bind: None,
            dns_udp_bind: None,
            nameservers: Vec::new(),
            dns_rate: std::num::NonZeroU32::new(20).unwrap_or(std::num::NonZeroU32::MIN),
            refresh: Duration::from_secs(60),
            sync: Vec::new(),
            desec_token: None,
            desec_api: "https://desec.io/api/v1".into(),
            cloudflare_token: None,
            cloudflare_api: "https://api.cloudflare.com/client/v4".into(),
            host_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub smtp_url: Option<Secret>,
    pub smtp_from: Option<String>,
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_timeout: Duration,
    pub telegram_bot_token: Option<Secret>,
    pub telegram_api_url: String,
    /// ntfy servers may be on private addresses.
    pub allow_private: bool,
    pub operator: Vec<crate::domain::Channel>,
    pub templates: Option<PathBuf>,
    pub per_person_hourly: u32,
    /// When the operator is alerted.
    pub alerts: AlertRules,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            smtp_from: None,
            smtp_ca_file: None,
            smtp_timeout: Duration::from_secs(20),
            telegram_bot_token: None,
            telegram_api_url: "https://api.telegram.org".into(),
            allow_private: false,
            operator: Vec::new(),
            templates: None,
            per_person_hourly: 60,
            alerts: AlertRules::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domains {
    primary: PublicUrl,
    others: Vec<PublicUrl>,
}

impl Domains {
    pub fn new(primary: PublicUrl, others: Vec<PublicUrl>) -> Result<Self, ConfigError> {
        let mut seen = vec![primary.domain()];
        for url in &others {
            if seen.contains(&url.domain()) {
                return Err(ConfigError::new(
                    "RAYO_EXTRA_PUBLIC_URLS",
                    format!("domain {} is configured twice", url.domain()),
                ));
            }
            seen.push(url.domain());
        }
        Ok(Self { primary, others })
    }

    pub fn single(primary: PublicUrl) -> Self {
        Self {
            primary,
            others: Vec::new(),
        }
    }

    pub fn primary(&self) -> &PublicUrl {
        &self.primary
    }

    /// More than one domain: requests are routed by their `Host`.
    pub fn is_multi(&self) -> bool {
        !self.others.is_empty()
    }

    pub fn all(&self) -> impl Iterator<Item = &PublicUrl> {
        std::iter::once(&self.primary).chain(&self.others)
    }

    /// The configured domain a request's `Host` names, if any.
    pub fn for_host(&self, host: &str) -> Option<&PublicUrl> {
        let host = Domain::parse(host).ok()?;
        self.get(&host)
    }

    /// The configured domain `domain`.
    pub fn get(&self, domain: &Domain) -> Option<&PublicUrl> {
        self.all().find(|u| u.domain() == domain)
    }

    /// A user's public URL: their domain's, or the primary one.
    pub fn for_user(&self, domain: Option<&Domain>) -> &PublicUrl {
        domain.and_then(|d| self.get(d)).unwrap_or(&self.primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_host_and_explicit_port() {
        let domain = |raw: &str| PublicUrl::parse(raw).unwrap().domain().to_string();
        assert_eq!(domain("https://example.com"), "example.com");
        assert_eq!(domain("https://example.com:443/"), "example.com");
        assert_eq!(domain("http://localhost:8080"), "localhost:8080");
        assert_eq!(
            PublicUrl::parse("http://localhost:8080")
                .unwrap()
                .join("/x"),
            "http://localhost:8080/x"
        );
    }

    #[test]
    fn debug_output_never_shows_the_admin_token() {
        let mut settings = Settings::defaults();
        settings.admin_token = Some(Secret::new("tok-3f9a"));
        assert!(!format!("{settings:?}").contains("tok-3f9a"));
    }

    #[test]
    fn refuses_paths_and_other_schemes() {
        assert!(PublicUrl::parse("https://example.com/rayo").is_err());
        assert!(PublicUrl::parse("ftp://example.com").is_err());
        assert!(PublicUrl::parse("https://example.com/?a=1").is_err());
    }
}
