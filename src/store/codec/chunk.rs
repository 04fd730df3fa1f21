//! Finished invoices are kept in chunks: runs of consecutive invoices (by arrival) stored as one
//! value, each invoice still in its own encoded form so that moving it costs a copy, not a
//! re-encoding. sled's cost per entry (an index entry, a page-table entry, log headers) is then
//! paid once per chunk instead of once per invoice.
//!
//! Beside each chunk, a summary says what is in it without reading it: the first four bytes of
//! each payment hash (to find an invoice by hash) and a Bloom filter of its users (to skip
//! chunks when listing one user's invoices). Summaries are what is loaded at start.

use bitcoin_hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

const V1: u8 = 1;

/// At most this many invoices in one chunk, and about this many bytes. sled writes a leaf of up
/// to 17 entries as one log message (one over 128 KiB goes to a file of its own) and rewrites
/// it whole as it changes: smaller chunks mean smaller rewrites and less garbage on disk. A
/// million-invoice store took 840-900 MB at 16 per chunk against 950-1070 MB at 32, for 8
/// bytes more memory per chunk and twice the summaries read at open.
pub const MAX_RECORDS: usize = 16;
pub const MAX_BYTES: usize = 3500;

/// A chunk's invoices: (sequence number, encoded invoice), in increasing sequence order.
pub type Records = Vec<(u64, Vec<u8>)>;

#[derive(Serialize, Deserialize)]
struct ChunkV1<'a> {
    /// Each invoice's sequence number as an offset from the chunk's first, and its bytes.
    #[serde(borrow)]
    records: Vec<(u64, &'a [u8])>,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored chunk: {what}"))
}

/// `records` must be in increasing sequence order, none before `first`, the chunk's key (its
/// first invoice when it was sealed: pruning may have removed it since).
pub fn encode(first: u64, records: &[(u64, Vec<u8>)]) -> Result<Vec<u8>, StoreError> {
    let chunk = ChunkV1 {
        records: records
            .iter()
            .map(|(seq, bytes)| {
                seq.checked_sub(first)
                    .map(|offset| (offset, bytes.as_slice()))
                    .ok_or_else(|| corrupt("an invoice before the chunk's start"))
            })
            .collect::<Result<_, _>>()?,
    };
    postcard::to_extend(&chunk, vec![V1]).map_err(corrupt)
}

/// The invoices of the chunk whose first sequence number is `first`.
pub fn decode(first: u64, bytes: &[u8]) -> Result<Records, StoreError> {
    let chunk: ChunkV1<'_> = match bytes.split_first() {
        Some((&V1, rest)) => postcard::from_bytes(rest).map_err(corrupt)?,
        _ => return Err(corrupt("unknown form")),
    };
    chunk
        .records
        .into_iter()
        .map(|(offset, record)| {
            let seq = first
                .checked_add(offset)
                .ok_or_else(|| corrupt("sequence number"))?;
            Ok((seq, record.to_vec()))
        })
        .collect()
}

/// What is in a chunk, for finding things without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The last invoice's sequence number: the chunk covers `first..=last`.
    pub last: u64,
    /// The first four bytes of each payment hash, in the chunk's order.
    pub hashes: Vec<[u8; 4]>,
    pub users: UserFilter,
    /// The earliest expiry among its expired invoices, and the earliest payment among its paid
    /// ones (`u64::MAX`: none), so that pruning reads only the chunks it will change.
    pub oldest_expired: u64,
    pub oldest_paid: u64,
}

impl Summary {
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![V1]).map_err(corrupt)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&V1, rest)) => postcard::from_bytes(rest).map_err(corrupt),
            _ => Err(corrupt("unknown summary form")),
        }
    }
}

/// The first four bytes of a payment hash: enough to find one invoice among millions with a
/// false match once in a thousand lookups, each costing one chunk read.
pub fn hash_prefix(hash: &[u8; 32]) -> [u8; 4] {
    [hash[0], hash[1], hash[2], hash[3]]
}

/// A 256-bit Bloom filter of user names, five bits per name: with a chunk's sixteen names at
/// most, about one chunk in seven hundred claims a user it does not hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFilter([u8; 32]);

/// Where a user's bits are, in every filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBits([u8; 5]);

impl UserBits {
    pub fn of(user: &str) -> Self {
        let digest = sha256::Hash::hash(user.as_bytes()).to_byte_array();
        Self([digest[0], digest[1], digest[2], digest[3], digest[4]])
    }
}

impl UserFilter {
    pub fn add(&mut self, user: UserBits) {
        for bit in user.0 {
            self.0[usize::from(bit / 8)] |= 1 << (bit % 8);
        }
    }

    /// `false`: certainly not here. `true`: probably.
    pub fn may_hold(&self, user: UserBits) -> bool {
        user.0
            .iter()
            .all(|&bit| self.0[usize::from(bit / 8)] & (1 << (bit % 8)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_keeps_its_invoices_bytes_and_sequence_numbers() {
        let records = vec![(1000, vec![1, 2, 3]), (1001, vec![]), (1042, vec![9; 300])];
        let bytes = encode(1000, &records).unwrap();
        assert_eq!(decode(1000, &bytes).unwrap(), records);
        // Offsets and lengths take a byte or two each.
        assert!(bytes.len() <= 1 + 1 + 3 + 300 + 3 * 3, "{}", bytes.len());
    }

    #[test]
    fn a_chunk_whose_first_invoice_was_pruned_keeps_its_key() {
        let records = vec![(1005, vec![1]), (1007, vec![2])];
        assert_eq!(
            decode(1000, &encode(1000, &records).unwrap()).unwrap(),
            records
        );
        assert!(encode(1006, &records).is_err());
    }

    #[test]
    fn damaged_chunks_and_summaries_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[2, 0],
            &[1, 5, 0],
            &[1, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(decode(0, bytes).is_err());
            assert!(Summary::decode(bytes).is_err());
        }
        let far = encode(0, &[(0, vec![]), (u64::MAX, vec![])]).unwrap();
        assert!(
            decode(u64::MAX, &far).is_err(),
            "sequence numbers do not wrap"
        );
    }

    #[test]
    fn a_user_filter_always_knows_its_users_and_rarely_claims_others() {
        let mut filter = UserFilter::default();
        for n in 0..MAX_RECORDS {
            filter.add(UserBits::of(&format!("user{n}")));
        }
        for n in 0..MAX_RECORDS {
            assert!(filter.may_hold(UserBits::of(&format!("user{n}"))));
        }
        let claimed = (0..10_000)
            .filter(|n| filter.may_hold(UserBits::of(&format!("stranger{n}"))))
            .count();
        assert!(claimed < 400, "{claimed} of 10000 strangers claimed");
    }

    #[test]
    fn a_summary_costs_about_four_bytes_per_invoice() {
        let summary = Summary {
            last: 1031,
            hashes: vec![[7; 4]; MAX_RECORDS],
            users: UserFilter::default(),
            oldest_expired: 1_700_000_000,
            oldest_paid: u64::MAX,
        };
        let bytes = summary.encode().unwrap();
        assert_eq!(Summary::decode(&bytes).unwrap(), summary);
        assert!(
            bytes.len() <= 1 + 2 + 1 + 4 * MAX_RECORDS + 32 + 5 + 10,
            "{}",
            bytes.len()
        );
    }
}
