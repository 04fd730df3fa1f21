//! How long finished things are kept. Expired unpaid invoices and delivered events are worth
//! nothing after a while (a late payment to an invoice expired for a week does not happen;
//! a delivered webhook has been seen), and a stream of unpaid callbacks would otherwise grow the
//! store without bound. Paid invoices are records of money and are kept unless the operator
//! says otherwise.

use serde::{Deserialize, Serialize};

const DAY: u64 = 86_400;

/// Ages, in seconds, after which things are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Expired unpaid invoices, counted from their expiry.
    pub unpaid: u64,
    /// Paid invoices, counted from their payment; `None` keeps them forever.
    pub paid: Option<u64>,
    /// Delivered webhook and zap receipt events, counted from their delivery.
    pub events: u64,
    /// Events that were given up on, counted from then: long enough to notice and retry them.
    pub dead_letters: u64,
}

impl Retention {
    /// The rules in words (the console shows them beside what a prune would remove).
    pub fn describe(&self) -> String {
        let days = |secs: u64| format!("{} days", secs / DAY);
        format!(
            "expired unpaid invoices {} after expiry; paid invoices {}; delivered events {} after delivery; dead letters {} after giving up",
            days(self.unpaid),
            self.paid
                .map_or_else(|| "forever".to_owned(), |paid| format!("{} after payment", days(paid))),
            days(self.events),
            days(self.dead_letters)
        )
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            unpaid: 7 * DAY,
            paid: None,
            events: 30 * DAY,
            dead_letters: 90 * DAY,
        }
    }
}

/// The shortest retention an operator may set: pruning only looks at invoices in their
/// long-term form (sled seals them minutes after they finish), and a late payment reported
/// by a watcher after a reconnect must still find its invoice.
pub const SHORTEST: u64 = 3600;

impl Retention {
    /// Whether an invoice that expired unpaid at `expires_at` is gone at `now`.
    pub fn drops_unpaid(&self, expires_at: u64, now: u64) -> bool {
        expires_at.saturating_add(self.unpaid) <= now
    }

    /// Whether an invoice paid at `paid_at` is gone at `now`.
    pub fn drops_paid(&self, paid_at: u64, now: u64) -> bool {
        self.paid
            .is_some_and(|keep| paid_at.saturating_add(keep) <= now)
    }

    /// The latest delivery time of an event pruned at `now`.
    pub fn events_until(&self, now: u64) -> u64 {
        now.saturating_sub(self.events)
    }

    /// The latest time of giving up on an event pruned at `now`.
    pub fn dead_letters_until(&self, now: u64) -> u64 {
        now.saturating_sub(self.dead_letters)
    }
}

/// What a pruning pass removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub unpaid_invoices: u64,
    pub paid_invoices: u64,
    pub events: u64,
    pub dead_letters: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.unpaid_invoices + self.paid_invoices + self.events + self.dead_letters
    }

    pub fn add(&mut self, other: Pruned) {
        self.unpaid_invoices += other.unpaid_invoices;
        self.paid_invoices += other.paid_invoices;
        self.events += other.events;
        self.dead_letters += other.dead_letters;
    }
}

/// Where a pruning pass goes on: each step does a bounded amount of work and says where the
/// next starts, so a pass over millions of records never holds the writer for long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneCursor {
    pub(crate) phase: u8,
    pub(crate) key: Vec<u8>,
}

/// One step of a pruning pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneStep {
    pub pruned: Pruned,
    /// `None`: the pass is complete.
    pub next: Option<PruneCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaid_invoices_go_a_week_after_expiry_and_paid_ones_stay_by_default() {
        let rules = Retention::default();
        let expired = 1_000_000;
        assert!(!rules.drops_unpaid(expired, expired + 7 * DAY - 1));
        assert!(rules.drops_unpaid(expired, expired + 7 * DAY));
        assert!(!rules.drops_paid(expired, u64::MAX));
        let keep_a_year = Retention {
            paid: Some(365 * DAY),
            ..rules
        };
        assert!(keep_a_year.drops_paid(expired, expired + 365 * DAY));
    }

    #[test]
    fn times_near_the_ends_of_the_clock_do_not_overflow() {
        let rules = Retention {
            paid: Some(u64::MAX),
            ..Retention::default()
        };
        assert!(!rules.drops_unpaid(u64::MAX, u64::MAX - 1));
        assert!(!rules.drops_paid(u64::MAX - 5, u64::MAX - 1));
        assert_eq!(rules.events_until(5), 0);
    }
}
