//! Bulkheads for backend calls. Each configured backend, and each user's own wallet, has a
//! bounded number of invoice calls in flight of its own; more wait (within the backend timeout)
//! for a slot of that share. A silent upstream then holds only its own share, never the slots
//! another backend's users need, and a stalled one cannot pile up connections and memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::domain::{BackendName, Username};

/// Whose share a call is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Share {
    /// A backend from the configuration, shared by the users it serves.
    Backend(BackendName),
    /// One user's own wallet (NWC): theirs alone.
    Wallet(Username),
}

pub struct BackendSlots {
    per_backend: usize,
    per_wallet: usize,
    shares: Mutex<HashMap<Share, Arc<Semaphore>>>,
}

impl BackendSlots {
    /// `per_backend` calls for each configured backend; a user's own wallet, which serves one
    /// person, gets an eighth of that (at least one).
    pub fn new(per_backend: usize) -> Self {
        let per_backend = per_backend.max(1);
        Self {
            per_backend,
            per_wallet: (per_backend / 8).max(1),
            shares: Mutex::new(HashMap::new()),
        }
    }

    /// The slots of `share`, made on first use.
    pub fn of(&self, share: Share) -> Arc<Semaphore> {
        let size = match share {
            Share::Backend(_) => self.per_backend,
            Share::Wallet(_) => self.per_wallet,
        };
        self.shares
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(share)
            .or_insert_with(|| Arc::new(Semaphore::new(size)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_and_each_wallet_has_slots_of_its_own() {
        let slots = BackendSlots::new(16);
        let default = slots.of(Share::Backend(BackendName::default_name()));
        let _held: Vec<_> = (0..16).map(|_| default.try_acquire().unwrap()).collect();
        assert!(
            default.try_acquire().is_err(),
            "the backend's share is used up"
        );
        let exchange = slots.of(Share::Backend("exchange".parse().unwrap()));
        assert!(
            exchange.try_acquire().is_ok(),
            "another backend is not affected"
        );
        let bob = slots.of(Share::Wallet(Username::parse("bob").unwrap()));
        let _bobs: Vec<_> = (0..2).map(|_| bob.try_acquire().unwrap()).collect();
        assert!(bob.try_acquire().is_err(), "a wallet gets an eighth");
        let carol = slots.of(Share::Wallet(Username::parse("carol").unwrap()));
        assert!(carol.try_acquire().is_ok(), "nor is another user's wallet");
        // The same share is the same slots.
        assert!(slots
            .of(Share::Backend(BackendName::default_name()))
            .try_acquire()
            .is_err());
    }
}
