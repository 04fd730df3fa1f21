use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;

use super::{Flushed, Store, StoreError};

/// Runs after the flush that ended the group holding the write, with that flush's outcome.
type Completion = Box<dyn FnOnce(Result<&Flushed, &StoreError>) + Send>;
type Job = Box<dyn FnOnce(&dyn Store) -> Completion + Send>;

/// The single writer of a store, with group commit in two stages. The applier thread runs
/// writes one after another; the flusher thread takes every write applied so far, flushes
/// once, and only then answers them. Nobody is told "done" before their write is durable.
///
/// An acknowledgement belongs to the group its write joined. A flush ends the group of every
/// write applied before it, including writes applied after the flusher gathered its batch;
/// on PostgreSQL it may roll that group back. So no write is applied while a flush runs (the
/// `gate`), and the writes that joined the group late are answered by the same flush. Each
/// write also hears the flush's verdict on its own inserts (`Flushed::verdict`), so a
/// refused insert fails only the request that made it.
pub struct StoreWriter {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl StoreWriter {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (jobs, job_queue) = mpsc::channel::<Job>();
        let (applied, applied_queue) = mpsc::channel::<Completion>();
        let gate = Arc::new(Mutex::new(()));
        let applier_store = store.clone();
        let applier_gate = gate.clone();
        let threads = [
            thread::Builder::new()
                .name("rayo-store-apply".into())
                .spawn(move || apply(applier_store.as_ref(), &job_queue, &applied, &applier_gate)),
            thread::Builder::new()
                .name("rayo-store-flush".into())
                .spawn(move || flush(store.as_ref(), &applied_queue, &gate)),
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
            let sent = store.sent_ahead();
            Box::new(move |flushed| {
                let _ = done.send(match flushed {
                    Err(e) => Err(e.clone()),
                    Ok(flushed) => outcome.and_then(|value| flushed.verdict(&sent).map(|()| value)),
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

fn apply(
    store: &dyn Store,
    jobs: &mpsc::Receiver<Job>,
    applied: &mpsc::Sender<Completion>,
    gate: &Mutex<()>,
) {
    while let Ok(job) = jobs.recv() {
        // Applied and handed on under the gate: a flush sees either none of it or all of it,
        // and finds its completion waiting when it does.
        let applying = gate.lock();
        let sent = applied.send(job(store));
        // A flush waiting for the gate gets it next, even with more jobs queued.
        MutexGuard::unlock_fair(applying);
        if sent.is_err() {
            return;
        }
    }
}

/// The most writes one flush gathers before it starts.
const MAX_BATCH: usize = 256;
/// How long the first write of a batch may wait for company. Every flush is an fsync, and under
/// load fsyncs cost more CPU than this delay costs latency.
const COMMIT_WINDOW: Duration = Duration::from_millis(1);

fn flush(store: &dyn Store, applied: &mpsc::Receiver<Completion>, gate: &Mutex<()>) {
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
        let flushing = gate.lock();
        let flushed = store.flush();
        // Applied after the batch was gathered, so in the group this flush ended.
        batch.extend(applied.try_iter());
        MutexGuard::unlock_fair(flushing);
        if let Err(e) = &flushed {
            tracing::error!(error = %e, writes = batch.len(), "store flush failed");
        }
        for complete in batch.drain(..) {
            complete(flushed.as_ref());
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
