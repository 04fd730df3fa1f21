//! Users' own wallets (`user add --nwc`): one NWC backend per user, made when first needed and
//! made again when the user's URI changes, all sharing one pool of relay connections, so a
//! thousand users on one relay cost one connection. Each wallet is watched (notifications,
//! and lookups on start and after every reconnection) from the moment it is used; a wallet
//! that is offline or misbehaves affects only its own user.
//!
//! Their invoices are recorded under the backend name `user-wallet`: which wallet made one is
//! the invoice's user's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use lightning_invoice::Currency;

use super::{InvoiceBackend, NwcBackend, RelayPool};
use crate::domain::{NwcUri, NwcUriError, User, Username};

/// Starts watching a user's wallet; the task stops when its handle is dropped.
pub type StartWatcher =
    Box<dyn Fn(Username, Arc<dyn InvoiceBackend>) -> tokio::task::JoinHandle<()> + Send + Sync>;

struct UserWallet {
    /// The URI it was made from: a different one makes a new wallet.
    uri: String,
    backend: Arc<dyn InvoiceBackend>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for UserWallet {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
    }
}

pub struct UserWallets {
    pool: RelayPool,
    network: Currency,
    wallets: Mutex<HashMap<Username, UserWallet>>,
    start_watcher: OnceLock<StartWatcher>,
}

impl UserWallets {
    /// Relays users name are reached where `reach` allows (public addresses, unless the
    /// operator allows private relays): users' URIs come from outside the operator's control.
    pub fn new(reach: crate::net::Reach, network: Currency) -> Self {
        Self {
            pool: RelayPool::new(reach),
            network,
            wallets: Mutex::new(HashMap::new()),
            start_watcher: OnceLock::new(),
        }
    }

    fn wallets(&self) -> std::sync::MutexGuard<'_, HashMap<Username, UserWallet>> {
        self.wallets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, wallets are watched once used (the server's background work).
    pub fn watch_with(&self, start: StartWatcher) {
        if self.start_watcher.set(start).is_err() {
            return;
        }
        let mut wallets = self.wallets();
        for (name, wallet) in wallets.iter_mut() {
            if let Some(start) = self.start_watcher.get() {
                wallet.watcher = Some(start(name.clone(), wallet.backend.clone()));
            }
        }
    }

    /// `user`'s own wallet, if they have one.
    pub fn backend(&self, user: &User) -> Result<Option<Arc<dyn InvoiceBackend>>, NwcUriError> {
        let Some(uri) = &user.nwc else {
            self.forget(&user.name);
            return Ok(None);
        };
        let mut wallets = self.wallets();
        if let Some(wallet) = wallets.get(&user.name) {
            if wallet.uri == uri.expose() {
                return Ok(Some(wallet.backend.clone()));
            }
        }
        let parsed = NwcUri::parse(uri.expose())?;
        tracing::info!(user = %user.name, wallet = %parsed.wallet.to_hex(), "connecting a user's own wallet");
        let backend: Arc<dyn InvoiceBackend> =
            Arc::new(NwcBackend::new(parsed, &self.pool, self.network.clone()));
        let watcher = self
            .start_watcher
            .get()
            .map(|start| start(user.name.clone(), backend.clone()));
        wallets.insert(
            user.name.clone(),
            UserWallet {
                uri: uri.expose().to_owned(),
                backend: backend.clone(),
                watcher,
            },
        );
        Ok(Some(backend))
    }

    /// Stops using `user`'s wallet (removed, or changed: the next use makes the new one).
    pub fn forget(&self, user: &Username) {
        self.wallets().remove(user);
    }
}
