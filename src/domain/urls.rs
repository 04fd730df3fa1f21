//! URLs rayo connects to on someone's behalf, parsed once and kept in their normalised form
//! (control characters percent-encoded, host lowercased), so what is stored, logged and
//! printed is exactly what is connected to. Whether the host may be a private address is
//! decided where the connection is made.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// URLs longer than this are refused: no receiver needs more, and every byte is stored.
pub const MAX_URL_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

fn parse(raw: &str, schemes: &[&str], what: &str) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(UrlError(format!(
            "{what} URL: at most {MAX_URL_BYTES} bytes"
        )));
    }
    let url = Url::parse(raw.trim()).map_err(|e| UrlError(format!("{what} URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(UrlError(format!(
            "{what} URL: must be {}",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    if url.host().is_none() {
        return Err(UrlError(format!("{what} URL: has no host")));
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(UrlError(format!(
            "{what} URL: at most {MAX_URL_BYTES} bytes"
        )));
    }
    Ok(url)
}

macro_rules! url_type {
    ($name:ident, $schemes:expr, $what:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Url);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, UrlError> {
                parse(raw, $schemes, $what).map(Self)
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub fn url(&self) -> &Url {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = UrlError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.into()
            }
        }

        impl std::str::FromStr for $name {
            type Err = UrlError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

url_type!(WebhookUrl, &["http", "https"], "webhook");
url_type!(RelayUrl, &["ws", "wss"], "relay");
url_type!(HttpUrl, &["http", "https"], "http");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn webhook_urls_are_http_with_a_host() {
        assert_eq!(
            WebhookUrl::parse("https://Shop.Example/paid?x=1")
                .unwrap()
                .as_str(),
            "https://shop.example/paid?x=1"
        );
        for bad in [
            "ftp://x/",
            "https://",
            "mailto:a@b.example",
            "not a url",
            "wss://relay.example",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse(&format!("https://x.example/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn relay_urls_keep_no_control_characters() {
        let relay = RelayUrl::parse("wss://relay.example/\u{1b}[31mred").unwrap();
        assert!(!relay.as_str().chars().any(char::is_control), "{relay}");
        assert_eq!(relay.as_str(), "wss://relay.example/%1B[31mred");
        assert!(RelayUrl::parse("https://relay.example").is_err());
        assert_eq!(
            RelayUrl::parse("wss://[2001:DB8::1]/").unwrap().as_str(),
            "wss://[2001:db8::1]/"
        );
    }

    proptest! {
        /// Whatever is accepted is stored without control characters, and parses back to itself.
        #[test]
        fn accepted_urls_are_printable_and_stable(path in "\\PC{0,40}", ctl in proptest::char::range('\u{0}', '\u{1f}')) {
            if let Ok(url) = RelayUrl::parse(&format!("wss://relay.example/{path}{ctl}")) {
                prop_assert!(!url.as_str().chars().any(char::is_control));
                prop_assert_eq!(RelayUrl::parse(url.as_str()), Ok(url.clone()));
            }
        }
    }
}
