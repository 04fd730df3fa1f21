use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use tokio::sync::oneshot;

use super::{Store, StoreError};

/// Runs after the batch's flush, with the flush's error if it failed.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&dyn Store) -> Completion + Send>;

/// The most writes one flush may cover; bounds the latency a batch adds to its first writer.
const MAX_BATCH: usize = 512;

/// The single writer of a store, with group commit: it applies every write that is waiting,
/// flushes once, and only then answers each of them. Concurrent callbacks share one fsync, and
/// nobody is told "done" before their write is on disk.
pub struct StoreWriter {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl StoreWriter {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("rayo-store-writer".into())
            .spawn(move || run(store.as_ref(), &rx))
            .ok();
        Self {
            jobs: Some(tx),
            thread,
        }
    }

    /// Applies `op` on the writer thread and resolves once it is durable.
    pub async fn commit<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let outcome = op(store);
            Box::new(move |flush_error| {
                let _ = done.send(match flush_error {
                    Some(e) => Err(e.clone()),
                    None => outcome,
                });
            })
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for StoreWriter {
    /// Lets the thread drain what is queued, flush, and stop.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: &dyn Store, jobs: &mpsc::Receiver<Job>) {
    let mut batch: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first(store));
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job(store)),
                Err(_) => break,
            }
        }
        let flushed = store.flush();
        if let Err(e) = &flushed {
            tracing::error!(error = %e, writes = batch.len(), "store flush failed");
        }
        for complete in batch.drain(..) {
            complete(flushed.as_ref().err());
        }
    }
    let _ = store.flush();
}
