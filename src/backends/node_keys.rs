//! The key each backend's node signs its invoices with, learned from the backend's API. With
//! it, every invoice is checked against the key it must be signed with (cheaper than
//! recovering a key from the signature, and a stronger check: the invoice pays our node).
//! Backends that do not say (LNbits, Buda.com, credentials that may not read node info) keep
//! the recovery check.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use secp256k1::PublicKey;

use super::InvoiceBackend;
use crate::backends::{AnyBackend, Backend};
use crate::domain::BackendName;
use crate::metrics::Metrics;

/// How often a backend that does not answer is asked again, at most.
const RETRY_AT_MOST_EVERY: Duration = Duration::from_secs(300);
/// After an invoice signed by another key, the backend is asked again at most this often: a
/// node whose key changed is learned within a minute, a backend that keeps returning foreign
/// invoices cannot make us ask it on every callback.
const DOUBT_AT_MOST_EVERY: Duration = Duration::from_secs(60);

pub struct NodeKeys {
    known: RwLock<HashMap<BackendName, Known>>,
    metrics: Arc<Metrics>,
}

#[derive(Clone, Copy, Default)]
struct Known {
    key: Option<PublicKey>,
    /// When an invoice last made us doubt the key.
    doubted_at: Option<Instant>,
}

impl NodeKeys {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            known: RwLock::default(),
            metrics,
        }
    }

    /// The key `backend` signs with, once learned.
    pub fn get(&self, backend: &BackendName) -> Option<PublicKey> {
        self.read().get(backend).and_then(|known| known.key)
    }

    /// Asks `backend` who it is until it answers, waiting longer after each failure.
    pub async fn learn(&self, name: BackendName, backend: AnyBackend) {
        let mut wait = Duration::from_secs(1);
        loop {
            match self.ask(&name, backend.as_ref()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::info!(backend = %name, error = %e, retry_in_s = wait.as_secs(), "could not learn the backend's node key yet; invoices are checked by key recovery meanwhile");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_AT_MOST_EVERY);
        }
    }

    /// An invoice came signed by another key than the one learned: the node may have a new
    /// one. Asks again in the background, at most once a minute.
    pub fn doubt(self: &Arc<Self>, name: &BackendName, backend: &AnyBackend) {
        {
            let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
            let entry = known.entry(name.clone()).or_default();
            if entry
                .doubted_at
                .is_some_and(|at| at.elapsed() < DOUBT_AT_MOST_EVERY)
            {
                return;
            }
            entry.doubted_at = Some(Instant::now());
        }
        let (keys, name, backend) = (self.clone(), name.clone(), backend.clone());
        tokio::spawn(async move {
            if let Err(e) = keys.ask(&name, backend.as_ref()).await {
                tracing::warn!(backend = %name, error = %e, "could not ask the backend for its node key again");
            }
        });
    }

    async fn ask(
        &self,
        name: &BackendName,
        backend: &Backend<dyn InvoiceBackend>,
    ) -> Result<(), super::BackendError> {
        let identity = backend.identity().await?;
        let before = self.get(name);
        if before.is_some() && before != identity.node_id {
            tracing::warn!(backend = %name, before = ?before, now = ?identity.node_id, "the backend's node key changed");
        }
        self.remember(name, identity.node_id);
        Metrics::count(&self.metrics.node_keys_learned, name.as_str());
        Ok(())
    }

    fn remember(&self, name: &BackendName, key: Option<PublicKey>) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.clone())
            .or_default()
            .key = key;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<BackendName, Known>> {
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }
}
