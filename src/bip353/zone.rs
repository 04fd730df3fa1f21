//! The zones rayo serves, `user._bitcoin-payment.<domain>`, and the answer to each question,
//! signed online. Denial is by NSEC3 "white lies" (RFC 7129, appendix B): each NSEC3 covers
//! only the hash it denies (owner hash−1, next hash+1), so no answer ever names another
//! user, and walking the zone yields nothing. Iterations 0, no salt (RFC 9276).

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3, NSEC3PARAM, RRSIG};
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};

use super::keys::{ZoneKey, ZoneKeys};
use super::Bip353Record;

/// Negative answers may be cached this long (the SOA minimum), and so may NSEC3 records.
pub const NEGATIVE_TTL: u32 = 300;
const APEX_TTL: u32 = 3600;
/// Signatures start an hour back, for resolvers whose clocks run behind.
const CLOCK_SLACK: i64 = 3600;

/// One name's record.
struct Entry {
    strings: Vec<String>,
    ttl: u32,
}

/// One zone: `user._bitcoin-payment.<domain>.`.
pub struct Zone {
    pub apex: Name,
    pub keys: ZoneKeys,
    pub serial: u32,
    pub nameservers: Vec<Name>,
    pub hostmaster: Name,
    names: HashMap<Name, Entry>,
}

impl Zone {
    pub fn new(
        apex: Name,
        keys: ZoneKeys,
        serial: u32,
        nameservers: Vec<Name>,
        hostmaster: Name,
        records: &[Bip353Record],
    ) -> Self {
        let names = records
            .iter()
            .filter_map(|r| {
                let name = Name::from_ascii(&r.name).ok()?.to_lowercase();
                apex.zone_of(&name).then_some((
                    name,
                    Entry {
                        strings: r.strings.clone(),
                        ttl: r.ttl,
                    },
                ))
            })
            .collect();
        Self {
            apex,
            keys,
            serial,
            nameservers,
            hostmaster,
            names,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What to send back for one question.
#[derive(Debug, Default)]
pub struct Answer {
    pub code: Option<ResponseCode>,
    /// In one of our zones: the answer is authoritative.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

impl Answer {
    fn refused() -> Self {
        Self {
            code: Some(ResponseCode::Refused),
            ..Self::default()
        }
    }

    pub fn response_code(&self) -> ResponseCode {
        self.code.unwrap_or(ResponseCode::NoError)
    }
}

/// Every zone served, found by the question's name.
#[derive(Default)]
pub struct Zones {
    zones: Vec<Zone>,
}

impl Zones {
    pub fn new(zones: Vec<Zone>) -> Self {
        Self { zones }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }

    pub fn answer(&self, qname: &Name, qtype: RecordType, dnssec: bool, now: u64) -> Answer {
        let qname = qname.to_lowercase();
        let Some(zone) = self
            .zones
            .iter()
            .filter(|z| z.apex.zone_of(&qname))
            .max_by_key(|z| z.apex.num_labels())
        else {
            return Answer::refused();
        };
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            // No transfers: a transfer would list every user.
            return Answer::refused();
        }
        Signer { zone, dnssec, now }.answer(&qname, qtype)
    }
}

struct Signer<'a> {
    zone: &'a Zone,
    dnssec: bool,
    now: u64,
}

impl Signer<'_> {
    fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let zone = self.zone;
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        if *qname == zone.apex {
            let found = match qtype {
                RecordType::SOA | RecordType::ANY => Some(self.soa()),
                RecordType::NS => Some(self.ns()),
                RecordType::DNSKEY => Some(self.dnskey()),
                RecordType::NSEC3PARAM => Some(self.nsec3param()),
                _ => None,
            };
            match found {
                Some(set) => answer.answers = self.signed(set, qtype == RecordType::DNSKEY),
                None => self.no_data(&mut answer, qname, apex_types()),
            }
            return answer;
        }
        if let Some(entry) = zone.names.get(qname) {
            if matches!(qtype, RecordType::TXT | RecordType::ANY) {
                let mut set = RecordSet::with_ttl(qname.clone(), RecordType::TXT, entry.ttl);
                set.add_rdata(RData::TXT(TXT::new(entry.strings.clone())));
                answer.answers = self.signed(set, false);
            } else {
                self.no_data(&mut answer, qname, name_types());
            }
            return answer;
        }
        answer.code = Some(ResponseCode::NXDomain);
        answer.authority = self.signed(self.soa(), false);
        if self.dnssec {
            self.deny_name(&mut answer, qname);
        }
        answer
    }

    /// NODATA: the name exists without the type asked for.
    fn no_data(&self, answer: &mut Answer, name: &Name, types: Vec<RecordType>) {
        answer.authority = self.signed(self.soa(), false);
        if self.dnssec {
            let set = self.nsec3(&hash_of(name), next_of(&hash_of(name)), types);
            answer.authority.extend(self.signed(set, false));
        }
    }

    /// The closest encloser proof (RFC 5155 §7.2.2): the closest existing ancestor matches an
    /// NSEC3, and the next closer name and the wildcard under the encloser are each covered
    /// by one that covers nothing else.
    fn deny_name(&self, answer: &mut Answer, qname: &Name) {
        let zone = self.zone;
        let apex_labels = usize::from(zone.apex.num_labels());
        let child = qname.trim_to(apex_labels + 1);
        let (encloser, encloser_types) = if zone.names.contains_key(&child) && *qname != child {
            (child, name_types())
        } else {
            (zone.apex.clone(), apex_types())
        };
        let next_closer = qname.trim_to(usize::from(encloser.num_labels()) + 1);
        let encloser_hash = hash_of(&encloser);
        let mut hashes = vec![(encloser_hash, Some(encloser_types))];
        hashes.push((hash_of(&next_closer), None));
        if let Ok(wildcard) = encloser.prepend_label("*") {
            hashes.push((hash_of(&wildcard), None));
        }
        let mut owners = Vec::new();
        for (hash, types) in hashes {
            let set = match types {
                Some(types) => self.nsec3(&hash, next_of(&hash), types),
                None => self.nsec3(&prev_of(&hash), next_of(&hash), Vec::new()),
            };
            if owners.contains(set.name()) {
                continue;
            }
            owners.push(set.name().clone());
            answer.authority.extend(self.signed(set, false));
        }
    }

    fn nsec3(&self, owner: &[u8; 20], next: [u8; 20], types: Vec<RecordType>) -> RecordSet {
        let name = self
            .zone
            .apex
            .prepend_label(base32hex(owner))
            .unwrap_or_else(|_| self.zone.apex.clone());
        let mut set = RecordSet::with_ttl(name, RecordType::NSEC3, NEGATIVE_TTL);
        set.add_rdata(RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            0,
            Vec::new(),
            next.to_vec(),
            types,
        ))));
        set
    }

    fn soa(&self) -> RecordSet {
        let zone = self.zone;
        let mname = zone
            .nameservers
            .first()
            .cloned()
            .unwrap_or_else(|| zone.apex.clone());
        let mut set = RecordSet::with_ttl(zone.apex.clone(), RecordType::SOA, APEX_TTL);
        set.add_rdata(RData::SOA(SOA::new(
            mname,
            zone.hostmaster.clone(),
            zone.serial,
            3600,
            600,
            1_209_600,
            NEGATIVE_TTL,
        )));
        set
    }

    fn ns(&self) -> RecordSet {
        let mut set = RecordSet::with_ttl(self.zone.apex.clone(), RecordType::NS, APEX_TTL);
        for ns in &self.zone.nameservers {
            set.add_rdata(RData::NS(NS(ns.clone())));
        }
        set
    }

    fn dnskey(&self) -> RecordSet {
        let mut set = RecordSet::with_ttl(self.zone.apex.clone(), RecordType::DNSKEY, APEX_TTL);
        for key in self.zone.keys.published() {
            set.add_rdata(RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey.clone())));
        }
        set
    }

    fn nsec3param(&self) -> RecordSet {
        let mut set = RecordSet::with_ttl(self.zone.apex.clone(), RecordType::NSEC3PARAM, 0);
        set.add_rdata(RData::DNSSEC(DNSSECRData::NSEC3PARAM(NSEC3PARAM::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            0,
            Vec::new(),
        ))));
        set
    }

    /// The set's records, and with DNSSEC asked for, its signatures: by the active key, and
    /// for the DNSKEY set during a rollover by the incoming key too.
    fn signed(&self, set: RecordSet, every_key: bool) -> Vec<Record> {
        let mut records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
        if !self.dnssec {
            return records;
        }
        let keys: Vec<&ZoneKey> = if every_key {
            self.zone.keys.published().collect()
        } else {
            vec![&self.zone.keys.active]
        };
        let inception = time::OffsetDateTime::from_unix_timestamp(
            i64::try_from(self.now).unwrap_or(i64::MAX / 2) - CLOCK_SLACK,
        )
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        for key in keys {
            match RRSIG::from_rrset(&set, DNSClass::IN, inception, &key.signer) {
                Ok(rrsig) => records.push(Record::from_rdata(
                    set.name().clone(),
                    set.ttl(),
                    RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
                )),
                Err(e) => {
                    tracing::error!(error = %e, name = %set.name(), "could not sign an answer")
                }
            }
        }
        records
    }
}

fn apex_types() -> Vec<RecordType> {
    vec![
        RecordType::NS,
        RecordType::SOA,
        RecordType::RRSIG,
        RecordType::DNSKEY,
        RecordType::NSEC3PARAM,
    ]
}

fn name_types() -> Vec<RecordType> {
    vec![RecordType::TXT, RecordType::RRSIG]
}

/// The NSEC3 hash of `name` (SHA-1, no salt, no extra iterations).
pub fn hash_of(name: &Name) -> [u8; 20] {
    let mut hash = [0u8; 20];
    if let Ok(digest) = Nsec3HashAlgorithm::SHA1.hash(&[], name, 0) {
        hash.copy_from_slice(&digest.as_ref()[..20]);
    }
    hash
}

fn next_of(hash: &[u8; 20]) -> [u8; 20] {
    let mut next = *hash;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
    next
}

fn prev_of(hash: &[u8; 20]) -> [u8; 20] {
    let mut prev = *hash;
    for byte in prev.iter_mut().rev() {
        let (diff, borrow) = byte.overflowing_sub(1);
        *byte = diff;
        if !borrow {
            break;
        }
    }
    prev
}

/// NSEC3 owner labels are base32 with the extended hex alphabet, without padding.
pub fn base32hex(bytes: &[u8]) -> String {
    data_encoding::BASE32HEX_NOPAD
        .encode(bytes)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_lies_cover_exactly_one_hash() {
        let hash = [0x12u8; 20];
        assert!(prev_of(&hash) < hash && hash < next_of(&hash));
        let mut top = [0xffu8; 20];
        assert_eq!(next_of(&top), [0u8; 20], "wraps at the end of the ring");
        top = [0u8; 20];
        assert_eq!(prev_of(&top), [0xffu8; 20]);
    }

    #[test]
    fn owner_labels_are_written_as_rfc_5155_writes_them() {
        // RFC 5155 appendix A: `example` with salt aabbccdd and 12 iterations.
        let name = Name::from_ascii("example.").unwrap();
        let digest = Nsec3HashAlgorithm::SHA1
            .hash(&[0xaa, 0xbb, 0xcc, 0xdd], &name, 12)
            .unwrap();
        assert_eq!(
            base32hex(digest.as_ref()),
            "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
        );
        assert_eq!(base32hex(&hash_of(&name)).len(), 32);
    }

    fn a_zone() -> Zones {
        let store = crate::store::MemoryStore::new();
        let apex = Name::from_ascii("user._bitcoin-payment.example.com.").unwrap();
        let stored =
            crate::bip353::keys::load_or_create(&store, "user._bitcoin-payment.example.com", 1)
                .unwrap();
        let keys = ZoneKeys::load(&apex, &stored).unwrap();
        let record = Bip353Record {
            name: "alice.user._bitcoin-payment.example.com.".into(),
            address: "₿alice@example.com".into(),
            ttl: 3600,
            strings: vec!["bitcoin:?lno=lno1x".into()],
            uri: "bitcoin:?lno=lno1x".into(),
        };
        let ns = vec![Name::from_ascii("example.com.").unwrap()];
        let hostmaster = Name::from_ascii("hostmaster.example.com.").unwrap();
        Zones::new(vec![Zone::new(apex, keys, 1, ns, hostmaster, &[record])])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_question_gets_an_answer_that_names_no_one_else(
            labels in proptest::collection::vec("[a-z0-9_*-]{1,20}", 0..4),
            qtype in proptest::sample::select(vec![RecordType::TXT, RecordType::A, RecordType::ANY, RecordType::DNSKEY, RecordType::NSEC3, RecordType::AXFR]),
        ) {
            let zones = a_zone();
            let mut text = labels.join(".");
            if !text.is_empty() { text.push('.'); }
            text.push_str("user._bitcoin-payment.example.com.");
            let Ok(name) = Name::from_ascii(&text) else { return Ok(()) };
            let answer = zones.answer(&name, qtype, true, 1_000_000);
            for record in answer.answers.iter().chain(&answer.authority) {
                // Only the name asked for, the apex, and hashed names appear.
                let owner = record.name.to_string();
                let alice = owner.starts_with("alice.");
                proptest::prop_assert!(!alice || name.to_lowercase().to_string().starts_with("alice."), "{owner}");
            }
        }
    }
}
