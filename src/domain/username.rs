use std::fmt;

use serde::{Deserialize, Serialize};

/// Names nobody may register: they would collide with routes, or impersonate the operator.
const RESERVED: &[&str] = &[
    "abuse",
    "account",
    "admin",
    "administrator",
    "api",
    "assets",
    "auth",
    "callback",
    "favicon.ico",
    "healthz",
    "hostmaster",
    "join",
    "lnurlp",
    "login",
    "logout",
    "metrics",
    "noreply",
    "no-reply",
    "pay",
    "postmaster",
    "readyz",
    "root",
    "security",
    "static",
    "support",
    "verify",
    "webmaster",
    "well-known",
    "www",
];

pub const MAX_USERNAME_LEN: usize = 64;

/// A Lightning Address local part (LUD-16): `a-z 0-9 - _ .`, 1 to 64 characters, lowercase.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_USERNAME_LEN} characters")]
    TooLong,
    #[error("the name may only contain a-z, 0-9, '-', '_' and '.'")]
    InvalidCharacter,
    #[error("the name may not start or end with '.' or contain '..'")]
    BadDots,
    #[error("the name '{0}' is reserved")]
    Reserved(String),
}

impl Username {
    /// Parses a name as typed by a person or a wallet: ASCII case is folded, nothing else is.
    /// Non-ASCII lookalikes (Cyrillic `а`, fullwidth letters) are refused, never mapped.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.is_empty() {
            return Err(UsernameError::Empty);
        }
        if raw.len() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong);
        }
        let name = raw.to_ascii_lowercase();
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        }) {
            return Err(UsernameError::InvalidCharacter);
        }
        if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
            return Err(UsernameError::BadDots);
        }
        Ok(Self(name))
    }

    /// Parses the local part of an address as a wallet sends it: `Alice+tips` is `alice`.
    pub fn from_address(local_part: &str) -> Result<Self, UsernameError> {
        let base = local_part
            .split_once('+')
            .map_or(local_part, |(base, _tag)| base);
        Self::parse(base)
    }

    /// Parses a name for a new user: the syntax rules plus the reserved list.
    pub fn parse_new(raw: &str) -> Result<Self, UsernameError> {
        let name = Self::parse(raw)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(UsernameError::Reserved(name.0));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl std::str::FromStr for Username {
    type Err = UsernameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_ascii_case_and_strips_tags() {
        assert_eq!(
            Username::from_address("Alice+tips").unwrap().as_str(),
            "alice"
        );
        assert_eq!(Username::parse("SATOSHI").unwrap().as_str(), "satoshi");
        assert_eq!(Username::parse("_").unwrap().as_str(), "_");
    }

    #[test]
    fn refuses_paths_nul_and_lookalikes() {
        for bad in [
            "a/b", "..", ".", "a..b", ".a", "a.", "a\0b", "%00", "аlice", "ａlice", "a b", "",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn reserved_names_cannot_be_registered_but_can_be_looked_up() {
        assert!(matches!(
            Username::parse_new("admin"),
            Err(UsernameError::Reserved(_))
        ));
        assert!(Username::parse("admin").is_ok());
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(name in "[a-z0-9_-][a-z0-9_.-]{0,62}[a-z0-9_-]") {
            prop_assume!(!name.contains(".."));
            let parsed = Username::parse(&name).unwrap();
            prop_assert_eq!(parsed.as_str(), name.as_str());
        }

        #[test]
        fn anything_parsed_obeys_the_charset(raw in "\\PC{0,80}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert!(name.as_str().len() <= MAX_USERNAME_LEN);
                prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)));
            }
        }
    }
}
