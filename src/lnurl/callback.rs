//! The LNURL-pay callback: from a wallet's query string to a checked, stored invoice.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::invoice_check::{check_invoice, Expected};
use super::{PayProfile, VerifyKey, VerifyResponse};
use crate::backends::{Backends, InvoiceBackend, InvoiceDescription, InvoiceRequest};
use crate::clock::{random_bytes, Clock};
use crate::directory::Directory;
use crate::domain::ClientTag;
use crate::domain::{
    AmountError, AppFields, Comment, DescriptionSource, Hash32, InvoiceRecord, InvoiceStatus, Msat,
    PayerData, SuccessAction, Username,
};
use crate::error::LnurlError;
use crate::limits::{Admission, ClientKey, Origin, PendingCounts, PendingRefusal, RateLimits};
use crate::metrics::Metrics;
use crate::nostr::ZapRequest;
use crate::store::Db;

/// Zap requests are long, so 8 KiB of query must work; beyond that is abuse.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Memo invoices carry the description in `d`, which BOLT11 caps at 639 bytes.
const MAX_MEMO_BYTES: usize = 639;

/// The callback's query, decoded exactly but not yet checked against a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub amount: Option<String>,
    pub comment: Option<String>,
    pub payer_data: Option<String>,
    pub nostr: Option<String>,
}

/// Splits and percent-decodes the query (`+` is a space). Unknown parameters are ignored
/// (wallets send `nonce`, `lnurl`, ...); a known one given twice is refused, since either
/// reading of it could be wrong.
pub fn parse_callback_query(query: &str) -> Result<CallbackParams, LnurlError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(LnurlError::new(format!(
            "Query string too long: at most {MAX_QUERY_BYTES} bytes"
        )));
    }
    let mut params = CallbackParams::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_component(raw_key).ok_or_else(|| {
            LnurlError::new("Query parameter names must be valid percent-encoded UTF-8")
        })?;
        let slot = match key.as_ref() {
            "amount" => &mut params.amount,
            "comment" => &mut params.comment,
            "payerdata" => &mut params.payer_data,
            "nostr" => &mut params.nostr,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LnurlError::new(format!(
                "Parameter '{key}' given more than once"
            )));
        }
        let value = decode_component(raw_value).ok_or_else(|| {
            LnurlError::new(format!(
                "Parameter '{key}' is not valid percent-encoded UTF-8"
            ))
        })?;
        *slot = Some(value.into_owned());
    }
    Ok(params)
}

fn decode_component(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains(['+', '%']) {
        return Some(Cow::Borrowed(raw));
    }
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| Cow::Owned(s.into_owned()))
}

/// LUD-06 success answer, with LUD-09 and LUD-21 additions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayResponse {
    pub pr: String,
    pub routes: [(); 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_action: Option<SuccessAction>,
    pub disposable: bool,
    pub verify: String,
}

/// One invoice to make, for the callback or the invoice API.
pub struct Issue<'a> {
    pub user: &'a crate::domain::User,
    pub backend_name: &'a str,
    pub upstream: &'a Arc<dyn InvoiceBackend>,
    pub amount: Msat,
    pub description: InvoiceDescription<'a>,
    pub described_by: DescriptionSource,
    pub comment: Option<Comment>,
    pub expiry: Duration,
    pub app: Option<AppFields>,
    /// What the invoice rate limit said: no invoice is made without it.
    pub admission: Admission,
}

/// Why no invoice was made. The details went to the log; callers get these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueError {
    /// The client is over the invoice rate.
    RateLimited,
    Backend,
    Timeout,
    BadInvoice,
    Store,
    /// The user has as many unpaid invoices as the operator allows.
    TooManyPending,
    /// This payer holds its whole share of the user's unpaid invoices.
    PayerShareUsed,
}

impl IssueError {
    pub fn wallet_reason(&self) -> &'static str {
        match self {
            Self::Backend => "The recipient's wallet could not create an invoice; try again later",
            Self::Timeout => "The recipient's wallet did not answer in time; try again later",
            Self::BadInvoice => "The recipient's wallet returned an invalid invoice",
            Self::Store => "The invoice could not be recorded; try again later",
            Self::RateLimited => RATE_LIMITED,
            Self::TooManyPending => {
                "This address has too many unpaid invoices right now; try again later"
            }
            Self::PayerShareUsed => {
                "You have too many unpaid invoices for this address; pay or let some expire first"
            }
        }
    }
}

/// The reason a wallet gets when its client is over the invoice rate.
pub const RATE_LIMITED: &str = "Too many requests from your address; try again in a minute";

/// Everything the callback and verify need.
pub struct Payments {
    pub directory: Arc<Directory>,
    pub backends: Backends,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub verify_key: VerifyKey,
    pub backend_timeout: Duration,
    pub invoice_expiry: Duration,
    pub metrics: Arc<Metrics>,
    pub pending: Arc<PendingCounts>,
    /// Backend calls in flight at once; more wait (within the backend timeout) for a slot, so
    /// a slow upstream cannot pile up connections and memory.
    pub backend_slots: Arc<tokio::sync::Semaphore>,
    /// The invoice rate limit every route that makes an invoice passes.
    pub limits: Arc<RateLimits>,
    /// Keys the tags that tell payers apart (`ClientTag`).
    pub client_tag_key: [u8; 32],
}

impl Payments {
    /// The user behind an address's local part on the domain `host` asked for, if they are
    /// taking payments.
    pub fn profile(&self, host: Option<&str>, name: &str) -> Result<Arc<PayProfile>, LnurlError> {
        let profile = Username::from_address(name)
            .ok()
            .and_then(|name| self.directory.get_on(host, &name))
            .ok_or_else(|| LnurlError::new("Unknown user"))?;
        if profile.user.disabled {
            return Err(LnurlError::new("This address is not accepting payments"));
        }
        Ok(profile)
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

    pub async fn callback(
        &self,
        client: Option<ClientKey>,
        host: Option<&str>,
        name: &str,
        query: &str,
    ) -> Result<PayResponse, LnurlError> {
        self.callback_for(client, host, name, query)
            .await
            .map(|(response, _)| response)
    }

    /// The callback, also saying which invoice it made (for the pay page).
    pub async fn callback_for(
        &self,
        client: Option<ClientKey>,
        host: Option<&str>,
        name: &str,
        query: &str,
    ) -> Result<(PayResponse, Hash32), LnurlError> {
        // First: whatever follows (a zap request's signature, a backend call, a durable
        // write) costs more than refusing.
        let admission = self
            .admit(client, Origin::Payer)
            .map_err(|e| LnurlError::new(e.wallet_reason()))?;
        let params = parse_callback_query(query)?;
        let profile = self.profile(host, name)?;
        let user = &profile.user;
        let Some((backend_name, upstream)) = self.backends.get(user.backend.as_deref()) else {
            tracing::error!(user = %user.name, backend = ?user.backend, "the user's backend is not configured");
            return Err(LnurlError::new(
                "This address cannot receive payments right now",
            ));
        };
        let capabilities = upstream.capabilities();

        let amount = Msat::parse(
            params
                .amount
                .as_deref()
                .ok_or(AmountError::Missing)
                .map_err(reason)?,
        )
        .map_err(reason)?;
        if amount < user.min_sendable {
            return Err(LnurlError::new(format!(
                "Amount too small: at least {} msat, got {} msat",
                user.min_sendable.msat(),
                amount.msat()
            )));
        }
        if amount > user.max_sendable {
            return Err(LnurlError::new(format!(
                "Amount too large: at most {} msat, got {} msat",
                user.max_sendable.msat(),
                amount.msat()
            )));
        }
        if !capabilities.msat_precision && !amount.is_whole_sat() {
            return Err(LnurlError::new(
                "Amount must be a whole number of satoshis (a multiple of 1000 msat) for this address",
            ));
        }
        let comment = Comment::parse(
            params.comment.as_deref().unwrap_or(""),
            user.comment_allowed,
        )
        .map_err(reason)?;
        let payer_data = params
            .payer_data
            .as_deref()
            .map(|raw| PayerData::parse(raw, &user.payer_data))
            .transpose()
            .map_err(reason)?;

        let zap =
            match params.nostr.as_deref() {
                Some(_) if !capabilities.description_hash => return Err(LnurlError::new(
                    "This address cannot receive zaps: its wallet cannot commit to a zap request",
                )),
                Some(raw) => Some(ZapRequest::parse(raw, amount.msat()).map_err(reason)?),
                None => None,
            };

        // What the invoice commits to: a zap request (NIP-57, which wins over payer data), or
        // LUD-06 metadata plus LUD-18 payer data if sent.
        let metadata = &profile.metadata;
        let (description, described_by) = if let Some(zap) = zap {
            (
                InvoiceDescription::Hash {
                    hash: Hash32::sha256(zap.raw.as_bytes()),
                    text: Cow::Owned(zap.raw.clone()),
                },
                DescriptionSource::ZapRequest { request: zap.raw },
            )
        } else if !capabilities.description_hash {
            let memo = memo_for(&user.description);
            (
                InvoiceDescription::Memo(Cow::Owned(memo.clone())),
                DescriptionSource::Memo { memo },
            )
        } else if let Some(payer_data) = payer_data {
            let text = format!("{}{}", metadata.as_str(), payer_data.as_str());
            let hash = metadata.hash_with(&payer_data);
            (
                InvoiceDescription::Hash {
                    hash,
                    text: Cow::Owned(text),
                },
                DescriptionSource::MetadataAndPayerData {
                    metadata_hash: metadata.hash(),
                    payer_data: payer_data.into_string(),
                },
            )
        } else {
            (
                InvoiceDescription::Hash {
                    hash: metadata.hash(),
                    text: Cow::Borrowed(metadata.as_str()),
                },
                DescriptionSource::Metadata {
                    metadata_hash: metadata.hash(),
                },
            )
        };
        let record = self
            .issue(Issue {
                user,
                backend_name,
                upstream,
                amount,
                description,
                described_by,
                comment,
                expiry: self.invoice_expiry,
                app: None,
                admission,
            })
            .await
            .map_err(|e| LnurlError::new(e.wallet_reason()))?;
        let verify = self.verify_key.url(
            self.directory.public_url_for(user),
            &user.name,
            &record.payment_hash,
        );
        let response = PayResponse {
            pr: record.bolt11,
            routes: [],
            success_action: user.success_action.clone(),
            disposable: false,
            verify,
        };
        Ok((response, record.payment_hash))
    }

    /// Asks the user's backend for an invoice, checks what comes back (signature, amount,
    /// description, network, payment hash, expiry), and stores it. Durable before visible:
    /// nobody sees the invoice before its record is on disk.
    pub async fn issue(&self, issue: Issue<'_>) -> Result<InvoiceRecord, IssueError> {
        let Issue {
            user,
            backend_name: backend,
            upstream,
            amount,
            description,
            described_by,
            comment,
            expiry,
            app,
            admission,
        } = issue;
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
        let capabilities = upstream.capabilities();
        let description_hash = match &description {
            InvoiceDescription::Hash { hash, .. } => Some(*hash),
            InvoiceDescription::Memo(_) => None,
        };
        let label = format!("rayo:{}:{}", user.name, hex::encode(&random_bytes()[..8]));
        let request = InvoiceRequest {
            amount,
            description,
            expiry: expiry.min(capabilities.max_expiry),
            label: &label,
        };
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.backend_timeout, async {
            let _slot = self.backend_slots.acquire().await;
            upstream.create_invoice(request).await
        })
        .await;
        let outcome = match &answer {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        };
        self.metrics
            .backend_call(backend, outcome, started.elapsed());
        let created = match answer {
            Ok(Ok(created)) => created,
            Ok(Err(e)) => {
                tracing::warn!(backend, user = %user.name, error = %e, "backend could not create an invoice");
                return Err(IssueError::Backend);
            }
            Err(_) => {
                tracing::warn!(backend, user = %user.name, timeout_ms = self.backend_timeout.as_millis() as u64, "backend timed out creating an invoice");
                return Err(IssueError::Timeout);
            }
        };

        let memo = match &described_by {
            DescriptionSource::Memo { memo } => Some(memo.as_str()),
            _ => None,
        };
        let expected = Expected {
            amount,
            description_hash,
            memo,
            network: capabilities.network.clone(),
            payment_hash: created.payment_hash,
            now: self.clock.now(),
        };
        let checked = check_invoice(&created.bolt11, &expected).map_err(|e| {
            tracing::error!(backend, user = %user.name, problem = %e, "backend returned a bad invoice; refused it");
            IssueError::BadInvoice
        })?;

        let record = InvoiceRecord {
            payment_hash: created.payment_hash,
            user: user.name.clone(),
            amount_msat: amount,
            bolt11: created.bolt11,
            description_hash,
            described_by,
            comment,
            status: InvoiceStatus::Pending,
            created_at: self.clock.unix(),
            expires_at: checked.expires_at,
            backend: backend.to_owned(),
            backend_kind: upstream.kind().to_owned(),
            backend_ref: created.backend_ref,
            app,
            payer,
        };
        // (The metadata it refers to was stored when the profile was built.)
        let record = self
            .db
            .commit(move |store| store.insert_invoice(&record).map(|()| record))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not store an invoice");
                IssueError::Store
            })?;
        Metrics::count(&self.metrics.invoices_created, backend);
        reservation.keep();
        Ok(record)
    }

    /// The tag that tells this payer apart, keyed so it says nothing about who they are.
    pub fn client_tag(&self, client: ClientKey) -> ClientTag {
        let digest = crate::clock::hmac_sha256(&self.client_tag_key, &client.bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        ClientTag(u64::from_be_bytes(first))
    }

    /// LUD-21: whether the invoice behind a verify URL is paid.
    pub fn verify(
        &self,
        name: &str,
        payment_hash: &str,
        tag: &str,
    ) -> Result<VerifyResponse, LnurlError> {
        let not_found = || LnurlError::new("Not found");
        let hash: Hash32 = payment_hash.parse().map_err(|_| not_found())?;
        if !self.verify_key.accepts(&hash, tag) {
            return Err(not_found());
        }
        let user = Username::from_address(name).map_err(|_| not_found())?;
        let invoice = self
            .db
            .store()
            .invoice(&hash)
            .map_err(|e| {
                tracing::error!(error = %e, "could not read an invoice");
                LnurlError::new("Temporarily unavailable")
            })?
            .filter(|invoice| invoice.user == user)
            .ok_or_else(not_found)?;
        Ok(VerifyResponse::of(&invoice))
    }
}

fn reason(e: impl std::fmt::Display) -> LnurlError {
    LnurlError::new(e.to_string())
}

/// The user's description, made safe for a BOLT11 `d` field.
pub fn memo_for(description: &str) -> String {
    let mut memo: String = description.chars().filter(|c| !c.is_control()).collect();
    if memo.len() > MAX_MEMO_BYTES {
        let mut cut = MAX_MEMO_BYTES;
        while !memo.is_char_boundary(cut) {
            cut -= 1;
        }
        memo.truncate(cut);
    }
    memo
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_plus_and_percent_and_ignores_unknown_parameters() {
        let p =
            parse_callback_query("amount=1000&comment=hello+w%C3%B6rld&nonce=1&lnurl=x").unwrap();
        assert_eq!(p.amount.as_deref(), Some("1000"));
        assert_eq!(p.comment.as_deref(), Some("hello wörld"));
    }

    #[test]
    fn refuses_duplicates_bad_encoding_and_huge_queries() {
        assert!(parse_callback_query("amount=1&amount=2").is_err());
        assert!(parse_callback_query("amount=1&comment=%FF").is_err());
        assert!(
            parse_callback_query(&format!("amount=1&x={}", "a".repeat(MAX_QUERY_BYTES))).is_err()
        );
        assert!(
            parse_callback_query(&format!("amount=1&x={}", "a".repeat(MAX_QUERY_BYTES - 11)))
                .is_ok()
        );
    }

    #[test]
    fn memos_fit_in_bolt11() {
        assert_eq!(memo_for(&"é".repeat(400)).len(), 638);
        assert_eq!(memo_for("a\u{7}b"), "ab");
    }

    proptest! {
        #[test]
        fn query_parsing_never_panics(q in "[a-z=&%+0-9A-F\\PC]{0,300}") {
            let _ = parse_callback_query(&q);
        }

        #[test]
        fn amounts_survive_the_query_round_trip(n in any::<u64>()) {
            let parsed = parse_callback_query(&format!("amount={n}")).unwrap();
            prop_assert_eq!(Msat::parse(parsed.amount.as_deref().unwrap()), Ok(Msat::from_msat(n)));
        }
    }
}
