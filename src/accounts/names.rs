//! Which names people may claim for themselves: the username rules, the names routes and
//! the operator need (`domain::Username::parse_new`), the default address `_` (LUD-16's
//! `@domain`, the operator's alone), well-known role names, and the operator's own list.

use std::collections::BTreeSet;

use super::{refused, AccountError};
use crate::domain::Username;

/// Names that read as the server's or its operator's, beyond what `parse_new` refuses.
const BUILT_IN: &[&str] = &[
    "_",
    "accounts",
    "billing",
    "bitcoin",
    "help",
    "info",
    "lightning",
    "mail",
    "mod",
    "moderator",
    "news",
    "official",
    "operator",
    "owner",
    "rayo",
    "staff",
    "status",
    "system",
    "team",
    "test",
    "user",
    "users",
    "wallet",
];

pub struct Names {
    reserved: BTreeSet<String>,
}

impl Names {
    pub fn new(extra: &[String]) -> Self {
        let reserved = BUILT_IN
            .iter()
            .map(|n| (*n).to_owned())
            .chain(extra.iter().map(|n| n.trim().to_ascii_lowercase()))
            .filter(|n| !n.is_empty())
            .collect();
        Self { reserved }
    }

    /// Every reserved name, built in and the operator's (`RAYO_RESERVED_NAMES`), in order.
    pub fn reserved(&self) -> impl Iterator<Item = &str> {
        self.reserved.iter().map(String::as_str)
    }

    /// `raw` as a name a person may claim, or why not.
    pub fn claimable(&self, raw: &str) -> Result<Username, AccountError> {
        let name = Username::parse_new(raw.trim()).map_err(|e| refused(format!("{e}.")))?;
        if self.reserved.contains(name.as_str()) {
            return Err(refused(format!("The name '{name}' is reserved.")));
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_cannot_claim_reserved_route_or_default_names() {
        let names = Names::new(&["Shop".into(), " ".into()]);
        for taken in [
            "_",
            "admin",
            "login",
            "account",
            "join",
            "shop",
            "SHOP",
            "postmaster",
        ] {
            assert!(names.claimable(taken).is_err(), "{taken}");
        }
        assert_eq!(names.claimable(" Alice ").unwrap().as_str(), "alice");
        assert!(names.claimable("a..b").is_err());
        assert!(names.claimable("аlice").is_err(), "a Cyrillic lookalike");
    }
}
