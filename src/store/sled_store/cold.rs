//! Finds sealed invoices by payment hash without reading chunks: the first four bytes of every
//! sealed invoice's hash, sorted, each with the chunk it is in: 8 bytes of memory per invoice.
//! Built from the chunk summaries at open; chunks sealed later go into a small sorted tail,
//! merged into the sorted runs as it grows (so a lookup is a few binary searches).

use crate::domain::Hash32;

use crate::store::codec::chunk::hash_prefix;

/// The tail is merged into the runs at this size.
const TAIL: usize = 4096;

#[derive(Default)]
pub struct ColdIndex {
    /// Each chunk's first sequence number, by ordinal. A chunk rewritten with more invoices
    /// gets another ordinal for them; a removed chunk's entries stay until the next rebuild
    /// (a lookup reads the chunk and does not find the invoice).
    chunks: Vec<u64>,
    /// Sorted runs of `prefix << 32 | ordinal`.
    runs: Vec<Vec<u64>>,
    tail: Vec<u64>,
    /// Entries that no longer lead anywhere (invoices deleted since the last rebuild).
    stale: usize,
}

fn entry(prefix: [u8; 4], ordinal: u32) -> u64 {
    u64::from(u32::from_be_bytes(prefix)) << 32 | u64::from(ordinal)
}

impl ColdIndex {
    /// An index of every chunk in `chunks`: (first sequence number, hash prefixes).
    #[cfg(test)]
    pub fn build(chunks: impl IntoIterator<Item = (u64, Vec<[u8; 4]>)>) -> Self {
        let mut builder = ColdBuilder::default();
        for (first, prefixes) in chunks {
            builder.add(first, &prefixes);
        }
        builder.finish()
    }

    fn ordinal(&mut self, first: u64) -> u32 {
        self.chunks.push(first);
        // More than four billion chunk writes between restarts: the index would be
        // rebuilt long before (see `needs_rebuild`).
        u32::try_from(self.chunks.len() - 1).unwrap_or(u32::MAX)
    }

    /// Invoices with these hash prefixes are now in the chunk starting at `first`.
    pub fn add(&mut self, first: u64, prefixes: impl IntoIterator<Item = [u8; 4]>) {
        let ordinal = self.ordinal(first);
        for prefix in prefixes {
            let entry = entry(prefix, ordinal);
            let at = self.tail.partition_point(|e| *e < entry);
            self.tail.insert(at, entry);
        }
        if self.tail.len() >= TAIL {
            self.runs.push(std::mem::take(&mut self.tail));
            // Keep runs in decreasing sizes, each at least twice the next: few runs, and each
            // entry merged O(log n) times.
            while let [.., bigger, smaller] = self.runs.as_slice() {
                if smaller.len() * 2 < bigger.len() {
                    break;
                }
                let (Some(smaller), Some(bigger)) = (self.runs.pop(), self.runs.pop()) else {
                    break;
                };
                self.runs.push(merge(&bigger, &smaller));
            }
        }
    }

    /// The first sequence numbers of the chunks that may hold the invoice with `hash`.
    pub fn candidates(&self, hash: &Hash32) -> Vec<u64> {
        let low = entry(hash_prefix(&hash.0), 0);
        let high = low | u64::from(u32::MAX);
        let mut found = Vec::new();
        for run in self.runs.iter().chain(std::iter::once(&self.tail)) {
            let start = run.partition_point(|e| *e < low);
            for e in run[start..].iter().take_while(|e| **e <= high) {
                let ordinal = (e & u64::from(u32::MAX)) as usize;
                if let Some(&first) = self.chunks.get(ordinal) {
                    if !found.contains(&first) {
                        found.push(first);
                    }
                }
            }
        }
        found
    }

    /// `count` invoices were deleted from chunks.
    pub fn forget(&mut self, count: usize) {
        self.stale += count;
    }

    /// Whether a rebuild would shed enough stale entries to be worth it.
    pub fn needs_rebuild(&self) -> bool {
        self.stale > 1024 && self.stale * 4 > self.len()
            || self.chunks.len() >= u32::MAX as usize / 2
    }

    pub fn len(&self) -> usize {
        self.runs.iter().map(Vec::len).sum::<usize>() + self.tail.len()
    }

    /// Memory held, roughly, in bytes.
    pub fn bytes(&self) -> usize {
        (self.runs.iter().map(Vec::capacity).sum::<usize>() + self.tail.capacity()) * 8
            + self.chunks.capacity() * 8
    }
}

/// Builds the index from the chunk summaries as they are read, one at a time: nothing of a
/// summary outlives its turn, and the one large vector grows by reallocation (pages the
/// allocator maps and unmaps), so the memory left after opening a large store is the index.
#[derive(Default)]
pub struct ColdBuilder {
    index: ColdIndex,
    all: Vec<u64>,
}

impl ColdBuilder {
    pub fn add(&mut self, first: u64, prefixes: &[[u8; 4]]) {
        let ordinal = self.index.ordinal(first);
        self.all.extend(prefixes.iter().map(|p| entry(*p, ordinal)));
    }

    pub fn finish(mut self) -> ColdIndex {
        self.all.sort_unstable();
        self.all.shrink_to_fit();
        self.index.chunks.shrink_to_fit();
        self.index.runs.push(self.all);
        self.index
    }
}

fn merge(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash(n: u32) -> Hash32 {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
        Hash32(bytes)
    }

    #[test]
    fn every_indexed_invoice_is_found_in_its_chunk_as_runs_merge() {
        let mut index = ColdIndex::build((0..100u32).map(|c| {
            let prefixes = (c * 10..c * 10 + 10)
                .map(|n| hash_prefix(&hash(n).0))
                .collect();
            (u64::from(c) * 10, prefixes)
        }));
        for c in 100..3000u32 {
            index.add(
                u64::from(c) * 10,
                (c * 10..c * 10 + 10).map(|n| hash_prefix(&hash(n).0)),
            );
        }
        assert!(index.runs.len() <= 12, "{} runs", index.runs.len());
        for n in (0..30_000u32).step_by(7) {
            assert!(
                index
                    .candidates(&hash(n))
                    .contains(&(u64::from(n / 10) * 10)),
                "invoice {n}"
            );
        }
        assert_eq!(index.len(), 30_000);
    }

    #[test]
    fn an_unknown_hash_has_no_candidates() {
        let index = ColdIndex::build([(0, vec![[1, 2, 3, 4]])]);
        assert!(index.candidates(&Hash32([9; 32])).is_empty());
    }

    proptest! {
        #[test]
        fn merging_keeps_every_entry_in_order(mut a in proptest::collection::vec(any::<u64>(), 0..200), mut b in proptest::collection::vec(any::<u64>(), 0..200)) {
            a.sort_unstable();
            b.sort_unstable();
            let merged = merge(&a, &b);
            let mut expected = [a, b].concat();
            expected.sort_unstable();
            prop_assert_eq!(merged, expected);
        }
    }
}
