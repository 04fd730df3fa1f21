//! The invoices not yet sealed into chunks (the pending ones, and those finished too recently),
//! indexed in memory: by payment hash, and the pending ones by expiry. sled would charge a
//! random-key insert per invoice for the first (the costliest write it has) and an insert and a
//! removal for the second; here they cost a few dozen bytes of memory while an invoice is young.
//! Rebuilt from the hot records at open; changed only by the store's writer.

use std::collections::HashMap;

use crate::domain::Hash32;

#[derive(Default)]
pub struct HotIndex {
    /// The first eight bytes of a payment hash -> sequence number.
    by_hash: HashMap<u64, u64>,
    /// Hashes whose first eight bytes another hot invoice already has (practically never).
    collisions: HashMap<Hash32, u64>,
    /// (expires_at, sequence number) of each pending invoice, in order.
    pending: Vec<(u64, u64)>,
}

fn prefix(hash: &Hash32) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.0[..8]);
    u64::from_be_bytes(first)
}

impl HotIndex {
    pub fn insert(&mut self, hash: &Hash32, seq: u64, pending_until: Option<u64>) {
        match self.by_hash.entry(prefix(hash)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.insert(*hash, seq);
            }
        }
        if let Some(expires_at) = pending_until {
            let entry = (expires_at, seq);
            let at = self.pending.partition_point(|e| *e < entry);
            self.pending.insert(at, entry);
        }
    }

    /// Where the invoice with `hash` may be: the exact match if it collided, else the
    /// candidate sharing its first bytes (the caller compares the whole hash).
    pub fn seq_of(&self, hash: &Hash32) -> Option<u64> {
        self.collisions
            .get(hash)
            .or_else(|| self.by_hash.get(&prefix(hash)))
            .copied()
    }

    /// Forgets the invoice at `seq` (sealed into a chunk, or deleted).
    pub fn remove(&mut self, hash: &Hash32, seq: u64) {
        if self.collisions.get(hash) == Some(&seq) {
            self.collisions.remove(hash);
        } else if self.by_hash.get(&prefix(hash)) == Some(&seq) {
            self.by_hash.remove(&prefix(hash));
        }
    }

    /// Gives back memory once a burst of invoices has been sealed (maps keep their capacity).
    pub fn shrink(&mut self) {
        if self.by_hash.capacity() > 1024 && self.by_hash.len() * 4 < self.by_hash.capacity() {
            self.by_hash.shrink_to_fit();
        }
        if self.pending.capacity() > 1024 && self.pending.len() * 4 < self.pending.capacity() {
            self.pending.shrink_to_fit();
        }
        if self.collisions.is_empty() {
            self.collisions.shrink_to_fit();
        }
    }

    /// The invoice at `seq`, pending until `expires_at`, no longer is.
    pub fn finished(&mut self, expires_at: u64, seq: u64) {
        if let Ok(at) = self.pending.binary_search(&(expires_at, seq)) {
            self.pending.remove(at);
        }
    }

    /// Pending invoices expiring at or before `until`, soonest first, at most `limit`.
    pub fn due(&self, until: u64, limit: usize) -> Vec<u64> {
        self.pending
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= until)
            .take(limit)
            .map(|(_, seq)| *seq)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len() + self.collisions.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Memory held, roughly, in bytes (for the numbers `rayo` reports about its store).
    pub fn bytes(&self) -> usize {
        self.by_hash.capacity() * 17
            + self.collisions.capacity() * 41
            + self.pending.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, last: u8) -> Hash32 {
        let mut bytes = [first; 32];
        bytes[31] = last;
        Hash32(bytes)
    }

    #[test]
    fn invoices_are_found_by_hash_even_when_their_first_bytes_collide() {
        let mut index = HotIndex::default();
        index.insert(&hash(1, 1), 10, None);
        index.insert(&hash(1, 2), 11, None);
        assert_eq!(index.seq_of(&hash(1, 1)), Some(10));
        assert_eq!(index.seq_of(&hash(1, 2)), Some(11));
        index.remove(&hash(1, 1), 10);
        assert_eq!(index.seq_of(&hash(1, 2)), Some(11));
        index.remove(&hash(1, 2), 11);
        assert_eq!(index.seq_of(&hash(1, 2)), None);
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn pending_invoices_come_due_in_expiry_order_until_they_finish() {
        let mut index = HotIndex::default();
        index.insert(&hash(1, 0), 1, Some(300));
        index.insert(&hash(2, 0), 2, Some(100));
        index.insert(&hash(3, 0), 3, Some(200));
        index.insert(&hash(4, 0), 4, None);
        assert_eq!(index.due(250, 10), vec![2, 3]);
        assert_eq!(index.due(u64::MAX, 2), vec![2, 3]);
        index.finished(100, 2);
        index.finished(100, 2);
        assert_eq!(index.due(u64::MAX, 10), vec![3, 1]);
        assert_eq!(index.pending(), 2);
    }
}
