//! NIP-57 Appendix D: what a server checks in the `nostr` parameter before making a zap invoice.

use nostr::{Event, JsonUtil};

use crate::domain::RelayUrl;

/// A zap request larger than this is refused (relay lists and messages fit easily).
pub const MAX_ZAP_REQUEST_BYTES: usize = 4096;
/// Receipts go to at most this many of the request's relays.
pub const MAX_RELAYS: usize = 10;
const ZAP_REQUEST_KIND: u16 = 9734;

/// A checked zap request: the exact string received (the invoice commits to its hash, and the
/// receipt carries it), and what the receipt needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapRequest {
    pub raw: String,
    /// The request's relays that are `ws://` or `wss://` URLs, normalised, at most
    /// `MAX_RELAYS`. Whether each may be reached is decided when publishing.
    pub relays: Vec<RelayUrl>,
    /// The `p`, `e`, `a` and `P` tags, copied into the receipt.
    pub copied_tags: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZapError {
    #[error("Zap request too large: at most {MAX_ZAP_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("Zap request is not a valid Nostr event")]
    NotAnEvent,
    #[error("Zap request must be kind 9734")]
    WrongKind,
    #[error("Zap request id does not match its content")]
    BadId,
    #[error("Zap request signature is invalid")]
    BadSignature,
    #[error("Zap request must have exactly one p tag with a 64-hex public key")]
    PTag,
    #[error("Zap request may have at most one e tag, with a 64-hex event id")]
    ETag,
    #[error("Zap request may have at most one P tag, with a 64-hex public key")]
    UpperPTag,
    #[error("Zap request a tag must be an event coordinate <kind>:<pubkey>:<d>")]
    ATag,
    #[error("Zap request must list relays in a relays tag")]
    Relays,
    #[error("Zap request amount tag ({tagged}) does not match the amount ({asked} msat)")]
    Amount { tagged: String, asked: u64 },
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_coordinate(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    let (Some(kind), Some(pubkey), Some(_identifier)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !kind.is_empty()
        && kind.len() <= 5
        && kind.bytes().all(|b| b.is_ascii_digit())
        && kind.parse::<u16>().is_ok()
        && is_hex64(pubkey)
}

impl ZapRequest {
    /// Checks `raw` (the decoded `nostr` parameter) against the callback's `amount`.
    pub fn parse(raw: &str, amount_msat: u64) -> Result<Self, ZapError> {
        if raw.len() > MAX_ZAP_REQUEST_BYTES {
            return Err(ZapError::TooLarge);
        }
        let event = Event::from_json(raw).map_err(|_| ZapError::NotAnEvent)?;
        if event.kind.as_u16() != ZAP_REQUEST_KIND {
            return Err(ZapError::WrongKind);
        }
        if !event.verify_id() {
            return Err(ZapError::BadId);
        }
        if !event.verify_signature() {
            return Err(ZapError::BadSignature);
        }
        let mut p = Vec::new();
        let mut e = Vec::new();
        let mut upper_p = Vec::new();
        let mut a = Vec::new();
        let mut relays = None;
        let mut amount = None;
        for tag in event.tags.iter() {
            let values = tag.as_slice();
            let value = values.get(1).map(String::as_str);
            match values.first().map(String::as_str) {
                Some("p") => p.push(value),
                Some("e") => e.push(value),
                Some("P") => upper_p.push(value),
                Some("a") => a.push(value),
                Some("relays") => relays = Some(values[1..].to_vec()),
                Some("amount") => amount = value.map(str::to_owned),
                _ => {}
            }
        }
        if p.len() != 1 || !p[0].is_some_and(is_hex64) {
            return Err(ZapError::PTag);
        }
        if e.len() > 1 || e.iter().any(|v| !v.is_some_and(is_hex64)) {
            return Err(ZapError::ETag);
        }
        if upper_p.len() > 1 || upper_p.iter().any(|v| !v.is_some_and(is_hex64)) {
            return Err(ZapError::UpperPTag);
        }
        if a.len() > 1 || a.iter().any(|v| !v.is_some_and(is_coordinate)) {
            return Err(ZapError::ATag);
        }
        let relays = relays.unwrap_or_default();
        if relays.iter().all(|r| r.trim().is_empty()) {
            return Err(ZapError::Relays);
        }
        let relays: Vec<RelayUrl> = relays
            .iter()
            .filter_map(|r| RelayUrl::parse(r).ok())
            .take(MAX_RELAYS)
            .collect();
        if let Some(tagged) = amount {
            if tagged != amount_msat.to_string() {
                return Err(ZapError::Amount {
                    tagged,
                    asked: amount_msat,
                });
            }
        }
        let copied_tags = event
            .tags
            .iter()
            .map(|t| t.as_slice().to_vec())
            .filter(|t| matches!(t.first().map(String::as_str), Some("p" | "e" | "a" | "P")))
            .collect();
        Ok(Self {
            raw: raw.to_owned(),
            relays,
            copied_tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nostr::{EventBuilder, Keys, Kind, Tag, TagKind};

    fn keys() -> Keys {
        Keys::parse("0000000000000000000000000000000000000000000000000000000000000003").unwrap()
    }

    const RECIPIENT: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const EVENT: &str = "5c83da77af1dec6d7289834998ad7aafbd9e2191396d75ec3cc27f5a77226f36";

    fn tag(values: &[&str]) -> Tag {
        Tag::parse(values.iter().copied()).unwrap()
    }

    fn request(kind: u16, tags: Vec<Tag>) -> String {
        EventBuilder::new(Kind::from(kind), "Onward!")
            .tags(tags)
            .sign_with_keys(&keys())
            .unwrap()
            .as_json()
    }

    fn standard_tags() -> Vec<Tag> {
        vec![
            tag(&["relays", "wss://relay.one", "wss://relay.two"]),
            tag(&["amount", "21000"]),
            tag(&["p", RECIPIENT]),
            tag(&["e", EVENT]),
        ]
    }

    #[test]
    fn a_well_formed_zap_request_is_accepted_with_its_relays_and_tags() {
        let raw = request(9734, standard_tags());
        let zap = ZapRequest::parse(&raw, 21000).unwrap();
        assert_eq!(zap.raw, raw);
        let relays: Vec<&str> = zap.relays.iter().map(RelayUrl::as_str).collect();
        assert_eq!(relays, ["wss://relay.one/", "wss://relay.two/"]);
        assert_eq!(zap.copied_tags, [vec!["p", RECIPIENT], vec!["e", EVENT]]);
        // Without an amount tag, any amount is fine.
        let mut tags = standard_tags();
        tags.remove(1);
        assert!(ZapRequest::parse(&request(9734, tags), 5).is_ok());
    }

    #[test]
    fn each_appendix_d_violation_has_its_own_reason() {
        let with = |extra: Vec<Tag>| {
            let mut tags = standard_tags();
            tags.extend(extra);
            request(9734, tags)
        };
        let without = |name: &str| {
            let tags = standard_tags()
                .into_iter()
                .filter(|t| t.kind() != TagKind::from(name))
                .collect();
            request(9734, tags)
        };
        let cases = [
            (request(1, standard_tags()), ZapError::WrongKind),
            (with(vec![tag(&["p", RECIPIENT])]), ZapError::PTag),
            (without("p"), ZapError::PTag),
            (
                request(9734, vec![tag(&["relays", "wss://r"]), tag(&["p", "abc"])]),
                ZapError::PTag,
            ),
            (with(vec![tag(&["e", EVENT])]), ZapError::ETag),
            (
                with(vec![tag(&["P", RECIPIENT]), tag(&["P", RECIPIENT])]),
                ZapError::UpperPTag,
            ),
            (with(vec![tag(&["a", "30023:nothex:slug"])]), ZapError::ATag),
            (with(vec![tag(&["a", "kind:pubkey"])]), ZapError::ATag),
            (without("relays"), ZapError::Relays),
            ("not json".to_owned(), ZapError::NotAnEvent),
            ("{\"kind\":9734}".to_owned(), ZapError::NotAnEvent),
        ];
        for (raw, expected) in cases {
            assert_eq!(ZapRequest::parse(&raw, 21000), Err(expected), "{raw}");
        }
        assert!(matches!(
            ZapRequest::parse(&request(9734, standard_tags()), 22000),
            Err(ZapError::Amount { .. })
        ));
        let good_a = with(vec![tag(&["a", &format!("30023:{RECIPIENT}:my-article")])]);
        assert!(ZapRequest::parse(&good_a, 21000).is_ok());
    }

    #[test]
    fn tampering_breaks_the_id_or_the_signature() {
        let raw = request(9734, standard_tags());
        let tampered = raw.replace("Onward!", "Backward");
        assert_eq!(ZapRequest::parse(&tampered, 21000), Err(ZapError::BadId));
        // A correct id over the tampered content, but the old signature.
        let mut event: serde_json::Value = serde_json::from_str(&tampered).unwrap();
        let unsigned = EventBuilder::new(Kind::from(9734), "Backward")
            .tags(standard_tags())
            .custom_created_at(nostr::Timestamp::from(
                event["created_at"].as_u64().unwrap(),
            ))
            .build(keys().public_key());
        event["id"] = serde_json::json!(unsigned.id.unwrap().to_hex());
        assert_eq!(
            ZapRequest::parse(&event.to_string(), 21000),
            Err(ZapError::BadSignature)
        );
    }

    #[test]
    fn oversized_requests_are_refused_before_parsing() {
        let huge = format!("{{\"content\":\"{}\"}}", "x".repeat(MAX_ZAP_REQUEST_BYTES));
        assert_eq!(ZapRequest::parse(&huge, 1), Err(ZapError::TooLarge));
    }

    #[test]
    fn the_nip57_documents_own_example_does_not_verify() {
        // From NIP-57, "Appendix A": its id and signature are illustrative, not real.
        let example = r#"{"kind":9734,"content":"Zap!","tags":[["relays","wss://nostr-pub.wellorder.com","wss://anotherrelay.example.com"],["amount","21000"],["lnurl","lnurl1dp68gurn8ghj7um5v93kketj9ehx2amn9uh8wetvdskkkmn0wahz7mrww4excup0dajx2mrv92x9xp"],["p","04c915daefee38317fa734444acee390a8269fe5810b2241e5e6dd343dfbecc9"],["e","9ae37aa68f48645127299e9453eb5d908a0cbb6058ff340d528ed4d37c8994fb"],["k","1"]],"pubkey":"97c70a44366a6535c145b333f973ea86dfdc2d7a99da618c40c64705ad98e322","created_at":1679673265,"id":"30efed56a035b2549fcaeec0bf2c1595f9a9b3bb4b1a38abaf8ee9041c4b7d93","sig":"f2cb581a84ed10e4dc84937bd98e27acac71ab057255f6aa8dfa561808c981fe8870f4a03c1e3666784d82a9c802d3704e174371aa13d63e2aeaf24ff5374d9d"}"#;
        assert!(matches!(
            ZapRequest::parse(example, 21000),
            Err(ZapError::BadId | ZapError::BadSignature)
        ));
    }
}
