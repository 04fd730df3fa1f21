//! The operator's view of BIP-353 names: the records to publish, the zones' delegation and
//! keys, and (on the dev backend) a simulated payment to an address's offer.

use serde::{Deserialize, Serialize};

use super::{no_user, Operator, OperatorError};
use crate::bip353::keys::Rollover;
use crate::bip353::publish::{self, Delegation};
use crate::bip353::Bip353Record;
use crate::domain::{Msat, Username};
use crate::invoices::OperatorInvoiceView;

/// Every published record, and the addresses left LNURL-only with the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordsView {
    pub records: Vec<Bip353Record>,
    pub lnurl_only: Vec<LnurlOnly>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LnurlOnly {
    pub user: String,
    pub reason: String,
}

impl Operator {
    /// The records, after bringing every offer up to date.
    pub async fn bip353_records(&self) -> Result<RecordsView, OperatorError> {
        let report = self.offers.pass().await?;
        for (user, why) in &report.failed {
            tracing::warn!(%user, error = %why, "could not make the address's offer");
        }
        let records = publish::records(&self.db, &self.domains, self.clock.unix()).await?;
        let mut lnurl_only: Vec<LnurlOnly> = report
            .lnurl_only
            .into_iter()
            .chain(report.failed)
            .map(|(user, reason)| LnurlOnly {
                user: user.to_string(),
                reason,
            })
            .collect();
        lnurl_only.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(RecordsView {
            records,
            lnurl_only,
        })
    }

    /// Each zone's NS and DS records for the parent, and its keys (made if missing).
    pub async fn bip353_delegations(&self) -> Result<Vec<Delegation>, OperatorError> {
        Ok(publish::delegations(
            &self.db,
            &self.domains,
            &self.nameservers,
            self.clock.unix(),
        )
        .await?)
    }

    /// A step of a key rollover, for every zone; answers the delegations as they now are.
    pub async fn bip353_rollover(&self, step: Rollover) -> Result<Vec<Delegation>, OperatorError> {
        publish::roll(&self.db, &self.domains, step, self.clock.unix())
            .await
            .map_err(OperatorError::Conflict)?;
        tracing::info!(?step, "BIP-353 zone keys rolled");
        self.bip353_delegations().await
    }

    /// The DNS hosts' sync reports: the last ones, or (`now`) a pass run now.
    pub async fn bip353_sync(
        &self,
        now: bool,
    ) -> Result<Vec<crate::bip353::providers::SyncReport>, OperatorError> {
        let Some(syncer) = &self.syncer else {
            return Err(OperatorError::Conflict(
                "no domain's records are kept at a DNS host (RAYO_BIP353_SYNC)".into(),
            ));
        };
        if now {
            self.offers.pass().await?;
            Ok(syncer.pass().await)
        } else {
            Ok(syncer.last_reports().await)
        }
    }

    /// Why `name` is payable by LNURL only, if it is; `None`: it has a BIP-353 name.
    pub async fn lnurl_only_because(
        &self,
        name: &Username,
    ) -> Result<Option<String>, OperatorError> {
        let found = name.clone();
        let user = self
            .db
            .point(move |s| s.user(&found))
            .await?
            .ok_or_else(|| no_user(name))?;
        Ok(self.offers.lnurl_only_because(&user))
    }

    /// Pays `name`'s offer on the dev backend, as a wallet would have: the payment becomes
    /// their paid invoice, with its webhook and notifications.
    pub async fn dev_pay_offer(
        &self,
        name: &Username,
        amount: Msat,
        note: Option<String>,
    ) -> Result<OperatorInvoiceView, OperatorError> {
        let found = name.clone();
        let (user, offer) = self
            .db
            .point(move |s| Ok((s.user(&found)?, crate::offers::stored(s, &found)?)))
            .await?;
        if user.is_none() {
            return Err(no_user(name));
        }
        let offer = offer.ok_or_else(|| {
            OperatorError::Conflict(format!(
                "{name} has no BOLT12 offer (yet): `rayo bip353 records` says why"
            ))
        })?;
        if offer.backend_kind != "dev" {
            return Err(OperatorError::Conflict(format!(
                "{name}'s offer was made by the '{}' backend ({}); only dev offers can be paid by hand",
                offer.backend, offer.backend_kind
            )));
        }
        let payment = self
            .dev
            .simulate_offer_payment(&offer.offer, amount, note)
            .map_err(|e| OperatorError::Invalid(e.to_string()))?;
        let record = crate::offers::record_offer_payment(
            &self.db,
            &self.ledger,
            payment,
            &offer.backend,
            "dev",
        )
        .await?
        .ok_or_else(|| OperatorError::Conflict("the offer has no owner any more".into()))?;
        tracing::info!(user = %name, payment_hash = %record.payment_hash, "dev offer paid by hand");
        Ok(OperatorInvoiceView::for_operators(
            &record,
            self.clock.unix(),
            None,
        ))
    }
}
