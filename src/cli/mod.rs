//! The `rayo` command line: `serve`, and the operator commands, which talk to the running
//! server's admin API or, when none runs, open the services themselves.

mod commands;
mod console;
mod output;
mod populate;
mod soak;

use std::sync::Arc;

use crate::backends::DevBackend;
use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::config::args::{GlobalArgs, ServeArgs};
use crate::config::{BackendSettings, Settings};
use crate::domain::Username;
use crate::invoices::InvoiceQuery;
use crate::operator::WebhookQuery;
use crate::startup::Application;

pub use commands::*;
pub use console::{CliError, Console};
pub use output::printable;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let Cli { global, command } = cli;
    let json = global.json;
    match command {
        Command::Serve(args) => serve(&global, args).await,
        Command::Backend(BackendCommand::Check { backend }) => {
            backend_check(backend.into(), json).await
        }
        Command::Restore { file, force } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let backup: crate::backup::Backup = serde_json::from_slice(&bytes).map_err(|e| {
                CliError::Usage(format!("{}: not a rayo backup: {e}", file.display()))
            })?;
            let (users, invoices) = console::restore(&global, backup, force).await?;
            if !json {
                output::say!("restored {users} users and {invoices} invoices");
            }
            Ok(())
        }
        Command::Prices => {
            let settings = console::settings(&global)?;
            let currencies = if settings.currencies.is_empty() {
                crate::prices::CURRENCIES.iter().collect()
            } else {
                settings.currencies.clone()
            };
            let book = crate::prices::PriceBook::new(
                currencies,
                settings.price_sources.clone(),
                settings.price_policy.clone(),
                std::sync::Arc::new(crate::clock::SystemClock),
            );
            book.refresh(&crate::prices::client().map_err(|e| CliError::Failed(e.to_string()))?)
                .await;
            output::prices(&book.report(), book.unmet(), json);
            Ok(())
        }
        Command::Db(DbCommand::Status) => {
            let url = database_url(&global)?;
            let status = tokio::task::spawn_blocking(move || crate::store::PgStore::status(&url))
                .await
                .map_err(|e| CliError::Failed(format!("database: {e}")))?
                .map_err(|e| CliError::Failed(e.to_string()))?;
            output::db_status(&status, json);
            Ok(())
        }
        Command::Dev(DevCommand::Populate {
            users,
            invoices,
            pending,
            paid_one_in,
        }) => {
            sled_to_itself(&global, "dev populate").await?;
            let population = populate::Population {
                users: users.max(1),
                invoices,
                pending: pending.min(invoices),
                paid_one_in: paid_one_in.max(1),
            };
            populate::populate(&console::settings(&global)?, population).await
        }
        Command::Dev(DevCommand::Soak {
            days,
            per_hour,
            paid_one_in,
            settle_ms,
        }) => {
            sled_to_itself(&global, "dev soak").await?;
            let soak = soak::Soak {
                days: days.max(1),
                per_hour: per_hour.max(1),
                paid_one_in: paid_one_in.max(1),
                settle_ms,
            };
            soak::soak(&console::settings(&global)?, soak).await
        }
        command => operate(&global, command).await,
    }
}

async fn bip353(
    global: &GlobalArgs,
    console: &Console,
    command: Bip353Command,
    json: bool,
) -> Result<(), CliError> {
    use crate::bip353::keys::Rollover;
    match command {
        Bip353Command::Records { format } => {
            output::bip353_records(&console.bip353_records().await?, format, json)
        }
        Bip353Command::Ds => output::delegations(&console.bip353_delegations().await?, json),
        Bip353Command::Sync { now } => {
            let reports = console.bip353_sync(now).await?;
            output::sync_reports(&reports, json);
            if reports.iter().any(|r| r.error.is_some()) {
                return Err(CliError::Failed("a DNS host could not be synced".into()));
            }
        }
        Bip353Command::Rollover { step } => {
            let step = match step {
                RolloverStep::Start => Rollover::Start,
                RolloverStep::Finish => Rollover::Finish,
            };
            let keys = console.bip353_rollover(step).await?;
            if !json {
                output::say!(
                    "{}",
                    match step {
                        Rollover::Start => "a new key is published beside the old one and signs the key set; give the parent zone the new DS record below, wait until the old DS has expired from caches (its TTL, at least a day), then run `rayo bip353 rollover finish`",
                        Rollover::Finish => "the new key now signs everything and the old one is retired; remove the old DS record from the parent zone",
                    }
                );
            }
            output::delegations(&keys, json);
        }
        Bip353Command::Check { user, server } => {
            let records = console.bip353_records().await?;
            let delegations = console.bip353_delegations().await?;
            let report = bip353_check(global, &user, server, &records, &delegations).await?;
            output::bip353_check(&report, json);
            if !report.ok {
                return Err(CliError::Failed(format!("₿{user}: the check failed")));
            }
        }
    }
    Ok(())
}

/// Checks `user`'s name against `server` (or this configuration's DNS server, or the
/// system's resolver).
async fn bip353_check(
    global: &GlobalArgs,
    user: &Username,
    server: Option<std::net::SocketAddr>,
    records: &crate::operator::RecordsView,
    delegations: &[crate::bip353::publish::Delegation],
) -> Result<crate::bip353::check::CheckReport, CliError> {
    use hickory_proto::dnssec::rdata::DNSKEY;
    use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
    let address = records.records.iter().find(|r| {
        r.address
            .strip_prefix('₿')
            .and_then(|a| a.split_once('@'))
            .map(|(u, _)| u)
            == Some(user.as_str())
    });
    let Some(record) = address else {
        let why = records
            .lnurl_only
            .iter()
            .find(|l| l.user == user.as_str())
            .map(|l| l.reason.clone())
            .unwrap_or_else(|| "no such user, or no offer yet".into());
        return Err(CliError::Failed(format!(
            "{user} has no BIP-353 name: {why}"
        )));
    };
    let name = hickory_proto::rr::Name::from_ascii(&record.name)
        .map_err(|e| CliError::Failed(format!("{}: {e}", record.name)))?;
    let dnskeys = delegations
        .iter()
        .filter(|d| record.name.ends_with(&format!("{}.", d.zone)))
        .flat_map(|d| d.dnskeys.iter())
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|b64| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .map(|bytes| {
            DNSKEY::new(
                true,
                true,
                false,
                PublicKeyBuf::new(bytes, Algorithm::ECDSAP256SHA256),
            )
        })
        .collect();
    let server = match server {
        Some(server) => server,
        None => default_dns_server(global)?,
    };
    let expected = crate::bip353::check::Expectation {
        dnskeys,
        uri: Some(record.uri.clone()),
    };
    let now = SystemClock.unix();
    Ok(crate::bip353::check::check(&name, server, &expected, now).await)
}

/// RAYO_DNS_BIND (on loopback when it names every address), else the first name server of
/// /etc/resolv.conf.
fn default_dns_server(global: &GlobalArgs) -> Result<std::net::SocketAddr, CliError> {
    let settings = console::settings(global)?;
    if let Some(mut bind) = settings.bip353.dns_bind {
        if bind.ip().is_unspecified() {
            bind.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        return Ok(bind);
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| CliError::Usage("no DNS server to ask: give --server".into()))
}

/// The commands that go through the admin API, or the services opened here.
async fn operate(global: &GlobalArgs, command: Command) -> Result<(), CliError> {
    let console = Console::connect(global).await?;
    let json = global.json;
    match command {
        Command::User(cmd) => user(&console, cmd, json).await?,
        Command::Invoice(InvoiceCommand::List {
            user,
            status,
            limit,
        }) => {
            let query = InvoiceQuery {
                user,
                status,
                limit: Some(limit),
                ..InvoiceQuery::default()
            };
            output::invoices(&console.invoices(query).await?, json);
        }
        Command::Invoice(InvoiceCommand::Show { payment_hash }) => {
            output::invoice(&console.invoice(&payment_hash).await?, json)
        }
        Command::Dev(DevCommand::Settle { payment_hash }) => {
            output::invoice(&console.dev_settle(&payment_hash).await?, json)
        }
        Command::Dev(DevCommand::PayOffer {
            user,
            amount_msat,
            note,
        }) => output::invoice(
            &console.dev_pay_offer(&user, amount_msat, note).await?,
            json,
        ),
        Command::Bip353(command) => bip353(global, &console, command, json).await?,
        Command::Webhook(WebhookCommand::List {
            state,
            invoice,
            limit,
        }) => {
            let query = WebhookQuery {
                state,
                invoice,
                limit: Some(limit),
            };
            output::webhooks(&console.webhooks(query).await?, json)
        }
        Command::Webhook(WebhookCommand::Show { id }) => {
            output::webhook(&console.webhook(&id).await?, json)
        }
        Command::Webhook(WebhookCommand::Retry { id }) => {
            output::webhook(&console.retry_webhook(&id).await?, json)
        }
        Command::Invite(command) => invite(&console, command, json).await?,
        Command::Operator(OperatorCommand::Invite { expires }) => {
            let invite = console.operator_invite(expires.as_secs()).await?;
            output::operator_invite(&invite, json);
        }
        Command::Audit { limit } => output::audit(&console.audit_log(limit).await?, json),
        Command::Nostr(NostrCommand::Show) => output::nostr(&console.nostr().await?, json),
        Command::Nostr(NostrCommand::RotateKey) => {
            output::nostr(&console.rotate_nostr_key().await?, json)
        }
        Command::Prune { dry_run } => output::pruned(&console.prune(dry_run).await?, dry_run, json),
        Command::Backup { file } => {
            let backup = console.backup().await?;
            let bytes = serde_json::to_vec_pretty(&backup)
                .map_err(|e| CliError::Failed(format!("backup: {e}")))?;
            crate::data_dir::write_private(&file, &bytes)
                .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
            if !json {
                output::say!(
                    "wrote {} users and {} invoices to {} (it holds secrets: keep it private)",
                    backup.users.len(),
                    backup.invoices.len(),
                    file.display()
                );
            }
        }
        Command::Serve(_)
        | Command::Backend(_)
        | Command::Restore { .. }
        | Command::Dev(DevCommand::Populate { .. })
        | Command::Dev(DevCommand::Soak { .. })
        | Command::Db(_)
        | Command::Prices => {}
    }
    Ok(())
}

/// The dev tools that write a sled store directly need it to themselves.
async fn sled_to_itself(global: &GlobalArgs, command: &str) -> Result<(), CliError> {
    if global.database_url.is_some() {
        return Err(CliError::Usage(format!(
            "{command} works on a sled store: unset RAYO_DATABASE_URL"
        )));
    }
    if console::server_answers(global).await {
        return Err(CliError::Failed(
            "a server is running on this data directory: stop it first".into(),
        ));
    }
    Ok(())
}

/// `RAYO_DATABASE_URL`, which the command needs.
fn database_url(global: &GlobalArgs) -> Result<String, CliError> {
    global
        .database_url
        .as_ref()
        .map(|url| url.expose().to_owned())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "RAYO_DATABASE_URL is not set: the store is sled, in {}",
                global.data_dir.join("store").display()
            ))
        })
}

async fn serve(global: &GlobalArgs, args: ServeArgs) -> Result<(), CliError> {
    let settings = Settings::from_args(global, args)?;
    crate::telemetry::init(settings.log_format, &settings.log_filter);
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
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    // The real dev key lives in the store; a throwaway one exercises the same signing path.
    let dev = Arc::new(DevBackend::from_seed(
        &random.bytes32(),
        clock.clone(),
        random.clone(),
    ));
    let relays = crate::backends::RelayPool::new(crate::net::Reach::Anywhere);
    let backend = crate::backends::build(&settings, dev, None, &relays)?;
    let report =
        crate::operator::check_backend(backend.as_ref(), clock.now(), random.as_ref()).await;
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

async fn user(console: &Console, cmd: UserCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        UserCommand::Add { name, settings } => {
            let name =
                Username::parse_new(&name).map_err(|e| CliError::Usage(format!("name: {e}")))?;
            let view = console.add_user(name, settings.into_settings()?).await?;
            output::user(&view, json);
        }
        UserCommand::List => output::users(&console.users().await?, json),
        UserCommand::Show { name } => output::user(&console.user(&name).await?, json),
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
            output::user(&console.update_user(name, settings).await?, json);
        }
        UserCommand::TelegramLink { name } => {
            let code = console.telegram_link_code(&name).await?;
            if json {
                output::json(&code);
            } else {
                output::say!("give {name} this link (it works once, for 15 minutes):\n  {}\nor have them send @{} the message:\n  /start {}", code.link, code.bot, code.code);
            }
        }
        UserCommand::NotifyTest { name, channel } => {
            let channel = channel.map(|c| rayo_channel_key(&c)).transpose()?;
            let queued = console.notify_test(&name, channel.as_deref()).await?;
            if !json {
                output::say!("queued {queued} test message(s) for {name}; `rayo webhook list` shows how they went");
            }
        }
        UserCommand::Remove { name } => {
            console.remove_user(&name).await?;
            if !json {
                output::say!("removed {name} (their invoices are kept)");
            }
        }
        UserCommand::ApiKey(ApiKeyCommand::Create { user }) => {
            output::api_key_created(&console.create_api_key(&user).await?, json)
        }
        UserCommand::ApiKey(ApiKeyCommand::List { user }) => {
            output::api_keys(&console.api_keys(user.as_ref()).await?, json)
        }
        UserCommand::ApiKey(ApiKeyCommand::Revoke { id }) => {
            output::api_keys(&[console.revoke_api_key(&id).await?], json)
        }
    }
    Ok(())
}

async fn invite(console: &Console, command: InviteCommand, json: bool) -> Result<(), CliError> {
    match command {
        InviteCommand::Create {
            name,
            for_user,
            expires,
            uses,
            domain,
        } => {
            let request = crate::accounts::InviteRequest {
                name,
                for_user,
                domain,
                expires_in: Some(expires.as_secs()),
                uses: Some(uses),
            };
            output::invite_created(&console.create_invite(&request).await?, json)
        }
        InviteCommand::List => output::invites(&console.invites().await?, json),
        InviteCommand::Revoke { id } => output::invites(&[console.revoke_invite(&id).await?], json),
    }
    Ok(())
}

/// A channel as a person writes it (`nostr:npub1…`), as its key.
fn rayo_channel_key(raw: &str) -> Result<String, CliError> {
    crate::domain::Channel::parse(raw)
        .map(|c| c.key())
        .map_err(|e| CliError::Usage(e.to_string()))
}
