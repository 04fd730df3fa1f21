//! Outbox events (webhooks and zap receipts) as operators see them, and retrying one.

use super::{no_user, Operator, OperatorError, WebhookQuery, WebhookView};
use crate::domain::{Delivery, DeliveryName, EventId, Hash32, Target, Username};
use crate::store::Transitions;

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

    /// The events for `user`'s webhooks (their own, and those apps set for their invoices),
    /// newest first.
    pub async fn webhooks_of(
        &self,
        user: &Username,
        limit: usize,
    ) -> Result<Vec<WebhookView>, OperatorError> {
        let user = user.clone();
        let items = self
            .db
            .read(move |s| s.outbox_items(&mut |i| owned_by(&i.target, &user), limit))
            .await?;
        Ok(items.iter().map(|i| WebhookView::of(i, false)).collect())
    }

    /// Sends one of `user`'s events again; another's id finds nothing.
    pub async fn retry_webhook_of(
        &self,
        user: &Username,
        id: &EventId,
    ) -> Result<WebhookView, OperatorError> {
        let wanted = *id;
        let item = self.db.point(move |s| s.outbox_item(&wanted)).await?;
        if !item.is_some_and(|i| owned_by(&i.target, user)) {
            return Err(OperatorError::NotFound(format!("no event {id}")));
        }
        self.retry_webhook(id).await
    }

    /// Queues a test delivery to `user`'s own webhook.
    pub async fn test_webhook(&self, user: &Username) -> Result<WebhookView, OperatorError> {
        let name = user.clone();
        let found = self
            .db
            .point(move |s| s.user(&name))
            .await?
            .ok_or_else(|| no_user(user))?;
        let now = self.clock.unix();
        let window = self.ledger.delivery_window().as_secs();
        let nonce = Hash32(self.random.bytes32());
        let item = crate::outbox::test_event(&found, nonce, now, window)
            .ok_or_else(|| OperatorError::Invalid("set a webhook URL first".into()))?;
        let queued = item.clone();
        self.db
            .commit(move |s| s.commit_transitions(&Transitions::events(vec![queued])))
            .await?;
        self.ledger.metrics().outbox_backlog.inc();
        self.ledger.outbox_wake().notify_one();
        Ok(WebhookView::of(&item, false))
    }
}

fn owned_by(target: &Target, user: &Username) -> bool {
    target.user() == Some(user)
}
