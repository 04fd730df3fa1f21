//! Unpaid invoices per user, and per payer of each user, kept in memory: counted from the
//! store at start, raised when an invoice is reserved, lowered when one is paid or expires, or
//! when a reservation is given back because no invoice came of it. Instances sharing a store
//! also count what the others tell them (see `cluster`): the cap holds across them, give or
//! take the invoices made in the milliseconds a notification takes.
//!
//! The per-user cap bounds what one address costs the operator. The per-payer share keeps one
//! client from holding the whole cap: with the defaults (1000 per user, a tenth of that per
//! client) ten different networks must work together to make an address unpayable, while any
//! other payer still gets an invoice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::{ClientTag, Username};

#[derive(Debug, Default)]
struct UserCounts {
    total: u32,
    by_client: HashMap<ClientTag, u32>,
}

pub struct PendingCounts {
    /// Unpaid invoices a user may have; 0: no cap.
    cap: u32,
    /// Unpaid invoices one payer may hold of one user's; 0: no limit.
    share: u32,
    users: Mutex<HashMap<Username, UserCounts>>,
}

/// Why no more unpaid invoices are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRefusal {
    /// The user has as many as the operator allows.
    User,
    /// This payer holds its whole share of them.
    Client,
}

/// A place for one unpaid invoice. Given back when dropped, unless kept (the invoice was made).
pub struct Reservation {
    counts: Arc<PendingCounts>,
    user: Username,
    tag: Option<ClientTag>,
    kept: bool,
}

impl Reservation {
    /// The invoice was made: the place stays taken until it is paid or expires.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.kept {
            self.counts.closed(&self.user, self.tag);
        }
    }
}

impl PendingCounts {
    /// `pending`: the unpaid invoices in the store, by user and (for payers' invoices) tag.
    pub fn new(
        cap: u32,
        share: u32,
        pending: impl IntoIterator<Item = (Username, Option<ClientTag>)>,
    ) -> Self {
        let mut users: HashMap<Username, UserCounts> = HashMap::new();
        for (user, tag) in pending {
            open(users.entry(user).or_default(), tag);
        }
        Self {
            cap,
            share,
            users: Mutex::new(users),
        }
    }

    fn users(&self) -> MutexGuard<'_, HashMap<Username, UserCounts>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for one more unpaid invoice of `user`, asked for by the payer `tag`
    /// (`None`: the user's own app or the operator, who are not held to a share).
    pub fn reserve(
        self: &Arc<Self>,
        user: &Username,
        tag: Option<ClientTag>,
    ) -> Result<Reservation, PendingRefusal> {
        let mut users = self.users();
        let counts = users.entry(user.clone()).or_default();
        if self.cap != 0 && counts.total >= self.cap {
            return Err(PendingRefusal::User);
        }
        if let Some(tag) = tag {
            let held = counts.by_client.get(&tag).copied().unwrap_or(0);
            if self.share != 0 && held >= self.share {
                return Err(PendingRefusal::Client);
            }
        }
        open(counts, tag);
        Ok(Reservation {
            counts: self.clone(),
            user: user.clone(),
            tag,
            kept: false,
        })
    }

    /// An unpaid invoice of `user`'s was paid or expired.
    pub fn closed(&self, user: &Username, tag: Option<ClientTag>) {
        let mut users = self.users();
        let Some(counts) = users.get_mut(user) else {
            return;
        };
        counts.total = counts.total.saturating_sub(1);
        if let Some(tag) = tag {
            if let Some(held) = counts.by_client.get_mut(&tag) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    counts.by_client.remove(&tag);
                }
            }
        }
        if counts.total == 0 {
            users.remove(user);
        }
    }

    /// Another instance on the same store made an unpaid invoice of `user`'s: it counts
    /// against the cap here too (even beyond it: it exists).
    pub fn opened_elsewhere(&self, user: &Username, tag: Option<ClientTag>) {
        open(self.users().entry(user.clone()).or_default(), tag);
    }

    /// Counts again from `pending` (the store's unpaid invoices), after changes may have been
    /// missed.
    pub fn recount(&self, pending: impl IntoIterator<Item = (Username, Option<ClientTag>)>) {
        let mut users: HashMap<Username, UserCounts> = HashMap::new();
        for (user, tag) in pending {
            open(users.entry(user).or_default(), tag);
        }
        *self.users() = users;
    }

    /// `user`'s unpaid invoices now.
    pub fn of(&self, user: &Username) -> u32 {
        self.users().get(user).map_or(0, |c| c.total)
    }
}

fn open(counts: &mut UserCounts, tag: Option<ClientTag>) {
    counts.total += 1;
    if let Some(tag) = tag {
        *counts.by_client.entry(tag).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    #[test]
    fn the_cap_counts_unpaid_invoices_per_user() {
        let (alice, bob) = (name("alice"), name("bob"));
        let counts = Arc::new(PendingCounts::new(2, 0, [(alice.clone(), None)]));
        counts.reserve(&alice, None).unwrap().keep();
        assert_eq!(
            counts.reserve(&alice, None).err(),
            Some(PendingRefusal::User)
        );
        assert!(counts.reserve(&bob, None).is_ok());
        counts.closed(&alice, None);
        assert!(counts.reserve(&alice, None).is_ok());
        let uncapped = Arc::new(PendingCounts::new(0, 0, [(alice.clone(), None)]));
        assert!(uncapped.reserve(&alice, None).is_ok());
    }

    #[test]
    fn one_payer_holds_at_most_its_share_and_others_still_get_invoices() {
        let alice = name("alice");
        let counts = Arc::new(PendingCounts::new(10, 3, []));
        for _ in 0..3 {
            counts.reserve(&alice, Some(ClientTag(1))).unwrap().keep();
        }
        assert_eq!(
            counts.reserve(&alice, Some(ClientTag(1))).err(),
            Some(PendingRefusal::Client)
        );
        counts.reserve(&alice, Some(ClientTag(2))).unwrap().keep();
        // The owner is not held to a share.
        counts.reserve(&alice, None).unwrap().keep();
        counts.closed(&alice, Some(ClientTag(1)));
        assert!(counts.reserve(&alice, Some(ClientTag(1))).is_ok());
    }

    #[test]
    fn invoices_made_elsewhere_count_against_the_cap_here() {
        let alice = name("alice");
        let counts = Arc::new(PendingCounts::new(2, 0, []));
        counts.opened_elsewhere(&alice, Some(ClientTag(3)));
        counts.opened_elsewhere(&alice, None);
        assert_eq!(
            counts.reserve(&alice, None).err(),
            Some(PendingRefusal::User)
        );
        counts.recount([(alice.clone(), None)]);
        assert_eq!(counts.of(&alice), 1);
        assert!(counts.reserve(&alice, None).is_ok());
    }

    #[test]
    fn a_reservation_nothing_came_of_is_given_back() {
        let alice = name("alice");
        let counts = Arc::new(PendingCounts::new(1, 1, []));
        drop(counts.reserve(&alice, Some(ClientTag(7))).unwrap());
        assert_eq!(counts.of(&alice), 0);
        counts.reserve(&alice, Some(ClientTag(7))).unwrap().keep();
        assert_eq!(counts.of(&alice), 1);
    }
}
