//! Nostr Wallet Connect (NIP-47): invoices from any wallet that serves NWC (Alby Hub, coinos,
//! Primal, LNbits, Zeus, ...), reached through Nostr relays with a connection URI the wallet
//! hands out. `make_invoice` commits to the description hash and the exact amount in
//! millisatoshis, `lookup_invoice` says whether it was paid, `get_info` tells `rayo backend
//! check` what the connection may do; `payment_received` notifications are confirmed by a
//! lookup. Relay connections are shared by every wallet on the same relay (`relays`).

mod relays;
mod wallet;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lightning_invoice::Currency as InvoiceNetwork;
use serde_json::{json, Value};

use super::{
    matching_preimage, Backend, BackendError, BackendResult, Capabilities, CreatedInvoice,
    Findings, Identity, InvoiceBackend, InvoiceDescription, InvoiceRequest, InvoiceState,
    PaymentEvent, PaymentNotice, PaymentStream,
};
use crate::domain::{Hash32, Msat};

pub use crate::domain::{NwcUri, NwcUriError};
pub use relays::RelayPool;
pub use wallet::{Encryption, NwcError, NwcWallet};

const NAME: &str = "the NWC wallet";
/// One request may take this long; the callback's own backend timeout is usually shorter.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Methods that move money out: a connection that has any of them can spend.
const SPENDING: &[&str] = &[
    "pay_invoice",
    "multi_pay_invoice",
    "pay_keysend",
    "multi_pay_keysend",
];

pub struct NwcBackend {
    wallet: Arc<NwcWallet>,
    network: InvoiceNetwork,
    timeout: Duration,
}

impl NwcBackend {
    pub fn new(uri: NwcUri, pool: &RelayPool, network: InvoiceNetwork) -> Backend<Self> {
        Backend::new(
            Capabilities {
                kind: "nwc",
                description_hash: true,
                msat_precision: true,
                max_expiry: Duration::from_secs(24 * 3600),
                network: network.clone(),
                lookup_sees_unpaid: true,
                payments: PaymentNotice::Push,
            },
            Self {
                network,
                wallet: Arc::new(NwcWallet::new(uri, pool)),
                timeout: REQUEST_TIMEOUT,
            },
        )
    }

    async fn call(&self, method: &str, params: Value) -> BackendResult<Value> {
        match self.wallet.request(method, params, self.timeout).await {
            Ok(result) => Ok(result),
            Err(e) => {
                if let NwcError::Wallet { code, .. } = &e {
                    if code == "UNSUPPORTED_ENCRYPTION" {
                        // Its info event may have changed: read it again next time.
                        self.wallet.forget_info().await;
                    }
                }
                Err(backend_error(method, e))
            }
        }
    }
}

/// How a wallet's answer reads to the callback (short, for payers) and the logs (precise).
fn backend_error(method: &str, e: NwcError) -> BackendError {
    match e {
        NwcError::Wallet { code, message } => {
            let said = format!("{NAME} refused {method}: {code} ({message})");
            match code.as_str() {
                "RATE_LIMITED" | "QUOTA_EXCEEDED" | "INTERNAL" | "OTHER" => {
                    BackendError::Unavailable(said)
                }
                _ => BackendError::Rejected(said),
            }
        }
        NwcError::Unreachable(why) => {
            BackendError::Unavailable(format!("{NAME} is unreachable: {why}"))
        }
        NwcError::Timeout(secs) => {
            BackendError::Unavailable(format!("{NAME} did not answer {method} within {secs} s"))
        }
        NwcError::Protocol(why) => BackendError::Protocol(format!("{NAME}: {why}")),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A number field, as a wallet may send it (some send numbers as strings).
fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

#[async_trait]
impl InvoiceBackend for NwcBackend {
    fn offer_support(&self) -> crate::backends::OfferSupport {
        crate::backends::OfferSupport::No("Nostr Wallet Connect has no method for BOLT12 offers")
    }

    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let mut params = json!({
            "amount": request.amount.msat(),
            "expiry": request.expiry.as_secs(),
        });
        match &request.description {
            InvoiceDescription::Hash { hash, .. } => {
                params["description_hash"] = json!(hash.to_string())
            }
            InvoiceDescription::Memo(text) => params["description"] = json!(text),
        }
        let result = self.call("make_invoice", params).await?;
        let bolt11 = result["invoice"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                BackendError::Protocol(format!("{NAME}'s make_invoice answer has no invoice"))
            })?;
        let payment_hash = match result["payment_hash"].as_str() {
            Some(hex) => Some(hex.parse::<Hash32>().map_err(|_| {
                BackendError::Protocol(format!("{NAME} reported a malformed payment hash"))
            })?),
            None => None,
        };
        Ok(CreatedInvoice {
            bolt11: bolt11.to_owned(),
            payment_hash,
            backend_ref: None,
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let params = json!({"payment_hash": payment_hash.to_string()});
        let result = match self
            .wallet
            .request("lookup_invoice", params, self.timeout)
            .await
        {
            Ok(result) => result,
            Err(NwcError::Wallet { code, .. }) if code == "NOT_FOUND" => {
                return Ok(InvoiceState::Unknown)
            }
            Err(e) => return Err(backend_error("lookup_invoice", e)),
        };
        let settled_at = number(&result["settled_at"]).filter(|at| *at > 0);
        let state = result["state"].as_str().unwrap_or_default();
        if settled_at.is_some() || state == "settled" {
            let preimage = result["preimage"]
                .as_str()
                .and_then(|hex| hex::decode(hex).ok())
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            let amount = number(&result["amount"]).ok_or_else(|| {
                BackendError::Protocol(format!("{NAME} reports a payment without its amount"))
            })?;
            return Ok(InvoiceState::Paid {
                preimage: Some(matching_preimage(NAME, preimage, payment_hash)?),
                paid_at: settled_at.unwrap_or_else(unix_now),
                amount_received: Msat::from_msat(amount),
            });
        }
        let expired = state == "expired"
            || state == "failed"
            || number(&result["expires_at"]).is_some_and(|at| at > 0 && at <= unix_now());
        Ok(if expired {
            InvoiceState::Expired
        } else {
            InvoiceState::Pending
        })
    }

    async fn identity(&self) -> BackendResult<Identity> {
        let info = self.call("get_info", json!({})).await?;
        let alias = info["alias"].as_str().filter(|a| !a.is_empty());
        Ok(Identity {
            // The wallet's node key is not taken as the invoices' signer: custodial wallets
            // report one key and sign with others.
            node_id: None,
            name: Some(match alias {
                Some(alias) => format!("NWC wallet {}", alias.chars().take(64).collect::<String>()),
                None => "NWC wallet".to_owned(),
            }),
        })
    }

    async fn findings(&self) -> Findings {
        let mut findings = Findings::default();
        let relays: Vec<&str> = self
            .wallet
            .uri()
            .relays
            .iter()
            .map(|r| r.as_str())
            .collect();
        findings.facts.push(format!(
            "connection: {} via {}",
            self.wallet.uri().wallet.to_hex(),
            relays.join(", ")
        ));
        let info = match self.wallet.info().await {
            Ok(info) => info,
            Err(e) => {
                findings
                    .problems
                    .push(format!("could not read the wallet's info event: {e}"));
                return findings;
            }
        };
        if !info.published {
            findings.warnings.push(
                "the wallet publishes no info event (kind 13194) on these relays: using NIP-04 encryption"
                    .into(),
            );
        }
        findings.facts.push(format!(
            "encryption: {}",
            match info.encryption {
                Encryption::Nip44 => "NIP-44 v2",
                Encryption::Nip04 => "NIP-04 (the wallet does not offer NIP-44)",
            }
        ));
        let methods = match self.call("get_info", json!({})).await {
            Ok(got) => {
                if let Some(network) = got["network"].as_str() {
                    let ours = match self.network {
                        InvoiceNetwork::Bitcoin => "mainnet",
                        InvoiceNetwork::BitcoinTestnet => "testnet",
                        InvoiceNetwork::Regtest => "regtest",
                        InvoiceNetwork::Simnet => "simnet",
                        InvoiceNetwork::Signet => "signet",
                    };
                    findings.facts.push(format!("wallet network: {network}"));
                    if network != ours && !(network == "bitcoin" && ours == "mainnet") {
                        findings.problems.push(format!(
                            "the wallet is on {network}, rayo is set up for {ours} (RAYO_NETWORK)"
                        ));
                    }
                }
                got["methods"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or(info.methods.clone())
            }
            Err(e) => {
                findings.problems.push(format!("get_info failed: {e}"));
                info.methods.clone()
            }
        };
        findings
            .facts
            .push(format!("methods: {}", methods.join(" ")));
        for needed in ["make_invoice", "lookup_invoice"] {
            if !methods.iter().any(|m| m == needed) {
                findings.problems.push(format!(
                    "the connection does not allow {needed}, which rayo needs"
                ));
            }
        }
        let spending: Vec<&str> = SPENDING
            .iter()
            .copied()
            .filter(|m| methods.iter().any(|have| have == m))
            .collect();
        if !spending.is_empty() {
            findings.warnings.push(format!(
                "this connection can spend ({}): rayo only receives; make a receive-only connection (make_invoice, lookup_invoice) in the wallet",
                spending.join(", ")
            ));
        }
        if !info.notifications.iter().any(|n| n == "payment_received") {
            findings.facts.push(
                "notifications: none offered; payments are found by looking invoices up".into(),
            );
        }
        findings
    }

    async fn subscribe(&self, _cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        // Reading the info event also waits for the relays to connect: a stream opened on
        // none would end at once.
        self.wallet
            .info()
            .await
            .map_err(|e| backend_error("the notification subscription", e))?;
        Ok(Box::new(NotificationStream(self.wallet.notifications())))
    }
}

struct NotificationStream(wallet::Notifications);

#[async_trait]
impl PaymentStream for NotificationStream {
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>> {
        while let Some((kind, body)) = self.0.next().await {
            if kind != "payment_received" {
                continue;
            }
            // A hint only: the lookup that follows is what counts.
            if let Some(hash) = body["payment_hash"]
                .as_str()
                .and_then(|h| h.parse::<Hash32>().ok())
            {
                return Ok(Some(PaymentEvent::Hint(hash)));
            }
        }
        Ok(None)
    }
}
