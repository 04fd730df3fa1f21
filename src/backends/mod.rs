//! Where invoices come from. `InvoiceBackend` is the seam; each upstream lives in its own file
//! and nothing outside this folder knows its wire format.

mod buda;
mod cln;
mod dev;
mod http;
pub use http::quote as quote_body;
mod lnbits;
mod lnd;
mod node_keys;
mod nwc;
mod phoenixd;
mod set;
mod tls;
mod user_wallets;
mod ws;

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
/// The bitcoin network an invoice is for (BOLT11 calls it the invoice's currency).
pub use lightning_invoice::Currency as InvoiceNetwork;

use std::sync::Arc;

use crate::config::{BackendKind, BackendSettings, ConfigError, Network};
use crate::domain::{Hash32, Msat, Preimage, Secret};
use crate::store::Db;

pub use buda::BudaBackend;
pub use cln::ClnBackend;
pub use dev::DevBackend;
pub use lnbits::LnbitsBackend;
pub use lnd::LndBackend;
pub use node_keys::NodeKeys;
pub use nwc::{NwcBackend, NwcUri, NwcUriError, RelayPool};
pub use phoenixd::PhoenixdBackend;
pub use set::Backends;
pub use user_wallets::{StartWatcher, UserWallets};

/// What a backend is and can do; the callback adapts to it.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Short name for logs and records: `dev`, `lnbits`, ...
    pub kind: &'static str,
    /// Commits to a description hash (`h`); without it invoices carry a memo instead.
    pub description_hash: bool,
    /// Can make invoices for amounts that are not whole satoshis.
    pub msat_precision: bool,
    pub max_expiry: Duration,
    /// The network its invoices are for; anything else it returns is refused.
    pub network: InvoiceNetwork,
    /// Whether a lookup can see an invoice that is not paid yet. The dev backend keeps no state
    /// and Buda.com lists only deposits, so both answer `Unknown` until (or unless) paid.
    pub lookup_sees_unpaid: bool,
    /// How the backend tells us an invoice was paid.
    pub payments: PaymentNotice,
}

impl Capabilities {
    /// What it can do, in a line for operators.
    pub fn summary(&self) -> String {
        format!(
            "{}; {}; {:?}; invoices up to {}; payments {}",
            if self.description_hash {
                "commits to description hashes"
            } else {
                "memo invoices (no description hash)"
            },
            if self.msat_precision {
                "millisatoshi amounts"
            } else {
                "whole satoshis"
            },
            self.network,
            humantime::format_duration(self.max_expiry),
            self.payments.describe()
        )
    }

    /// The whole-satoshi rule, in one place: the amount this upstream is asked for. Where it
    /// makes whole satoshis only, an amount converted from a currency is rounded up to the
    /// next satoshi (the payee never gets less than the currency amount), and an amount
    /// named in millisatoshis must already be whole: `None`.
    pub fn fit(&self, amount: Msat, converted: bool) -> Option<Msat> {
        if self.msat_precision || amount.is_whole_sat() {
            Some(amount)
        } else if converted {
            amount
                .msat()
                .checked_next_multiple_of(1000)
                .map(Msat::from_msat)
        } else {
            None
        }
    }
}

/// The best channel a backend offers for learning about payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentNotice {
    /// A push channel (`subscribe`): a stream, long-poll or websocket.
    Push,
    /// Only by asking, this often (`find_paid`).
    Poll(Duration),
    /// The operator says so (the dev backend's settle command).
    Manual,
}

impl PaymentNotice {
    pub fn describe(&self) -> String {
        match self {
            Self::Push => "pushed by the backend".into(),
            Self::Poll(every) => format!("polled every {}", humantime::format_duration(*every)),
            Self::Manual => "marked by hand (rayo dev settle)".into(),
        }
    }
}

/// A pending invoice a poller looks for.
#[derive(Debug, Clone)]
pub struct PendingInvoice {
    pub payment_hash: Hash32,
    pub bolt11: String,
    pub created_at: u64,
}

/// What a push channel reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// Paid, with everything the ledger needs, and the position to resume from after it.
    Settled {
        payment_hash: Hash32,
        state: InvoiceState,
        cursor: Option<u64>,
    },
    /// Something happened to this invoice (an unsigned or detail-free push): ask to be sure.
    Hint(Hash32),
    /// A payment to one of the node's BOLT12 offers, with the position to resume from.
    OfferPaid {
        payment: crate::domain::OfferPayment,
        cursor: Option<u64>,
    },
}

/// A live push channel. Dropping it closes the connection.
#[async_trait]
pub trait PaymentStream: Send {
    /// The next event, or `None` when the upstream closed the channel.
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>>;
}

/// What the invoice should describe.
#[derive(Debug, Clone)]
pub enum InvoiceDescription<'a> {
    /// Commit to `hash`, which is `sha256(text)`. Some nodes want the text and hash it themselves.
    Hash { hash: Hash32, text: Cow<'a, str> },
    /// A plain description in the invoice's `d` field.
    Memo(Cow<'a, str>),
}

#[derive(Debug, Clone)]
pub struct InvoiceRequest<'a> {
    pub amount: Msat,
    pub description: InvoiceDescription<'a>,
    pub expiry: Duration,
    /// Unique per request; nodes that label invoices use it.
    pub label: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInvoice {
    pub bolt11: String,
    /// As the backend reports it, checked against the decoded invoice; `None` where the
    /// backend's answer carries only the invoice (the check decodes it once, for everyone).
    pub payment_hash: Option<Hash32>,
    /// The backend's own id for the invoice, where it has one.
    pub backend_ref: Option<String>,
}

/// Who a backend is, as far as its API says and the credentials allow asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The key its node signs invoices with: invoices are checked against it.
    pub node_id: Option<secp256k1::PublicKey>,
    /// The node's alias, or the wallet's name.
    pub name: Option<String>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.node_id) {
            (Some(name), Some(id)) => write!(f, "{name} ({id})"),
            (Some(name), None) => f.write_str(name),
            (None, Some(id)) => write!(f, "node {id}"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

impl Identity {
    /// From a node id and an alias as an upstream's JSON states them; a malformed id is no id.
    pub(crate) fn node(id: Option<&str>, alias: Option<&str>) -> Self {
        Self {
            node_id: id.and_then(|id| id.parse().ok()),
            name: alias.filter(|a| !a.is_empty()).map(|a| format!("node {a}")),
        }
    }
}

/// Failures in words an operator understands. Wallets get a short generic reason instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Protocol(String),
}

/// What talking to an upstream gives: an answer, or why there is none.
pub type BackendResult<T> = Result<T, BackendError>;

/// The amount in whole satoshis, for upstreams that take nothing finer. The callback refuses
/// other amounts before asking; this guards every other caller.
pub(crate) fn whole_sats(upstream: &str, amount: Msat) -> BackendResult<u64> {
    if amount.is_whole_sat() {
        Ok(amount.whole_sats())
    } else {
        Err(BackendError::Rejected(format!(
            "{upstream} makes whole-satoshi invoices only"
        )))
    }
}

/// The preimage an upstream reports for a paid invoice, which must be the one whose SHA-256 is
/// `payment_hash`: a paid state without proof is a protocol error, not a payment.
pub(crate) fn matching_preimage(
    upstream: &str,
    reported: Option<[u8; 32]>,
    payment_hash: &Hash32,
) -> BackendResult<Preimage> {
    reported
        .map(|bytes| Preimage(Hash32(bytes)))
        .filter(|p| p.payment_hash() == *payment_hash)
        .ok_or_else(|| {
            BackendError::Protocol(format!(
                "{upstream} reports the invoice paid without a matching preimage"
            ))
        })
}

/// Backend-specific lines for `rayo backend check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub facts: Vec<String>,
    /// Usable, but worth changing.
    pub warnings: Vec<String>,
    /// Not usable as it is.
    pub problems: Vec<String>,
}

/// What a backend knows about an invoice it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceState {
    Pending,
    /// `preimage` is `None` where the upstream does not reveal it (Buda.com's deposit listing).
    Paid {
        preimage: Option<Preimage>,
        paid_at: u64,
        amount_received: Msat,
    },
    Expired,
    /// The backend has no such invoice (or keeps no payment state, like the dev backend).
    Unknown,
}

/// A backend: what it can do, beside the upstream API it talks to. Capabilities are data,
/// set when the backend is made; everything else is `A`'s, reached through `Deref`.
pub struct Backend<A: ?Sized> {
    capabilities: Capabilities,
    api: A,
}

/// Whether a backend can give each address a reusable BOLT12 offer of its own, and if not,
/// why: the address then stays LNURL-only, and `backend check`, the CLI and the pages say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferSupport {
    PerAddress,
    No(&'static str),
}

/// The offer an address asks for: any amount, describing the address, issued by its domain.
#[derive(Debug, Clone, Copy)]
pub struct OfferRequest<'a> {
    pub description: &'a str,
    pub issuer: &'a str,
    /// Unique per address; nodes that label offers use it.
    pub label: &'a str,
}

/// What a backend answered: the offer, unchecked (see `offers::check_offer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeOffer {
    pub offer: String,
    /// The backend's own handle for the offer, to disable it later.
    pub backend_ref: Option<String>,
}

/// A backend of any kind, as the server holds them.
pub type AnyBackend = Arc<Backend<dyn InvoiceBackend>>;

impl<A> Backend<A> {
    pub fn new(capabilities: Capabilities, api: A) -> Self {
        Self { capabilities, api }
    }

    /// The same backend over a changed API.
    pub fn map_api(self, change: impl FnOnce(A) -> A) -> Self {
        Self {
            capabilities: self.capabilities,
            api: change(self.api),
        }
    }
}

impl<A: ?Sized> Backend<A> {
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Short name for logs and records: `dev`, `lnbits`, ...
    pub fn kind(&self) -> &'static str {
        self.capabilities.kind
    }
}

impl<A: ?Sized> std::ops::Deref for Backend<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.api
    }
}

/// An upstream's API: how rayo asks it for invoices and hears of payments.
#[async_trait]
pub trait InvoiceBackend: Send + Sync + 'static {
    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice>;
    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState>;
    /// Who the backend is (node id and alias, wallet name), where its API says.
    async fn identity(&self) -> BackendResult<Identity> {
        Ok(Identity::default())
    }

    /// What `rayo backend check` should also say about this backend in particular.
    async fn findings(&self) -> Findings {
        Findings::default()
    }

    /// Opens the push channel (`PaymentNotice::Push`), resuming after `cursor` where the
    /// upstream numbers its payments. Backends without a cursor return `resumes() == false`
    /// and the watcher reconciles by lookup after each connect.
    async fn subscribe(&self, _cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        Err(BackendError::Rejected(
            "this backend has no push channel".into(),
        ))
    }

    /// Whether `subscribe` replays what happened since `cursor`.
    fn resumes(&self) -> bool {
        false
    }

    /// Which of `pending` are paid or gone. The default asks one by one.
    async fn find_paid(
        &self,
        pending: &[PendingInvoice],
    ) -> BackendResult<Vec<(Hash32, InvoiceState)>> {
        let mut found = Vec::new();
        for invoice in pending {
            match self.lookup_invoice(&invoice.payment_hash).await? {
                state @ (InvoiceState::Paid { .. } | InvoiceState::Expired) => {
                    found.push((invoice.payment_hash, state))
                }
                InvoiceState::Pending | InvoiceState::Unknown => {}
            }
        }
        Ok(found)
    }

    /// Whether `make_offer` can give each address its own offer.
    fn offer_support(&self) -> OfferSupport {
        OfferSupport::No("this backend cannot make BOLT12 offers")
    }

    /// Makes (or finds again: the same request gives the same offer) a reusable offer.
    async fn make_offer(&self, _request: OfferRequest<'_>) -> BackendResult<MadeOffer> {
        Err(BackendError::Rejected(
            "this backend cannot make BOLT12 offers".into(),
        ))
    }

    /// Stops an offer from being paid, where the backend can.
    async fn disable_offer(&self, _backend_ref: &str) -> BackendResult<()> {
        Ok(())
    }

    /// Checks a webhook the upstream sent us (`POST /hooks/{backend}`) and names the invoice
    /// it is about. `header` looks up a request header by name.
    fn webhook_payment(
        &self,
        _header: &dyn Fn(&str) -> Option<String>,
        _body: &[u8],
    ) -> BackendResult<Hash32> {
        Err(BackendError::Rejected(
            "this backend does not send webhooks".into(),
        ))
    }
}

/// The backend the settings ask for. `dev` is passed in: its key lives in the store.
/// `store`: where sequences every instance shares are kept (Buda's nonces), if anywhere;
/// `relays`: the Nostr relay connections NWC wallets share.
pub fn build(
    settings: &BackendSettings,
    dev: Arc<Backend<DevBackend>>,
    store: Option<&Db>,
    relays: &RelayPool,
) -> Result<AnyBackend, ConfigError> {
    let kind = format!("the {:?} backend", settings.kind).to_lowercase();
    let missing = |what: &str| ConfigError::new(&kind, format!("needs {what}"));
    let invalid = |e: BackendError| ConfigError::new(&kind, e);
    let unreadable = |what: &str, path: &std::path::Path, e: std::io::Error| {
        ConfigError::new(&kind, format!("{what} {}: {e}", path.display()))
    };
    Ok(match settings.kind {
        BackendKind::Dev => {
            if settings.network.is_some_and(|n| n != Network::Regtest) {
                return Err(ConfigError::new(&kind, "only makes regtest invoices"));
            }
            dev
        }
        BackendKind::Lnbits => Arc::new(
            LnbitsBackend::new(
                settings
                    .lnbits_url
                    .clone()
                    .ok_or_else(|| missing("RAYO_LNBITS_URL"))?,
                settings
                    .lnbits_invoice_key
                    .clone()
                    .ok_or_else(|| missing("RAYO_LNBITS_INVOICE_KEY"))?,
                settings.network().into(),
            )
            .map_err(invalid)?,
        ),
        BackendKind::Buda => Arc::new(
            BudaBackend::new(
                settings.buda_url.clone(),
                settings
                    .buda_api_key
                    .clone()
                    .ok_or_else(|| missing("RAYO_BUDA_API_KEY"))?,
                settings
                    .buda_api_secret
                    .clone()
                    .ok_or_else(|| missing("RAYO_BUDA_API_SECRET"))?,
                settings.network().into(),
            )
            .map(|buda| match store {
                Some(db) => buda.map_api(|buda| buda.sharing_nonces(db.clone())),
                None => buda,
            })
            .map_err(invalid)?,
        ),
        BackendKind::Nwc => {
            let uri = settings
                .nwc_uri
                .as_ref()
                .ok_or_else(|| missing("RAYO_NWC_URI"))?;
            let uri = NwcUri::parse(uri.expose()).map_err(|e| ConfigError::new(&kind, e))?;
            Arc::new(NwcBackend::new(uri, relays, settings.network().into()))
        }
        BackendKind::Cln => {
            let tls_cert = match &settings.cln_tls_cert {
                Some(path) => Some(
                    std::fs::read(path).map_err(|e| unreadable("clnrest certificate", path, e))?,
                ),
                None => None,
            };
            Arc::new(
                ClnBackend::new(
                    settings
                        .cln_url
                        .clone()
                        .ok_or_else(|| missing("RAYO_CLN_URL"))?,
                    settings
                        .cln_rune
                        .clone()
                        .ok_or_else(|| missing("RAYO_CLN_RUNE"))?,
                    tls_cert.as_deref(),
                    settings.network().into(),
                )
                .map_err(invalid)?,
            )
        }
        BackendKind::Lnd => {
            let macaroon = match (&settings.lnd_macaroon, &settings.lnd_macaroon_file) {
                (Some(hex), _) => hex.clone(),
                (None, Some(path)) => Secret::new(hex::encode(
                    std::fs::read(path).map_err(|e| unreadable("LND macaroon", path, e))?,
                )),
                (None, None) => return Err(missing("RAYO_LND_MACAROON or RAYO_LND_MACAROON_FILE")),
            };
            let tls_cert = match &settings.lnd_tls_cert {
                Some(path) => {
                    Some(std::fs::read(path).map_err(|e| unreadable("LND tls.cert", path, e))?)
                }
                None => None,
            };
            Arc::new(
                LndBackend::new(
                    settings
                        .lnd_url
                        .clone()
                        .ok_or_else(|| missing("RAYO_LND_URL"))?,
                    macaroon,
                    tls_cert.as_deref(),
                    settings.lnd_private_routes,
                    settings.network().into(),
                )
                .map_err(invalid)?,
            )
        }
        BackendKind::Phoenixd => Arc::new(
            PhoenixdBackend::new(
                settings.phoenixd_url.clone(),
                settings
                    .phoenixd_password
                    .clone()
                    .ok_or_else(|| missing("RAYO_PHOENIXD_PASSWORD"))?,
                settings.network().into(),
            )
            .map_err(invalid)?
            .map_api(|api| api.with_webhook_secret(settings.phoenixd_webhook_secret.clone())),
        ),
    })
}

/// Runs every backend's response decoders on `body` (fuzzing and its corpus replay): whatever
/// an upstream sends, decoding it must not panic.
#[doc(hidden)]
pub fn decode_any_response(body: &[u8]) {
    lnd::fuzz_decode(body);
    cln::fuzz_decode(body);
    lnbits::fuzz_decode(body);
    phoenixd::fuzz_decode(body);
    buda::fuzz_decode(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn making(msat_precision: bool) -> Capabilities {
        Capabilities {
            kind: "test",
            description_hash: true,
            msat_precision,
            max_expiry: Duration::from_secs(3600),
            network: InvoiceNetwork::Regtest,
            lookup_sees_unpaid: true,
            payments: PaymentNotice::Manual,
        }
    }

    #[test]
    fn whole_satoshi_upstreams_round_converted_amounts_up_and_refuse_odd_msat() {
        let (whole, fine) = (making(false), making(true));
        let odd = Msat::from_msat(21_001);
        assert_eq!(whole.fit(odd, true), Some(Msat::from_msat(22_000)));
        assert_eq!(whole.fit(odd, false), None);
        assert_eq!(
            whole.fit(Msat::from_msat(21_000), false),
            Some(Msat::from_msat(21_000))
        );
        assert_eq!(fine.fit(odd, false), Some(odd));
        assert_eq!(whole.fit(Msat::from_msat(u64::MAX), true), None);
    }
}
