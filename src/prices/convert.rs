//! Amounts between a currency and millisatoshis, exactly: integers and decimals, never floats.
//!
//! The rounding rule, stated once: **toward the payee**. A fiat amount becomes the smallest
//! number of millisatoshis worth at least that amount at the rate (rounded up), so the payee is
//! never paid less than the amount named; millisatoshi limits become the currency amounts they
//! are surely worth (a minimum rounded up, a maximum rounded down), so a payer who stays within
//! them is never refused.

use crate::domain::Decimal;
use crate::domain::Msat;

pub const MSAT_PER_BTC: u128 = 100_000_000_000;

/// A currency rayo can quote: ISO 4217 where there is a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    pub name: &'static str,
    pub symbol: &'static str,
    /// Digits of its smallest unit (cents: 2; Chilean and Japanese amounts: 0).
    pub decimals: u32,
}

const fn currency(
    code: &'static str,
    name: &'static str,
    symbol: &'static str,
    decimals: u32,
) -> Currency {
    Currency {
        code,
        name,
        symbol,
        decimals,
    }
}

pub const CURRENCIES: &[Currency] = &[
    currency("USD", "US Dollar", "$", 2),
    currency("EUR", "Euro", "€", 2),
    currency("GBP", "Pound Sterling", "£", 2),
    currency("CAD", "Canadian Dollar", "CA$", 2),
    currency("CHF", "Swiss Franc", "CHF", 2),
    currency("JPY", "Yen", "¥", 0),
    currency("AUD", "Australian Dollar", "A$", 2),
    currency("BRL", "Brazilian Real", "R$", 2),
    currency("MXN", "Mexican Peso", "MX$", 2),
    currency("ARS", "Argentine Peso", "ARS$", 2),
    currency("CLP", "Chilean Peso", "CLP$", 0),
    currency("COP", "Colombian Peso", "COL$", 2),
    currency("PEN", "Sol", "S/", 2),
    currency("USDC", "USD Coin", "USDC", 2),
];

impl Currency {
    /// The currency with this code (case-insensitive), if rayo knows it.
    pub fn find(code: &str) -> Option<&'static Currency> {
        CURRENCIES
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(code))
    }

    /// A positive amount written in this currency's unit ("5.00") in its smallest unit (500),
    /// with at most its decimals.
    pub fn minor_units(&self, written: &str) -> Result<u64, ValueError> {
        let value = Decimal::parse_at_most(written.trim(), self.decimals)
            .map_err(|e| ValueError::Malformed(e, self.code, self.decimals))?;
        let minor = value
            .units_at(self.decimals)
            .and_then(|m| u64::try_from(m).ok())
            .ok_or(ValueError::TooLarge)?;
        if minor == 0 {
            return Err(ValueError::Zero);
        }
        Ok(minor)
    }
}

/// Why a written amount is not one in a currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0} ({1} has {2} decimals)")]
    Malformed(crate::domain::DecimalError, &'static str, u32),
    #[error("must be more than zero")]
    Zero,
    #[error("too large")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("there is no usable price")]
    NoPrice,
    #[error("the amount is too large to convert")]
    TooLarge,
    #[error("the amount is worth more than all bitcoin")]
    MoreThanAllBitcoin,
}

fn pow10(exponent: u32) -> u128 {
    10u128.pow(exponent)
}

/// Millisatoshis for `minor` smallest units of `currency` at `price` (units of the currency per
/// bitcoin), rounded up.
pub fn to_msat(minor: u64, currency: &Currency, price: &Decimal) -> Result<Msat, ConvertError> {
    if price.is_zero() {
        return Err(ConvertError::NoPrice);
    }
    // msat = minor / 10^decimals / (units / 10^scale) * MSAT_PER_BTC
    let numerator = u128::from(minor)
        .checked_mul(MSAT_PER_BTC)
        .and_then(|n| n.checked_mul(pow10(price.scale())))
        .ok_or(ConvertError::TooLarge)?;
    let denominator = pow10(currency.decimals)
        .checked_mul(price.units())
        .ok_or(ConvertError::TooLarge)?;
    let msat = numerator.div_ceil(denominator);
    let msat = u64::try_from(msat).map_err(|_| ConvertError::MoreThanAllBitcoin)?;
    let msat = Msat::from_msat(msat);
    if msat > Msat::MAX_MONEY {
        return Err(ConvertError::MoreThanAllBitcoin);
    }
    Ok(msat)
}

/// The smallest units of `currency` that `msat` is worth at `price`, rounded down (`up`:
/// rounded up).
pub fn from_msat(msat: Msat, currency: &Currency, price: &Decimal, up: bool) -> Option<u64> {
    let numerator = u128::from(msat.msat())
        .checked_mul(pow10(currency.decimals))?
        .checked_mul(price.units())?;
    let denominator = MSAT_PER_BTC.checked_mul(pow10(price.scale()))?;
    let minor = if up {
        numerator.div_ceil(denominator)
    } else {
        numerator / denominator
    };
    u64::try_from(minor).ok()
}

/// Millisatoshis `value` (in the currency's unit, "5.00") is worth at `price`, rounded up or
/// down; `None` if it does not fit.
pub fn value_to_msat(value: &Decimal, price: &Decimal, up: bool) -> Option<u64> {
    if price.is_zero() {
        return None;
    }
    let numerator = value
        .units()
        .checked_mul(MSAT_PER_BTC)?
        .checked_mul(pow10(price.scale()))?;
    let denominator = pow10(value.scale()).checked_mul(price.units())?;
    let msat = if up {
        numerator.div_ceil(denominator)
    } else {
        numerator / denominator
    };
    u64::try_from(msat).ok()
}

/// Millisatoshis per smallest unit of `currency`, for display only (LNURL's `multiplier`, an
/// estimate by definition).
pub fn multiplier(currency: &Currency, price: &Decimal) -> f64 {
    if price.is_zero() {
        return 0.0;
    }
    let numerator = MSAT_PER_BTC as f64 * pow10(price.scale()) as f64;
    numerator / (pow10(currency.decimals) as f64 * price.units() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> &'static Currency {
        Currency::find("usd").unwrap()
    }

    #[test]
    fn five_dollars_at_a_hundred_thousand_is_five_thousand_sats() {
        let price = Decimal::parse("100000").unwrap();
        assert_eq!(
            to_msat(500, usd(), &price).unwrap(),
            Msat::from_msat(5_000_000)
        );
        let clp = Currency::find("CLP").unwrap();
        let price = Decimal::parse("90000000").unwrap();
        // 1000 CLP at 90,000,000 CLP/BTC: 1111.11... sats, rounded up to the msat.
        assert_eq!(
            to_msat(1000, clp, &price).unwrap(),
            Msat::from_msat(1_111_112)
        );
        assert_eq!(
            multiplier(usd(), &Decimal::parse("100000").unwrap()),
            10_000.0
        );
    }

    #[test]
    fn conversions_that_do_not_fit_are_errors() {
        let price = Decimal::parse("0.00000001").unwrap();
        assert_eq!(
            to_msat(u64::MAX, usd(), &price),
            Err(ConvertError::MoreThanAllBitcoin)
        );
        assert_eq!(
            to_msat(1, usd(), &Decimal::parse("0").unwrap()),
            Err(ConvertError::NoPrice)
        );
        let cheap = Decimal::parse("0.01").unwrap();
        assert_eq!(
            to_msat(u64::MAX / 1_000_000_000, usd(), &cheap),
            Err(ConvertError::MoreThanAllBitcoin)
        );
    }

    proptest! {
        /// Rounding toward the payee: the msat asked for are worth at least the amount named,
        /// and one msat less would not be.
        #[test]
        fn the_payee_gets_at_least_the_amount_named(minor in 1u64..10_000_000_000, units in 1u128..10u128.pow(15), scale in 0u32..=8) {
            let price = Decimal::new(units, scale);
            if let Ok(msat) = to_msat(minor, usd(), &price) {
                prop_assert!(from_msat(msat, usd(), &price, true).unwrap() >= minor);
                if msat.msat() > 0 {
                    let less = Msat::from_msat(msat.msat() - 1);
                    prop_assert!(from_msat(less, usd(), &price, false).unwrap() < minor);
                }
            }
        }

        #[test]
        fn limits_in_msat_round_inwards(msat in 1u64..2_100_000_000_000_000_000, units in 1u128..10u128.pow(15)) {
            let price = Decimal::new(units, 2);
            let (low, high) = (
                from_msat(Msat::from_msat(msat), usd(), &price, true),
                from_msat(Msat::from_msat(msat), usd(), &price, false),
            );
            if let (Some(low), Some(high)) = (low, high) {
                prop_assert!(low >= high && low - high <= 1);
            }
        }
    }
}
