//! Invoices as operators see them, and the dev backend's "paid" button.

use super::{no_invoice, Operator, OperatorError};
use crate::domain::{Hash32, InvoiceStatus, PaidDetails};
use crate::invoices::lookup::{self, Viewer};
use crate::invoices::{InvoiceQuery, OperatorInvoiceView};
use crate::store::StoreError;

impl Operator {
    pub async fn invoices(
        &self,
        query: InvoiceQuery,
    ) -> Result<Vec<OperatorInvoiceView>, OperatorError> {
        let now = self.clock.unix();
        let records = query.run(&self.db, now).await.map_err(|e| match e {
            StoreError::NotFound(_) => OperatorError::Invalid("cursor: no such invoice".into()),
            other => other.into(),
        })?;
        Ok(records
            .iter()
            .map(|r| OperatorInvoiceView::for_operators(r, now, None))
            .collect())
    }

    /// One invoice, with the exact string its description hash commits to.
    pub async fn invoice(&self, hash: &Hash32) -> Result<OperatorInvoiceView, OperatorError> {
        let wanted = *hash;
        let (record, metadata) = self
            .db
            .point(move |s| {
                let Some(record) = s.invoice(&wanted)? else {
                    return Ok(None);
                };
                let metadata = match record.described_by.metadata_hash() {
                    Some(metadata_hash) => s.metadata(&metadata_hash)?,
                    None => None,
                };
                Ok(Some((record, metadata)))
            })
            .await?
            .ok_or_else(|| no_invoice(hash))?;
        let hashed = match metadata {
            Some(m) => Some(format!(
                "{m}{}",
                record.described_by.payer_data().unwrap_or("")
            )),
            None => record.described_by.zap_request().map(str::to_owned),
        };
        Ok(OperatorInvoiceView::for_operators(
            &record,
            self.clock.unix(),
            hashed,
        ))
    }

    /// Marks a dev-backend invoice paid, with the preimage only the dev backend can derive.
    /// No money moves: this exists so every flow can be tried without a node.
    pub async fn dev_settle(&self, hash: &Hash32) -> Result<OperatorInvoiceView, OperatorError> {
        let record = lookup::find(&self.db, hash, Viewer::Anyone)
            .await?
            .ok_or_else(|| no_invoice(hash))?;
        let now = self.clock.unix();
        if record.paid().is_some() {
            return Ok(OperatorInvoiceView::for_operators(&record, now, None));
        }
        // Records from before backends had names carry the kind in `backend`.
        let kind = if record.backend_kind.is_empty() {
            record.backend.as_str()
        } else {
            record.backend_kind.as_str()
        };
        if kind != "dev" {
            return Err(OperatorError::Conflict(format!(
                "invoice {hash} was made by the '{}' backend ({kind}); only dev invoices can be settled by hand",
                record.backend
            )));
        }
        if record.status_at(now) == InvoiceStatus::Expired {
            return Err(OperatorError::Conflict(format!(
                "invoice {hash} has expired"
            )));
        }
        let preimage = self.dev.preimage_for(&record.bolt11).ok_or_else(|| {
            OperatorError::Conflict(format!(
                "invoice {hash} was not made by this server's dev node key"
            ))
        })?;
        let paid = InvoiceStatus::Paid(PaidDetails {
            paid_at: now,
            preimage: Some(preimage),
            amount_received_msat: record.amount_msat,
        });
        // Through the ledger, like any backend's payment: webhooks and live views follow.
        self.ledger.record(vec![(*hash, paid)], None).await?;
        tracing::info!(payment_hash = %hash, "dev invoice settled by hand");
        let stored = lookup::find(&self.db, hash, Viewer::Anyone)
            .await?
            .ok_or_else(|| no_invoice(hash))?;
        Ok(OperatorInvoiceView::for_operators(&stored, now, None))
    }
}
