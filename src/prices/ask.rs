//! An amount a payer names in a currency, to millisatoshis: the one rule behind a wallet's
//! `amount=500.CLP`, the pay form's currency field and the invoice API's `amount` object.
//! Each edge says the refusal in its own words; what is accepted, and how it is converted,
//! is decided here.

use super::{ConversionError, ConvertError, Currency, PriceBook, PriceError, ValueError};
use crate::domain::{FiatAmount, Msat};

/// How the amount was written.
#[derive(Debug, Clone, Copy)]
pub enum Written<'a> {
    /// In the currency's smallest unit, digits only: LNURL's `500.CLP`.
    MinorUnits(&'a str),
    /// As a decimal, such as `5.00`: the pay form and the invoice API.
    Decimal(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// The code as given, cleaned of control characters and cut to 12 characters: safe to
    /// show and to log.
    #[error("{0} is not offered")]
    NotOffered(String),
    #[error("an amount in {} must be a whole number of its smallest unit (e.g. 500.{})", .0.code, .0.code)]
    NotMinorUnits(&'static Currency),
    #[error("{1}")]
    Value(&'static Currency, ValueError),
    #[error(transparent)]
    NoPrice(PriceError),
    #[error("{0}")]
    OutOfRange(ConvertError),
}

impl PriceBook {
    /// `written` in the currency `code`, in millisatoshis at the current rate (rounded toward
    /// the payee), with the record of what was converted at which rate.
    pub fn ask(&self, code: &str, written: Written<'_>) -> Result<(Msat, FiatAmount), AskError> {
        let currency = self
            .offered(code)
            .ok_or_else(|| AskError::NotOffered(shown(code)))?;
        let minor = match written {
            Written::MinorUnits(digits) => {
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AskError::NotMinorUnits(currency));
                }
                digits
                    .parse()
                    .map_err(|_| AskError::Value(currency, ValueError::TooLarge))?
            }
            Written::Decimal(value) => currency
                .minor_units(value)
                .map_err(|e| AskError::Value(currency, e))?,
        };
        self.convert(currency, minor).map_err(|e| match e {
            ConversionError::Price(e) => AskError::NoPrice(e),
            ConversionError::Convert(e) => AskError::OutOfRange(e),
        })
    }
}

/// A code from a request, fit to show: no control characters, at most 12 characters.
fn shown(code: &str) -> String {
    code.chars().filter(|c| !c.is_control()).take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::{PricePolicy, Reading, Ticker};
    use std::sync::Arc;

    /// Pesos at 100,000,000 to the bitcoin, from two sources that agree: a peso is a sat.
    fn book_with_clp() -> PriceBook {
        let book = PriceBook::new(
            vec![Currency::find("CLP").unwrap()],
            Ticker::public(),
            PricePolicy::default(),
            Arc::new(crate::clock::SystemClock),
        );
        for source in ["buda", "yadio"] {
            let reading = Reading {
                price: crate::domain::Decimal::parse("100000000").unwrap(),
                stated_at: None,
            };
            book.record("CLP", source, Ok(reading));
        }
        book
    }

    #[test]
    fn an_offered_amount_converts_at_the_rate_either_way_it_is_written() {
        let book = book_with_clp();
        let (minor, _) = book.ask("clp", Written::MinorUnits("1000")).unwrap();
        let (decimal, fiat) = book.ask("CLP", Written::Decimal("1000")).unwrap();
        assert_eq!(minor, decimal);
        assert_eq!(minor, Msat::from_sat(1_000).unwrap());
        assert_eq!(fiat.currency, "CLP");
    }

    #[test]
    fn each_bad_amount_is_refused_for_its_own_reason() {
        let book = book_with_clp();
        assert_eq!(
            book.ask("X\u{1b}[31mY", Written::MinorUnits("1")),
            Err(AskError::NotOffered("X[31mY".into()))
        );
        assert!(matches!(
            book.ask("CLP", Written::MinorUnits("1.5")),
            Err(AskError::NotMinorUnits(_))
        ));
        assert!(matches!(
            book.ask("CLP", Written::MinorUnits("99999999999999999999999")),
            Err(AskError::Value(_, ValueError::TooLarge))
        ));
        assert!(matches!(
            book.ask("CLP", Written::Decimal("0")),
            Err(AskError::Value(_, ValueError::Zero))
        ));
        assert!(matches!(
            book.ask("CLP", Written::Decimal("1.5")),
            Err(AskError::Value(_, ValueError::Malformed(..)))
        ));
    }

    proptest::proptest! {
        #[test]
        fn no_written_amount_panics(code in "\\PC{0,16}", raw in "\\PC{0,32}") {
            let book = book_with_clp();
            let _ = book.ask(&code, Written::MinorUnits(&raw));
            let _ = book.ask(&code, Written::Decimal(&raw));
        }
    }
}
