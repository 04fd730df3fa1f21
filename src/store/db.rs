use std::sync::Arc;

use super::{ClusterView, SharedStore, Store, StoreError, StoreWriter};

/// The server's handle on its store: point reads straight from the store where it answers
/// from memory (sled, in microseconds), every read on the blocking pool where each is a round
/// trip (a database), and writes through the group-commit writer so each is durable before its
/// caller goes on. Nothing here makes an async worker wait on a network.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    writer: Arc<StoreWriter>,
    /// What a store several servers share does besides (`None`: this process's own store).
    shared: Option<Arc<dyn SharedStore>>,
}

impl Db {
    /// A store only this process opens, answering from memory (sled, or memory in tests).
    pub fn new(store: Arc<dyn Store>) -> Self {
        let writer = Arc::new(StoreWriter::start(store.clone()));
        Self {
            store,
            writer,
            shared: None,
        }
    }

    /// A store several server processes share, each read a round trip (PostgreSQL).
    pub fn shared<S: Store + SharedStore>(store: Arc<S>) -> Self {
        let shared: Arc<dyn SharedStore> = store.clone();
        Self {
            shared: Some(shared),
            ..Self::new(store)
        }
    }

    /// For point reads from async code: inline where the store answers from memory (sled),
    /// on the blocking pool where each read is a round trip (a database), so that no async
    /// worker waits on the network.
    pub async fn point<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        if self.shared.is_none() {
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

    /// For a read that must see one moment of the whole store (a backup): on a store of this
    /// process's own, on the writer, so that no write lands between its parts; a shared
    /// database is read as it is.
    pub async fn snapshot<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        if self.shared.is_some() {
            self.read(op).await
        } else {
            self.writer.commit(op).await
        }
    }

    /// Applies `op` and returns once it is durable.
    pub async fn commit<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.commit(op).await
    }

    /// Claims a shared store for this server for as long as it runs (see
    /// `SharedStore::claim_for_server`); a store of this process's own needs nothing.
    pub async fn claim_for_server(&self) -> Result<(), StoreError> {
        let Some(shared) = self.shared.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || shared.claim_for_server())
            .await
            .map_err(|e| StoreError::Io(format!("claim task failed: {e}")))?
    }

    /// The server processes sharing the store and the jobs each leads; `None` on a store of
    /// this process's own.
    pub async fn cluster(&self) -> Result<Option<ClusterView>, StoreError> {
        let Some(shared) = self.shared.clone() else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || shared.cluster())
            .await
            .map_err(|e| StoreError::Io(format!("cluster task failed: {e}")))?
            .map(Some)
    }

    /// The next number of the sequence `name` across every server sharing the store, at least
    /// `at_least`; `None` on a store of this process's own, where a sequence of its own is
    /// enough.
    pub async fn next_in_sequence(
        &self,
        name: &str,
        at_least: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(shared) = self.shared.clone() else {
            return Ok(None);
        };
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || shared.next_in_sequence(&name, at_least))
            .await
            .map_err(|e| StoreError::Io(format!("sequence task failed: {e}")))?
            .map(Some)
    }
}
