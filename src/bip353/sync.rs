//! The DNS hosts rayo keeps BIP-353 records at (`RAYO_BIP353_SYNC`), passed over after every
//! change to the offers and every refresh; each pass's report is kept in the store.

use std::sync::Arc;
use std::time::Duration;

use super::providers::{self, Cloudflare, Desec, DnsHost, SyncReport};
use crate::clock::{Clock, Random};
use crate::config::{Bip353Config, ConfigError, Domains, SyncProvider, SyncTarget};
use crate::store::Db;

pub struct Syncer {
    db: Db,
    domains: Domains,
    hosts: Vec<(SyncTarget, Box<dyn DnsHost>)>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

fn report_key(host: &str) -> String {
    format!("bip353.sync.{host}")
}

impl Syncer {
    /// The syncer `config` asks for, or `None` when no domain is kept at a host.
    pub fn new(
        config: &Bip353Config,
        domains: Domains,
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Result<Option<Self>, ConfigError> {
        if config.sync.is_empty() {
            return Ok(None);
        }
        let setting = "RAYO_BIP353_SYNC";
        let mut hosts: Vec<(SyncTarget, Box<dyn DnsHost>)> = Vec::new();
        for target in &config.sync {
            if !domains.all().any(|d| d.host() == target.host) {
                return Err(ConfigError::new(
                    setting,
                    format!("{} is not one of this server's domains", target.host),
                ));
            }
            let host: Box<dyn DnsHost> = match &target.provider {
                SyncProvider::Desec { domain } => {
                    let token = config.desec_token.clone().ok_or_else(|| {
                        ConfigError::new(
                            setting,
                            format!("{} is kept at deSEC: set RAYO_DESEC_TOKEN", target.host),
                        )
                    })?;
                    Box::new(
                        Desec::new(&config.desec_api, token, config.host_timeout, domain)
                            .map_err(|e| ConfigError::new(setting, e))?,
                    )
                }
                SyncProvider::Cloudflare { zone_id } => {
                    let token = config.cloudflare_token.clone().ok_or_else(|| {
                        ConfigError::new(
                            setting,
                            format!(
                                "{} is kept at Cloudflare: set RAYO_CLOUDFLARE_TOKEN",
                                target.host
                            ),
                        )
                    })?;
                    Box::new(
                        Cloudflare::new(
                            &config.cloudflare_api,
                            token,
                            config.host_timeout,
                            zone_id,
                        )
                        .map_err(|e| ConfigError::new(setting, e))?,
                    )
                }
            };
            hosts.push((target.clone(), host));
        }
        Ok(Some(Self {
            db,
            domains,
            hosts,
            clock,
            random,
        }))
    }

    /// One pass over every host: what each found and did, also kept in the store.
    pub async fn pass(&self) -> Vec<SyncReport> {
        let now = self.clock.unix();
        let records = match super::publish::records(&self.db, &self.domains, now).await {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "could not read the BIP-353 records to sync");
                return Vec::new();
            }
        };
        let mut reports = Vec::new();
        for (target, host) in &self.hosts {
            let report = providers::reconcile(
                host.as_ref(),
                &target.host,
                &records,
                self.random.as_ref(),
                now,
            )
            .await;
            if let Some(error) = &report.error {
                tracing::warn!(domain = %report.domain, provider = %report.provider, %error, "could not sync the BIP-353 records; the next pass tries again");
            } else if report.drifted() {
                tracing::warn!(
                    domain = %report.domain,
                    provider = %report.provider,
                    created = ?report.created,
                    repaired = ?report.repaired,
                    removed = ?report.removed,
                    "the DNS host's BIP-353 records had drifted; repaired"
                );
            }
            let (key, value) = (
                report_key(&target.host),
                serde_json::to_vec(&report).unwrap_or_default(),
            );
            if let Err(e) = self.db.commit(move |s| s.put_meta(&key, &value)).await {
                tracing::warn!(error = %e, "could not keep the sync report");
            }
            reports.push(report);
        }
        reports
    }

    /// The last report of every host, as the store keeps them.
    pub async fn last_reports(&self) -> Vec<SyncReport> {
        let keys: Vec<String> = self
            .hosts
            .iter()
            .map(|(t, _)| report_key(&t.host))
            .collect();
        self.db
            .read(move |s| {
                let mut out = Vec::new();
                for key in &keys {
                    if let Some(bytes) = s.meta(key)? {
                        if let Ok(report) = serde_json::from_slice(&bytes) {
                            out.push(report);
                        }
                    }
                }
                Ok(out)
            })
            .await
            .unwrap_or_default()
    }

    /// Passes after every change to the offers and every `every`.
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        mut published: tokio::sync::watch::Receiver<u64>,
    ) {
        loop {
            self.pass().await;
            let _ = tokio::time::timeout(every, published.changed()).await;
        }
    }
}
