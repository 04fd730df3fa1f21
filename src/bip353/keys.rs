//! A zone's DNSSEC keys: ECDSA P-256/SHA-256 (algorithm 13), one combined signing key (flags
//! 257) per zone, kept in the store so every instance on a shared store signs alike. Made on
//! first use by compare-and-swap: two instances starting together agree on one key.
//!
//! Rollover (`rayo bip353 rollover start|finish`): `start` adds an incoming key, published in
//! the DNSKEY set and signing that set beside the active key, so a resolver holding either
//! DS validates the zone; the operator gives the parent the new DS; `finish`, once the old DS
//! has aged out of caches, makes the incoming key the only one.

use base64::Engine;
use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKey, SigningKey};
use hickory_proto::rr::Name;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::{Deserialize, Serialize};

use crate::store::{RecordKind, Store, StoreError, Swap};

/// How long a signature is valid. Signatures are made per answer, so this bounds only how
/// long a captured answer can be replayed, and how long a resolver may trust it.
pub const SIGNATURE_LIFE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// PKCS#8 DER, base64.
    pub pkcs8: String,
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKeys {
    pub active: StoredKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<StoredKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the zone's key: {0}")]
    Key(String),
}

fn new_key(now: u64) -> Result<StoredKey, KeyError> {
    let der = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    Ok(StoredKey {
        pkcs8: base64::engine::general_purpose::STANDARD.encode(der.secret_pkcs8_der()),
        created: now,
    })
}

fn read(store: &dyn Store, zone: &str) -> Result<Option<(Vec<u8>, StoredKeys)>, KeyError> {
    Ok(match store.record(RecordKind::DnsKeys, zone)? {
        Some(bytes) => {
            let keys = serde_json::from_slice(&bytes)
                .map_err(|e| KeyError::Key(format!("stored keys of {zone} unreadable: {e}")))?;
            Some((bytes, keys))
        }
        None => None,
    })
}

/// The zone's keys, made now if it has none (the first instance to store them wins).
pub fn load_or_create(store: &dyn Store, zone: &str, now: u64) -> Result<StoredKeys, KeyError> {
    if let Some((_, keys)) = read(store, zone)? {
        return Ok(keys);
    }
    let keys = StoredKeys {
        active: new_key(now)?,
        incoming: None,
    };
    let value = serde_json::to_vec(&keys).map_err(|e| KeyError::Key(e.to_string()))?;
    if store.swap_record(Swap::create(RecordKind::DnsKeys, zone, &value))? {
        return Ok(keys);
    }
    read(store, zone)?
        .map(|(_, keys)| keys)
        .ok_or_else(|| KeyError::Key(format!("the keys of {zone} vanished while being made")))
}

/// Which step of a rollover to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollover {
    Start,
    Finish,
}

/// Takes `step` for `zone`, by compare-and-swap; answers the keys as they now are.
pub fn roll(
    store: &dyn Store,
    zone: &str,
    step: Rollover,
    now: u64,
) -> Result<StoredKeys, KeyError> {
    let current = load_or_create(store, zone, now)?;
    let Some((old_bytes, _)) = read(store, zone)? else {
        return Err(KeyError::Key(format!("no keys for {zone}")));
    };
    let next = match (step, &current.incoming) {
        (Rollover::Start, Some(_)) => {
            return Err(KeyError::Key(format!(
                "a rollover of {zone} is already under way: give the parent the new DS, then run `rayo bip353 rollover finish`"
            )))
        }
        (Rollover::Start, None) => StoredKeys {
            active: current.active.clone(),
            incoming: Some(new_key(now)?),
        },
        (Rollover::Finish, None) => {
            return Err(KeyError::Key(format!(
                "no rollover of {zone} is under way: start one with `rayo bip353 rollover start`"
            )))
        }
        (Rollover::Finish, Some(incoming)) => StoredKeys {
            active: incoming.clone(),
            incoming: None,
        },
    };
    let value = serde_json::to_vec(&next).map_err(|e| KeyError::Key(e.to_string()))?;
    if !store.swap_record(Swap::replace(RecordKind::DnsKeys, zone, &old_bytes, &value))? {
        return Err(KeyError::Key(format!(
            "the keys of {zone} changed meanwhile (another rollover?): look again"
        )));
    }
    Ok(next)
}

/// One key, ready to sign.
pub struct ZoneKey {
    pub signer: DnssecSigner,
    pub dnskey: DNSKEY,
    pub tag: u16,
}

impl ZoneKey {
    fn from_stored(zone: &Name, stored: &StoredKey) -> Result<Self, KeyError> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(&stored.pkcs8)
            .map_err(|e| KeyError::Key(e.to_string()))?;
        let key =
            EcdsaSigningKey::from_pkcs8(&PrivatePkcs8KeyDer::from(der), Algorithm::ECDSAP256SHA256)
                .map_err(|e| KeyError::Key(e.to_string()))?;
        let public = key
            .to_public_key()
            .map_err(|e| KeyError::Key(e.to_string()))?;
        // A combined key: zone key and secure entry point (257).
        let dnskey = DNSKEY::new(true, true, false, public);
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| KeyError::Key(e.to_string()))?;
        let signer = DnssecSigner::new(dnskey.clone(), Box::new(key), zone.clone(), SIGNATURE_LIFE);
        Ok(Self {
            signer,
            dnskey,
            tag,
        })
    }

    /// The DS record's data for the parent: `<tag> 13 2 <SHA-256 hex>`.
    pub fn ds(&self, zone: &Name) -> Result<DS, KeyError> {
        let digest = self
            .dnskey
            .to_digest(zone, DigestType::SHA256)
            .map_err(|e| KeyError::Key(e.to_string()))?;
        Ok(DS::new(
            self.tag,
            Algorithm::ECDSAP256SHA256,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// The public key, base64, as a trust anchor or a DNSKEY line shows it.
    pub fn public_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.dnskey.public_key().public_bytes())
    }
}

/// A zone's keys, loaded.
pub struct ZoneKeys {
    pub active: ZoneKey,
    pub incoming: Option<ZoneKey>,
}

impl ZoneKeys {
    pub fn load(zone: &Name, stored: &StoredKeys) -> Result<Self, KeyError> {
        Ok(Self {
            active: ZoneKey::from_stored(zone, &stored.active)?,
            incoming: stored
                .incoming
                .as_ref()
                .map(|k| ZoneKey::from_stored(zone, k))
                .transpose()?,
        })
    }

    /// Every published key: the active one, and the incoming one during a rollover.
    pub fn published(&self) -> impl Iterator<Item = &ZoneKey> {
        std::iter::once(&self.active).chain(self.incoming.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_zone_gets_one_key_whoever_asks_first() {
        let store = MemoryStore::new();
        let first = load_or_create(&store, "user._bitcoin-payment.example.com", 1).unwrap();
        let again = load_or_create(&store, "user._bitcoin-payment.example.com", 2).unwrap();
        assert_eq!(first, again);
        let other = load_or_create(&store, "user._bitcoin-payment.example.org", 1).unwrap();
        assert_ne!(first.active, other.active);
    }

    #[test]
    fn a_rollover_publishes_the_new_key_before_it_replaces_the_old() {
        let store = MemoryStore::new();
        let zone = "user._bitcoin-payment.example.com";
        let before = load_or_create(&store, zone, 1).unwrap();
        assert!(
            roll(&store, zone, Rollover::Finish, 2).is_err(),
            "nothing to finish"
        );
        let during = roll(&store, zone, Rollover::Start, 2).unwrap();
        assert_eq!(during.active, before.active);
        let incoming = during.incoming.clone().unwrap();
        assert!(
            roll(&store, zone, Rollover::Start, 3).is_err(),
            "one at a time"
        );
        let after = roll(&store, zone, Rollover::Finish, 4).unwrap();
        assert_eq!(after.active, incoming);
        assert_eq!(after.incoming, None);

        let name = Name::from_ascii(format!("{zone}.")).unwrap();
        let keys = ZoneKeys::load(&name, &during).unwrap();
        assert_eq!(keys.published().count(), 2);
        assert_ne!(keys.active.tag, keys.incoming.as_ref().unwrap().tag);
        assert_eq!(keys.active.ds(&name).unwrap().key_tag(), keys.active.tag);
    }
}
