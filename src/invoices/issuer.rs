//! The one place invoices are made. Every route that hands out an invoice (the LNURL callback,
//! the pay page's form, the invoice API) comes here with an `Admission` from the invoice rate
//! limit, and the same rules apply to all: the user's caps on unpaid invoices, the backend's
//! amount precision, a bounded wait for the backend, the check of what it returns, and a
//! durable record before anyone sees the invoice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::check::{check_invoice, Expected, InvoiceCheckError};
use super::slots::{BackendSlots, Share};
use super::Description;
use crate::backends::AnyBackend;
use crate::backends::{Backends, InvoiceRequest, NodeKeys, UserWallets};
use crate::clock::{Clock, Random};
use crate::crypto::hmac_sha256;
use crate::domain::{
    AppFields, BackendName, ClientTag, Comment, FiatAmount, InvoiceRecord, InvoiceStatus, Msat,
    User,
};
use crate::limits::{Admission, ClientKey, Origin, PendingCounts, PendingRefusal, RateLimits};
use crate::metrics::Metrics;
use crate::store::{Db, StoreError};

/// The backend that makes a user's invoices, with the name it goes by: resolved once per
/// request (see `Issuer::upstream`).
#[derive(Clone)]
pub struct Upstream {
    pub name: BackendName,
    pub backend: AnyBackend,
}

impl Upstream {
    pub fn capabilities(&self) -> &crate::backends::Capabilities {
        self.backend.capabilities()
    }
}

/// One invoice to make.
pub struct NewInvoice<'a> {
    pub user: &'a User,
    pub amount: Msat,
    pub description: Description,
    pub comment: Option<Comment>,
    pub expiry: Duration,
    pub app: Option<AppFields>,
    /// The currency amount it was named in, if any, and the rate used.
    pub fiat: Option<FiatAmount>,
    /// What the invoice rate limit said: no invoice is made without it.
    pub admission: Admission,
}

/// Why no invoice was made. The details went to the log; callers map these to their
/// audience's words (see `error.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("the client is over the invoice rate")]
    RateLimited,
    #[error("the user has as many unpaid invoices as allowed")]
    TooManyPending,
    #[error("this payer holds its share of the user's unpaid invoices")]
    PayerShareUsed,
    #[error("the user's backend is not configured")]
    NoBackend,
    #[error("the backend makes whole-satoshi invoices only")]
    WholeSatsOnly,
    #[error("the backend cannot commit to a description hash")]
    CannotCommit,
    #[error("the amount is zero or more than all bitcoin")]
    AmountOutOfRange,
    #[error("the backend could not create an invoice")]
    Backend,
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("the backend returned an invoice that failed the checks")]
    BadInvoice,
    #[error("the invoice could not be recorded")]
    Store,
}

pub struct Issuer {
    backends: Backends,
    user_wallets: Arc<UserWallets>,
    node_keys: Arc<NodeKeys>,
    db: Db,
    pending: Arc<PendingCounts>,
    limits: Arc<RateLimits>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    metrics: Arc<Metrics>,
    backend_timeout: Duration,
    /// Backend calls in flight, bounded per backend and per user wallet (see `slots`).
    backend_slots: BackendSlots,
    /// Keys the tags that tell payers apart (`ClientTag`).
    client_tag_key: [u8; 32],
}

/// What an `Issuer` is made of.
pub struct IssuerParts {
    pub backends: Backends,
    pub user_wallets: Arc<UserWallets>,
    pub node_keys: Arc<NodeKeys>,
    pub db: Db,
    pub pending: Arc<PendingCounts>,
    pub limits: Arc<RateLimits>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub metrics: Arc<Metrics>,
    pub backend_timeout: Duration,
    pub max_backend_calls: usize,
    pub client_tag_key: [u8; 32],
}

impl Issuer {
    pub fn new(parts: IssuerParts) -> Self {
        Self {
            backends: parts.backends,
            user_wallets: parts.user_wallets,
            node_keys: parts.node_keys,
            db: parts.db,
            pending: parts.pending,
            limits: parts.limits,
            clock: parts.clock,
            random: parts.random,
            metrics: parts.metrics,
            backend_timeout: parts.backend_timeout,
            backend_slots: BackendSlots::new(parts.max_backend_calls),
            client_tag_key: parts.client_tag_key,
        }
    }

    /// Lets a request for an invoice through the invoice rate limit, or says why not.
    pub fn admit(
        &self,
        client: Option<ClientKey>,
        origin: Origin,
    ) -> Result<Admission, IssueError> {
        self.limits.admit_invoice(client, origin).ok_or_else(|| {
            Metrics::route_limited(&self.metrics, "invoice");
            IssueError::RateLimited
        })
    }

    /// The backend that makes `user`'s invoices, with the name it goes by: their own wallet
    /// if they have one (connected, and watched, on first use), else the configured backend
    /// they name, else the default one. Resolved once per request, and handed to `issue`.
    pub fn upstream(&self, user: &User) -> Result<Upstream, IssueError> {
        if let Some(wallet) = self.user_wallets.connect(user) {
            return Ok(Upstream {
                name: BackendName::user_wallet(),
                backend: wallet,
            });
        }
        self.backends
            .get(user.backend.as_ref())
            .map(|(name, backend)| Upstream {
                name: name.clone(),
                backend: backend.clone(),
            })
            .ok_or_else(|| {
                tracing::error!(user = %user.name, backend = ?user.backend, "the user's backend is not configured");
                IssueError::NoBackend
            })
    }

    /// Users' own wallets.
    pub fn user_wallets(&self) -> &Arc<UserWallets> {
        &self.user_wallets
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The node keys invoices are checked against, learned from the backends.
    pub fn node_keys(&self) -> &Arc<NodeKeys> {
        &self.node_keys
    }

    /// Asks the user's backend for an invoice, checks what comes back (signature, amount,
    /// description, network, payment hash, expiry), and stores it. Durable before visible:
    /// nobody sees the invoice before its record is on disk.
    pub async fn issue(
        &self,
        upstream: &Upstream,
        new: NewInvoice<'_>,
    ) -> Result<InvoiceRecord, IssueError> {
        let NewInvoice {
            user,
            amount,
            description,
            comment,
            expiry,
            app,
            fiat,
            admission,
        } = new;
        let (backend, upstream) = (&upstream.name, &upstream.backend);
        let capabilities = upstream.capabilities();
        let amount = capabilities
            .fit(amount, fiat.is_some())
            .ok_or(IssueError::WholeSatsOnly)?;
        if amount.msat() == 0 || amount > Msat::MAX_MONEY {
            return Err(IssueError::AmountOutOfRange);
        }
        if description.hash().is_some() && !capabilities.description_hash {
            return Err(IssueError::CannotCommit);
        }
        // Payers are held to a share of the user's unpaid invoices; the user's own app and the
        // operator only to the user's cap.
        let payer = match admission.origin() {
            Origin::Payer => admission.client().map(|c| self.client_tag(c)),
            Origin::Owner => None,
        };
        let reservation = self.pending.reserve(&user.name, payer).map_err(|refusal| {
            match refusal {
                PendingRefusal::User => {
                    tracing::warn!(user = %user.name, "refused an invoice: too many unpaid invoices for this user");
                    IssueError::TooManyPending
                }
                PendingRefusal::Client => {
                    tracing::warn!(user = %user.name, "refused an invoice: this payer holds its share of the user's unpaid invoices");
                    IssueError::PayerShareUsed
                }
            }
        })?;
        let label = format!(
            "rayo:{}:{}",
            user.name,
            hex::encode(&self.random.bytes32()[..8])
        );
        let request = InvoiceRequest {
            amount,
            description: description.for_backend(),
            expiry: expiry.min(capabilities.max_expiry),
            label: &label,
        };
        let share = if *backend == BackendName::user_wallet() {
            Share::Wallet(user.name.clone())
        } else {
            Share::Backend(backend.clone())
        };
        let slots = self.backend_slots.of(share.clone());
        let started = Instant::now();
        let answer = tokio::time::timeout(self.backend_timeout, async {
            let _slot = slots.acquire().await;
            upstream.create_invoice(request).await
        })
        .await;
        let outcome = match &answer {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        };
        self.metrics
            .backend_call(backend.as_str(), outcome, started.elapsed());
        let wallet;
        self.metrics.health.record(
            match &share {
                Share::Wallet(name) => {
                    wallet = format!("wallet of {name}");
                    &wallet
                }
                Share::Backend(name) => name.as_str(),
            },
            crate::metrics::HealthEntry {
                at: self.clock.unix(),
                latency_ms: started.elapsed().as_millis() as u64,
                asked: "invoice",
                error: match &answer {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("did not answer in time".into()),
                },
                failing_since: None,
            },
        );
        let created = match answer {
            Ok(Ok(created)) => created,
            Ok(Err(e)) => {
                tracing::warn!(%backend, user = %user.name, error = %e, "backend could not create an invoice");
                return Err(IssueError::Backend);
            }
            Err(_) => {
                tracing::warn!(%backend, user = %user.name, timeout_ms = self.backend_timeout.as_millis() as u64, "backend timed out creating an invoice");
                return Err(IssueError::Timeout);
            }
        };

        let expected = Expected {
            amount,
            description_hash: description.hash(),
            memo: description.memo().map(|m| m.as_str()),
            network: capabilities.network.clone(),
            payment_hash: created.payment_hash,
            node: self.node_keys.get(backend),
            now: self.clock.now(),
        };
        let checked = check_invoice(&created.bolt11, &expected).map_err(|e| {
            if matches!(e, InvoiceCheckError::WrongNode { .. }) {
                self.node_keys.doubt(backend, upstream);
            }
            tracing::error!(%backend, user = %user.name, problem = %e, "backend returned a bad invoice; refused it");
            IssueError::BadInvoice
        })?;

        let record = InvoiceRecord {
            payment_hash: checked.payment_hash,
            user: user.name.clone(),
            amount_msat: amount,
            bolt11: created.bolt11,
            description_hash: description.hash(),
            described_by: description.into_source(),
            comment,
            status: InvoiceStatus::Pending,
            created_at: self.clock.unix(),
            expires_at: checked.expires_at,
            backend: backend.clone(),
            backend_kind: upstream.kind().to_owned(),
            backend_ref: created.backend_ref,
            app,
            payer,
            fiat,
        };
        // (The metadata it refers to was stored with the user.)
        let record = self
            .db
            .commit(move |store| store.insert_invoice(&record).map(|()| record))
            .await
            .map_err(|e| match e {
                // Someone else's invoice (payment hashes are public): this backend's answer is
                // refused, and nobody else's invoice is touched.
                StoreError::Conflict(_) => {
                    tracing::error!(%backend, user = %user.name, "backend returned an invoice whose payment hash is already stored; refused it");
                    IssueError::BadInvoice
                }
                e => {
                    tracing::error!(error = %e, "could not store an invoice");
                    IssueError::Store
                }
            })?;
        Metrics::count(&self.metrics.invoices_created, backend.as_str());
        reservation.keep();
        Ok(record)
    }

    /// The tag that tells this payer apart, keyed so it says nothing about who they are.
    fn client_tag(&self, client: ClientKey) -> ClientTag {
        let digest = hmac_sha256(&self.client_tag_key, &client.bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        ClientTag(u64::from_be_bytes(first))
    }
}
