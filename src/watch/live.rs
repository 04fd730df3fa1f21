use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::InvoiceRecord;

/// Invoices as they reach their final state, for live subscribers (WebSocket, SSE). Only a
/// hint: subscribers read the store after subscribing, and again if they fall behind.
#[derive(Clone)]
pub struct Live {
    sender: broadcast::Sender<Arc<InvoiceRecord>>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }

    pub fn publish(&self, record: InvoiceRecord) {
        // Nobody listening is fine.
        let _ = self.sender.send(Arc::new(record));
    }

    /// Whether anyone follows invoices here now.
    pub fn followed(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<InvoiceRecord>> {
        self.sender.subscribe()
    }
}
