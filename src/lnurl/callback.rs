//! The LNURL-pay callback: a wallet's query string (or the pay page's form) checked against
//! the payRequest it answers, into what the invoice must be.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::{LnurlError, PayProfile, Sendable};
use crate::backends::Capabilities;
use crate::domain::FiatAmount;
use crate::domain::{AmountError, Comment, InvoiceRecord, Msat, PayerData, SuccessAction};
use crate::invoices::Description;
use crate::nostr::ZapRequest;
use crate::prices::{AskError, PriceBook, ValueError, Written};

/// A wallet's `amount=<minor units>.<CODE>`, in millisatoshis, refused in a wallet's words.
fn in_currency(
    minor: &str,
    code: &str,
    prices: &PriceBook,
) -> Result<(Msat, FiatAmount), LnurlError> {
    prices
        .ask(code, Written::MinorUnits(minor))
        .map_err(|e| match e {
            AskError::NotOffered(shown) => {
                LnurlError::new(format!("Currency {shown} is not offered by this address"))
            }
            AskError::NoPrice(e) => LnurlError::new(format!("{e}; amounts in sats still work")),
            AskError::NotMinorUnits(_) => LnurlError::new(capitalised(&e.to_string())),
            AskError::Value(..) | AskError::OutOfRange(_) => {
                LnurlError::new(format!("Amount out of range: {e}"))
            }
        })
}

/// Zap requests are long, so 8 KiB of query must work; beyond that is abuse.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The callback's query, decoded exactly but not yet checked against a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub amount: Option<String>,
    pub comment: Option<String>,
    pub payer_data: Option<String>,
    pub nostr: Option<String>,
    /// The currency-conversion extension's `convert` (rayo settles in bitcoin only).
    pub convert: Option<String>,
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
            "convert" => &mut params.convert,
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

/// What the pay page's form names: whole sats, or an amount in the user's currency.
#[derive(Debug, Clone, Copy)]
pub enum FormAmount<'a> {
    Sats(&'a str),
    Currency(&'a str),
}

/// A payment a wallet asked for, checked against the recipient's payRequest: the amount
/// within its range, the comment within `commentAllowed`, payer data as asked, a zap request
/// that passes NIP-57's checks, and what the invoice must describe.
#[derive(Debug)]
pub struct PaymentRequest {
    pub amount: Msat,
    /// The currency amount the payer named, if they named one.
    pub fiat: Option<FiatAmount>,
    pub comment: Option<Comment>,
    pub description: Description,
}

impl PaymentRequest {
    /// From the callback's query string. An amount may be named in a currency the server
    /// offers (`amount=500.USD`: 500 of its smallest unit, as in lnurl/luds#251), converted at
    /// the current rate; plain millisatoshis work as always.
    pub fn from_query(
        query: &str,
        profile: &PayProfile,
        capabilities: &Capabilities,
        prices: &PriceBook,
    ) -> Result<Self, LnurlError> {
        let params = parse_callback_query(query)?;
        if params.convert.is_some() {
            return Err(LnurlError::new(
                "This address receives bitcoin only: it does not convert payments (convert)",
            ));
        }
        let raw = params
            .amount
            .as_deref()
            .ok_or(AmountError::Missing)
            .map_err(reason)?;
        // `<amount>.<CODE>`: a currency code is letters, so `1000.5` stays a (bad) msat amount.
        let (amount, fiat) = match raw.rsplit_once('.') {
            Some((minor, code))
                if !code.is_empty() && code.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                let (msat, fiat) = in_currency(minor, code, prices)?;
                (msat, Some(fiat))
            }
            _ => (Msat::parse(raw).map_err(reason)?, None),
        };
        let mut request = Self::new(
            amount,
            params.comment.as_deref(),
            params.payer_data.as_deref(),
            params.nostr.as_deref(),
            profile,
            capabilities,
            Sendable::for_callback(&profile.user, prices),
        )?;
        request.fiat = fiat;
        Ok(request)
    }

    /// From the pay page's form: sats, or an amount in the user's currency converted as the
    /// callback converts it, and a comment, checked as the callback checks them.
    pub fn from_form(
        amount: FormAmount<'_>,
        comment: Option<&str>,
        profile: &PayProfile,
        capabilities: &Capabilities,
        prices: &PriceBook,
    ) -> Result<Self, LnurlError> {
        let (amount, fiat) = match amount {
            FormAmount::Currency(raw) => {
                let code = profile
                    .user
                    .currency
                    .as_deref()
                    .filter(|code| prices.offered(code).is_some())
                    .ok_or_else(|| LnurlError::new("This address takes amounts in sats only."))?;
                let (msat, fiat) = prices.ask(code, Written::Decimal(raw)).map_err(|e| {
                    LnurlError::new(match e {
                        AskError::Value(currency, ValueError::Zero) => {
                            format!("Enter an amount in {} above zero.", currency.code)
                        }
                        AskError::Value(currency, _) => format!(
                            "Enter an amount in {} with at most {} decimals.",
                            currency.code, currency.decimals
                        ),
                        _ => format!(
                            "{}; amounts in sats still work.",
                            capitalised(&e.to_string())
                        ),
                    })
                })?;
                (msat, Some(fiat))
            }
            FormAmount::Sats(raw) => {
                let sats = raw
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&sats| sats > 0)
                    .and_then(Msat::from_sat)
                    .ok_or_else(|| LnurlError::new("Enter an amount in whole satoshis."))?;
                (sats, None)
            }
        };
        let range = Sendable::for_callback(&profile.user, prices);
        let mut request = Self::new(amount, comment, None, None, profile, capabilities, range)?;
        request.fiat = fiat;
        Ok(request)
    }

    fn new(
        amount: Msat,
        comment: Option<&str>,
        payer_data: Option<&str>,
        nostr: Option<&str>,
        profile: &PayProfile,
        capabilities: &Capabilities,
        range: Sendable,
    ) -> Result<Self, LnurlError> {
        let user = &profile.user;
        if let Some(held) = range.held {
            return Err(LnurlError::new(capitalised(&held.to_string())));
        }
        if amount < range.min {
            return Err(LnurlError::new(format!(
                "Amount too small: at least {} msat, got {} msat",
                range.min.msat(),
                amount.msat()
            )));
        }
        if amount > range.max {
            return Err(LnurlError::new(format!(
                "Amount too large: at most {} msat, got {} msat",
                range.max.msat(),
                amount.msat()
            )));
        }
        let comment =
            Comment::parse(comment.unwrap_or(""), user.comment_allowed).map_err(reason)?;
        let payer_data = payer_data
            .map(|raw| PayerData::parse(raw, &user.payer_data))
            .transpose()
            .map_err(reason)?;
        let zap =
            match nostr {
                Some(_) if !capabilities.description_hash => return Err(LnurlError::new(
                    "This address cannot receive zaps: its wallet cannot commit to a zap request",
                )),
                Some(raw) => Some(ZapRequest::parse(raw, amount.msat()).map_err(reason)?),
                None => None,
            };
        // What the invoice commits to: a zap request (NIP-57, which wins over payer data), or
        // LUD-06 metadata plus LUD-18 payer data if sent; a memo where the backend cannot
        // commit to a hash.
        let description = match (zap, payer_data) {
            (Some(zap), _) => Description::ZapRequest(zap.raw),
            _ if !capabilities.description_hash => Description::memo_or_description(None, user),
            (None, Some(payer_data)) => Description::MetadataAndPayerData {
                metadata: profile.metadata.clone(),
                payer_data,
            },
            (None, None) => Description::Metadata(profile.metadata.clone()),
        };
        Ok(Self {
            amount,
            fiat: None,
            comment,
            description,
        })
    }
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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

impl PayResponse {
    pub fn of(
        record: InvoiceRecord,
        success_action: Option<SuccessAction>,
        verify: String,
    ) -> Self {
        Self {
            pr: record.bolt11,
            routes: [],
            success_action,
            disposable: false,
            verify,
        }
    }
}

fn reason(e: impl std::fmt::Display) -> LnurlError {
    LnurlError::new(e.to_string())
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

    fn book() -> PriceBook {
        let book = PriceBook::new(
            vec![crate::prices::Currency::find("USD").unwrap()],
            crate::prices::Ticker::public(),
            crate::prices::PricePolicy::default(),
            std::sync::Arc::new(crate::clock::SystemClock),
        );
        for source in ["kraken", "coinbase"] {
            let reading = crate::prices::Reading {
                price: crate::domain::Decimal::new(100_000, 0),
                stated_at: None,
            };
            book.record("USD", source, Ok(reading));
        }
        book
    }

    proptest! {
        /// Whatever a wallet puts before and after the point, the answer is an amount or an
        /// error, never a panic.
        #[test]
        fn any_currency_amount_is_converted_or_refused(minor in "\\PC{0,30}", code in "[A-Za-z]{0,6}") {
            let _ = in_currency(&minor, &code, &book());
        }

        #[test]
        fn whole_units_of_an_offered_currency_convert_at_the_rate(cents in 1u64..1_000_000_000) {
            let (msat, fiat) = in_currency(&cents.to_string(), "usd", &book()).unwrap();
            // 1 cent at 100000 USD/BTC is exactly 10000 msat: already whole sats.
            prop_assert_eq!(msat.msat(), cents * 10_000);
            prop_assert_eq!(fiat.currency, "USD");
        }

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
