//! Counts by day for the console's pictures: invoices made, paid and expired, sats received,
//! and webhook delivery outcomes. Read from the store itself (so every instance on a shared
//! database draws the same pictures), newest first, stopping at the window's start.

use serde::Serialize;

use crate::domain::{Delivery, InvoiceRecord, InvoiceStatus, OutboxItem};
use crate::store::{InvoicePage, Store, StoreError};

/// The pictures cover this many days, today included.
pub const DAYS: usize = 14;
const DAY: u64 = 86_400;
/// Invoices read per page, and at most in all: a server busier than this in two weeks gets
/// counts that say they are partial rather than a console that stalls.
const PAGE: usize = 2_000;
pub const MAX_SCANNED: usize = 200_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayTally {
    /// The day's start, unix seconds (UTC).
    pub day: u64,
    pub made: u64,
    pub paid: u64,
    pub expired: u64,
    pub sats: u64,
    /// Webhook and receipt attempts that were answered well, that failed, and events given up.
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

impl DayTally {
    /// `12-07`: what a chart's axis says.
    pub fn label(&self) -> String {
        let date = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.day),
        )
        .to_string();
        date.get(5..10).unwrap_or(&date).to_owned()
    }

    fn add(&mut self, other: &DayTally) {
        self.made += other.made;
        self.paid += other.paid;
        self.expired += other.expired;
        self.sats += other.sats;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead += other.dead;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tallies {
    /// Oldest first, `DAYS` of them, the last one today.
    pub days: Vec<DayTally>,
    pub today: DayTally,
    /// The last seven days, today included.
    pub week: DayTally,
    /// More invoices than `MAX_SCANNED` fell in the window: the counts are partial.
    pub partial: bool,
}

/// Which of the window's days `at` falls on, if any.
fn day_index(at: u64, first: u64) -> Option<usize> {
    let index = at.checked_sub(first)? / DAY;
    (index < DAYS as u64).then_some(index as usize)
}

/// The window's first day, for `now`.
fn first_day(now: u64) -> u64 {
    (now / DAY).saturating_sub(DAYS as u64 - 1) * DAY
}

/// Counts what `invoices` and `events` did in the window ending today.
pub fn tally<'a>(
    invoices: impl IntoIterator<Item = &'a InvoiceRecord>,
    events: impl IntoIterator<Item = &'a OutboxItem>,
    now: u64,
) -> Tallies {
    let first = first_day(now);
    let mut days: Vec<DayTally> = (0..DAYS)
        .map(|i| DayTally {
            day: first + i as u64 * DAY,
            ..DayTally::default()
        })
        .collect();
    for invoice in invoices {
        if let Some(i) = day_index(invoice.created_at, first) {
            days[i].made += 1;
        }
        match invoice.status_at(now) {
            InvoiceStatus::Paid(paid) => {
                if let Some(i) = day_index(paid.paid_at, first) {
                    days[i].paid += 1;
                    days[i].sats += paid.amount_received_msat.whole_sats();
                }
            }
            InvoiceStatus::Expired => {
                if let Some(i) = day_index(invoice.expires_at, first) {
                    days[i].expired += 1;
                }
            }
            InvoiceStatus::Pending => {}
        }
    }
    for event in events {
        for attempt in &event.log {
            if let Some(i) = day_index(attempt.at, first) {
                if attempt.outcome == "ok" {
                    days[i].delivered += 1;
                } else {
                    days[i].failed += 1;
                }
            }
        }
        if let Delivery::Dead { at } = event.delivery {
            if let Some(i) = day_index(at, first) {
                days[i].dead += 1;
            }
        }
    }
    let mut week = DayTally::default();
    for day in &days[DAYS - 7..] {
        week.add(day);
    }
    Tallies {
        today: days[DAYS - 1].clone(),
        week,
        days,
        partial: false,
    }
}

/// Reads the window's invoices and events from `store` and counts them.
pub fn read_tallies(store: &dyn Store, now: u64) -> Result<Tallies, StoreError> {
    // Invoices paid in the window were made at most a day or so before it.
    let since = first_day(now).saturating_sub(DAY);
    let mut invoices = Vec::new();
    let mut partial = false;
    loop {
        let last = invoices.last().map(|r: &InvoiceRecord| r.payment_hash);
        let page = match &last {
            Some(last) => store.invoices(InvoicePage::newest(PAGE).before(last))?,
            None => store.invoices(InvoicePage::newest(PAGE))?,
        };
        let full = page.len() == PAGE;
        let before = invoices.len();
        invoices.extend(page.into_iter().take_while(|r| r.created_at >= since));
        let ended = invoices.len() - before < PAGE;
        if invoices.len() >= MAX_SCANNED {
            partial = full;
            break;
        }
        if !full || ended {
            break;
        }
    }
    let events = store.outbox_items(
        &mut |item| item.created_at >= since || item.next_attempt_at >= since,
        usize::MAX,
    )?;
    let mut tallies = tally(&invoices, &events, now);
    tallies.partial = partial;
    Ok(tallies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Msat, PaidDetails};
    use crate::store::contract::{insert_durably, invoice};
    use crate::store::MemoryStore;

    fn made(user: &str, n: u8, at: u64) -> InvoiceRecord {
        InvoiceRecord {
            created_at: at,
            expires_at: at + 600,
            ..invoice(user, n)
        }
    }

    #[test]
    fn a_day_counts_what_was_made_paid_and_expired_on_it() {
        let now = 1_800_000_000;
        let today = now / DAY * DAY;
        let made_today = made("alice", 1, today + 10);
        let mut paid_today = made("alice", 2, today - DAY + 50);
        paid_today.status = InvoiceStatus::Paid(PaidDetails {
            paid_at: today + 20,
            preimage: None,
            amount_received_msat: Msat::from_msat(21_000),
        });
        let expired_yesterday = made("bob", 3, today - DAY);
        let too_old = made("bob", 4, today - 30 * DAY);
        let store = MemoryStore::new();
        for record in [&too_old, &expired_yesterday, &paid_today, &made_today] {
            insert_durably(&store, record).unwrap();
        }

        let tallies = read_tallies(&store, now).unwrap();
        assert_eq!(tallies.days.len(), DAYS);
        assert_eq!(tallies.today.day, today);
        assert_eq!(
            (tallies.today.made, tallies.today.paid, tallies.today.sats),
            (1, 1, 21)
        );
        let yesterday = &tallies.days[DAYS - 2];
        assert_eq!((yesterday.made, yesterday.expired), (2, 1));
        assert_eq!(tallies.week.made, 3, "the old one is outside the window");
        assert!(!tallies.partial);
        assert_eq!(tallies.today.label().len(), 5);
    }
}
