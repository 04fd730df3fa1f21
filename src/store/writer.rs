use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Store, StoreError};

/// Runs after a flush that covers the write, with the flush's error if it failed.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&dyn Store) -> Completion + Send>;

/// The single writer of a store, with group commit in two stages. The applier thread runs
/// writes one after another; the flusher thread takes every write applied so far, flushes
/// once, and only then answers them. Applying the next writes overlaps the current flush, and
/// nobody is told "done" before their write is on disk.
pub struct StoreWriter {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl StoreWriter {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (jobs, job_queue) = mpsc::channel::<Job>();
        let (applied, applied_queue) = mpsc::channel::<Completion>();
        let applier_store = store.clone();
        let threads = [
            thread::Builder::new()
                .name("rayo-store-apply".into())
                .spawn(move || apply(applier_store.as_ref(), &job_queue, &applied)),
            thread::Builder::new()
                .name("rayo-store-flush".into())
                .spawn(move || flush(store.as_ref(), &applied_queue)),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect();
        Self {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Applies `op` on the writer and resolves once it is durable.
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
    /// Lets both stages drain what is queued, flush, and stop.
    fn drop(&mut self) {
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn apply(store: &dyn Store, jobs: &mpsc::Receiver<Job>, applied: &mpsc::Sender<Completion>) {
    while let Ok(job) = jobs.recv() {
        if applied.send(job(store)).is_err() {
            return;
        }
    }
}

/// The most writes one flush answers.
const MAX_BATCH: usize = 256;
/// How long the first write of a batch may wait for company. Every flush is an fsync, and under
/// load fsyncs cost more CPU than this delay costs latency.
const COMMIT_WINDOW: Duration = Duration::from_millis(1);

fn flush(store: &dyn Store, applied: &mpsc::Receiver<Completion>) {
    let mut batch: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = applied.recv() {
        batch.push(first);
        let deadline = Instant::now() + COMMIT_WINDOW;
        while batch.len() < MAX_BATCH {
            let next = match applied.try_recv() {
                Ok(next) => next,
                // Alone: flush at once. In company: give the others a moment to catch up.
                Err(_) if batch.len() == 1 => break,
                Err(_) => {
                    match applied.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(next) => next,
                        Err(_) => break,
                    }
                }
            };
            batch.push(next);
        }
        // Everything in `batch` was applied before this call began, so this flush covers it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FaultyStore;

    #[tokio::test]
    async fn a_write_that_cannot_be_made_durable_is_reported_not_acknowledged() {
        let store = Arc::new(FaultyStore::new());
        store.fill_the_disk(true);
        let writer = StoreWriter::start(store);
        let answer = writer.commit(|s| s.put_meta("k", b"v")).await;
        assert_eq!(
            answer,
            Err(StoreError::Io(
                "No space left on device (os error 28)".into()
            ))
        );
        // And the writer keeps working for the next write (which fails the same way).
        assert!(writer.commit(|s| s.put_meta("k2", b"v")).await.is_err());
    }
}
