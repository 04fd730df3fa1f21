//! Exact decimals for prices and fiat amounts: an integer count of `10^-scale` units, parsed
//! from the decimal strings price APIs send and never through floating point.

use std::cmp::Ordering;
use std::fmt;

/// Fractional digits kept: prices and fiat amounts need far fewer, and the bound keeps every
/// conversion inside `u128`.
pub const MAX_SCALE: u32 = 8;
/// Digits before the point: a price of a bitcoin in any currency fits many times over.
const MAX_WHOLE_DIGITS: usize = 18;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    units: u128,
    scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    #[error("{0:?} has more than {1} digits after the point")]
    TooPrecise(String, u32),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl Decimal {
    pub const fn new(units: u128, scale: u32) -> Self {
        Self { units, scale }
    }

    /// A plain decimal string: digits, at most one point, no sign or exponent.
    pub fn parse(raw: &str) -> Result<Self, DecimalError> {
        Self::parse_at_most(raw, MAX_SCALE)
    }

    /// `parse`, refusing more than `max_scale` fractional digits (trailing zeros count too: a
    /// fiat amount of `5.000` USD is not how anyone writes cents).
    pub fn parse_at_most(raw: &str, max_scale: u32) -> Result<Self, DecimalError> {
        let shown = || raw.chars().take(40).collect::<String>();
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (raw.contains('.') && fraction.is_empty())
        {
            return Err(DecimalError::NotANumber(shown()));
        }
        if fraction.len() > max_scale as usize {
            return Err(DecimalError::TooPrecise(shown(), max_scale));
        }
        if whole.trim_start_matches('0').len() > MAX_WHOLE_DIGITS {
            return Err(DecimalError::TooLarge(shown()));
        }
        let units = format!("{whole}{fraction}")
            .parse::<u128>()
            .map_err(|_| DecimalError::TooLarge(shown()))?;
        Ok(Self {
            units,
            scale: fraction.len() as u32,
        })
    }

    /// A price as a JSON number some APIs send (Yadio, CoinGecko): its decimal text, rounded to
    /// `MAX_SCALE` digits (half up) where it has more. Never computed with as a float.
    pub fn from_json_number(number: &serde_json::Number) -> Result<Self, DecimalError> {
        let text = number.to_string();
        if text.contains(['e', 'E', '-']) {
            return Err(DecimalError::NotANumber(text));
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        if fraction.len() <= MAX_SCALE as usize {
            return Self::parse(&text);
        }
        let kept = Self::parse(&format!("{whole}.{}", &fraction[..MAX_SCALE as usize]))?;
        let round_up = fraction.as_bytes()[MAX_SCALE as usize] >= b'5';
        Ok(Self {
            units: kept.units + u128::from(round_up),
            scale: kept.scale,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.units == 0
    }

    pub fn units(&self) -> u128 {
        self.units
    }

    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// The same value with `scale` fractional digits (only ever more of them).
    fn at_scale(&self, scale: u32) -> Option<u128> {
        self.units
            .checked_mul(10u128.checked_pow(scale.checked_sub(self.scale)?)?)
    }

    /// The value in whole multiples of `10^-scale`, if `scale` is at least its own.
    pub fn units_at(&self, scale: u32) -> Option<u128> {
        self.at_scale(scale)
    }

    /// The mean of `self` and `other`, exact with one more digit where it needs one, rounded
    /// half up when already at the most digits a decimal holds.
    pub fn halfway_to(&self, other: &Decimal) -> Option<Decimal> {
        let scale = self.scale().max(other.scale());
        let sum = self.units_at(scale)?.checked_add(other.units_at(scale)?)?;
        if sum % 2 == 0 {
            Some(Decimal::new(sum / 2, scale))
        } else if scale < MAX_SCALE {
            Some(Decimal::new(sum.checked_mul(5)?, scale + 1))
        } else {
            Some(Decimal::new(sum.div_ceil(2), scale))
        }
    }

    /// How far `self` is from `other`, relative to `other`, in parts per million.
    pub fn distance_ppm(&self, other: &Decimal) -> Option<u128> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.at_scale(scale)?, other.at_scale(scale)?);
        if b == 0 {
            return None;
        }
        a.abs_diff(b).checked_mul(1_000_000).map(|d| d / b)
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        // Both fit at MAX_SCALE: parse bounds them.
        match (self.at_scale(scale), other.at_scale(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.scale.cmp(&other.scale),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.units);
        }
        let divisor = 10u128.pow(self.scale);
        write!(
            f,
            "{}.{:0width$}",
            self.units / divisor,
            self.units % divisor,
            width = self.scale as usize
        )
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From the string `Serialize` writes.
impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_strings_are_read_exactly() {
        assert_eq!(
            Decimal::parse("62480000.5").unwrap(),
            Decimal::new(624800005, 1)
        );
        assert_eq!(
            Decimal::parse("0.00000001").unwrap().to_string(),
            "0.00000001"
        );
        assert_eq!(Decimal::parse("5").unwrap().to_string(), "5");
        for bad in [
            "", ".", "5.", ".5", "-1", "1e5", "1,5", "1.2.3", " 1", "NaN", "<html>",
        ] {
            assert!(
                matches!(Decimal::parse(bad), Err(DecimalError::NotANumber(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Decimal::parse("1.123456789"),
            Err(DecimalError::TooPrecise(..))
        ));
        assert!(matches!(
            Decimal::parse(&"9".repeat(19)),
            Err(DecimalError::TooLarge(_))
        ));
        assert!(Decimal::parse("10").unwrap() > Decimal::parse("9.99").unwrap());
    }

    #[test]
    fn json_numbers_keep_their_written_digits() {
        let number: serde_json::Number = serde_json::from_str("96512.37").unwrap();
        assert_eq!(
            Decimal::from_json_number(&number).unwrap().to_string(),
            "96512.37"
        );
        let long: serde_json::Number = serde_json::from_str("0.123456789").unwrap();
        assert_eq!(
            Decimal::from_json_number(&long).unwrap().to_string(),
            "0.12345679"
        );
        let negative: serde_json::Number = serde_json::from_str("-1").unwrap();
        assert!(Decimal::from_json_number(&negative).is_err());
    }

    #[test]
    fn halfway_is_exact_with_one_more_digit_where_it_needs_one() {
        let d = |raw: &str| Decimal::parse(raw).unwrap();
        assert_eq!(d("100").halfway_to(&d("200")).unwrap().to_string(), "150");
        assert_eq!(d("100").halfway_to(&d("101")).unwrap().to_string(), "100.5");
        assert_eq!(
            d("96512.3").halfway_to(&d("96512.4")).unwrap().to_string(),
            "96512.35"
        );
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking(raw in "\\PC{0,40}") {
            let _ = Decimal::parse(&raw);
        }

        #[test]
        fn what_is_written_reads_back(units in 0u128..10u128.pow(18), scale in 0u32..=8) {
            let value = Decimal::new(units, scale);
            prop_assert_eq!(Decimal::parse(&value.to_string()).unwrap().cmp(&value), Ordering::Equal);
        }
    }
}
