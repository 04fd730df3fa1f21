//! Digests: the payments of one period told in one message. Periods are aligned to the clock
//! (10:00–10:10, …), so every payment in one period names the same digest, and the outbox
//! queues it once however many payments (or instances) ask for it.

use serde::{Deserialize, Serialize};

use crate::domain::{
    EventKind, Hash32, InvoiceRecord, InvoiceStatus, OutboxItem, Target, Username,
};
use crate::store::{Db, InvoicePage, StoreError};

/// A digest goes out this long after its period ends: payments noticed at the last second
/// are in it.
const GRACE_SECS: u64 = 5;
/// Invoices live at most this long before they are paid: older ones are not read.
const OLDEST_INVOICE_SECS: u64 = 7 * 24 * 3600;
/// Payments read for one digest: it tells a count, a total and the first few.
const MAX_READ: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestWindow {
    pub from: u64,
    pub until: u64,
}

impl DigestWindow {
    /// The period of `minutes` that holds `now`.
    pub fn around(now: u64, minutes: u16) -> Self {
        let length = u64::from(minutes.max(1)) * 60;
        let from = now - now % length;
        Self {
            from,
            until: from + length,
        }
    }

    /// The digest for `target`, due when the period (and its grace) is over.
    pub fn item(self, target: Target, window: u64) -> OutboxItem {
        let about =
            Hash32::sha256(format!("rayo digest\0{}\0{}", self.from, self.until).as_bytes());
        let due = self.until + GRACE_SECS;
        let mut item = OutboxItem::new(
            EventKind::NotifyDigest,
            about,
            target,
            serde_json::to_string(&self).unwrap_or_default(),
            self.from,
            window,
        );
        item.next_attempt_at = due;
        item.deadline = due.saturating_add(window);
        item
    }

    /// `user`'s invoices paid in the period, newest first. Invoices are read newest first
    /// and no further back than any invoice in the period could have been made.
    pub async fn payments(
        self,
        db: &Db,
        user: &Username,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let user = user.clone();
        let oldest = self.from.saturating_sub(OLDEST_INVOICE_SECS);
        db.read(move |s| {
            let mut found = Vec::new();
            let mut before: Option<Hash32> = None;
            loop {
                let page = InvoicePage::newest(256).of(&user);
                let page = match before.as_ref() {
                    Some(hash) => page.before(hash),
                    None => page,
                };
                let records = s.invoices(page)?;
                let Some(last) = records.last() else { break };
                before = Some(last.payment_hash);
                let done = records.len() < 256 || last.created_at < oldest;
                found.extend(records.into_iter().filter(|r| {
                    matches!(r.status, InvoiceStatus::Paid(p) if p.paid_at >= self.from && p.paid_at < self.until)
                }));
                if done || found.len() >= MAX_READ {
                    break;
                }
            }
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_aligned_so_a_burst_names_one_digest() {
        let a = DigestWindow::around(1_000_000, 10);
        let b = DigestWindow::around(1_000_000 + 59, 10);
        assert_eq!(a, b);
        assert_eq!(a.until - a.from, 600);
        assert_eq!(a.from % 600, 0);
        let target = Target::Notify {
            user: Some(Username::parse("alice").unwrap()),
            channel: "telegram:1".into(),
        };
        assert_eq!(a.item(target.clone(), 60).id, b.item(target, 60).id);
    }
}
