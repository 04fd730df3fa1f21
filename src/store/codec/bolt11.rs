//! A BOLT11 string in about half its size: the data part as packed 5-bit groups (5/8 of the
//! characters), less the payment hash and description hash that the record stores anyway
//! (another fifth), the human-readable part as text; the checksum is recomputed on the way
//! out. An invoice is most of every stored record, so this is most of what makes one small.

use std::borrow::Cow;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{ByteIterExt, Fe32, Fe32IterExt, Hrp};
use lightning_invoice::Bolt11Bech32;
use serde::{Deserialize, Serialize};

/// BOLT11's data part: a 35-bit timestamp, tagged fields, a 520-bit signature.
const TIMESTAMP: usize = 7;
const SIGNATURE: usize = 104;
/// Tagged fields: type (5 bits), data length in groups (10 bits), data.
const TAG_HEADER: usize = 3;
const PAYMENT_HASH: u8 = 1;
const DESCRIPTION_HASH: u8 = 23;
/// A 256-bit hash is 52 groups.
const HASH_GROUPS: usize = 52;
/// Flags: which hash field's data was left out.
const ELIDED_PAYMENT_HASH: u8 = 1;
const ELIDED_DESCRIPTION_HASH: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredBolt11<'a> {
    /// `groups` 5-bit groups of data, packed big-endian into `bits` (zero-padded), with the
    /// data of the hash fields `elided` names left out.
    Packed {
        #[serde(borrow)]
        hrp: Cow<'a, str>,
        groups: u32,
        #[serde(borrow)]
        bits: Cow<'a, [u8]>,
        elided: u8,
    },
    /// Anything that would not come back exactly as it was (upper case, a bad checksum): the
    /// text itself.
    Text(#[serde(borrow)] Cow<'a, str>),
}

/// The hashes a record keeps beside its invoice, which the packed form leaves out.
#[derive(Debug, Clone, Copy)]
pub struct Known<'h> {
    pub payment_hash: &'h [u8; 32],
    pub description_hash: Option<&'h [u8; 32]>,
}

fn groups_of(hash: &[u8; 32]) -> Vec<Fe32> {
    hash.iter().copied().bytes_to_fes().collect()
}

/// Which known hash a tagged field carries, if any: (flag, the hash's groups).
fn known_field(tag: u8, len: usize, known: Known<'_>) -> Option<(u8, Vec<Fe32>)> {
    match (tag, len) {
        (PAYMENT_HASH, HASH_GROUPS) => Some((ELIDED_PAYMENT_HASH, groups_of(known.payment_hash))),
        (DESCRIPTION_HASH, HASH_GROUPS) => known
            .description_hash
            .map(|h| (ELIDED_DESCRIPTION_HASH, groups_of(h))),
        _ => None,
    }
}

impl<'a> StoredBolt11<'a> {
    pub fn pack(bolt11: &'a str, known: Known<'_>) -> Self {
        match Self::try_pack(bolt11, known) {
            Some(packed) if packed.unpack(known).as_deref() == Some(bolt11) => packed,
            _ => Self::Text(Cow::Borrowed(bolt11)),
        }
    }

    fn try_pack(bolt11: &'a str, known: Known<'_>) -> Option<Self> {
        let checked = CheckedHrpstring::new::<Bolt11Bech32>(bolt11).ok()?;
        let groups: Vec<Fe32> = checked.fe32_iter::<std::iter::Empty<u8>>().collect();
        let (groups, elided) = elide(&groups, known).unwrap_or((groups, 0));
        // Pad to whole bytes, so that no data bit is dropped.
        let padding = ((8 - groups.len() * 5 % 8) % 8).div_ceil(5);
        let bits = groups
            .iter()
            .copied()
            .chain(std::iter::repeat_n(Fe32::Q, padding))
            .fes_to_bytes()
            .collect();
        Some(Self::Packed {
            hrp: Cow::Owned(checked.hrp().to_string()),
            groups: u32::try_from(groups.len()).ok()?,
            bits: Cow::Owned(bits),
            elided,
        })
    }

    /// The string again, or `None` if what was stored cannot be one (a corrupt record).
    pub fn unpack(&self, known: Known<'_>) -> Option<String> {
        match self {
            Self::Text(text) => Some(text.to_string()),
            Self::Packed {
                hrp,
                groups,
                bits,
                elided,
            } => {
                let hrp = Hrp::parse(hrp).ok()?;
                let count = usize::try_from(*groups).ok()?;
                if bits.len() * 8 < count * 5 {
                    return None;
                }
                let stored: Vec<Fe32> = bits.iter().copied().bytes_to_fes().take(count).collect();
                let groups = if *elided == 0 {
                    stored
                } else {
                    restore(&stored, *elided, known)?
                };
                Some(
                    groups
                        .into_iter()
                        .with_checksum::<Bolt11Bech32>(&hrp)
                        .chars()
                        .collect(),
                )
            }
        }
    }
}

/// The field header at `at`: (tag, data length in groups).
fn header(groups: &[Fe32], at: usize) -> Option<(u8, usize)> {
    let header = groups.get(at..at + TAG_HEADER)?;
    let len = usize::from(header[1].to_u8()) * 32 + usize::from(header[2].to_u8());
    Some((header[0].to_u8(), len))
}

/// The data part without the data of the first payment-hash and description-hash fields
/// that hold the known hashes, and which were left out. `None`: not a well-formed data part.
fn elide(groups: &[Fe32], known: Known<'_>) -> Option<(Vec<Fe32>, u8)> {
    let body_end = groups.len().checked_sub(SIGNATURE)?.max(TIMESTAMP);
    let mut out = groups.get(..TIMESTAMP)?.to_vec();
    let mut at = TIMESTAMP;
    let mut elided = 0;
    while at < body_end {
        let (tag, len) = header(groups, at)?;
        let data_end = at + TAG_HEADER + len;
        if data_end > body_end {
            return None;
        }
        out.extend_from_slice(&groups[at..at + TAG_HEADER]);
        let data = &groups[at + TAG_HEADER..data_end];
        match known_field(tag, len, known) {
            Some((flag, hash)) if elided & flag == 0 && data == hash.as_slice() => elided |= flag,
            _ => out.extend_from_slice(data),
        }
        at = data_end;
    }
    out.extend_from_slice(&groups[body_end..]);
    Some((out, elided))
}

/// The full data part again, the elided hashes put back where the first fields of their
/// kind are.
fn restore(groups: &[Fe32], elided: u8, known: Known<'_>) -> Option<Vec<Fe32>> {
    let body_end = groups.len().checked_sub(SIGNATURE)?.max(TIMESTAMP);
    let mut out = groups.get(..TIMESTAMP)?.to_vec();
    let mut at = TIMESTAMP;
    let mut restored = 0;
    while at < body_end {
        let (tag, len) = header(groups, at)?;
        out.extend_from_slice(&groups[at..at + TAG_HEADER]);
        at += TAG_HEADER;
        match known_field(tag, len, known) {
            Some((flag, hash)) if elided & flag != 0 && restored & flag == 0 => {
                restored |= flag;
                out.extend_from_slice(&hash);
            }
            _ => {
                if at + len > body_end {
                    return None;
                }
                out.extend_from_slice(&groups[at..at + len]);
                at += len;
            }
        }
    }
    if at != body_end || restored != elided {
        return None;
    }
    out.extend_from_slice(&groups[body_end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin_hashes::{sha256, Hash};
    use proptest::prelude::*;

    const PAYMENT_HASH: [u8; 32] = [0x11; 32];
    const DESCRIPTION_HASH: [u8; 32] = [0x22; 32];

    fn known() -> Known<'static> {
        Known {
            payment_hash: &PAYMENT_HASH,
            description_hash: Some(&DESCRIPTION_HASH),
        }
    }

    /// A regtest invoice committing to a description hash, as the dev backend makes them.
    fn invoice(payment_hash: [u8; 32], description_hash: [u8; 32]) -> String {
        use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
        let key = secp256k1::SecretKey::from_slice(&[3; 32]).unwrap();
        InvoiceBuilder::new(Currency::Regtest)
            .amount_milli_satoshis(21_000)
            .payment_hash(sha256::Hash::from_byte_array(payment_hash))
            .payment_secret(PaymentSecret([7; 32]))
            .description_hash(sha256::Hash::from_byte_array(description_hash))
            .duration_since_epoch(std::time::Duration::from_secs(1_800_000_000))
            .min_final_cltv_expiry_delta(18)
            .build_signed(|m| secp256k1::SECP256K1.sign_ecdsa_recoverable(m, &key))
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_invoice_is_stored_in_about_half_its_length_and_comes_back_exactly() {
        let invoice = invoice(PAYMENT_HASH, DESCRIPTION_HASH);
        let packed = StoredBolt11::pack(&invoice, known());
        let StoredBolt11::Packed { bits, elided, .. } = &packed else {
            panic!("a lower-case invoice with a good checksum is packed");
        };
        assert_eq!(*elided, ELIDED_PAYMENT_HASH | ELIDED_DESCRIPTION_HASH);
        // 5/8 of the characters, less two hashes of 32.5 bytes.
        assert!(bits.len() <= invoice.len() * 5 / 8 - 64, "{}", bits.len());
        assert_eq!(packed.unpack(known()), Some(invoice));
    }

    #[test]
    fn only_hashes_the_record_knows_are_left_out() {
        let other = invoice([0x33; 32], DESCRIPTION_HASH);
        let packed = StoredBolt11::pack(&other, known());
        assert!(matches!(
            packed,
            StoredBolt11::Packed {
                elided: ELIDED_DESCRIPTION_HASH,
                ..
            }
        ));
        assert_eq!(packed.unpack(known()).as_deref(), Some(other.as_str()));
        let memo = Known {
            payment_hash: &PAYMENT_HASH,
            description_hash: None,
        };
        let full = invoice(PAYMENT_HASH, DESCRIPTION_HASH);
        let packed = StoredBolt11::pack(&full, memo);
        assert!(matches!(
            packed,
            StoredBolt11::Packed {
                elided: ELIDED_PAYMENT_HASH,
                ..
            }
        ));
    }

    #[test]
    fn what_would_not_come_back_exactly_is_kept_as_text() {
        let upper = invoice(PAYMENT_HASH, DESCRIPTION_HASH).to_uppercase();
        assert_eq!(
            StoredBolt11::pack(&upper, known()),
            StoredBolt11::Text(Cow::Borrowed(upper.as_str()))
        );
        let mut broken = invoice(PAYMENT_HASH, DESCRIPTION_HASH);
        broken.pop();
        broken.push('q');
        assert!(matches!(
            StoredBolt11::pack(&broken, known()),
            StoredBolt11::Text(_)
        ));
    }

    #[test]
    fn a_corrupt_packed_form_unpacks_to_nothing_rather_than_panicking() {
        let corrupt = StoredBolt11::Packed {
            hrp: Cow::Borrowed("ln bc"),
            groups: 10,
            bits: Cow::Borrowed(&[1, 2]),
            elided: 0,
        };
        assert_eq!(corrupt.unpack(known()), None);
        let short = StoredBolt11::Packed {
            hrp: Cow::Borrowed("lnbc"),
            groups: 1000,
            bits: Cow::Borrowed(&[1, 2]),
            elided: 0,
        };
        assert_eq!(short.unpack(known()), None);
        let truncated = StoredBolt11::Packed {
            hrp: Cow::Borrowed("lnbc"),
            groups: 120,
            bits: Cow::Owned(vec![0xff; 75]),
            elided: 3,
        };
        assert_eq!(truncated.unpack(known()), None);
    }

    proptest! {
        /// Any bech32 string (of any data length, which decides the padding) round-trips.
        #[test]
        fn any_bech32_string_round_trips(data in proptest::collection::vec(0u8..32, 0..400), hrp in "[a-z]{1,12}") {
            let hrp = Hrp::parse(&hrp).unwrap();
            let text: String = data
                .iter()
                .map(|&b| Fe32::try_from(b).unwrap())
                .with_checksum::<Bolt11Bech32>(&hrp)
                .chars()
                .collect();
            let packed = StoredBolt11::pack(&text, known());
            prop_assert!(matches!(packed, StoredBolt11::Packed { .. }), "packed");
            prop_assert_eq!(packed.unpack(known()), Some(text));
        }

        /// Real invoices with any hashes round-trip, whichever hashes the record knows.
        #[test]
        fn any_invoice_round_trips(p in any::<[u8; 32]>(), h in any::<[u8; 32]>(), knows_p: bool, knows_h: bool) {
            let text = invoice(p, h);
            let other = [0u8; 32];
            let known = Known {
                payment_hash: if knows_p { &p } else { &other },
                description_hash: knows_h.then_some(&h),
            };
            prop_assert_eq!(StoredBolt11::pack(&text, known).unpack(known), Some(text));
        }

        #[test]
        fn arbitrary_text_is_kept_as_it_is(text in "\\PC{0,200}") {
            prop_assert_eq!(StoredBolt11::pack(&text, known()).unpack(known()), Some(text));
        }
    }
}
