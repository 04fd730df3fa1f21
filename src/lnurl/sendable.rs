//! How much a user can be paid: their millisatoshi limits, narrowed by limits in their
//! currency at the current rate (`user add shop --currency CLP --min 1000 --max 500000`).
//! The operator set those limits in the currency, so they are never silently dropped: while no
//! rate can be had the last good one enforces them for a while (`PricePolicy::limits_grace`),
//! and after that the user cannot be paid (`held`) until there is a rate again. The payRequest
//! still answers meanwhile.

use crate::domain::{Decimal, Msat, User};
use crate::prices::{convert, LimitsUnenforceable, PriceBook};

/// A callback may come a little after its payRequest, at a rate that moved meanwhile: limits
/// from a currency are checked this much wider (parts per thousand).
const RATE_SLACK_PER_MILLE: u64 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sendable {
    pub min: Msat,
    pub max: Msat,
    /// Whether a currency's limits narrowed the millisatoshi ones.
    pub from_currency: bool,
    /// Why the user cannot be paid now, if they cannot: limits in a currency with no rate.
    pub held: Option<LimitsUnenforceable>,
}

impl Sendable {
    /// The user's range now.
    pub fn of(user: &User, prices: &PriceBook) -> Self {
        let plain = Self {
            min: user.min_sendable,
            max: user.max_sendable,
            from_currency: false,
            held: None,
        };
        let Some(code) = user.currency.as_deref() else {
            return plain;
        };
        if user.fiat_min.is_none() && user.fiat_max.is_none() {
            return plain;
        }
        let rate = match prices.limits_rate(code) {
            Ok(rate) => rate,
            Err(held) => {
                return Self {
                    held: Some(held),
                    ..plain
                }
            }
        };
        let mut range = plain.clone();
        if let Some(min) =
            (user.fiat_min.as_ref()).and_then(|v| convert::value_to_msat(v, &rate.price, true))
        {
            range.min = range.min.max(Msat::from_msat(min));
            range.from_currency = true;
        }
        // Rounded up too: the limit itself must be payable, and the callback converts it rounding up.
        if let Some(max) =
            (user.fiat_max.as_ref()).and_then(|v| convert::value_to_msat(v, &rate.price, true))
        {
            range.max = range.max.min(Msat::from_msat(max));
            range.from_currency = true;
        }
        if range.min > range.max {
            tracing::warn!(user = %user.name, "the user's currency limits leave no amount within their msat limits; using the msat limits");
            return plain;
        }
        range
    }

    /// The smallest and largest amounts in `currency`'s smallest unit whose conversion at
    /// `price` (rounded up, as the callback converts) falls within this range.
    pub fn in_currency(
        &self,
        currency: &crate::prices::Currency,
        price: &Decimal,
    ) -> Option<(u64, u64)> {
        let converts = |minor: u64| convert::to_msat(minor, currency, price).ok();
        let mut min = convert::from_msat(self.min, currency, price, false)?;
        while converts(min).is_some_and(|msat| msat < self.min) {
            min += 1;
        }
        let mut max = convert::from_msat(self.max, currency, price, false)?;
        while max > 0 && converts(max).is_none_or(|msat| msat > self.max) {
            max -= 1;
        }
        Some((min, max))
    }

    /// The range a callback is checked against: a currency's limits a little wider, never
    /// beyond the millisatoshi limits.
    pub fn for_callback(user: &User, prices: &PriceBook) -> Self {
        let range = Self::of(user, prices);
        if !range.from_currency {
            return range;
        }
        let slack = |msat: Msat| msat.msat() / 1000 * RATE_SLACK_PER_MILLE;
        Self {
            min: Msat::from_msat(range.min.msat().saturating_sub(slack(range.min)))
                .max(user.min_sendable),
            max: Msat::from_msat(range.max.msat().saturating_add(slack(range.max)))
                .min(user.max_sendable),
            from_currency: true,
            held: None,
        }
    }
}
