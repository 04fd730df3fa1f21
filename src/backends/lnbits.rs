//! LNbits (https://lnbits.com): one wallet's invoice key makes invoices and looks them up.
//! Wire facts: `POST /api/v1/payments` (201 with `payment_hash` and `bolt11`), `GET
//! /api/v1/payments/{hash}` (`paid`, `preimage`, `details`), errors as `{"detail": ...}`. An
//! unknown key is a 404 "Wallet not found.", not a 401. Amounts are whole satoshis. Payments
//! to the wallet are pushed on the websocket `/api/v1/ws/{invoice key}` as `{"wallet_balance",
//! "payment": {...}}`; rayo takes each push as a hint and confirms it with the status call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lightning_invoice::Currency as InvoiceNetwork;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, quote};
use super::ws::{ws_url, WsChannel};
use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, Identity, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentEvent, PaymentNotice, PaymentStream,
};
use crate::domain::{Hash32, Msat, Secret};

const NAME: &str = "LNbits";

pub struct LnbitsBackend {
    base: Url,
    invoice_key: Secret,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct CreateInvoice<'a> {
    out: bool,
    amount: u64,
    unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description_hash: Option<String>,
    expiry: u64,
    external_id: &'a str,
}

#[derive(Deserialize)]
struct Created {
    payment_hash: String,
    // LNbits 1.x sends both; older versions only `payment_request`.
    #[serde(default)]
    bolt11: Option<String>,
    #[serde(default)]
    payment_request: Option<String>,
    #[serde(default)]
    checking_id: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    paid: bool,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    preimage: Option<String>,
    #[serde(default)]
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    expiry: Option<String>,
}

#[derive(Deserialize)]
struct Pushed {
    #[serde(default)]
    payment: Option<PushedPayment>,
}

#[derive(Deserialize)]
struct PushedPayment {
    payment_hash: String,
}

struct Websocket(WsChannel);

#[async_trait]
impl PaymentStream for Websocket {
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>> {
        while let Some(text) = self.0.next_text().await? {
            // Other messages (and payments we cannot read) are not ours to act on.
            let Ok(pushed) = serde_json::from_str::<Pushed>(&text) else {
                continue;
            };
            if let Some(hash) = pushed
                .payment
                .and_then(|p| p.payment_hash.parse::<Hash32>().ok())
            {
                return Ok(Some(PaymentEvent::Hint(hash)));
            }
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    detail: serde_json::Value,
}

impl LnbitsBackend {
    pub fn new(
        base: Url,
        invoice_key: Secret,
        network: InvoiceNetwork,
    ) -> BackendResult<Backend<Self>> {
        Ok(Backend::new(
            Capabilities {
                kind: "lnbits",
                description_hash: true,
                msat_precision: false,
                max_expiry: Duration::from_secs(24 * 3600),
                network,
                lookup_sees_unpaid: true,
                payments: PaymentNotice::Push,
            },
            Self {
                base,
                invoice_key,
                client: http::client()?,
            },
        ))
    }

    fn error(status: StatusCode, body: &[u8]) -> BackendError {
        let detail = serde_json::from_slice::<ErrorBody>(body)
            .map(|e| match e.detail {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_else(|_| quote(body));
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                BackendError::Rejected(format!("{NAME} refused the invoice key: {detail}"))
            }
            StatusCode::NOT_FOUND if detail.contains("Wallet not found") => BackendError::Rejected(
                format!("{NAME} knows no wallet with this invoice key: {detail}"),
            ),
            s => http::status_error(NAME, s, &detail),
        }
    }
}

#[async_trait]
impl InvoiceBackend for LnbitsBackend {
    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::No("LNbits has no API for BOLT12 offers")
    }

    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let sats = super::whole_sats(NAME, request.amount)?;
        let (memo, description_hash) = match &request.description {
            InvoiceDescription::Hash { hash, .. } => (None, Some(hash.to_hex())),
            InvoiceDescription::Memo(memo) => (Some(memo.as_ref()), None),
        };
        let body = CreateInvoice {
            out: false,
            amount: sats,
            unit: "sat",
            memo,
            description_hash,
            expiry: request.expiry.as_secs(),
            external_id: request.label,
        };
        let created: Created = http::call(
            NAME,
            self.client
                .post(http::endpoint(&self.base, NAME, "api/v1/payments")?)
                .header("X-Api-Key", self.invoice_key.expose())
                .json(&body),
            Self::error,
        )
        .await?;
        let payment_hash = http::payment_hash(NAME, &created.payment_hash)?;
        let bolt11 = created
            .bolt11
            .or(created.payment_request)
            .ok_or_else(|| BackendError::Protocol(format!("{NAME} answered without an invoice")))?;
        Ok(CreatedInvoice {
            bolt11,
            payment_hash: Some(payment_hash),
            backend_ref: created.checking_id,
        })
    }

    async fn subscribe(&self, _cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        let url = ws_url(
            &self.base,
            &format!("api/v1/ws/{}", self.invoice_key.expose()),
        )?;
        Ok(Box::new(Websocket(
            WsChannel::connect(NAME, &url, None).await?,
        )))
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let (status, body) = http::exchange(
            NAME,
            self.client
                .get(http::endpoint(
                    &self.base,
                    NAME,
                    &format!("api/v1/payments/{payment_hash}"),
                )?)
                .header("X-Api-Key", self.invoice_key.expose()),
        )
        .await?;
        if status == StatusCode::NOT_FOUND && body.windows(14).any(|w| w == b"does not exist") {
            return Ok(InvoiceState::Unknown);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body));
        }
        let found: Status = http::json(NAME, &body)?;
        let details = found.details.unwrap_or(Details {
            amount: None,
            updated_at: None,
            time: None,
            expiry: None,
        });
        if found.paid {
            let reported = found
                .preimage
                .as_deref()
                .and_then(|p| p.parse::<Hash32>().ok());
            let preimage = super::matching_preimage(NAME, reported.map(|h| h.0), payment_hash)?;
            let paid_at = details
                .updated_at
                .as_deref()
                .or(details.time.as_deref())
                .and_then(unix_time)
                .unwrap_or(0);
            let amount = details
                .amount
                .and_then(|a| u64::try_from(a).ok())
                .unwrap_or(0);
            return Ok(InvoiceState::Paid {
                preimage: Some(preimage),
                paid_at,
                amount_received: Msat::from_msat(amount),
            });
        }
        let expired = found.status.as_deref() == Some("failed")
            || details
                .expiry
                .as_deref()
                .and_then(unix_time)
                .is_some_and(|at| at <= now());
        Ok(if expired {
            InvoiceState::Expired
        } else {
            InvoiceState::Pending
        })
    }

    async fn identity(&self) -> BackendResult<Identity> {
        let wallet: serde_json::Value = http::call(
            NAME,
            self.client
                .get(http::endpoint(&self.base, NAME, "api/v1/wallet")?)
                .header("X-Api-Key", self.invoice_key.expose()),
            Self::error,
        )
        .await?;
        // LNbits does not say which node its funding source runs on.
        Ok(Identity {
            node_id: None,
            name: wallet["name"]
                .as_str()
                .map(|name| format!("wallet '{name}'")),
        })
    }
}

/// LNbits times look like `2026-11-22T05:19:03.934525+00:00` (or with `Z`, or naive UTC).
fn unix_time(text: &str) -> Option<u64> {
    let utc = text
        .strip_suffix("+00:00")
        .unwrap_or(text)
        .trim_end_matches('Z');
    let time = humantime::parse_rfc3339_weak(utc).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Every decoder of LNbits's answers, on arbitrary bytes (fuzzing): none may panic.
pub(super) fn fuzz_decode(body: &[u8]) {
    let _ = serde_json::from_slice::<Created>(body);
    let _ = serde_json::from_slice::<Pushed>(body);
    let _ = LnbitsBackend::error(StatusCode::NOT_FOUND, body);
    if let Ok(status) = serde_json::from_slice::<Status>(body) {
        if let Some(details) = status.details {
            let _ = details.updated_at.as_deref().and_then(unix_time);
            let _ = details.time.as_deref().and_then(unix_time);
            let _ = details.expiry.as_deref().and_then(unix_time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lnbits_timestamps() {
        assert_eq!(
            unix_time("2026-11-22T05:19:03.934525+00:00"),
            Some(1795324743)
        );
        assert_eq!(unix_time("2026-11-22T05:19:03Z"), Some(1795324743));
        assert_eq!(unix_time("yesterday"), None);
    }

    #[test]
    fn explains_errors_in_operator_words() {
        let e = LnbitsBackend::error(StatusCode::NOT_FOUND, br#"{"detail":"Wallet not found."}"#);
        assert!(
            e.to_string()
                .contains("knows no wallet with this invoice key"),
            "{e}"
        );
        let e = LnbitsBackend::error(StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert!(matches!(e, BackendError::Unavailable(_)), "{e}");
    }
}
