//! What the operator console shows, gathered from the services the CLI and the admin API
//! use: no HTTP here, and nothing the console changes that they could not. The overview is
//! read fresh (a little cached: every open console asks again when a payment arrives).

pub mod alerts;
pub mod latency;
pub mod tallies;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::HealthEntry;
use crate::prices::CurrencyReport;
use crate::services::Services;
use crate::store::{ClusterView, Pruned, StoreError};

pub use latency::{LatencySample, LatencyTrail};
pub use tallies::{DayTally, Tallies, DAYS};

/// Counts for the live overview are at most this old...
const TALLIES_FRESH: Duration = Duration::from_secs(2);
/// ...and, once an invoice became final, this old: a flood of payments costs a count this
/// often at most, however many consoles are open.
const TALLIES_AFTER_CHANGE: Duration = Duration::from_millis(500);
/// What a prune would remove, and the store's size, at most this old: both read everything.
const UPKEEP_FRESH: Duration = Duration::from_secs(60);

/// What the console keeps beside the services: since when this instance runs, its latency
/// samples, and the overview's caches.
pub struct ConsoleState {
    pub started_at: u64,
    started: Instant,
    pub latency: LatencyTrail,
    tallies: Mutex<Option<Cached>>,
    upkeep: Mutex<Option<(Instant, Upkeep)>>,
}

/// The counts as last read, when, and whether an invoice became final since.
struct Cached {
    at: Instant,
    tallies: Tallies,
    counts: Counts,
    changed: bool,
}

/// How many events wait for delivery, and how many were given up.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub backlog: u64,
    pub dead_letters: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Upkeep {
    pub store_bytes: Option<u64>,
    pub prunable: Pruned,
}

/// One backend's health as the overview lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRow {
    pub name: String,
    /// `configured`, or `wallet` (a person's own).
    pub kind: &'static str,
    /// `None`: not spoken to since this instance started.
    pub last: Option<HealthEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub version: &'static str,
    pub started_at: u64,
    pub uptime_secs: u64,
    pub backends: Vec<HealthRow>,
    pub tallies: Tallies,
    pub counts: Counts,
    pub prices: Vec<CurrencyReport>,
    pub upkeep: Upkeep,
    pub cluster: Option<ClusterView>,
    pub latency: Vec<LatencySample>,
}

impl ConsoleState {
    pub fn new(now: u64) -> Self {
        Self {
            started_at: now,
            started: Instant::now(),
            latency: LatencyTrail::default(),
            tallies: Mutex::new(None),
            upkeep: Mutex::new(None),
        }
    }

    /// The counts by day, and the outbox's backlog and dead letters.
    pub async fn tallies(&self, services: &Services) -> Result<(Tallies, Counts), StoreError> {
        if let Some(cached) = &*self.tallies.lock().unwrap_or_else(|p| p.into_inner()) {
            let fresh = if cached.changed {
                TALLIES_AFTER_CHANGE
            } else {
                TALLIES_FRESH
            };
            if cached.at.elapsed() < fresh {
                return Ok((cached.tallies.clone(), cached.counts));
            }
        }
        let now = services.clock.unix();
        let (tallies, counts) = services
            .db
            .read(move |store| {
                let tallies = tallies::read_tallies(store, now)?;
                Ok((tallies, count_outbox(store)?))
            })
            .await?;
        *self.tallies.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            at: Instant::now(),
            tallies: tallies.clone(),
            counts,
            changed: false,
        });
        Ok((tallies, counts))
    }

    /// The outbox's counts as they are now (a page that lists the events shows these).
    pub async fn counts_now(&self, services: &Services) -> Result<Counts, StoreError> {
        services.db.read(count_outbox).await
    }

    async fn upkeep(&self, services: &Services) -> Result<Upkeep, StoreError> {
        if let Some((at, upkeep)) = &*self.upkeep.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < UPKEEP_FRESH {
                return Ok(upkeep.clone());
            }
        }
        let store_bytes = services.db.read(|s| s.size_on_disk()).await?;
        let prunable = services.operator.prune(true).await.map_err(|e| match e {
            crate::operator::OperatorError::Store(e) => e,
            other => StoreError::Io(other.to_string()),
        })?;
        let upkeep = Upkeep {
            store_bytes,
            prunable,
        };
        *self.upkeep.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), upkeep.clone()));
        Ok(upkeep)
    }

    /// An invoice became final: the counts are read again once they are half a second old.
    pub fn tallies_changed(&self) {
        if let Some(cached) = &mut *self.tallies.lock().unwrap_or_else(|p| p.into_inner()) {
            cached.changed = true;
        }
    }

    /// Forgets the cached upkeep figures (after a prune).
    pub fn upkeep_changed(&self) {
        *self.upkeep.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub async fn overview(&self, services: &Services) -> Result<Overview, StoreError> {
        let (tallies, counts) = self.tallies(services).await?;
        let upkeep = self.upkeep(services).await?;
        let cluster = services.db.cluster().await?;
        let seen = services.metrics.health.snapshot();
        let mut backends: Vec<HealthRow> = services
            .backends()
            .iter()
            .map(|(name, _)| HealthRow {
                name: name.to_string(),
                kind: "configured",
                last: seen
                    .iter()
                    .find(|(seen, _)| seen == name.as_str())
                    .map(|(_, entry)| entry.clone()),
            })
            .collect();
        backends.extend(
            seen.iter()
                .filter(|(name, _)| name.starts_with("wallet of "))
                .map(|(name, entry)| HealthRow {
                    name: name.clone(),
                    kind: "wallet",
                    last: Some(entry.clone()),
                }),
        );
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION"),
            started_at: self.started_at,
            uptime_secs: self.started.elapsed().as_secs(),
            backends,
            tallies,
            counts,
            prices: services.prices.report(),
            upkeep,
            cluster,
            latency: self.latency.samples(),
        })
    }
}

fn count_outbox(store: &dyn crate::store::Store) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    store.outbox_items(
        &mut |item| {
            match item.delivery {
                crate::domain::Delivery::Pending => counts.backlog += 1,
                crate::domain::Delivery::Dead { .. } => counts.dead_letters += 1,
                crate::domain::Delivery::Delivered { .. } => {}
            }
            false
        },
        usize::MAX,
    )?;
    Ok(counts)
}

/// How often the callback's latency is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// Samples the callback's latency every minute, for as long as the server runs.
pub async fn sample_latency(
    console: std::sync::Arc<ConsoleState>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    // The first tick is at once: a baseline, so the first minute shows.
    every.tick().await;
    console.latency.sample(&metrics.render(), clock.unix());
    loop {
        every.tick().await;
        console.latency.sample(&metrics.render(), clock.unix());
    }
}
