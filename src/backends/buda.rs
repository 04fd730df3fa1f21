//! Buda.com, the exchange: Lightning deposits into an exchange account. Wire facts:
//! `POST /api/v2/lightning_network_invoices` `{amount_satoshis, currency, memo, expiry_seconds}`
//! answers 201 `{"invoice": {"id", "currency", "encoded_payment_request"}}`; private calls carry
//! `X-SBTC-APIKEY`, `X-SBTC-NONCE` and `X-SBTC-SIGNATURE = hex(HMAC-SHA384(secret, msg))` with
//! msg `"METHOD /path?query NONCE"` or, with a body, `"METHOD /path BASE64(body) NONCE"`; the
//! nonce must grow strictly per API key. Errors are `{"message", "code"}`.
//!
//! No description-hash parameter is known: invoices carry a memo, so wallets that check `h`
//! refuse them and zaps cannot work. Payment shows up in the signed deposit listing, which does
//! not reveal the preimage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use bitcoin_hashes::{hmac, sha384, Hash, HashEngine};
use lightning_invoice::{Currency as InvoiceNetwork, SignedRawBolt11Invoice};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, quote};
use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentNotice, PendingInvoice,
};
use crate::domain::{Hash32, Msat, Secret};
use crate::store::Db;

const NAME: &str = "Buda.com";
/// Deposit pages read per pass, newest first. Paging also stops at deposits older than the
/// oldest invoice looked for.
const MAX_DEPOSIT_PAGES: u32 = 10;
/// How often the watcher reads the deposit listing while invoices are pending.
const POLL_EVERY: Duration = Duration::from_secs(10);
const DEPOSITS_PER_PAGE: u32 = 50;

/// One nonce sequence for the whole process: Buda refuses a nonce that does not grow, and two
/// backends configured with the same key must not race each other. Instances sharing a store
/// take their nonces from one sequence in it (see `sharing_nonces`), at least this one.
static LAST_NONCE: AtomicU64 = AtomicU64::new(0);

fn next_nonce() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    let mut last = LAST_NONCE.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_NONCE.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

pub struct BudaBackend {
    base: Url,
    api_key: Secret,
    api_secret: Secret,
    client: reqwest::Client,
    shared_nonces: Option<Db>,
}

#[derive(Serialize)]
struct NewInvoice<'a> {
    amount_satoshis: u64,
    currency: &'static str,
    memo: &'a str,
    expiry_seconds: u64,
}

#[derive(Deserialize)]
struct Created {
    invoice: CreatedInvoiceBody,
}

#[derive(Deserialize)]
struct CreatedInvoiceBody {
    id: serde_json::Value,
    encoded_payment_request: String,
}

#[derive(Deserialize)]
struct Deposits {
    deposits: Vec<Deposit>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    total_pages: u32,
}

#[derive(Deserialize)]
struct Deposit {
    state: String,
    #[serde(default)]
    amount: Option<(String, String)>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    deposit_data: Option<DepositData>,
}

#[derive(Deserialize)]
struct DepositData {
    #[serde(default)]
    invoice: Option<DepositInvoice>,
}

#[derive(Deserialize)]
struct DepositInvoice {
    encoded_payment_request: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
    #[serde(default)]
    code: Option<String>,
}

impl BudaBackend {
    pub fn new(
        base: Url,
        api_key: Secret,
        api_secret: Secret,
        network: InvoiceNetwork,
    ) -> BackendResult<Backend<Self>> {
        Ok(Backend::new(
            Capabilities {
                kind: "buda",
                description_hash: false,
                msat_precision: false,
                max_expiry: Duration::from_secs(24 * 3600),
                network,
                lookup_sees_unpaid: false,
                payments: PaymentNotice::Poll(POLL_EVERY),
            },
            Self {
                base,
                api_key,
                api_secret,
                client: http::client()?,
                shared_nonces: None,
            },
        ))
    }

    /// Takes nonces from `db`'s sequence for this API key, when the store is shared with other
    /// instances (every instance signs with the same key).
    pub fn sharing_nonces(mut self, db: Db) -> Self {
        self.shared_nonces = Some(db);
        self
    }

    async fn nonce(&self) -> BackendResult<u64> {
        let local = next_nonce();
        let Some(db) = &self.shared_nonces else {
            return Ok(local);
        };
        // Named by the key's hash: the key itself is a secret.
        let name = format!(
            "buda nonce {}",
            &Hash32::sha256(self.api_key.expose().as_bytes()).to_string()[..16]
        );
        let shared = db
            .next_in_sequence(&name, local)
            .await
            .map_err(|e| BackendError::Unavailable(format!("{NAME} nonce: {e}")))?;
        match shared {
            Some(nonce) => {
                LAST_NONCE.fetch_max(nonce, Ordering::AcqRel);
                Ok(nonce)
            }
            None => Ok(local),
        }
    }

    /// `hex(HMAC-SHA384(secret, msg))` over exactly what is sent.
    fn signature(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<&[u8]>,
        nonce: u64,
    ) -> String {
        let message = match body {
            Some(body) => format!(
                "{method} {path_and_query} {} {nonce}",
                base64::engine::general_purpose::STANDARD.encode(body)
            ),
            None => format!("{method} {path_and_query} {nonce}"),
        };
        let mut engine = hmac::HmacEngine::<sha384::Hash>::new(self.api_secret.expose().as_bytes());
        engine.input(message.as_bytes());
        hex::encode(hmac::Hmac::<sha384::Hash>::from_engine(engine).to_byte_array())
    }

    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> BackendResult<Vec<u8>> {
        let url = self
            .base
            .join(path_and_query.trim_start_matches('/'))
            .map_err(|e| BackendError::Rejected(format!("{NAME} URL: {e}")))?;
        // Sign the path the server will see, query included.
        let signed_path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let nonce = self.nonce().await?;
        let signature = self.signature(&method, &signed_path, body.as_deref(), nonce);
        let mut request = self
            .client
            .request(method, url)
            .header("X-SBTC-APIKEY", self.api_key.expose())
            .header("X-SBTC-NONCE", nonce.to_string())
            .header("X-SBTC-SIGNATURE", signature);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let (status, bytes) = http::exchange(NAME, request).await?;
        if !status.is_success() {
            return Err(Self::error(status, &bytes));
        }
        Ok(bytes)
    }

    fn error(status: StatusCode, body: &[u8]) -> BackendError {
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_default();
        let detail = parsed.map_or_else(|| quote(body), |e| format!("{} ({code})", e.message));
        match (status, code.as_str()) {
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _)
            | (_, "not_authorized" | "invalid_api_key") => {
                BackendError::Rejected(format!("{NAME} refused the API key or signature: {detail}"))
            }
            (s, _) => http::status_error(NAME, s, &detail),
        }
    }
}

/// The payment hash a BOLT11 string carries (Buda's answers do not state it separately).
fn payment_hash_of(bolt11: &str) -> Option<Hash32> {
    let invoice: SignedRawBolt11Invoice = bolt11.parse().ok()?;
    invoice
        .raw_invoice()
        .payment_hash()
        .map(|h| Hash32(h.0.to_byte_array()))
}

#[async_trait]
impl InvoiceBackend for BudaBackend {
    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::No("Buda.com makes BOLT11 deposit invoices only")
    }

    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let sats = super::whole_sats(NAME, request.amount)?;
        let InvoiceDescription::Memo(memo) = &request.description else {
            return Err(BackendError::Rejected(format!(
                "{NAME} cannot commit to a description hash"
            )));
        };
        let body = serde_json::to_vec(&NewInvoice {
            amount_satoshis: sats,
            currency: "BTC",
            memo,
            expiry_seconds: request.expiry.as_secs(),
        })
        .map_err(|e| BackendError::Protocol(e.to_string()))?;
        let bytes = self
            .call(
                Method::POST,
                "/api/v2/lightning_network_invoices",
                Some(body),
            )
            .await?;
        let created: Created = http::json(NAME, &bytes)?;
        Ok(CreatedInvoice {
            bolt11: created.invoice.encoded_payment_request,
            payment_hash: None,
            backend_ref: Some(created.invoice.id.to_string()),
        })
    }

    async fn lookup_invoice(&self, payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        let wanted = PendingInvoice {
            payment_hash: *payment_hash,
            bolt11: String::new(),
            created_at: 0,
        };
        Ok(self
            .find_paid(std::slice::from_ref(&wanted))
            .await?
            .pop()
            .map_or(InvoiceState::Unknown, |(_, state)| state))
    }

    /// One pass over the confirmed deposits, newest first, matching all of `pending` at once.
    async fn find_paid(
        &self,
        pending: &[PendingInvoice],
    ) -> BackendResult<Vec<(Hash32, InvoiceState)>> {
        let mut found = Vec::new();
        let Some(oldest) = pending.iter().map(|p| p.created_at).min() else {
            return Ok(found);
        };
        // Clocks differ a little; deposits cannot predate their invoice by more than that.
        let horizon = oldest.saturating_sub(300);
        for page in 1..=MAX_DEPOSIT_PAGES {
            let path = format!("/api/v2/currencies/btc/deposits?state=confirmed&per={DEPOSITS_PER_PAGE}&page={page}");
            let listing: Deposits = http::json(NAME, &self.call(Method::GET, &path, None).await?)?;
            let mut reached_horizon = false;
            for deposit in &listing.deposits {
                let created_at = deposit.created_at.as_deref().and_then(unix_time);
                if created_at.is_some_and(|at| at < horizon) {
                    reached_horizon = true;
                }
                let Some(hash) = deposit
                    .deposit_data
                    .as_ref()
                    .and_then(|d| d.invoice.as_ref())
                    .and_then(|i| payment_hash_of(&i.encoded_payment_request))
                else {
                    continue;
                };
                if !pending.iter().any(|p| p.payment_hash == hash) {
                    continue;
                }
                if deposit.state != "confirmed" {
                    continue;
                }
                let sats = deposit
                    .amount
                    .as_ref()
                    .and_then(|(btc, _)| parse_btc_to_sat(btc))
                    .and_then(Msat::from_sat)
                    .unwrap_or(Msat::from_msat(0));
                found.push((
                    hash,
                    InvoiceState::Paid {
                        preimage: None,
                        paid_at: created_at.unwrap_or(0),
                        amount_received: sats,
                    },
                ));
            }
            let last_page =
                listing.meta.is_none_or(|m| page >= m.total_pages) || listing.deposits.is_empty();
            if last_page || reached_horizon || found.len() == pending.len() {
                break;
            }
        }
        Ok(found)
    }
}

/// `"0.00021"` BTC in satoshis, exactly (no floating point).
fn parse_btc_to_sat(btc: &str) -> Option<u64> {
    let (whole, fraction) = btc.split_once('.').unwrap_or((btc, ""));
    if fraction.len() > 8
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = format!("{fraction:0<8}").parse().ok()?;
    whole.checked_mul(100_000_000)?.checked_add(fraction)
}

fn unix_time(text: &str) -> Option<u64> {
    let utc = text
        .strip_suffix("+00:00")
        .unwrap_or(text)
        .trim_end_matches('Z');
    humantime::parse_rfc3339_weak(utc)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Every decoder of Buda.com's answers, on arbitrary bytes (fuzzing): none may panic.
pub(super) fn fuzz_decode(body: &[u8]) {
    let _ = serde_json::from_slice::<Created>(body);
    let _ = BudaBackend::error(StatusCode::UNPROCESSABLE_ENTITY, body);
    if let Ok(listing) = serde_json::from_slice::<Deposits>(body) {
        for deposit in listing.deposits {
            let _ = deposit
                .amount
                .as_ref()
                .and_then(|(btc, _)| parse_btc_to_sat(btc));
            let _ = deposit.created_at.as_deref().and_then(unix_time);
            let _ = deposit
                .deposit_data
                .and_then(|d| d.invoice)
                .and_then(|i| payment_hash_of(&i.encoded_payment_request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_grow_strictly_even_when_called_at_once() {
        let a = next_nonce();
        let b = next_nonce();
        let c = next_nonce();
        assert!(a < b && b < c);
    }

    #[test]
    fn converts_btc_strings_to_satoshis_exactly() {
        assert_eq!(parse_btc_to_sat("0.00021"), Some(21_000));
        assert_eq!(parse_btc_to_sat("1"), Some(100_000_000));
        assert_eq!(parse_btc_to_sat("0.00000001"), Some(1));
        assert_eq!(parse_btc_to_sat("0.000000001"), None);
        assert_eq!(parse_btc_to_sat("-1"), None);
    }

    #[test]
    fn signs_the_documented_message() {
        let buda = BudaBackend::new(
            Url::parse(crate::config::DEFAULT_BUDA_URL).unwrap(),
            Secret::new("key"),
            Secret::new("secret"),
            InvoiceNetwork::Bitcoin,
        )
        .unwrap();
        let get = buda.signature(&Method::GET, "/api/v2/balances?x=1", None, 42);
        let mut engine = hmac::HmacEngine::<sha384::Hash>::new(b"secret");
        engine.input(b"GET /api/v2/balances?x=1 42");
        assert_eq!(
            get,
            hex::encode(hmac::Hmac::<sha384::Hash>::from_engine(engine).to_byte_array())
        );
        assert_eq!(get.len(), 96);
        let post = buda.signature(&Method::POST, "/api/v2/x", Some(b"{}"), 43);
        let mut engine = hmac::HmacEngine::<sha384::Hash>::new(b"secret");
        engine.input(b"POST /api/v2/x e30= 43");
        assert_eq!(
            post,
            hex::encode(hmac::Hmac::<sha384::Hash>::from_engine(engine).to_byte_array())
        );
    }
}
