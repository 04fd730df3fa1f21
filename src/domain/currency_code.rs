//! A currency's code, as a user's prices are set in: `USD`, `CLP`, `USDC`. Whether a server
//! offers it is the price book's question; this only says it is a code.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a currency code such as USD or CLP")]
pub struct CurrencyCodeError;

impl CurrencyCode {
    /// Three to five letters, in either case; kept in capitals.
    pub fn parse(raw: &str) -> Result<Self, CurrencyCodeError> {
        let code = raw.trim();
        if (3..=5).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(code.to_ascii_uppercase()))
        } else {
            Err(CurrencyCodeError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for CurrencyCode {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = CurrencyCodeError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<CurrencyCode> for String {
    fn from(code: CurrencyCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_three_to_five_letters_kept_in_capitals() {
        assert_eq!(CurrencyCode::parse(" clp ").unwrap().as_str(), "CLP");
        assert_eq!(CurrencyCode::parse("USDC").unwrap().as_str(), "USDC");
        for bad in ["", "US", "DOLLAR", "U$D", "12345", "ÜSD"] {
            assert_eq!(CurrencyCode::parse(bad), Err(CurrencyCodeError), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_code_or_refused(raw in "\\PC{0,12}") {
            if let Ok(code) = CurrencyCode::parse(&raw) {
                prop_assert_eq!(CurrencyCode::parse(code.as_str()), Ok(code));
            }
        }
    }
}
