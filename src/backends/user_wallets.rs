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

use lightning_invoice::Currency as InvoiceNetwork;

use super::{NwcBackend, RelayPool};
use crate::backends::AnyBackend;
use crate::domain::{NwcUri, User, Username};

/// Starts watching a user's wallet; the task stops when its handle is dropped.
pub type StartWatcher =
    Box<dyn Fn(Username, AnyBackend) -> tokio::task::JoinHandle<()> + Send + Sync>;

struct UserWallet {
    /// The connection it was made from: a different one makes a new wallet.
    uri: NwcUri,
    backend: AnyBackend,
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
    network: InvoiceNetwork,
    wallets: Mutex<HashMap<Username, UserWallet>>,
    start_watcher: OnceLock<StartWatcher>,
}

impl UserWallets {
    /// Relays users name are reached where `reach` allows (public addresses, unless the
    /// operator allows private relays): users' URIs come from outside the operator's control.
    pub fn new(reach: crate::net::Reach, network: InvoiceNetwork) -> Self {
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

    /// A wallet made from `uri` to be tried (`backend check`) before anyone uses it: on the
    /// same relay connections, watched by nobody, kept by nobody.
    pub fn trial(&self, uri: &NwcUri) -> AnyBackend {
        Arc::new(NwcBackend::new(
            uri.clone(),
            &self.pool,
            self.network.clone(),
        ))
    }

    /// `user`'s own wallet, if they have one: connected, and its watcher started, on first
    /// use, and again whenever their connection URI changes.
    pub fn connect(&self, user: &User) -> Option<AnyBackend> {
        let Some(uri) = &user.nwc else {
            self.forget(&user.name);
            return None;
        };
        let mut wallets = self.wallets();
        if let Some(wallet) = wallets.get(&user.name) {
            if &wallet.uri == uri {
                return Some(wallet.backend.clone());
            }
        }
        tracing::info!(user = %user.name, wallet = %uri.wallet.to_hex(), "connecting a user's own wallet");
        let backend: AnyBackend = Arc::new(NwcBackend::new(
            uri.clone(),
            &self.pool,
            self.network.clone(),
        ));
        let watcher = self
            .start_watcher
            .get()
            .map(|start| start(user.name.clone(), backend.clone()));
        wallets.insert(
            user.name.clone(),
            UserWallet {
                uri: uri.clone(),
                backend: backend.clone(),
                watcher,
            },
        );
        Some(backend)
    }

    /// Follows a change to `name` made elsewhere (another instance, the CLI): a wallet in use is
    /// replaced if its URI changed, and let go if the user or their wallet is gone.
    pub fn refresh(&self, name: &Username, user: Option<&User>) {
        let in_use = self.wallets().get(name).map(|w| w.uri.clone());
        let Some(in_use) = in_use else {
            return;
        };
        match user {
            Some(user) if user.nwc.as_ref() == Some(&in_use) => {}
            Some(user) => {
                self.connect(user);
            }
            None => self.forget(name),
        }
    }

    /// Stops using `user`'s wallet (removed, or changed: the next use makes the new one).
    pub fn forget(&self, user: &Username) {
        self.wallets().remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(secret_byte: u8) -> User {
        let mut user = crate::store::contract::user("alice");
        user.nwc = Some(
            NwcUri::parse(&format!(
                "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=ws://127.0.0.1:9&secret={}",
                hex::encode([secret_byte; 32])
            ))
            .unwrap(),
        );
        user
    }

    #[tokio::test]
    async fn a_wallet_is_made_once_replaced_when_its_uri_changes_and_let_go_with_its_user() {
        let wallets = UserWallets::new(crate::net::Reach::Anywhere, InvoiceNetwork::Regtest);
        let first = wallets.connect(&alice(1)).unwrap();
        let again = wallets.connect(&alice(1)).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "made once");

        // Changed elsewhere: the new URI's wallet replaces the old one.
        wallets.refresh(&alice(1).name, Some(&alice(2)));
        let replaced = wallets.connect(&alice(2)).unwrap();
        assert!(!Arc::ptr_eq(&first, &replaced));
        wallets.refresh(&alice(2).name, Some(&alice(2)));
        assert!(Arc::ptr_eq(&replaced, &wallets.connect(&alice(2)).unwrap()));

        // Removed elsewhere, or the wallet taken off: let go.
        wallets.refresh(&alice(2).name, None);
        assert!(wallets.wallets().is_empty());
        wallets.connect(&alice(3)).unwrap();
        let mut without = alice(3);
        without.nwc = None;
        assert!(wallets.connect(&without).is_none());
        assert!(wallets.wallets().is_empty());
    }
}
