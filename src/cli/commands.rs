//! The commands and their flags (settings shared with the server come from `config::args`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::CliError;
use crate::config::args::{BackendArgs, GlobalArgs, ServeArgs};
use crate::domain::{
    DeliveryName, EventId, Hash32, Image, Msat, PayerDataSpec, StatusName, UserSettings, Username,
};

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
    /// Invites: one-time URLs for people to claim an address (or take one over) themselves.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Remove now what retention lets go of (RAYO_RETENTION_*), as the server does every ten
    /// minutes, and print what went.
    Prune {
        /// Count what would go; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
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
    /// BIP-353 names (₿alice@example.com) and their BOLT12 offers.
    #[command(subcommand)]
    Bip353(Bip353Command),
    /// The PostgreSQL store (RAYO_DATABASE_URL).
    #[command(subcommand)]
    Db(DbCommand),
    /// Read every price source now: each quote, its age, and the rate used (the median). For
    /// RAYO_CURRENCIES, or every currency rayo knows when none are set.
    Prices,
    /// The operator console's operators (who sign in at /admin/ with passkeys).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// What operators did, newest first: the console's actions and the admin API's changes.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum Bip353Command {
    /// Print every address's TXT record, to paste into a DNS host that signs with DNSSEC, and
    /// the addresses that stay LNURL-only, with why.
    Records {
        #[arg(long, value_enum, default_value_t = RecordFormat::Zone)]
        format: RecordFormat,
    },
    /// For the zones rayo serves itself (RAYO_DNS_BIND): the NS and DS records to give the
    /// parent zone, and the keys as trust anchors.
    Ds,
    /// Roll the zones' signing keys: `start` publishes a new key beside the old one; give the
    /// parent the new DS; once the old DS has left caches (its TTL, at least a day), `finish`.
    Rollover {
        #[arg(value_enum)]
        step: RolloverStep,
    },
    /// The DNS hosts that keep the records (RAYO_BIP353_SYNC): what the last pass found and
    /// repaired, or with --now, a pass run now.
    Sync {
        #[arg(long)]
        now: bool,
    },
    /// Resolve ₿user@domain as a payer would, check its DNSSEC signature against the zone's
    /// key, decode the offer, and compare it with the one the user's backend made.
    Check {
        user: Username,
        /// The DNS server to ask [default: RAYO_DNS_BIND, else the system's resolver].
        #[arg(long)]
        server: Option<std::net::SocketAddr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// Zone-file lines.
    Zone,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RolloverStep {
    Start,
    Finish,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Print a one-time URL that makes its opener an operator of the console (the first one
    /// too): keep it secret, it gives the whole server.
    Invite {
        /// How long it stays usable (at most 7d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Make an invite and print its one-time URL (<public URL>/join/<token>).
    Create {
        /// The name it gives (default: the person picks a free one).
        #[arg(long)]
        name: Option<String>,
        /// Hand over this existing address instead (recovery, a new owner).
        #[arg(long = "for", conflicts_with = "name")]
        for_user: Option<String>,
        /// How long it stays usable (e.g. 7d, 12h).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
        /// How many people may use it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// One of the server's domains (default: the primary one).
        #[arg(long)]
        domain: Option<String>,
    },
    /// List invites, newest first.
    List,
    /// Revoke an invite by its id: its URL opens nothing from now on.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// The database's schema version, the one this rayo knows, and whether a server runs on it.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List queued, delivered and dead-lettered events, newest first.
    List {
        /// pending, delivered or dead
        #[arg(long)]
        state: Option<DeliveryName>,
        /// Only events about this payment hash.
        #[arg(long)]
        invoice: Option<Hash32>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one event: its delivery log and exact body.
    Show { id: EventId },
    /// Deliver an event again now, with a fresh delivery window.
    Retry { id: EventId },
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
    Create { user: Username },
    /// List keys (ids only; keys are stored hashed).
    List { user: Option<Username> },
    /// Revoke a key by its id.
    Revoke { id: String },
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
    Show { name: Username },
    /// Change a user.
    Update {
        name: Username,
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
    Remove { name: Username },
    /// Make a one-time link (15 minutes) for the user to get payment alerts in Telegram: it
    /// opens the bot with the code ready to send.
    TelegramLink { name: Username },
    /// Send a test message through the user's notification channels (or one of them).
    NotifyTest {
        name: Username,
        /// Only this channel, as `user show` lists it (email:alice@example.org).
        #[arg(long)]
        channel: Option<String>,
    },
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
    /// Remove the picture.
    #[arg(long, conflicts_with = "image")]
    pub no_image: bool,
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
    /// The currency this user thinks in (one of RAYO_CURRENCIES), listed first to payers;
    /// "" removes it and its limits.
    #[arg(long)]
    pub currency: Option<String>,
    /// Smallest payment in --currency, e.g. 1000 (CLP) or 5.00 (USD); "" removes it.
    #[arg(long)]
    pub min: Option<String>,
    /// Largest payment in --currency; "" removes it.
    #[arg(long)]
    pub max: Option<String>,
    /// The user's own wallet: a receive-only Nostr Wallet Connect URI, or `-` to read it from
    /// standard input (out of the shell's history); "" removes it.
    #[arg(long)]
    pub nwc: Option<String>,
    /// The configured domain this address lives on (RAYO_EXTRA_PUBLIC_URLS); "" for the primary.
    #[arg(long)]
    pub domain: Option<String>,
    /// NIP-05 identity: the user's Nostr public key, hex or npub; "" removes it.
    #[arg(long)]
    pub nostr_pubkey: Option<String>,
    /// NIP-05 relays, comma-separated ws:// or wss:// URLs; "" removes them.
    #[arg(long)]
    pub nostr_relays: Option<String>,
    /// Where to tell this user of payments; repeat for several: nostr:<npub>, email:<address>
    /// (confirmed by a mailed link first), ntfy:<topic URL> (a token as its password:
    /// https://:tk_…@host/topic), telegram:<chat id>. Replaces the current ones; "" removes all.
    #[arg(long, value_name = "KIND:VALUE")]
    pub notify: Vec<String>,
    /// One summary per period (e.g. 10m) instead of a message per payment; "off" for each.
    #[arg(long, value_name = "PERIOD")]
    pub notify_digest: Option<String>,
    /// Whether comments and payer data appear in notifications (on or off).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub notify_details: Option<bool>,
}

fn on_off(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("'{raw}': use on or off")),
    }
}

/// `-` for a secret read from standard input's first line, else the value itself.
fn read_secret_argument(value: String) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?;
    Ok(line.trim().to_owned())
}

impl UserFlags {
    pub fn into_settings(self) -> Result<UserSettings, CliError> {
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
            remove_image: self.no_image.then_some(true),
            min_sendable: self.min_sendable.map(Msat::from_msat),
            max_sendable: self.max_sendable.map(Msat::from_msat),
            comment_allowed: self.comment_allowed,
            payer_data,
            success_message: self.success_message,
            success_url: self.success_url,
            webhook_url: self.webhook_url,
            rotate_webhook_secret: None,
            disabled: None,
            nwc: self.nwc.map(read_secret_argument).transpose()?,
            currency: self.currency,
            fiat_min: self.min,
            fiat_max: self.max,
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
            notify: (!self.notify.is_empty()).then_some(self.notify),
            notify_digest: self.notify_digest,
            notify_details: self.notify_details,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// List invoices, newest first.
    List {
        #[arg(long)]
        user: Option<Username>,
        /// pending, paid or expired
        #[arg(long)]
        status: Option<StatusName>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one invoice, with the exact string its description hash commits to.
    Show { payment_hash: Hash32 },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Mark a dev-backend invoice paid, as if a wallet had paid it.
    Settle { payment_hash: Hash32 },
    /// Pay a user's BOLT12 offer (their BIP-353 name) on the dev backend, as a wallet would:
    /// it becomes their paid invoice, with its webhook and notifications.
    PayOffer {
        user: Username,
        /// How much, in millisatoshis.
        #[arg(long)]
        amount_msat: u64,
        /// The payer's note, shown as the payment's comment.
        #[arg(long)]
        note: Option<String>,
    },
    /// Fill the store (no server running) with many users and real dev invoices, for
    /// benchmarks of a store after years of use.
    Populate {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long, default_value_t = 1_000_000)]
        invoices: usize,
        /// How many of the newest invoices stay pending.
        #[arg(long, default_value_t = 1000)]
        pending: usize,
        /// Of the others, one in this many was paid (the rest expired).
        #[arg(long, default_value_t = 4)]
        paid_one_in: usize,
    },
    /// Simulate weeks of unpaid callbacks against this store (sealed and pruned by the
    /// RAYO_RETENTION_* settings as a server would) and print its size each day.
    Soak {
        #[arg(long, default_value_t = 42)]
        days: u64,
        #[arg(long, default_value_t = 500)]
        per_hour: usize,
        /// One in this many is paid; the others expire unpaid.
        #[arg(long, default_value_t = 50)]
        paid_one_in: usize,
        /// Real milliseconds left to sled's background segment cleaner after each simulated day.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
    },
}
