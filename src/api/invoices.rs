//! `/api/v1/invoices`: create, read and list a user's invoices.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{AppInvoiceView, Caller};
use crate::backends::InvoiceDescription;
use crate::domain::{
    AppFields, DescriptionSource, Hash32, HttpUrl, InvoiceRecord, Msat, Username, WebhookUrl,
};
use crate::error::ApiError;
use crate::limits::Origin;
use crate::lnurl::{memo_for, Issue, IssueError, Payments};

/// An app's metadata is echoed back, not interpreted; this much is plenty for an order id.
const MAX_METADATA_BYTES: usize = 4096;
const MAX_AMOUNT: Msat = Msat::MAX_MONEY;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvoice {
    /// Optional with an API key (its user); required with the admin token.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    amount_msat: Option<u64>,
    #[serde(default)]
    amount_sat: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expiry_secs: Option<u64>,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    return_url: Option<String>,
}

/// What the invoice API allows apps: the range `expiry_secs` is clamped to, and where the
/// webhook URLs they give may point.
#[derive(Debug, Clone)]
pub struct ExpiryRange {
    pub min: Duration,
    pub max: Duration,
    pub webhook_reach: crate::net::Reach,
}

pub fn view(payments: &Payments, record: &InvoiceRecord) -> AppInvoiceView {
    let mut view = AppInvoiceView::of(record, payments.clock.unix());
    let profile = payments.directory.get(&record.user);
    let public_url = match &profile {
        Some(profile) => payments.directory.public_url_for(&profile.user),
        None => payments.directory.public_url(),
    };
    view.verify_url = Some(
        payments
            .verify_key
            .url(public_url, &record.user, &record.payment_hash),
    );
    view.checkout_url = Some(public_url.join(&format!("/pay/{}", record.payment_hash)));
    view
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

/// An app's webhook URL: http(s), and (unless the operator allows otherwise) not a private
/// address. A name is checked again on the address it resolves to at each delivery.
fn webhook_url(raw: &str, reach: crate::net::Reach) -> Result<WebhookUrl, ApiError> {
    let url = WebhookUrl::parse(raw).map_err(|e| ApiError::invalid(format!("webhook_url: {e}")))?;
    crate::net::check_url(url.url(), reach).map_err(|e| {
        ApiError::invalid(format!(
            "webhook_url: {e}; webhooks from apps must reach public addresses"
        ))
    })?;
    Ok(url)
}

pub async fn create(
    req: HttpRequest,
    caller: Caller,
    payments: web::Data<Payments>,
    expiry: web::Data<ExpiryRange>,
    body: web::Json<NewInvoice>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = match (&body.user, &caller) {
        (Some(name), _) => {
            Username::parse(name).map_err(|e| ApiError::invalid(format!("user: {e}")))?
        }
        (None, Caller::App { user: own, .. }) => own.clone(),
        (None, Caller::Operator) => {
            return Err(ApiError::invalid("user: required with the admin token"))
        }
    };
    caller.may_act_for(&user)?;
    let admission = payments
        .admit(payments.limits.client(&req), Origin::Owner)
        .map_err(issue_error)?;
    let profile = payments
        .directory
        .get(&user)
        .ok_or_else(|| ApiError::not_found(format!("no user '{user}'")))?;
    let user_record = &profile.user;
    if user_record.disabled {
        return Err(conflict(format!("user '{user}' is disabled")));
    }
    let (backend_name, upstream) = payments
        .backends
        .get(user_record.backend.as_deref())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                "the user's backend is not configured",
            )
        })?;

    let amount = match (body.amount_msat, body.amount_sat) {
        (Some(msat), None) => Msat::from_msat(msat),
        (None, Some(sat)) => {
            Msat::from_sat(sat).ok_or_else(|| ApiError::invalid("amount_sat: too large"))?
        }
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of amount_msat or amount_sat",
            ))
        }
    };
    if amount.msat() == 0 || amount > MAX_AMOUNT {
        return Err(ApiError::invalid(format!(
            "amount: must be between 1 msat and {} msat",
            MAX_AMOUNT.msat()
        )));
    }
    if !upstream.capabilities().msat_precision && !amount.is_whole_sat() {
        return Err(ApiError::invalid(
            "amount: this user's backend makes whole-satoshi invoices only (a multiple of 1000 msat)",
        ));
    }
    let memo = match &body.description {
        Some(text) => {
            if text.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    "description: control characters are not allowed",
                ));
            }
            if text.len() > 639 {
                return Err(ApiError::invalid(
                    "description: at most 639 bytes (the BOLT11 limit)",
                ));
            }
            text.clone()
        }
        None => memo_for(&user_record.description),
    };
    let wanted = Duration::from_secs(body.expiry_secs.unwrap_or(expiry.max.as_secs().min(600)));
    let expiry_used = wanted.clamp(expiry.min, expiry.max);
    let webhook_url = body
        .webhook_url
        .as_deref()
        .map(|u| webhook_url(u, expiry.webhook_reach))
        .transpose()?;
    if webhook_url.is_some() && user_record.webhook_secret.is_none() {
        return Err(conflict(format!(
            "user '{user}' has no webhook secret to sign with; create one with `rayo user update {user} --rotate-webhook-secret`"
        )));
    }
    let return_url = body
        .return_url
        .as_deref()
        .map(|u| HttpUrl::parse(u).map_err(|e| ApiError::invalid(format!("return_url: {e}"))))
        .transpose()?;
    if let Some(metadata) = &body.metadata {
        if serde_json::to_vec(metadata).map_or(usize::MAX, |b| b.len()) > MAX_METADATA_BYTES {
            return Err(ApiError::invalid(format!(
                "metadata: at most {MAX_METADATA_BYTES} bytes of JSON"
            )));
        }
    }
    let app = AppFields {
        webhook_url,
        metadata: body.metadata,
        return_url,
    };
    let record = payments
        .issue(Issue {
            user: user_record,
            backend_name,
            upstream,
            amount,
            description: InvoiceDescription::Memo(Cow::Owned(memo.clone())),
            described_by: DescriptionSource::Memo { memo },
            comment: None,
            expiry: expiry_used,
            app: Some(app),
            admission,
        })
        .await
        .map_err(issue_error)?;
    Ok(HttpResponse::Created().json(CreatedView {
        invoice: view(&payments, &record),
        expiry_secs: record.expires_at.saturating_sub(record.created_at),
    }))
}

fn issue_error(e: IssueError) -> ApiError {
    match e {
            IssueError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "backend_timeout",
                "the backend did not answer in time",
            ),
            IssueError::Backend => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_failed",
                "the backend could not create an invoice; see the server log",
            ),
            IssueError::BadInvoice => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_invalid_invoice",
                "the backend returned an invoice that failed the checks; see the server log",
            ),
            IssueError::Store => ApiError::internal("the invoice could not be recorded"),
            IssueError::TooManyPending | IssueError::PayerShareUsed => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_pending",
                "this user has as many unpaid invoices as the server allows; wait for some to be paid or expire",
            ),
            IssueError::RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many invoices asked for from this address; slow down",
            ),
    }
}

#[derive(Serialize)]
struct CreatedView {
    #[serde(flatten)]
    invoice: AppInvoiceView,
    /// The expiry actually used, after clamping.
    expiry_secs: u64,
}

/// The invoice, if the caller may see it. Another user's invoice is "not found" to an app:
/// its existence is none of their business.
pub fn find(caller: &Caller, payments: &Payments, hash: &str) -> Result<InvoiceRecord, ApiError> {
    let hash: Hash32 = hash
        .parse()
        .map_err(|_| ApiError::invalid("payment_hash: 64 hex digits"))?;
    let record = payments
        .db
        .store()
        .invoice(&hash)
        .map_err(|e| {
            tracing::error!(error = %e, "could not read an invoice");
            ApiError::internal("the store failed; see the server log")
        })?
        .ok_or_else(|| ApiError::not_found("no such invoice"))?;
    match caller {
        Caller::App { user: own, .. } if own != &record.user => {
            Err(ApiError::not_found("no such invoice"))
        }
        _ => Ok(record),
    }
}

pub async fn show(
    caller: Caller,
    payments: web::Data<Payments>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&caller, &payments, &hash)?;
    Ok(HttpResponse::Ok().json(view(&payments, &record)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    user: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Page {
    invoices: Vec<AppInvoiceView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

pub async fn list(
    caller: Caller,
    payments: web::Data<Payments>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let user = match (&query.user, &caller) {
        (Some(name), _) => {
            let name =
                Username::parse(name).map_err(|e| ApiError::invalid(format!("user: {e}")))?;
            caller.may_act_for(&name)?;
            Some(name)
        }
        (None, Caller::App { user: own, .. }) => Some(own.clone()),
        (None, Caller::Operator) => None,
    };
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "paid" | "expired")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status '{other}': use pending, paid or expired"
            )))
        }
    };
    let cursor: Option<Hash32> = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::invalid("cursor: not a cursor from this API"))
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let now = payments.clock.unix();
    let records = payments
        .db
        .read(move |s| {
            s.invoices(
                user.as_ref(),
                cursor.as_ref(),
                &mut |r| {
                    status
                        .as_deref()
                        .is_none_or(|w| r.status_at(now).name() == w)
                },
                limit,
            )
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => ApiError::invalid("cursor: no such invoice"),
            other => {
                tracing::error!(error = %other, "could not list invoices");
                ApiError::internal("the store failed; see the server log")
            }
        })?;
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|r| r.payment_hash.to_hex()))
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        invoices: records.iter().map(|r| view(&payments, r)).collect(),
        next_cursor,
    }))
}
