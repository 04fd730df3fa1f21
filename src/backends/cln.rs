//! Core Lightning through the clnrest plugin. Wire facts: `POST /v1/<method>` with named
//! parameters as JSON and a `rune` header; success is 201; errors are `{"code", "message"}`
//! (401/403 for the rune). `invoice` takes `amount_msat`, a unique `label`, the exact
//! `description` and `deschashonly: true` (CLN hashes the description itself); `listinvoices`
//! reports `status` `unpaid | paid | expired` with `payment_preimage`, `paid_at`,
//! `amount_received_msat`.

use std::time::Duration;

use async_trait::async_trait;
use lightning_invoice::Currency;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, quote};
use super::{
    BackendError, Capabilities, CreatedInvoice, InvoiceBackend, InvoiceDescription, InvoiceRequest,
    InvoiceState,
};
use crate::domain::{Hash32, Msat, Preimage, Secret};

const NAME: &str = "Core Lightning";
/// CLN's error code for a label it has seen before.
const DUPLICATE_LABEL: i64 = 900;

pub struct ClnBackend {
    base: Url,
    rune: Secret,
    client: reqwest::Client,
    capabilities: Capabilities,
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
    pub fn new(base: Url, rune: Secret, network: Currency) -> Result<Self, BackendError> {
        Ok(Self {
            base,
            rune,
            client: http::client()?,
            capabilities: Capabilities {
                description_hash: true,
                msat_precision: true,
                max_expiry: Duration::from_secs(7 * 24 * 3600),
                network,
                lookup_sees_unpaid: true,
            },
        })
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, BackendError> {
        let url = self
            .base
            .join(&format!("v1/{method}"))
            .map_err(|e| BackendError::Rejected(format!("{NAME} URL: {e}")))?;
        let (status, body) = http::exchange(
            NAME,
            self.client
                .post(url)
                .header("rune", self.rune.expose())
                .json(params),
        )
        .await?;
        if !status.is_success() {
            return Err(Self::error(method, status, &body));
        }
        http::json(NAME, &body)
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

#[async_trait]
impl InvoiceBackend for ClnBackend {
    fn kind(&self) -> &'static str {
        "cln"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest<'_>,
    ) -> Result<CreatedInvoice, BackendError> {
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
            payment_hash,
            backend_ref: Some(request.label.to_owned()),
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> Result<InvoiceState, BackendError> {
        let listed: Listed = self
            .call(
                "listinvoices",
                &serde_json::json!({ "payment_hash": payment_hash.to_hex() }),
            )
            .await?;
        let Some(invoice) = listed.invoices.into_iter().next() else {
            return Ok(InvoiceState::Unknown);
        };
        Ok(match invoice.status.as_str() {
            "paid" => {
                let preimage = invoice
                    .payment_preimage
                    .as_deref()
                    .and_then(|p| p.parse::<Hash32>().ok())
                    .map(Preimage)
                    .filter(|p| p.payment_hash() == *payment_hash)
                    .ok_or_else(|| {
                        BackendError::Protocol(format!(
                            "{NAME} reports the invoice paid without a matching preimage"
                        ))
                    })?;
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

    async fn identity(&self) -> Result<Option<String>, BackendError> {
        // A rune limited to the invoice methods may not allow getinfo: say nothing then.
        let Ok(info) = self
            .call::<serde_json::Value>("getinfo", &serde_json::json!({}))
            .await
        else {
            return Ok(None);
        };
        Ok(info["id"]
            .as_str()
            .map(|id| format!("node {} ({id})", info["alias"].as_str().unwrap_or(""))))
    }
}
