//! What a store that several server processes share offers them besides the `Store`
//! contract: leading a job one process at a time, and hearing what the others changed. rayo's
//! `Cluster` runs over these; PostgreSQL implements them.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::{ClientTag, Hash32, Username};

/// A change another process made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An unpaid invoice was stored.
    Added {
        payment_hash: Hash32,
        user: Username,
        payer: Option<ClientTag>,
    },
    /// An invoice reached a new status; `was_pending`: it was unpaid until now.
    Moved {
        payment_hash: Hash32,
        user: Username,
        payer: Option<ClientTag>,
        was_pending: bool,
    },
    /// A user was added, changed or removed.
    User(Username),
    /// Events were queued for delivery.
    Queued,
    /// A setting kept in the store changed (the Nostr key, say).
    Meta(String),
    /// Changes may have been missed (the listening session was lost and made again): whatever
    /// is kept from the database should be read again.
    Resync,
}

/// Leading and listening among the processes sharing a store.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Waits until this process holds `role`.
    async fn lead(&self, role: &str) -> Box<dyn Lease>;
    /// Changes the other processes make from now on.
    async fn changes(&self) -> broadcast::Receiver<Change>;
}

/// This process holds a role until the lease is dropped or lost.
#[async_trait]
pub trait Lease: Send {
    fn role(&self) -> &str;
    /// Resolves once this process can no longer be sure it holds the role: the work done
    /// under it must stop then.
    async fn lost(&mut self);
}
