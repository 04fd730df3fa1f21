//! Names that are checked once where they come in: a configured backend's name, and the
//! domain a Lightning Address lives on.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// A configured backend's name (`default`, or a `[backends.<name>]` section of `rayo.toml`):
/// letters, digits, `-` and `_`, at most 64.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackendName(String);

impl BackendName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(NameError(format!(
                "backend name {raw:?}: use 1 to {} letters, digits, '-' or '_'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// What invoices from a user's own NWC wallet (`user add --nwc`) are recorded under: no
    /// configured backend may take this name.
    pub fn user_wallet() -> Self {
        Self("user-wallet".to_owned())
    }

    /// The backend the flags and `RAYO_*` variables describe.
    pub fn default_name() -> Self {
        Self("default".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The domain part of a Lightning Address: a host, and a port when it is not the scheme's
/// (`example.com`, `localhost:8080`), lowercase.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    /// A host name and an optional port. An internationalised name (`bücher.example`) is kept
    /// in its ASCII form (`xn--bcher-kva.example`), as DNS and the `Host` header carry it.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let lower = raw.trim().to_lowercase();
        let url = url::Url::parse(&format!("http://{lower}/"))
            .map_err(|e| NameError(format!("domain {raw:?}: {e}")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| NameError(format!("domain {raw:?}: no host")))?;
        let domain = match lower.rsplit_once(':') {
            Some((_, port)) if !port.contains(']') => match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            _ => host.to_owned(),
        };
        // Whatever the URL parser changed besides the IDNA form was more than a host and port.
        let as_written = match domain.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                format!("{}:{port}", idna::domain_to_unicode(host).0)
            }
            _ => idna::domain_to_unicode(&domain).0,
        };
        if (domain != lower && as_written != lower) || domain.len() > 253 {
            return Err(NameError(format!(
                "domain {raw:?}: a host name and an optional port, nothing else"
            )));
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_like {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

string_like!(BackendName);
string_like!(Domain);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_are_short_plain_words() {
        assert!(BackendName::parse("my-node_2").is_ok());
        for bad in ["", "a b", "node.1", "ñ", &"x".repeat(65)] {
            assert!(BackendName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_a_lowercase_host_and_an_optional_port() {
        assert_eq!(
            Domain::parse("Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            Domain::parse("localhost:8080").unwrap().as_str(),
            "localhost:8080"
        );
        assert_eq!(Domain::parse("[::1]:8080").unwrap().as_str(), "[::1]:8080");
        // Internationalised names are kept in the form DNS and Host headers carry.
        for idn in ["bücher.example", "BÜCHER.example", "xn--bcher-kva.example"] {
            assert_eq!(
                Domain::parse(idn).unwrap().as_str(),
                "xn--bcher-kva.example",
                "{idn}"
            );
        }
        assert_eq!(
            Domain::parse("bücher.example:8443").unwrap().as_str(),
            "xn--bcher-kva.example:8443"
        );
        for bad in [
            "",
            "example.com/path",
            "a b.com",
            "user@example.com",
            "example.com:x",
            "bücher.example/x",
            "ex%41mple.com",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?}");
        }
    }
}
