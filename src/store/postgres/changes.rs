//! What one rayo process tells the others sharing its database, through PostgreSQL's
//! `NOTIFY`: sent with the transaction that made the change (so never for a change that was
//! rolled back), one short line each. Every process names itself with a random origin and
//! skips its own lines: what it changed, it already knows.
//!
//! Any role that can connect to the database can `NOTIFY` and `LISTEN` on any channel, so
//! every line is sealed (`Seal`: ChaCha20-Poly1305 under a key kept in `meta`, which only
//! rayo's role can read). A line that does not open is dropped unread: another role can
//! neither forge a change nor watch payment hashes and names go by.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use crate::domain::{ClientTag, Username};
pub use crate::store::Change;

/// Where the sealing key is kept.
pub const SEAL_KEY: &str = "key.changes";

/// Seals and opens the lines instances send each other.
#[derive(Clone)]
pub struct Seal(ChaCha20Poly1305);

impl Seal {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(ChaCha20Poly1305::new(key.into()))
    }

    /// A random nonce and the sealed line, base64: a `NOTIFY` payload is text.
    pub fn seal(&self, line: &str) -> String {
        use crate::clock::Random;
        let mut nonce = [0u8; 12];
        crate::clock::OsRandom.fill(&mut nonce);
        let mut sealed = nonce.to_vec();
        // Encryption of a short line in memory cannot fail.
        sealed.extend(
            self.0
                .encrypt(Nonce::from_slice(&nonce), line.as_bytes())
                .unwrap_or_default(),
        );
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
    }

    /// The line `payload` seals, if it was sealed with this key.
    pub fn open(&self, payload: &str) -> Option<String> {
        let sealed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(payload)
            .ok()?;
        if sealed.len() < 12 + 16 {
            return None;
        }
        let (nonce, body) = sealed.split_at(12);
        let line = self.0.decrypt(Nonce::from_slice(nonce), body).ok()?;
        String::from_utf8(line).ok()
    }
}

/// The channel every rayo process listens on.
pub const CHANNEL: &str = "rayo_changes";

/// A process's name on the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender(pub u64);

fn payer(tag: Option<ClientTag>) -> String {
    tag.map_or_else(|| "-".to_owned(), |tag| format!("{:016x}", tag.0))
}

fn parse_payer(raw: &str) -> Option<Option<ClientTag>> {
    match raw {
        "-" => Some(None),
        hex => u64::from_str_radix(hex, 16)
            .ok()
            .map(|n| Some(ClientTag(n))),
    }
}

impl Change {
    /// The line sent for this change by `origin`. Lines are unique per change (PostgreSQL
    /// folds identical lines of one transaction into one).
    pub fn encode(&self, origin: Sender) -> String {
        let from = format!("{:016x}", origin.0);
        match self {
            Change::Added {
                payment_hash,
                user,
                payer: tag,
            } => format!("{from}|a|{payment_hash}|{user}|{}", payer(*tag)),
            Change::Moved {
                payment_hash,
                user,
                payer: tag,
                was_pending,
            } => format!(
                "{from}|m|{payment_hash}|{user}|{}|{}",
                payer(*tag),
                u8::from(*was_pending)
            ),
            Change::User(name) => format!("{from}|u|{name}"),
            Change::Queued => format!("{from}|q"),
            Change::Meta(key) => format!("{from}|k|{key}"),
            Change::Resync => format!("{from}|r"),
        }
    }

    /// The change a line describes and who sent it; `None` for a line this rayo does not
    /// know (a newer one's), which is skipped.
    pub fn decode(line: &str) -> Option<(Sender, Change)> {
        let mut parts = line.split('|');
        let origin = Sender(u64::from_str_radix(parts.next()?, 16).ok()?);
        let change = match parts.next()? {
            "a" => Change::Added {
                payment_hash: parts.next()?.parse().ok()?,
                user: Username::parse(parts.next()?).ok()?,
                payer: parse_payer(parts.next()?)?,
            },
            "m" => Change::Moved {
                payment_hash: parts.next()?.parse().ok()?,
                user: Username::parse(parts.next()?).ok()?,
                payer: parse_payer(parts.next()?)?,
                was_pending: parts.next()? == "1",
            },
            "u" => Change::User(Username::parse(parts.next()?).ok()?),
            "q" => Change::Queued,
            // The rest of the line, whatever it holds.
            "k" => {
                let key: Vec<&str> = parts.by_ref().collect();
                Change::Meta(key.join("|"))
            }
            "r" => Change::Resync,
            _ => return None,
        };
        parts.next().is_none().then_some((origin, change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Hash32;
    use proptest::prelude::*;

    fn name(raw: &str) -> Username {
        Username::parse(raw).unwrap()
    }

    #[test]
    fn every_change_reads_back_as_it_was_sent() {
        let hash = Hash32([7; 32]);
        let changes = [
            Change::Added {
                payment_hash: hash,
                user: name("alice"),
                payer: Some(ClientTag(42)),
            },
            Change::Moved {
                payment_hash: hash,
                user: name("bob.b-2"),
                payer: None,
                was_pending: true,
            },
            Change::User(name("carol")),
            Change::Queued,
            Change::Meta("nostr|key".into()),
            Change::Resync,
        ];
        for change in changes {
            let line = change.encode(Sender(u64::MAX));
            assert_eq!(
                Change::decode(&line),
                Some((Sender(u64::MAX), change)),
                "{line}"
            );
        }
    }

    #[test]
    fn lines_from_a_newer_rayo_are_skipped() {
        assert_eq!(Change::decode("0000000000000001|z|whatever"), None);
        assert_eq!(Change::decode("0000000000000001|q|extra"), None);
        assert_eq!(Change::decode("not an origin|q"), None);
    }

    #[test]
    fn only_lines_sealed_with_the_key_open() {
        let seal = Seal::new(&[7; 32]);
        let line = Change::User(name("alice")).encode(Sender(1));
        let sealed = seal.seal(&line);
        assert!(!sealed.contains("alice"), "nobody else reads it");
        assert_ne!(sealed, seal.seal(&line), "a nonce of its own each time");
        assert_eq!(seal.open(&sealed), Some(line.clone()));
        // Forged, tampered with, or sealed under another key: dropped.
        assert_eq!(seal.open(&line), None);
        assert_eq!(Seal::new(&[8; 32]).open(&sealed), None);
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&sealed)
            .unwrap();
        bytes[20] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        assert_eq!(seal.open(&tampered), None);
    }

    proptest! {
        #[test]
        fn any_line_is_read_without_panicking(line in ".{0,200}") {
            let _ = Change::decode(&line);
            let _ = Seal::new(&[1; 32]).open(&line);
        }
    }
}
