//! The connection URI a wallet hands out for NWC (NIP-47):
//! `nostr+walletconnect://<wallet service pubkey>?relay=<ws url>[&relay=...]&secret=<hex>[&lud16=...]`.
//! The secret is this connection's private key: whoever holds it can use the connection, so it
//! is shown by nothing (`Debug` and `redacted` leave it out).

use nostr::{Keys, PublicKey, SecretKey};

use super::RelayUrl;

/// The longest URI taken (a handful of relays fit many times over).
const MAX_URI: usize = 2048;
/// More relays than this is not a wallet's connection string.
const MAX_RELAYS: usize = 8;

#[derive(Clone, PartialEq, Eq)]
pub struct NwcUri {
    /// The wallet service's key: requests go to it, and only its answers count.
    pub wallet: PublicKey,
    pub relays: Vec<RelayUrl>,
    secret: SecretKey,
    pub lud16: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NwcUriError {
    #[error("an NWC connection string starts with nostr+walletconnect://")]
    Scheme,
    #[error("the NWC connection string is longer than {MAX_URI} bytes")]
    TooLong,
    #[error("the wallet's public key (after nostr+walletconnect://) must be 64 hex digits")]
    WalletKey,
    #[error("the NWC connection string names no relay (relay=wss://...)")]
    NoRelay,
    #[error("the NWC connection string names more than {MAX_RELAYS} relays")]
    TooManyRelays,
    #[error("relay {0}: not a ws:// or wss:// URL")]
    Relay(String),
    #[error("the NWC connection string has no secret (secret=<64 hex digits>)")]
    NoSecret,
    #[error("the NWC connection string's secret must be 64 hex digits (a private key)")]
    Secret,
    #[error("the NWC connection string is not a URI: {0}")]
    Malformed(String),
}

impl NwcUri {
    pub fn parse(raw: &str) -> Result<Self, NwcUriError> {
        let raw = raw.trim();
        if raw.len() > MAX_URI {
            return Err(NwcUriError::TooLong);
        }
        let rest = ["nostr+walletconnect://", "nostr+walletconnect:"]
            .iter()
            .find_map(|scheme| {
                raw.get(..scheme.len())
                    .filter(|head| head.eq_ignore_ascii_case(scheme))
                    .map(|_| &raw[scheme.len()..])
            })
            .ok_or(NwcUriError::Scheme)?;
        let (key, query) = rest.split_once('?').unwrap_or((rest, ""));
        let key = key.trim_end_matches('/');
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NwcUriError::WalletKey);
        }
        let wallet = PublicKey::from_hex(key).map_err(|_| NwcUriError::WalletKey)?;
        let (mut relays, mut secret, mut lud16) = (Vec::new(), None, None);
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "relay" => {
                    let relay =
                        RelayUrl::parse(&value).map_err(|_| NwcUriError::Relay(shown(&value)))?;
                    if !relays.contains(&relay) {
                        relays.push(relay);
                    }
                }
                "secret" => {
                    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(NwcUriError::Secret);
                    }
                    secret = Some(SecretKey::from_hex(&value).map_err(|_| NwcUriError::Secret)?);
                }
                "lud16" => lud16 = Some(value.into_owned()).filter(|v| !v.is_empty()),
                // Other parameters (newer NIP-47 revisions) do not change how rayo connects.
                _ => {}
            }
        }
        if relays.is_empty() {
            return Err(NwcUriError::NoRelay);
        }
        if relays.len() > MAX_RELAYS {
            return Err(NwcUriError::TooManyRelays);
        }
        Ok(Self {
            wallet,
            relays,
            secret: secret.ok_or(NwcUriError::NoSecret)?,
            lud16,
        })
    }

    /// This connection's keys: requests are signed with them, answers encrypted to them.
    pub fn keys(&self) -> Keys {
        Keys::new(self.secret.clone())
    }

    /// The URI with its secret left out, for logs and the CLI.
    pub fn redacted(&self) -> String {
        let relays: Vec<String> = self
            .relays
            .iter()
            .map(|r| {
                format!(
                    "relay={}",
                    url::form_urlencoded::byte_serialize(r.as_str().as_bytes()).collect::<String>()
                )
            })
            .collect();
        format!(
            "nostr+walletconnect://{}?{}&secret=<redacted>",
            self.wallet.to_hex(),
            relays.join("&")
        )
    }

    /// The full URI, secret included: only for storing it.
    pub fn expose(&self) -> String {
        let mut uri = self.redacted().replace(
            "secret=<redacted>",
            &format!("secret={}", self.secret.to_secret_hex()),
        );
        if let Some(lud16) = &self.lud16 {
            uri.push_str("&lud16=");
            uri.extend(url::form_urlencoded::byte_serialize(lud16.as_bytes()));
        }
        uri
    }
}

/// A bad value, quoted without control characters and at most 80 characters long.
fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Stored as the full URI: the store is the one place the secret is kept.
impl serde::Serialize for NwcUri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for NwcUri {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for NwcUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WALLET: &str = "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4";
    const SECRET: &str = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";

    #[test]
    fn a_wallets_connection_string_names_its_key_relays_and_secret() {
        let uri = NwcUri::parse(&format!(
            "nostr+walletconnect://{WALLET}?relay=wss%3A%2F%2Frelay.one&relay=wss://relay.two/&secret={SECRET}&lud16=alice%40example.com"
        ))
        .unwrap();
        assert_eq!(uri.wallet.to_hex(), WALLET);
        let relays: Vec<&str> = uri.relays.iter().map(|r| r.as_str()).collect();
        assert_eq!(relays, ["wss://relay.one/", "wss://relay.two/"]);
        assert_eq!(uri.lud16.as_deref(), Some("alice@example.com"));
        assert_eq!(uri.keys().secret_key().to_secret_hex(), SECRET);
        assert_eq!(NwcUri::parse(&uri.expose()).unwrap(), uri);
    }

    #[test]
    fn the_secret_is_shown_by_nothing() {
        let uri = NwcUri::parse(&format!(
            "nostr+walletconnect://{WALLET}?relay=wss://r&secret={SECRET}"
        ))
        .unwrap();
        assert!(!format!("{uri:?}").contains(SECRET));
        assert!(!uri.redacted().contains(SECRET));
        assert!(uri.redacted().contains("<redacted>"));
    }

    #[test]
    fn each_flaw_gets_its_own_error() {
        let cases = [
            (
                format!("https://{WALLET}?relay=wss://r&secret={SECRET}"),
                NwcUriError::Scheme,
            ),
            (
                format!("nostr+walletconnect://abc?relay=wss://r&secret={SECRET}"),
                NwcUriError::WalletKey,
            ),
            (
                format!("nostr+walletconnect://{WALLET}?secret={SECRET}"),
                NwcUriError::NoRelay,
            ),
            (
                format!("nostr+walletconnect://{WALLET}?relay=https://r&secret={SECRET}"),
                NwcUriError::Relay("https://r".into()),
            ),
            (
                format!("nostr+walletconnect://{WALLET}?relay=wss://r"),
                NwcUriError::NoSecret,
            ),
            (
                format!("nostr+walletconnect://{WALLET}?relay=wss://r&secret=12"),
                NwcUriError::Secret,
            ),
            (
                format!(
                    "nostr+walletconnect://{WALLET}?relay=wss://r&secret={}",
                    "0".repeat(64)
                ),
                NwcUriError::Secret,
            ),
            (
                format!(
                    "nostr+walletconnect://{WALLET}?relay=wss://r&secret={SECRET}&x={}",
                    "y".repeat(3000)
                ),
                NwcUriError::TooLong,
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(NwcUri::parse(&raw).err(), Some(expected), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_without_panicking(raw in "\\PC{0,300}") {
            let _ = NwcUri::parse(&raw);
            let _ = NwcUri::parse(&format!("nostr+walletconnect://{raw}"));
        }

        #[test]
        fn what_is_accepted_reads_back_the_same(relay in "[a-z]{1,12}", port in 1u16..) {
            let raw = format!("nostr+walletconnect://{WALLET}?relay=wss://{relay}:{port}&secret={SECRET}");
            let uri = NwcUri::parse(&raw).unwrap();
            prop_assert_eq!(NwcUri::parse(&uri.expose()).unwrap(), uri);
        }
    }
}
