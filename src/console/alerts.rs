//! Alerts for the operator (`RAYO_OPERATOR_NOTIFY`): what the console shows, watched once a
//! minute, and told through the operator's channels when it goes wrong, and again when it is
//! right. Each incident is one outbox event, named by what and since when, so it is sent once.
//!
//! Watched: a configured backend failing for longer than `backend_down`; a person's own
//! wallet failing for longer than `wallet_down`; dead letters at `dead_letters` or more; a
//! currency without a usable price; the data directory's disk with less than
//! `disk_free_percent` free.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::AlertRules;
use crate::domain::{EventKind, Hash32, OutboxItem, Target};
use crate::services::Services;

/// Something wrong, as found in one look.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    /// What it is about, stable while it lasts: `backend lnd`, `price USD`.
    key: String,
    what: String,
    details: String,
}

/// An incident still open: when it was first found, and what was said.
#[derive(Debug, Clone)]
struct Open {
    since: u64,
    what: String,
}

/// Watches for as long as the server runs. `probe` asks the backends (the readiness check), so
/// a backend is watched even when nobody pays.
pub async fn watch_forever<P, Fut>(
    services: Arc<Services>,
    console: Arc<super::ConsoleState>,
    rules: AlertRules,
    probe: P,
) where
    P: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let mut every = tokio::time::interval(rules.every.max(Duration::from_secs(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        probe().await;
        let now = services.clock.unix();
        let found = look(&services, &console, &rules, now).await;
        let mut items = Vec::new();
        for finding in &found {
            if !open.contains_key(&finding.key) {
                let since = now;
                items.extend(alert(
                    &services,
                    &finding.key,
                    since,
                    "opened",
                    &finding.what,
                    &finding.details,
                ));
                open.insert(
                    finding.key.clone(),
                    Open {
                        since,
                        what: finding.what.clone(),
                    },
                );
            }
        }
        let cleared: Vec<String> = open
            .keys()
            .filter(|key| !found.iter().any(|f| &f.key == *key))
            .cloned()
            .collect();
        for key in cleared {
            if let Some(was) = open.remove(&key) {
                let what = format!("resolved: {}", was.what);
                let details = format!(
                    "It went wrong at {} and is right again at {}.",
                    crate::clock::when(was.since),
                    crate::clock::when(now)
                );
                items.extend(alert(
                    &services, &key, was.since, "resolved", &what, &details,
                ));
            }
        }
        if items.is_empty() {
            continue;
        }
        match services.notifier.queue(items).await {
            Ok(queued) => {
                services.metrics.outbox_backlog.inc_by(queued as i64);
                services.ledger.outbox_wake().notify_one();
            }
            Err(e) => tracing::error!(error = %e, "could not queue an operator alert"),
        }
    }
}

/// One alert to each of the operator's channels.
fn alert(
    services: &Services,
    key: &str,
    since: u64,
    phase: &str,
    what: &str,
    details: &str,
) -> Vec<OutboxItem> {
    let about = Hash32::sha256(format!("rayo alert\0{key}\0{since}\0{phase}").as_bytes());
    let link = format!(
        "{}/admin/",
        services
            .settings
            .console_url_for(services.settings.admin_bind)
            .base()
    );
    let message = services.notifier.composer().alert(what, details, &link);
    let body = serde_json::to_string(&message).unwrap_or_default();
    let now = services.clock.unix();
    services
        .notifier
        .operator_channels()
        .iter()
        .map(|channel| {
            OutboxItem::new(
                EventKind::NotifyAlert,
                about,
                Target::Notify {
                    user: None,
                    channel: channel.key(),
                },
                body.clone(),
                now,
                services.settings.webhook_window.as_secs(),
            )
        })
        .collect()
}

async fn look(
    services: &Services,
    console: &super::ConsoleState,
    rules: &AlertRules,
    now: u64,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for (name, entry) in services.metrics.health.snapshot() {
        let Some(since) = entry.failing_since else {
            continue;
        };
        let (limit, what) = match name.strip_prefix("wallet of ") {
            Some(person) => (
                rules.wallet_down,
                format!("{person}'s own wallet is unreachable"),
            ),
            None => (rules.backend_down, format!("backend {name} is down")),
        };
        if now.saturating_sub(since) >= limit.as_secs() {
            found.push(Finding {
                key: format!("health {name}"),
                what,
                details: format!(
                    "Failing since {}: {}",
                    crate::clock::when(since),
                    entry.error.unwrap_or_default()
                ),
            });
        }
    }
    match console.counts_now(services).await {
        Ok(counts) if counts.dead_letters >= rules.dead_letters => found.push(Finding {
            key: "dead letters".into(),
            what: format!("{} dead letters", counts.dead_letters),
            details: format!(
                "{} events were given up after their delivery window. The console's Deliveries page shows why, and redelivers them.",
                counts.dead_letters
            ),
        }),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "alerts: could not count the outbox"),
    }
    for currency in services.prices.currencies() {
        if let Err(e) = services.prices.rate(currency.code) {
            found.push(Finding {
                key: format!("price {}", currency.code),
                what: format!("no usable price for {}", currency.code),
                details: e.to_string(),
            });
        }
    }
    if let Some(free) = free_percent(&services.settings.data_dir) {
        if free < f64::from(rules.disk_free_percent) {
            found.push(Finding {
                key: "disk".into(),
                what: format!("the data directory's disk is {:.0}% free", free),
                details: format!(
                    "{} is on a disk with {:.1}% free. The store stops taking writes when it is full: prune (the console's Maintenance page) or grow the disk.",
                    services.settings.data_dir.display(),
                    free
                ),
            });
        }
    }
    found
}

/// How much of the disk holding `path` is free for rayo, in percent.
fn free_percent(path: &std::path::Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct of the right type.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 || stats.f_blocks == 0 {
        return None;
    }
    Some(stats.f_bavail as f64 / stats.f_blocks as f64 * 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_free_share_of_a_real_disk_is_a_percentage() {
        let free = super::free_percent(std::path::Path::new(".")).unwrap();
        assert!((0.0..=100.0).contains(&free), "{free}");
        assert!(super::free_percent(std::path::Path::new("/no/such/dir")).is_none());
    }
}
