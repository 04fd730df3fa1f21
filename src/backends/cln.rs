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

#[derive(Clone, Deserialize)]
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
    /// Set on invoices made for one of the node's BOLT12 offers.
    #[serde(default)]
    local_offer_id: Option<String>,
    #[serde(default)]
    invreq_payer_note: Option<String>,
    #[serde(default)]
    bolt12: Option<String>,
}

/// `offer`'s answer (clnrest `POST /v1/offer`).
#[derive(Deserialize)]
struct MadeOfferBody {
    offer_id: String,
    bolt12: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    single_use: bool,
}

fn yes() -> bool {
    true
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
            if let Some(offer_id) = invoice.local_offer_id.as_deref() {
                return offer_payment(invoice.clone(), offer_id, &payment_hash)
                    .map(|payment| Some(PaymentEvent::OfferPaid { payment, cursor }));
            }
            return Ok(Some(PaymentEvent::Settled {
                payment_hash,
                state: state_of(invoice, &payment_hash)?,
                cursor,
            }));
        }
    }
}

/// A paid invoice of one of the node's offers, as the payment it records.
fn offer_payment(
    invoice: Listing,
    offer_id: &str,
    payment_hash: &Hash32,
) -> BackendResult<crate::domain::OfferPayment> {
    let offer_id: Hash32 = offer_id.parse().map_err(|_| {
        BackendError::Protocol(format!("{NAME} reported a malformed local_offer_id"))
    })?;
    let (note, bolt12) = (invoice.invreq_payer_note.clone(), invoice.bolt12.clone());
    match state_of(invoice, payment_hash)? {
        InvoiceState::Paid {
            preimage,
            paid_at,
            amount_received,
        } => Ok(crate::domain::OfferPayment {
            offer_id,
            payment_hash: *payment_hash,
            preimage,
            amount: amount_received,
            paid_at,
            payer_note: note,
            invoice: bolt12,
        }),
        _ => Err(BackendError::Protocol(format!(
            "{NAME} waitanyinvoice answered an offer's invoice that is not paid"
        ))),
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

    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::PerAddress
    }

    /// `offer` with `amount: any`: CLN answers the existing offer for the same parameters
    /// (`created: false`), so asking again is safe.
    async fn make_offer(
        &self,
        request: super::OfferRequest<'_>,
    ) -> BackendResult<super::MadeOffer> {
        let made: MadeOfferBody = self
            .call(
                "offer",
                &serde_json::json!({
                    "amount": "any",
                    "description": request.description,
                    "issuer": request.issuer,
                    "label": request.label,
                }),
            )
            .await?;
        if !made.active || made.single_use {
            return Err(BackendError::Rejected(format!(
                "{NAME} answered an offer that is {}",
                if made.active {
                    "single-use"
                } else {
                    "disabled"
                }
            )));
        }
        Ok(super::MadeOffer {
            offer: made.bolt12,
            backend_ref: Some(made.offer_id),
        })
    }

    async fn disable_offer(&self, backend_ref: &str) -> BackendResult<()> {
        self.call::<serde_json::Value>(
            "disableoffer",
            &serde_json::json!({ "offer_id": backend_ref }),
        )
        .await
        .map(|_| ())
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
    let _ = serde_json::from_slice::<MadeOfferBody>(body);
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
