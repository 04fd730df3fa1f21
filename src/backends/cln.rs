//! Core Lightning through the clnrest plugin. Wire facts: `POST /v1/<method>` with named
//! parameters as JSON and a `rune` header; success is 201; errors are `{"code", "message"}`
//! (401/403 for the rune). `invoice` takes `amount_msat`, a unique `label`, the exact
//! `description` and `deschashonly: true` (CLN hashes the description itself); `listinvoices`
//! reports `status` `unpaid | paid | expired` with `payment_preimage`, `paid_at`,
//! `amount_received_msat`. `waitanyinvoice {lastpay_index, timeout}` long-polls for the next
//! paid invoice, numbered by `pay_index`; a timeout is error 904.

use std::time::Duration;

use async_trait::async_trait;
use lightning_invoice::Currency as InvoiceNetwork;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, quote};
use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, Identity, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentEvent, PaymentNotice, PaymentStream,
};
use crate::domain::{Hash32, Msat, Secret};

const NAME: &str = "Core Lightning";
/// CLN's error code for a label it has seen before.
const DUPLICATE_LABEL: i64 = 900;
/// `waitanyinvoice` ran out of time with nothing paid.
const WAIT_TIMED_OUT: i64 = 904;
/// How long one `waitanyinvoice` waits upstream before answering "nothing yet".
const LONG_POLL: Duration = Duration::from_secs(60);

pub struct ClnBackend {
    rpc: Rpc,
}

/// clnrest: `POST /v1/<method>` with the rune.
#[derive(Clone)]
struct Rpc {
    base: Url,
    rune: Secret,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct NewInvoice<'a> {
    amount_msat: u64,
    label: &'a str,
    description: &'a str,
    deschashonly: bool,
    expiry: u64,
}

#[derive(Deserialize)]
struct Created {
    bolt11: String,
    payment_hash: String,
}

#[derive(Deserialize)]
struct Listed {
    invoices: Vec<Listing>,
}

#[derive(Deserialize)]
struct Listing {
    status: String,
    #[serde(default)]
    payment_hash: Option<String>,
    #[serde(default)]
    pay_index: Option<u64>,
    #[serde(default)]
    payment_preimage: Option<String>,
    #[serde(default)]
    paid_at: Option<u64>,
    #[serde(default)]
    amount_received_msat: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    message: String,
}

impl ClnBackend {
    /// `tls_cert` (PEM) pins clnrest's certificate; without it the usual roots apply.
    pub fn new(
        base: Url,
        rune: Secret,
        tls_cert: Option<&[u8]>,
        network: InvoiceNetwork,
    ) -> BackendResult<Backend<Self>> {
        Ok(Backend::new(
            Capabilities {
                kind: "cln",
                description_hash: true,
                msat_precision: true,
                max_expiry: Duration::from_secs(7 * 24 * 3600),
                network,
                lookup_sees_unpaid: true,
                payments: PaymentNotice::Push,
            },
            Self {
                rpc: Rpc {
                    base,
                    rune,
                    client: super::tls::pinned_client(NAME, tls_cert)?,
                },
            },
        ))
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> BackendResult<T> {
        self.rpc.call(method, params, None).await
    }
}

impl Rpc {
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        params: &impl Serialize,
        timeout: Option<Duration>,
    ) -> BackendResult<T> {
        let url = self
            .base
            .join(&format!("v1/{method}"))
            .map_err(|e| BackendError::Rejected(format!("{NAME} URL: {e}")))?;
        let mut request = self
            .client
            .post(url)
            .header("rune", self.rune.expose())
            .json(params);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        http::call(NAME, request, |status, body| {
            Self::error(method, status, body)
        })
        .await
    }

    fn error(method: &str, status: StatusCode, body: &[u8]) -> BackendError {
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let detail = parsed.as_ref().map_or_else(
            || quote(body),
            |e| format!("{} (code {})", e.message, e.code),
        );
        match (status, parsed.map(|e| e.code)) {
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
                BackendError::Rejected(format!("{NAME} refused the rune for {method}: {detail}"))
            }
            (_, Some(DUPLICATE_LABEL)) => BackendError::Rejected(format!(
                "{NAME} already has an invoice with this label: {detail}"
            )),
            (s, _) if s.is_server_error() && !body.starts_with(b"{") => {
                BackendError::Unavailable(format!("{NAME} failed ({s}): {detail}"))
            }
            (s, _) => BackendError::Rejected(format!("{NAME} {method} failed ({s}): {detail}")),
        }
    }
}

/// `waitanyinvoice` in a loop: each call answers the next paid invoice after `lastpay_index`.
struct WaitAnyInvoice {
    rpc: Rpc,
    lastpay_index: Option<u64>,
}

#[async_trait]
impl PaymentStream for WaitAnyInvoice {
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>> {
        loop {
            let mut params = serde_json::json!({ "timeout": LONG_POLL.as_secs() });
            if let Some(index) = self.lastpay_index {
                params["lastpay_index"] = index.into();
            }
            let waited: Result<Listing, _> = self
                .rpc
                .call(
                    "waitanyinvoice",
                    &params,
                    Some(LONG_POLL + Duration::from_secs(15)),
                )
                .await;
            let invoice = match waited {
                Ok(invoice) => invoice,
                Err(BackendError::Rejected(detail))
                    if detail.contains(&format!("(code {WAIT_TIMED_OUT})")) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let payment_hash: Hash32 = invoice
                .payment_hash
                .as_deref()
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| {
                    BackendError::Protocol(format!(
                        "{NAME} waitanyinvoice answered without a payment hash"
                    ))
                })?;
            let cursor = invoice.pay_index;
            if cursor.is_some() {
                self.lastpay_index = cursor;
            }
            return Ok(Some(PaymentEvent::Settled {
                payment_hash,
                state: state_of(invoice, &payment_hash)?,
                cursor,
            }));
        }
    }
}

/// What a CLN invoice's `status` means for rayo.
fn state_of(invoice: Listing, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
    Ok(match invoice.status.as_str() {
        "paid" => {
            let reported = invoice
                .payment_preimage
                .as_deref()
                .and_then(|p| p.parse::<Hash32>().ok());
            let preimage = super::matching_preimage(NAME, reported.map(|h| h.0), payment_hash)?;
            InvoiceState::Paid {
                preimage: Some(preimage),
                paid_at: invoice.paid_at.unwrap_or(0),
                amount_received: Msat::from_msat(invoice.amount_received_msat.unwrap_or(0)),
            }
        }
        "expired" => InvoiceState::Expired,
        "unpaid" => InvoiceState::Pending,
        other => {
            return Err(BackendError::Protocol(format!(
                "{NAME} reported an unknown invoice status '{other}'"
            )))
        }
    })
}

#[async_trait]
impl InvoiceBackend for ClnBackend {
    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let (description, deschashonly) = match &request.description {
            InvoiceDescription::Hash { text, .. } => (text.as_ref(), true),
            InvoiceDescription::Memo(memo) => (memo.as_ref(), false),
        };
        let params = NewInvoice {
            amount_msat: request.amount.msat(),
            label: request.label,
            description,
            deschashonly,
            expiry: request.expiry.as_secs(),
        };
        let created: Created = self.call("invoice", &params).await?;
        let payment_hash = created.payment_hash.parse().map_err(|_| {
            BackendError::Protocol(format!("{NAME} returned a malformed payment hash"))
        })?;
        Ok(CreatedInvoice {
            bolt11: created.bolt11,
            payment_hash: Some(payment_hash),
            backend_ref: Some(request.label.to_owned()),
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let listed: Listed = self
            .call(
                "listinvoices",
                &serde_json::json!({ "payment_hash": payment_hash.to_hex() }),
            )
            .await?;
        let Some(invoice) = listed.invoices.into_iter().next() else {
            return Ok(InvoiceState::Unknown);
        };
        state_of(invoice, payment_hash)
    }

    async fn subscribe(&self, cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        Ok(Box::new(WaitAnyInvoice {
            rpc: self.rpc.clone(),
            lastpay_index: cursor,
        }))
    }

    fn resumes(&self) -> bool {
        true
    }

    async fn identity(&self) -> BackendResult<Identity> {
        // A rune limited to the invoice methods may not allow getinfo: say nothing then.
        let Ok(info) = self
            .call::<serde_json::Value>("getinfo", &serde_json::json!({}))
            .await
        else {
            return Ok(Identity::default());
        };
        Ok(Identity::node(info["id"].as_str(), info["alias"].as_str()))
    }
}

/// Every decoder of clnrest's answers, on arbitrary bytes (fuzzing): none may panic.
pub(super) fn fuzz_decode(body: &[u8]) {
    let _ = serde_json::from_slice::<Created>(body);
    let _ = serde_json::from_slice::<ErrorBody>(body);
    let _ = Rpc::error("invoice", StatusCode::INTERNAL_SERVER_ERROR, body);
    if let Ok(listed) = serde_json::from_slice::<Listed>(body) {
        for invoice in listed.invoices {
            let _ = state_of(invoice, &Hash32([0; 32]));
        }
    }
    if let Ok(invoice) = serde_json::from_slice::<Listing>(body) {
        let _ = state_of(invoice, &Hash32([0; 32]));
    }
}
