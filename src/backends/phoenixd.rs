//! phoenixd (ACINQ's Phoenix as a server). Wire facts: HTTP Basic with any username and the
//! `http-password`; `POST /createinvoice`, form-encoded, with exactly one of `description` or
//! `descriptionHash`, answers `{"amountSat", "paymentHash", "serialized"}`; `GET
//! /payments/incoming/{hash}` answers `isPaid`, `preimage`, `receivedSat`, `completedAt` (ms),
//! or 404 "Not found". Errors are plain text. Amounts are whole satoshis. Payments are pushed
//! on the `/websocket` (`{"type": "payment_received", "paymentHash", ...}`) and to webhooks
//! signed with `X-Phoenix-Signature: hex(HMAC-SHA256(webhook-secret, raw body))`; neither
//! carries the preimage, so both are confirmed with a lookup.

use std::time::Duration;

use async_trait::async_trait;
use lightning_invoice::Currency as InvoiceNetwork;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::http::{self, quote};
use super::ws::{ws_url, WsChannel};
use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, Identity, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentEvent, PaymentNotice, PaymentStream,
};
use crate::crypto::{hmac_sha256, secrets_match};
use crate::domain::{Hash32, Msat, Secret};

const NAME: &str = "phoenixd";

pub struct PhoenixdBackend {
    base: Url,
    password: Secret,
    /// phoenixd's `webhook-secret`, when webhooks are pointed at rayo.
    webhook_secret: Option<Secret>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    payment_hash: String,
    serialized: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    is_paid: bool,
    #[serde(default)]
    preimage: Option<String>,
    #[serde(default)]
    received_sat: Option<u64>,
    #[serde(default)]
    completed_at: Option<u64>,
}

/// A push from the websocket or a webhook.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pushed {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payment_hash: Option<String>,
}

impl Pushed {
    fn received(text: &[u8]) -> BackendResult<Option<Hash32>> {
        let pushed: Pushed = http::json(NAME, text)?;
        if pushed.kind != "payment_received" {
            return Ok(None);
        }
        pushed
            .payment_hash
            .as_deref()
            .and_then(|h| h.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                BackendError::Protocol(format!("{NAME} pushed a payment without a payment hash"))
            })
    }
}

struct Websocket(WsChannel);

#[async_trait]
impl PaymentStream for Websocket {
    async fn next(&mut self) -> BackendResult<Option<PaymentEvent>> {
        while let Some(text) = self.0.next_text().await? {
            if let Some(hash) = Pushed::received(text.as_bytes())? {
                return Ok(Some(PaymentEvent::Hint(hash)));
            }
        }
        Ok(None)
    }
}

impl PhoenixdBackend {
    pub fn new(
        base: Url,
        password: Secret,
        network: InvoiceNetwork,
    ) -> BackendResult<Backend<Self>> {
        Ok(Backend::new(
            Capabilities {
                kind: "phoenixd",
                description_hash: true,
                msat_precision: false,
                max_expiry: Duration::from_secs(24 * 3600),
                network,
                lookup_sees_unpaid: true,
                payments: PaymentNotice::Push,
            },
            Self {
                base,
                password,
                webhook_secret: None,
                client: http::client()?,
            },
        ))
    }

    /// Accepts webhooks signed with `secret`.
    pub fn with_webhook_secret(mut self, secret: Option<Secret>) -> Self {
        self.webhook_secret = secret;
        self
    }

    fn error(status: StatusCode, body: &[u8]) -> BackendError {
        let detail = quote(body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                BackendError::Rejected(format!("{NAME} refused the password ({status}): {detail}"))
            }
            s => http::status_error(NAME, s, &detail),
        }
    }
}

#[async_trait]
impl InvoiceBackend for PhoenixdBackend {
    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::No("phoenixd gives one node-wide offer (GET /getoffer): payments to it cannot be told apart per address")
    }

    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let amount = super::whole_sats(NAME, request.amount)?.to_string();
        let expiry = request.expiry.as_secs().to_string();
        let (field, value) = match &request.description {
            InvoiceDescription::Hash { hash, .. } => ("descriptionHash", hash.to_hex()),
            InvoiceDescription::Memo(memo) => ("description", memo.to_string()),
        };
        let form = [
            ("amountSat", amount.as_str()),
            (field, value.as_str()),
            ("expirySeconds", expiry.as_str()),
            ("externalId", request.label),
        ];
        let created: Created = http::call(
            NAME,
            self.client
                .post(http::endpoint(&self.base, NAME, "createinvoice")?)
                .basic_auth("rayo", Some(self.password.expose()))
                .form(&form),
            Self::error,
        )
        .await?;
        let payment_hash = http::payment_hash(NAME, &created.payment_hash)?;
        Ok(CreatedInvoice {
            bolt11: created.serialized,
            payment_hash: Some(payment_hash),
            backend_ref: None,
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let (status, body) = http::exchange(
            NAME,
            self.client
                .get(http::endpoint(
                    &self.base,
                    NAME,
                    &format!("payments/incoming/{payment_hash}"),
                )?)
                .basic_auth("rayo", Some(self.password.expose())),
        )
        .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(InvoiceState::Unknown);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body));
        }
        let incoming: Incoming = http::json(NAME, &body)?;
        if !incoming.is_paid {
            return Ok(InvoiceState::Pending);
        }
        let reported = incoming
            .preimage
            .as_deref()
            .and_then(|p| p.parse::<Hash32>().ok());
        let preimage = super::matching_preimage(NAME, reported.map(|h| h.0), payment_hash)?;
        let amount_received = incoming
            .received_sat
            .and_then(Msat::from_sat)
            .unwrap_or(Msat::from_msat(0));
        let paid_at = incoming.completed_at.map_or(0, |ms| ms / 1000);
        Ok(InvoiceState::Paid {
            preimage: Some(preimage),
            paid_at,
            amount_received,
        })
    }

    async fn subscribe(&self, _cursor: Option<u64>) -> BackendResult<Box<dyn PaymentStream>> {
        use base64::Engine;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("rayo:{}", self.password.expose()));
        let channel = WsChannel::connect(
            NAME,
            &ws_url(&self.base, "websocket")?,
            Some(&format!("Basic {credentials}")),
        )
        .await?;
        Ok(Box::new(Websocket(channel)))
    }

    fn webhook_payment(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> BackendResult<Hash32> {
        let secret = self.webhook_secret.as_ref().ok_or_else(|| {
            BackendError::Rejected(format!(
                "{NAME} webhook received, but no webhook secret is configured"
            ))
        })?;
        let signature = header("X-Phoenix-Signature").ok_or_else(|| {
            BackendError::Rejected(format!("{NAME} webhook without X-Phoenix-Signature"))
        })?;
        let expected = hex::encode(hmac_sha256(secret.expose().as_bytes(), body));
        if !secrets_match(
            expected.as_bytes(),
            signature.trim().to_ascii_lowercase().as_bytes(),
        ) {
            return Err(BackendError::Rejected(format!(
                "{NAME} webhook signature does not match"
            )));
        }
        Pushed::received(body)?.ok_or_else(|| {
            BackendError::Rejected(format!("{NAME} webhook is not about a received payment"))
        })
    }

    async fn identity(&self) -> BackendResult<Identity> {
        let info: serde_json::Value = http::call(
            NAME,
            self.client
                .get(http::endpoint(&self.base, NAME, "getinfo")?)
                .basic_auth("rayo", Some(self.password.expose())),
            Self::error,
        )
        .await?;
        Ok(Identity::node(info["nodeId"].as_str(), None))
    }
}

/// Every decoder of phoenixd's answers and pushes, on arbitrary bytes (fuzzing): none may panic.
pub(super) fn fuzz_decode(body: &[u8]) {
    let _ = serde_json::from_slice::<Created>(body);
    let _ = serde_json::from_slice::<Incoming>(body);
    let _ = Pushed::received(body);
}
