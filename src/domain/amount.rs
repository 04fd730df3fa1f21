use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in millisatoshis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Msat(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("Missing amount: add ?amount=<millisatoshis>")]
    Missing,
    #[error("Empty amount: give the amount in millisatoshis")]
    Empty,
    #[error("Invalid amount: give a whole number of millisatoshis, digits only")]
    NotDecimal,
    #[error("Amount too large")]
    TooLarge,
}

impl Msat {
    /// 21 million bitcoin: no amount can be larger, and asking for more is a mistake.
    pub const MAX_MONEY: Msat = Msat(21_000_000 * 100_000_000 * 1000);

    pub const fn from_msat(msat: u64) -> Self {
        Self(msat)
    }

    pub const fn from_sat(sat: u64) -> Option<Self> {
        match sat.checked_mul(1000) {
            Some(msat) => Some(Self(msat)),
            None => None,
        }
    }

    /// Parses the `amount` query value: decimal digits only. Signs, fractions, exponents, hex
    /// and whitespace are refused rather than interpreted, because the wallet checks that the
    /// invoice carries exactly the number it sent.
    pub fn parse(raw: &str) -> Result<Self, AmountError> {
        if raw.is_empty() {
            return Err(AmountError::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotDecimal);
        }
        raw.parse::<u64>()
            .map(Self)
            .map_err(|_| AmountError::TooLarge)
    }

    pub const fn msat(self) -> u64 {
        self.0
    }

    pub const fn is_whole_sat(self) -> bool {
        self.0.is_multiple_of(1000)
    }

    pub const fn whole_sats(self) -> u64 {
        self.0 / 1000
    }

    /// Sats as a plain decimal, with up to three places (invoices may be for fractions of a
    /// satoshi): "21", "1.5", "0.001".
    pub fn sats_decimal(self) -> String {
        if self.is_whole_sat() {
            self.whole_sats().to_string()
        } else {
            format!("{}.{:03}", self.0 / 1000, self.0 % 1000)
                .trim_end_matches('0')
                .to_owned()
        }
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_whole_sat() {
            write!(f, "{} sat", self.0 / 1000)
        } else {
            write!(f, "{} msat", self.0)
        }
    }
}

impl fmt::Debug for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}msat", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_everything_but_plain_digits() {
        assert_eq!(Msat::parse(""), Err(AmountError::Empty));
        for bad in ["-1", "+1", "1.5", "1e3", "0x10", " 1", "1 ", "١٢", "1_000"] {
            assert_eq!(Msat::parse(bad), Err(AmountError::NotDecimal), "{bad:?}");
        }
        assert_eq!(
            Msat::parse("18446744073709551616"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Msat::parse("18446744073709551615"), Ok(Msat(u64::MAX)));
        assert_eq!(Msat::parse("0021000"), Ok(Msat(21000)));
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_decimal_integers(n in any::<u64>()) {
            prop_assert_eq!(Msat::parse(&n.to_string()), Ok(Msat(n)));
        }

        #[test]
        fn anything_accepted_is_all_digits(raw in "\\PC{0,24}") {
            if let Ok(amount) = Msat::parse(&raw) {
                prop_assert!(raw.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(raw.trim_start_matches('0').parse::<u64>().unwrap_or(0), amount.msat());
            }
        }
    }
}
