//! The `currencies` of a payRequest (lnurl/luds#251, kept by #298): each currency payers may
//! name an amount in, with the estimated millisatoshis per smallest unit and the user's limits
//! in that unit. Only currencies with a usable rate are listed; rayo does not convert, so none
//! is `convertible`.

use serde_json::{json, Value};

use crate::domain::User;
use crate::prices::{convert, PriceBook};

pub fn currencies(user: &User, prices: &PriceBook) -> Value {
    let listed: Vec<Value> = prices
        .currencies()
        .iter()
        .filter_map(|currency| {
            let rate = prices.rate(currency.code).ok()?;
            let min = convert::from_msat(user.min_sendable, currency, &rate.price, true)?;
            let max = convert::from_msat(user.max_sendable, currency, &rate.price, false)?;
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
