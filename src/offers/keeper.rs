//! Keeps every address's offer in step with its user: made when a user is added or moves to
//! another backend, made again before it expires, forgotten (and disabled at the backend)
//! when the user goes, takes their own wallet, or is disabled. Each instance runs one; a
//! second instance making the same offer is harmless (backends answer the same offer for the
//! same request, and the store keeps one record per user).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{check_offer, description_for, ExpectedOffer, OfferRecord};
use crate::backends::{Backends, OfferRequest, OfferSupport};
use crate::clock::Clock;
use crate::config::Domains;
use crate::domain::{User, Username};
use crate::store::records::owner_value;
use crate::store::{Db, RecordKind, StoreError, Swap};

/// An offer is made again this long before it expires.
const RENEW_BEFORE: u64 = 7 * 24 * 3600;

pub struct Keeper {
    db: Db,
    backends: Backends,
    domains: Domains,
    clock: Arc<dyn Clock>,
    /// Poked when users change (the directory sees every change, here and elsewhere).
    wake: Arc<Notify>,
    /// Bumped after each pass that changed what is published, for the DNS zone.
    published: tokio::sync::watch::Sender<u64>,
    /// A backend that cannot make offers fails on every pass: said every ten minutes.
    failures_logged: crate::log_throttle::LogThrottle,
}

/// What a pass did, for logs and `bip353 records`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeeperReport {
    pub made: Vec<Username>,
    pub forgotten: Vec<Username>,
    /// Users left LNURL-only, and why.
    pub lnurl_only: Vec<(Username, String)>,
    /// Users whose offer could not be made this time (retried on the next pass).
    pub failed: Vec<(Username, String)>,
}

impl Keeper {
    pub fn new(
        db: Db,
        backends: Backends,
        domains: Domains,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            backends,
            domains,
            clock,
            wake,
            published: tokio::sync::watch::channel(0).0,
            failures_logged: crate::log_throttle::LogThrottle::new(Duration::from_secs(600)),
        }
    }

    /// Told after every pass that changed the stored offers.
    pub fn published(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Passes on every user change and every `every`, for as long as it runs.
    pub async fn run(self: Arc<Self>, every: Duration) {
        loop {
            match self.pass().await {
                Ok(report) if !report.failed.is_empty() => {
                    if let Some(held_back) = self.failures_logged.admit() {
                        let (user, why) = &report.failed[0];
                        tracing::warn!(
                            failing = report.failed.len(),
                            first = %user,
                            error = %why,
                            passes_not_logged = held_back,
                            "could not make some addresses' BOLT12 offers; they stay LNURL-only and are tried on every pass"
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not keep the BOLT12 offers"),
            }
            let _ = tokio::time::timeout(every, self.wake.notified()).await;
        }
    }

    /// One pass over every user.
    pub async fn pass(&self) -> Result<KeeperReport, StoreError> {
        let now = self.clock.unix();
        let (users, stored) = self
            .db
            .read(|s| Ok((s.users()?, super::all_stored(s)?)))
            .await?;
        let mut report = KeeperReport::default();
        for user in &users {
            let current = stored.iter().find(|o| o.user == user.name);
            match self.wanted(user) {
                Err(why) => {
                    if let Some(old) = current {
                        self.forget(old).await?;
                        report.forgotten.push(user.name.clone());
                    }
                    report.lnurl_only.push((user.name.clone(), why));
                }
                Ok(want) => {
                    let fresh = current.is_some_and(|o| {
                        o.backend == want.backend
                            && o.description == want.description
                            && o.expires_at.is_none_or(|at| at > now + RENEW_BEFORE)
                    });
                    if fresh {
                        continue;
                    }
                    match self.make(user, &want, now).await {
                        Ok(record) => {
                            self.store(current, &record).await?;
                            report.made.push(user.name.clone());
                        }
                        Err(why) => report.failed.push((user.name.clone(), why)),
                    }
                }
            }
        }
        for old in &stored {
            if !users.iter().any(|u| u.name == old.user) {
                self.forget(old).await?;
                report.forgotten.push(old.user.clone());
            }
        }
        if !report.made.is_empty() || !report.forgotten.is_empty() {
            self.published.send_modify(|generation| *generation += 1);
            tracing::info!(
                made = report.made.len(),
                forgotten = report.forgotten.len(),
                "BOLT12 offers updated"
            );
        }
        Ok(report)
    }

    /// Why `user`'s address is payable by LNURL only, if it is.
    pub fn lnurl_only_because(&self, user: &User) -> Option<String> {
        self.wanted(user).err()
    }

    /// The offer `user` should have, or why they have none.
    fn wanted(&self, user: &User) -> Result<Wanted, String> {
        if user.disabled {
            return Err("the address is disabled".into());
        }
        if user.nwc.is_some() {
            return Err(
                "paid into the person's own wallet (NWC), which makes no BOLT12 offers".into(),
            );
        }
        let (name, backend) = self
            .backends
            .get(user.backend.as_ref())
            .ok_or_else(|| "its backend is not configured".to_owned())?;
        if let OfferSupport::No(why) = backend.offer_support() {
            return Err(why.to_owned());
        }
        let domain = self.domains.for_user(user.domain.as_ref()).host();
        Ok(Wanted {
            backend: name.clone(),
            description: description_for(&user.name, domain),
            issuer: domain.to_owned(),
        })
    }

    async fn make(&self, user: &User, want: &Wanted, now: u64) -> Result<OfferRecord, String> {
        let Some((_, backend)) = self.backends.get(Some(&want.backend)) else {
            return Err("its backend is not configured".into());
        };
        let label = format!("rayo:{}", user.name);
        let made = backend
            .make_offer(OfferRequest {
                description: &want.description,
                issuer: &want.issuer,
                label: &label,
            })
            .await
            .map_err(|e| e.to_string())?;
        let node_id = backend.identity().await.ok().and_then(|i| i.node_id);
        let checked = check_offer(
            &made.offer,
            &ExpectedOffer {
                description: &want.description,
                issuer: &want.issuer,
                network: backend.capabilities().network.clone(),
                node_id,
            },
            now,
        )
        .map_err(|e| format!("the backend's offer was refused: {e}"))?;
        Ok(OfferRecord {
            user: user.name.clone(),
            domain: want.issuer.clone(),
            offer: checked.text,
            offer_id: checked.id,
            description: want.description.clone(),
            backend: want.backend.clone(),
            backend_kind: backend.kind().to_owned(),
            backend_ref: made.backend_ref,
            expires_at: checked.expires_at,
            made_at: now,
        })
    }

    /// Stores `record` in place of `old`, with the index its payments are attributed by.
    async fn store(
        &self,
        old: Option<&OfferRecord>,
        record: &OfferRecord,
    ) -> Result<(), StoreError> {
        let old = old.cloned();
        let record = record.clone();
        self.db
            .commit(move |s| {
                let key = record.user.as_str();
                let value =
                    serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                match s.record(RecordKind::Offer, key)? {
                    Some(bytes) => {
                        s.swap_record(Swap::replace(RecordKind::Offer, key, &bytes, &value))?
                    }
                    None => s.swap_record(Swap::create(RecordKind::Offer, key, &value))?,
                };
                if let Some(old) = old.filter(|o| o.offer_id != record.offer_id) {
                    remove(s, RecordKind::OfferOwner, &old.offer_id.to_hex())?;
                }
                let owner_key = record.offer_id.to_hex();
                let owner = owner_value(&record.user);
                match s.record(RecordKind::OfferOwner, &owner_key)? {
                    Some(bytes) if bytes == owner => {}
                    Some(bytes) => {
                        s.swap_record(Swap::replace(
                            RecordKind::OfferOwner,
                            &owner_key,
                            &bytes,
                            &owner,
                        ))?;
                    }
                    None => {
                        s.swap_record(Swap::create(RecordKind::OfferOwner, &owner_key, &owner))?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Disables the offer at its backend (best effort: an offer nobody publishes is not
    /// found by payers) and forgets it.
    async fn forget(&self, old: &OfferRecord) -> Result<(), StoreError> {
        if let (Some(reference), Some((_, backend))) =
            (&old.backend_ref, self.backends.get(Some(&old.backend)))
        {
            if let Err(e) = backend.disable_offer(reference).await {
                tracing::warn!(user = %old.user, error = %e, "could not disable the offer at the backend; it is no longer published");
            }
        }
        let old = old.clone();
        self.db
            .commit(move |s| {
                remove(s, RecordKind::Offer, old.user.as_str())?;
                remove(s, RecordKind::OfferOwner, &old.offer_id.to_hex())
            })
            .await
    }
}

struct Wanted {
    backend: crate::domain::BackendName,
    description: String,
    issuer: String,
}

fn remove(s: &dyn crate::store::Store, kind: RecordKind, key: &str) -> Result<(), StoreError> {
    if let Some(bytes) = s.record(kind, key)? {
        s.swap_record(Swap::remove(kind, key, &bytes))?;
    }
    Ok(())
}
