//! Outbox events (webhooks and zap receipts) as operators see them, and retrying one.

use super::{Operator, OperatorError, WebhookQuery, WebhookView};
use crate::domain::{Delivery, DeliveryName, EventId};

impl Operator {
    pub async fn webhooks(&self, query: WebhookQuery) -> Result<Vec<WebhookView>, OperatorError> {
        let limit = query.limit().get();
        let WebhookQuery { state, invoice, .. } = query;
        let items = self
            .db
            .read(move |s| {
                s.outbox_items(
                    &mut |i| {
                        state.is_none_or(|w| DeliveryName::of(&i.delivery) == w)
                            && invoice.is_none_or(|h| i.payment_hash == h)
                    },
                    limit,
                )
            })
            .await?;
        Ok(items.iter().map(|i| WebhookView::of(i, false)).collect())
    }

    pub async fn webhook(&self, id: &EventId) -> Result<WebhookView, OperatorError> {
        let id = *id;
        let item = self
            .db
            .point(move |s| s.outbox_item(&id))
            .await?
            .ok_or_else(|| OperatorError::NotFound(format!("no event {id}")))?;
        Ok(WebhookView::of(&item, true))
    }

    /// Sends an event again now, with a fresh delivery window: for dead-lettered events once
    /// the receiver is fixed, or to hurry a pending one.
    pub async fn retry_webhook(&self, id: &EventId) -> Result<WebhookView, OperatorError> {
        let id = *id;
        let now = self.clock.unix();
        let window = self.ledger.delivery_window().as_secs();
        let (item, requeued) = self
            .db
            .commit(move |s| {
                let Some(mut item) = s.outbox_item(&id)? else {
                    return Ok(None);
                };
                let requeued = item.delivery != Delivery::Pending;
                item.delivery = Delivery::Pending;
                item.next_attempt_at = now;
                item.deadline = now.saturating_add(window);
                s.put_outbox_item(&item)?;
                Ok(Some((item, requeued)))
            })
            .await?
            .ok_or_else(|| OperatorError::NotFound(format!("no event {id}")))?;
        if requeued {
            self.ledger.metrics().outbox_backlog.inc();
        }
        self.ledger.outbox_wake().notify_one();
        Ok(WebhookView::of(&item, true))
    }
}
