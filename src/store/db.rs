use std::sync::Arc;

use super::{Store, StoreError, StoreWriter};

/// The server's handle on its store: point reads straight from the store where it answers
/// from memory (sled, in microseconds), scans on the blocking pool, writes through the group-commit
/// writer so each is durable before its caller goes on.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    writer: Arc<StoreWriter>,
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let writer = Arc::new(StoreWriter::start(store.clone()));
        Self { store, writer }
    }

    /// The store itself, for point reads where nothing can wait: see `point`.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// For point reads from async code: inline where the store answers from memory (sled),
    /// on the blocking pool where each read is a round trip (a database), so that no async
    /// worker waits on the network.
    pub async fn point<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        if self.store.answers_in_memory() {
            op(self.store.as_ref())
        } else {
            self.read(op).await
        }
    }

    /// For reads that may touch many keys: run off the async workers.
    pub async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || op(store.as_ref()))
            .await
            .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }

    /// Applies `op` and returns once it is durable.
    pub async fn commit<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.commit(op).await
    }
}
