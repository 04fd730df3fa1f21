//! LND's REST API. Wire facts: header `Grpc-Metadata-macaroon: <hex>`; proto field names,
//! int64 as strings, bytes as standard base64. `POST /v1/invoices` `{value_msat,
//! description_hash | memo, expiry, private}` answers `{r_hash, payment_request, add_index}`;
//! `GET /v2/invoices/lookup?payment_hash=<base64url>` answers an Invoice with `state` `OPEN |
//! SETTLED | CANCELED | ACCEPTED`, `r_preimage`, `settle_date`, `amt_paid_msat`. Errors are
//! `{"code", "message"}`; an unknown invoice is 404 code 5 (newer) or 500 code 2 (older).
//!
//! LND's `tls.cert` is self-signed with CA:TRUE, which webpki refuses as a server certificate
//! even when trusted as a root, so rayo pins it instead: the presented certificate must be that
//! exact certificate, and the handshake signatures are still verified.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use lightning_invoice::Currency as InvoiceNetwork;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, quote};
use super::tls::pinned_client;
use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, Identity, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentEvent, PaymentNotice, PaymentStream,
};
use crate::domain::{Hash32, Msat, Secret};

const NAME: &str = "LND";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64_URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

pub struct LndBackend {
    base: Url,
    macaroon: Secret,
    private_routes: bool,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct NewInvoice<'a> {
    value_msat: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<&'a str>,
    expiry: String,
    private: bool,
}

#[derive(Deserialize)]
struct Added {
    r_hash: String,
    payment_request: String,
    #[serde(default)]
    add_index: Option<String>,
}

#[derive(Deserialize)]
struct Invoice {
    state: String,
    #[serde(default)]
    r_hash: Option<String>,
    #[serde(default)]
    settle_index: Option<String>,
    #[serde(default)]
    r_preimage: Option<String>,
    #[serde(default)]
    settle_date: Option<String>,
    #[serde(default)]
    amt_paid_msat: Option<String>,
}

/// One line of `GET /v1/invoices/subscribe`.
#[derive(Deserialize)]
struct StreamLine {
    #[serde(default)]
    result: Option<Invoice>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

struct InvoiceStream {
    lines: http::JsonLines,
}

#[async_trait]
impl PaymentStream for InvoiceStream {
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>> {
        while let Some(line) = self.lines.next_line().await? {
            let line: StreamLine = http::json(NAME, &line)?;
            if let Some(e) = line.error {
                return Err(BackendError::Unavailable(format!(
                    "{NAME} ended the invoice stream: {} (code {})",
                    e.message, e.code
                )));
            }
            // The stream also announces new invoices; only settlements matter here.
            let Some(invoice) = line.result.filter(|i| i.state == "SETTLED") else {
                continue;
            };
            let payment_hash = invoice
                .r_hash
                .as_deref()
                .and_then(decode_32)
                .map(Hash32)
                .ok_or_else(|| {
                    BackendError::Protocol(format!("{NAME} streamed an invoice without r_hash"))
                })?;
            let cursor = invoice
                .settle_index
                .as_deref()
                .and_then(|i| i.parse::<u64>().ok());
            return Ok(Some(PaymentEvent::Settled {
                payment_hash,
                state: state_of(invoice, &payment_hash)?,
                cursor,
            }));
        }
        Ok(None)
    }
}

fn decode_32(b64: &str) -> Option<[u8; 32]> {
    B64.decode(b64)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// What an LND invoice's `state` means for rayo.
fn state_of(invoice: Invoice, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
    Ok(match invoice.state.as_str() {
        "OPEN" | "ACCEPTED" => InvoiceState::Pending,
        "CANCELED" => InvoiceState::Expired,
        "SETTLED" => {
            let reported = invoice.r_preimage.as_deref().and_then(decode_32);
            let preimage = super::matching_preimage(NAME, reported, payment_hash)?;
            let number = |s: Option<String>| s.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            InvoiceState::Paid {
                preimage: Some(preimage),
                paid_at: number(invoice.settle_date),
                amount_received: Msat::from_msat(number(invoice.amt_paid_msat)),
            }
        }
        other => {
            return Err(BackendError::Protocol(format!(
                "{NAME} reported an unknown invoice state '{other}'"
            )))
        }
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: i64,
    message: String,
}

impl LndBackend {
    pub fn new(
        base: Url,
        macaroon: Secret,
        tls_cert: Option<&[u8]>,
        private_routes: bool,
        network: InvoiceNetwork,
    ) -> BackendResult<Backend<Self>> {
        Ok(Backend::new(
            Capabilities {
                kind: "lnd",
                description_hash: true,
                msat_precision: true,
                max_expiry: Duration::from_secs(365 * 24 * 3600),
                network,
                lookup_sees_unpaid: true,
                payments: PaymentNotice::Push,
            },
            Self {
                base,
                macaroon,
                private_routes,
                client: pinned_client(NAME, tls_cert)?,
            },
        ))
    }

    fn error(status: StatusCode, body: &[u8]) -> BackendError {
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let detail = parsed.as_ref().map_or_else(
            || quote(body),
            |e| format!("{} (code {})", e.message, e.code),
        );
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                BackendError::Rejected(format!("{NAME} refused the macaroon: {detail}"))
            }
            s if s.is_server_error() && parsed.is_none() => {
                BackendError::Unavailable(format!("{NAME} failed ({s}): {detail}"))
            }
            // LND answers a bad macaroon with code 2 "verification failed: ..." or "... macaroon ...".
            s if detail.contains("macaroon") || detail.starts_with("verification failed") => {
                BackendError::Rejected(format!("{NAME} refused the macaroon ({s}): {detail}"))
            }
            s => BackendError::Rejected(format!("{NAME} refused the request ({s}): {detail}")),
        }
    }
}

#[async_trait]
impl InvoiceBackend for LndBackend {
    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::No("LND makes no BOLT12 offers (it would need LNDK beside it)")
    }

    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let (description_hash, memo) = match &request.description {
            InvoiceDescription::Hash { hash, .. } => (Some(B64.encode(hash.0)), None),
            InvoiceDescription::Memo(memo) => (None, Some(memo.as_ref())),
        };
        let body = NewInvoice {
            value_msat: request.amount.msat().to_string(),
            description_hash,
            memo,
            expiry: request.expiry.as_secs().to_string(),
            private: self.private_routes,
        };
        let added: Added = http::call(
            NAME,
            self.client
                .post(http::endpoint(&self.base, NAME, "v1/invoices")?)
                .header("Grpc-Metadata-macaroon", self.macaroon.expose())
                .json(&body),
            Self::error,
        )
        .await?;
        let payment_hash = B64
            .decode(&added.r_hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Hash32)
            .ok_or_else(|| BackendError::Protocol(format!("{NAME} returned a malformed r_hash")))?;
        Ok(CreatedInvoice {
            bolt11: added.payment_request,
            payment_hash: Some(payment_hash),
            backend_ref: added.add_index,
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let mut url = http::endpoint(&self.base, NAME, "v2/invoices/lookup")?;
        url.query_pairs_mut()
            .append_pair("payment_hash", &B64_URL.encode(payment_hash.0));
        let (status, bytes) = http::exchange(
            NAME,
            self.client
                .get(url)
                .header("Grpc-Metadata-macaroon", self.macaroon.expose()),
        )
        .await?;
        if !status.is_success() {
            let code = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.code)
                .unwrap_or(-1);
            // Newer LND: 404 NotFound (5); older: 500 Unknown (2) "unable to locate invoice".
            if (status == StatusCode::NOT_FOUND && code == 5)
                || (code == 2 && quote(&bytes).contains("unable to locate"))
            {
                return Ok(InvoiceState::Unknown);
            }
            return Err(Self::error(status, &bytes));
        }
        let invoice: Invoice = http::json(NAME, &bytes)?;
        state_of(invoice, payment_hash)
    }

    async fn subscribe(&self, cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        let mut url = http::endpoint(&self.base, NAME, "v1/invoices/subscribe")?;
        if let Some(settle_index) = cursor {
            url.query_pairs_mut()
                .append_pair("settle_index", &settle_index.to_string());
        }
        let answer = self
            .client
            .get(url)
            .header("Grpc-Metadata-macaroon", self.macaroon.expose())
            .timeout(http::STREAM_LIFETIME)
            .send()
            .await
            .map_err(|e| http::transport(NAME, &e))?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.bytes().await.unwrap_or_default();
            return Err(Self::error(status, &body));
        }
        Ok(Box::new(InvoiceStream {
            lines: http::JsonLines::new(NAME, answer),
        }))
    }

    fn resumes(&self) -> bool {
        true
    }

    async fn identity(&self) -> BackendResult<Identity> {
        let (status, bytes) = http::exchange(
            NAME,
            self.client
                .get(http::endpoint(&self.base, NAME, "v1/getinfo")?)
                .header("Grpc-Metadata-macaroon", self.macaroon.expose()),
        )
        .await?;
        if !status.is_success() {
            // An invoice macaroon may not read node info; rayo then recovers the key from
            // each invoice's signature instead of checking against this one.
            return Ok(Identity::default());
        }
        let info: serde_json::Value = http::json(NAME, &bytes)?;
        Ok(Identity::node(
            info["identity_pubkey"].as_str(),
            info["alias"].as_str(),
        ))
    }
}

/// Every decoder of LND's answers, on arbitrary bytes (fuzzing): none may panic.
pub(super) fn fuzz_decode(body: &[u8]) {
    let _ = serde_json::from_slice::<Added>(body);
    let _ = serde_json::from_slice::<ErrorBody>(body);
    if let Ok(invoice) = serde_json::from_slice::<Invoice>(body) {
        let _ = state_of(invoice, &Hash32([0; 32]));
    }
    if let Ok(line) = serde_json::from_slice::<StreamLine>(body) {
        if let Some(invoice) = line.result {
            let _ = invoice.r_hash.as_deref().map(decode_32);
            let _ = state_of(invoice, &Hash32([0; 32]));
        }
    }
}
