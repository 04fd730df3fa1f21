//! `POST /api/v1/invoices`: the body an app sends, parsed into domain types once.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde::Deserialize;

use super::ApiPolicy;
use crate::domain::{AppFields, FiatAmount, HttpUrl, Memo, Msat, User, Username, WebhookUrl};
use crate::net::WebhookUrlError;
use crate::prices::{AskError, PriceBook, Written};
use crate::routes::errors::ApiError;
use crate::routes::Caller;

/// An app's metadata is echoed back, not interpreted; this much is plenty for an order id.
const MAX_METADATA_BYTES: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Optional with an API key (its user); required with the admin token.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    amount_msat: Option<u64>,
    #[serde(default)]
    amount_sat: Option<u64>,
    /// An amount in a currency the server offers: `{"currency": "USD", "value": "5.00"}`.
    #[serde(default)]
    amount: Option<CurrencyAmount>,
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

/// An amount named in a currency. The value is a decimal string, never a JSON number: a float
/// cannot hold every amount exactly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrencyAmount {
    currency: String,
    value: serde_json::Value,
}

/// What an app asked for, checked.
pub struct Order {
    pub amount: Msat,
    /// The currency amount it was named in, and the rate used.
    pub fiat: Option<FiatAmount>,
    /// `None`: the user's own description.
    pub memo: Option<Memo>,
    /// As asked, within the operator's range.
    pub expiry: Duration,
    pub app: AppFields,
}

impl CreateBody {
    /// The user the invoice is for: named, or the API key's own.
    pub fn user(&self, caller: &Caller) -> Result<Username, ApiError> {
        let user = match (&self.user, caller.own_user()) {
            (Some(name), _) => {
                Username::parse(name).map_err(|e| ApiError::invalid(format!("user: {e}")))?
            }
            (None, Some(own)) => own.clone(),
            (None, None) => return Err(ApiError::invalid("user: required with the admin token")),
        };
        caller.may_act_for(&user)?;
        Ok(user)
    }

    /// `prices` converts an amount in a currency.
    pub fn order(
        self,
        user: &User,
        policy: &ApiPolicy,
        prices: &PriceBook,
    ) -> Result<Order, ApiError> {
        let (amount, fiat) = match (self.amount_msat, self.amount_sat, self.amount) {
            (Some(msat), None, None) => (Msat::from_msat(msat), None),
            (None, Some(sat), None) => (
                Msat::from_sat(sat).ok_or_else(|| ApiError::invalid("amount_sat: too large"))?,
                None,
            ),
            (None, None, Some(named)) => {
                let (msat, fiat) = named.convert(prices)?;
                (msat, Some(fiat))
            }
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of amount_msat, amount_sat or amount",
                ))
            }
        };
        let memo = self
            .description
            .as_deref()
            .map(|text| {
                Memo::parse(text).map_err(|e| ApiError::invalid(format!("description: {e}")))
            })
            .transpose()?;
        let wanted = Duration::from_secs(
            self.expiry_secs
                .unwrap_or(policy.expiry_max.as_secs().min(600)),
        );
        let webhook_url = self
            .webhook_url
            .as_deref()
            .map(|url| webhook_url(url, policy))
            .transpose()?;
        if webhook_url.is_some() && user.webhook_secret.is_none() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "user '{}' has no webhook secret to sign with; create one with `rayo user update {} --rotate-webhook-secret`",
                    user.name, user.name
                ),
            ));
        }
        let return_url = self
            .return_url
            .as_deref()
            .map(|u| HttpUrl::parse(u).map_err(|e| ApiError::invalid(format!("return_url: {e}"))))
            .transpose()?;
        if let Some(metadata) = &self.metadata {
            if serde_json::to_vec(metadata).map_or(usize::MAX, |b| b.len()) > MAX_METADATA_BYTES {
                return Err(ApiError::invalid(format!(
                    "metadata: at most {MAX_METADATA_BYTES} bytes of JSON"
                )));
            }
        }
        Ok(Order {
            amount,
            fiat,
            memo,
            expiry: wanted.clamp(policy.expiry_min, policy.expiry_max),
            app: AppFields {
                webhook_url,
                metadata: self.metadata,
                return_url,
            },
        })
    }
}

impl CurrencyAmount {
    fn convert(&self, prices: &PriceBook) -> Result<(Msat, FiatAmount), ApiError> {
        let value = self.value.as_str().ok_or_else(|| {
            ApiError::invalid("amount.value: a decimal string such as \"5.00\", not a number")
        })?;
        prices
            .ask(&self.currency, Written::Decimal(value))
            .map_err(|e| match e {
                AskError::NotOffered(shown) => ApiError::invalid(format!(
                    "amount.currency: {shown} is not offered by this server"
                )),
                AskError::NotMinorUnits(_) | AskError::Value(..) => {
                    ApiError::invalid(format!("amount.value: {e}"))
                }
                AskError::NoPrice(e) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_price",
                    format!("{e}; amounts in msat still work"),
                ),
                AskError::OutOfRange(e) => ApiError::invalid(format!("amount: {e}")),
            })
    }
}

/// An app's webhook URL, refused in an app's words.
fn webhook_url(raw: &str, policy: &ApiPolicy) -> Result<WebhookUrl, ApiError> {
    crate::net::webhook_url(raw, policy.webhook_reach).map_err(|e| {
        ApiError::invalid(match e {
            WebhookUrlError::Malformed(e) => format!("webhook_url: {e}"),
            WebhookUrlError::Private(e) => {
                format!("webhook_url: {e}; webhooks from apps must reach public addresses")
            }
        })
    })
}
