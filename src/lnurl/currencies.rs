//! The `currencies` of a payRequest (lnurl/luds#251, kept by #298): each currency payers may
//! name an amount in, with the estimated millisatoshis per smallest unit and the user's limits
//! in that unit. Only currencies with a usable rate are listed; rayo does not convert, so none
//! is `convertible`.

use serde_json::{json, Value};

use super::Sendable;
use crate::domain::User;
use crate::prices::{convert, PriceBook};

/// The currencies payers may use for `user`, whose range is `range`: the user's own first
/// (the order says the recipient's preference).
pub fn currencies(user: &User, prices: &PriceBook, range: Sendable) -> Value {
    let mut offered: Vec<_> = prices.currencies().to_vec();
    offered.sort_by_key(|c| Some(c.code) != user.currency.as_deref());
    let listed: Vec<Value> = offered
        .iter()
        .filter_map(|currency| {
            let rate = prices.rate(currency.code).ok()?;
            let (min, max) = range.in_currency(currency, &rate.price)?;
            Some(json!({
                "code": currency.code,
                "name": currency.name,
                "symbol": currency.symbol,
                "decimals": currency.decimals,
                "multiplier": convert::multiplier(currency, &rate.price),
                "minSendable": min.max(1),
                "maxSendable": max,
            }))
        })
        .collect();
    Value::Array(listed)
}
