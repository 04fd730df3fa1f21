//! Invoices in sled, in two tiers.
//!
//! - Young invoices (pending, or finished less than `SEAL_DELAY` past their expiry) are records
//!   of their own under `r` + sequence number, found by hash through the in-memory `HotIndex`.
//! - Older ones are sealed, in arrival order, into chunks under `c` + first sequence number,
//!   each with a summary under `s` + the same number; the in-memory `ColdIndex`, built from
//!   the summaries, finds them by hash.
//!
//! An invoice is written once when it is made, once if its status changes, and once when it
//! is sealed; sled's costs per entry (in memory, on disk and at start) are paid per chunk of a
//! sixteen invoices. Sequence numbers come from sled's id generator, so listing newest first
//! walks both tiers backwards, merged.

use std::sync::RwLock;

use sled::{IVec, Tree};

use super::cold::{ColdBuilder, ColdIndex};
use super::hot::HotIndex;
use crate::domain::InvoiceStatus;
use crate::domain::{Hash32, InvoiceRecord};
use crate::store::codec::chunk::{self, hash_prefix, Records, Summary, UserBits, UserFilter};
use crate::store::codec::invoice;
use crate::store::{next_status, InvoicePage, Pruned, Retention, StoreError};

const HOT: u8 = b'r';
const CHUNK: u8 = b'c';
const SUMMARY: u8 = b's';

/// How long after its expiry a finished invoice stays hot: by then the invoices made around
/// the same time are finished too (the sweeper's grace is shorter), so they seal together.
pub const SEAL_DELAY: u64 = 300;

fn key(space: u8, seq: u64) -> [u8; 9] {
    let mut key = [space; 9];
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("invoices: {what}"))
}

/// The payment hash of an encoded invoice, without decoding the rest.
fn hash_of(bytes: &[u8]) -> Result<Hash32, StoreError> {
    match bytes.split_first() {
        Some((&(invoice::V1 | invoice::V2), rest)) => rest
            .get(..32)
            .and_then(|h| h.try_into().ok())
            .map(Hash32)
            .ok_or_else(|| corrupt("short record")),
        _ => invoice::decode(bytes).map(|r| r.payment_hash),
    }
}

/// Where an invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Hot(u64),
    /// In the chunk starting at `first`.
    Sealed {
        first: u64,
        seq: u64,
    },
}

impl Place {
    fn seq(self) -> u64 {
        match self {
            Self::Hot(seq) | Self::Sealed { seq, .. } => seq,
        }
    }
}

pub struct InvoiceTable {
    tree: Tree,
    db: sled::Db,
    hot: RwLock<HotIndex>,
    cold: RwLock<ColdIndex>,
    /// Finished hot invoices, (expires_at, seq), waiting for the sealer.
    finished: RwLock<Vec<(u64, u64)>>,
}

impl InvoiceTable {
    /// Opens the table, indexing the hot records and loading the chunk summaries.
    pub fn open(db: sled::Db, tree: Tree) -> Result<Self, StoreError> {
        let mut hot = HotIndex::default();
        let mut finished = Vec::new();
        for entry in tree.scan_prefix([HOT]) {
            let (key, value) = entry.map_err(io)?;
            let seq = seq_of(&key).ok_or_else(|| corrupt("hot key"))?;
            if finish_interrupted_seal(&tree, seq)? {
                continue;
            }
            let record = invoice::decode(&value)?;
            let pending = record.is_pending().then_some(record.expires_at);
            hot.insert(&record.payment_hash, seq, pending);
            if pending.is_none() {
                finished.push((record.expires_at, seq));
            }
        }
        finished.sort_unstable();
        Ok(Self {
            cold: RwLock::new(build_cold(&tree)?),
            hot: RwLock::new(hot),
            finished: RwLock::new(finished),
            tree,
            db,
        })
    }

    #[cfg(test)]
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    fn hot(&self) -> std::sync::RwLockReadGuard<'_, HotIndex> {
        self.hot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn hot_mut(&self) -> std::sync::RwLockWriteGuard<'_, HotIndex> {
        self.hot.write().unwrap_or_else(|p| p.into_inner())
    }

    fn cold(&self) -> std::sync::RwLockReadGuard<'_, ColdIndex> {
        self.cold.read().unwrap_or_else(|p| p.into_inner())
    }

    fn cold_mut(&self) -> std::sync::RwLockWriteGuard<'_, ColdIndex> {
        self.cold.write().unwrap_or_else(|p| p.into_inner())
    }

    fn finished_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, u64)>> {
        self.finished.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The chunk that covers `seq`, if any: (first, its summary).
    fn chunk_covering(&self, seq: u64) -> Result<Option<(u64, Summary)>, StoreError> {
        let Some(entry) = self
            .tree
            .range(key(SUMMARY, 0)..=key(SUMMARY, seq))
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = entry.map_err(io)?;
        let first = seq_of(&key).ok_or_else(|| corrupt("summary key"))?;
        let summary = Summary::decode(&value)?;
        Ok((summary.last >= seq).then_some((first, summary)))
    }

    fn chunk(&self, first: u64) -> Result<Option<Records>, StoreError> {
        self.tree
            .get(key(CHUNK, first))
            .map_err(io)?
            .map(|bytes| chunk::decode(first, &bytes))
            .transpose()
    }

    /// The encoded invoice at `seq`, wherever it is.
    fn bytes_at(&self, seq: u64) -> Result<Option<(Place, Vec<u8>)>, StoreError> {
        if let Some(bytes) = self.tree.get(key(HOT, seq)).map_err(io)? {
            return Ok(Some((Place::Hot(seq), bytes.to_vec())));
        }
        let Some((first, _)) = self.chunk_covering(seq)? else {
            return Ok(None);
        };
        Ok(self.chunk(first)?.and_then(|records| {
            records
                .into_iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, bytes)| (Place::Sealed { first, seq }, bytes))
        }))
    }

    /// Where the invoice with `hash` is, and its bytes.
    fn find(&self, hash: &Hash32) -> Result<Option<(Place, Vec<u8>)>, StoreError> {
        let hot = self.hot().seq_of(hash);
        if let Some(seq) = hot {
            // (It may have been sealed since the index was read: `bytes_at` looks in both.)
            if let Some((place, bytes)) = self.bytes_at(seq)? {
                if hash_of(&bytes)? == *hash {
                    return Ok(Some((place, bytes)));
                }
            }
        }
        let candidates = self.cold().candidates(hash);
        for first in candidates {
            for (seq, bytes) in self.chunk(first)?.unwrap_or_default() {
                if hash_of(&bytes)? == *hash {
                    return Ok(Some((Place::Sealed { first, seq }, bytes)));
                }
            }
        }
        Ok(None)
    }

    pub fn get(&self, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
        self.find(hash)?
            .map(|(_, bytes)| invoice::decode(&bytes))
            .transpose()
    }

    /// Adds a new invoice as a hot record; an existing payment hash is a conflict. Only the
    /// store's writer calls this, so the check and the insert cannot interleave with another.
    pub fn insert(&self, record: &InvoiceRecord) -> Result<(), StoreError> {
        if self.find(&record.payment_hash)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "invoice {}",
                record.payment_hash
            )));
        }
        let bytes = invoice::encode(record)?;
        let seq = self.db.generate_id().map_err(io)?;
        self.tree.insert(key(HOT, seq), bytes).map_err(io)?;
        let pending = record.is_pending().then_some(record.expires_at);
        self.hot_mut().insert(&record.payment_hash, seq, pending);
        if pending.is_none() {
            self.mark_finished(record.expires_at, seq);
        }
        Ok(())
    }

    fn mark_finished(&self, expires_at: u64, seq: u64) {
        let mut finished = self.finished_mut();
        let at = finished.partition_point(|e| *e < (expires_at, seq));
        finished.insert(at, (expires_at, seq));
    }

    /// Checks that every status change in `records` may happen, in order (an invoice may
    /// appear twice), and finds each invoice. Nothing is written.
    pub fn check_step(&self, records: &[InvoiceRecord]) -> Result<Vec<Place>, StoreError> {
        let mut within: std::collections::HashMap<Hash32, InvoiceRecord> = Default::default();
        records
            .iter()
            .map(|record| {
                let (place, bytes) = self.find(&record.payment_hash)?.ok_or_else(|| {
                    StoreError::NotFound(format!("invoice {}", record.payment_hash))
                })?;
                let stored = match within.remove(&record.payment_hash) {
                    Some(earlier) => earlier,
                    None => invoice::decode(&bytes)?,
                };
                check_transition(&stored, record)?;
                within.insert(record.payment_hash, record.clone());
                Ok(place)
            })
            .collect()
    }

    /// Writes `record` over the invoice at `place` (found by `check_step`), unless it is
    /// already there: applying a journaled step twice changes nothing.
    pub fn apply(&self, record: &InvoiceRecord, place: Place) -> Result<(), StoreError> {
        let bytes = invoice::encode(record)?;
        match place {
            Place::Hot(seq) => {
                let Some(stored) = self.tree.get(key(HOT, seq)).map_err(io)? else {
                    return Err(StoreError::NotFound(format!(
                        "invoice {}",
                        record.payment_hash
                    )));
                };
                if stored == bytes {
                    return Ok(());
                }
                let before = invoice::decode(&stored)?;
                self.tree.insert(key(HOT, seq), bytes).map_err(io)?;
                if before.is_pending() && !record.is_pending() {
                    self.hot_mut().finished(before.expires_at, seq);
                    self.mark_finished(record.expires_at, seq);
                }
            }
            Place::Sealed { first, seq } => {
                let mut records = self.chunk(first)?.unwrap_or_default();
                let Some(slot) = records.iter_mut().find(|(s, _)| *s == seq) else {
                    return Err(StoreError::NotFound(format!(
                        "invoice {}",
                        record.payment_hash
                    )));
                };
                // Written even when the chunk already holds the record: a replayed step then
                // finishes a summary that a crash left behind.
                let changed = slot.1 != bytes;
                slot.1 = bytes;
                self.put_chunk(first, &records, changed)?;
            }
        }
        Ok(())
    }

    /// Pending invoices expiring at or before `until`, soonest first.
    pub fn expiring(&self, until: u64, limit: usize) -> Result<Vec<InvoiceRecord>, StoreError> {
        let due = self.hot().due(until, limit);
        let mut out = Vec::with_capacity(due.len());
        for seq in due {
            if let Some((_, bytes)) = self.bytes_at(seq)? {
                let record = invoice::decode(&bytes)?;
                if record.is_pending() {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// A page, newest first.
    pub fn list(&self, mut page: InvoicePage<'_>) -> Result<Vec<InvoiceRecord>, StoreError> {
        let below = match page.before {
            Some(hash) => self
                .find(hash)?
                .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?
                .0
                .seq(),
            None => u64::MAX,
        };
        let wanted = page.user.map(|u| (u.as_str(), UserBits::of(u.as_str())));
        let mut hot = HotNewestFirst {
            iter: self.tree.range(key(HOT, 0)..key(HOT, below)).rev(),
            head: None,
        };
        let mut sealed = SealedNewestFirst::new(self, below, wanted.map(|(_, bits)| bits));
        let mut out = Vec::new();
        while out.len() < page.limit {
            let bytes = match (hot.peek_seq()?, sealed.peek_seq()?) {
                (None, None) => break,
                (Some(h), Some(s)) if s > h => sealed.take(),
                (Some(_), _) => hot.take(),
                (None, Some(_)) => sealed.take(),
            };
            if let Some((name, _)) = wanted {
                if !invoice::is_for(&bytes, name)? {
                    continue;
                }
            }
            let record = invoice::decode(&bytes)?;
            if page.keeps(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Moves up to `budget` finished invoices whose expiry is more than `SEAL_DELAY` past
    /// into chunks. Returns how many moved.
    pub fn seal(&self, now: u64, budget: usize) -> Result<usize, StoreError> {
        let due: Vec<u64> = {
            let finished = self.finished.read().unwrap_or_else(|p| p.into_inner());
            let mut due: Vec<u64> = finished
                .iter()
                .take_while(|(expires_at, _)| expires_at.saturating_add(SEAL_DELAY) <= now)
                .take(budget)
                .map(|(_, seq)| *seq)
                .collect();
            due.sort_unstable();
            due
        };
        let outcome = self.seal_in_order(&due);
        let mut finished = self.finished_mut();
        let gone: std::collections::HashSet<u64> = due
            .iter()
            .copied()
            .filter(|seq| self.tree.get(key(HOT, *seq)).ok().flatten().is_none())
            .collect();
        finished.retain(|(_, seq)| !gone.contains(seq));
        if finished.capacity() > 1024 && finished.len() * 4 < finished.capacity() {
            finished.shrink_to_fit();
        }
        outcome
    }

    /// Seals the hot invoices at `due` (in increasing order).
    fn seal_in_order(&self, due: &[u64]) -> Result<usize, StoreError> {
        let mut sealed = 0;
        let mut forming: Records = Vec::new();
        let mut forming_bytes = 0;
        // The first sequence number of the chunk after the one being formed: it must not
        // reach into it.
        let mut next_chunk: Option<u64> = None;
        for &seq in due {
            let Some(bytes) = self.tree.get(key(HOT, seq)).map_err(io)? else {
                continue;
            };
            if let Some((first, _)) = self.chunk_covering(seq)? {
                sealed += self.write_chunk(std::mem::take(&mut forming))?;
                forming_bytes = 0;
                self.merge_into(first, seq, bytes.to_vec())?;
                sealed += 1;
                continue;
            }
            let full = forming.len() >= chunk::MAX_RECORDS
                || forming_bytes + bytes.len() > chunk::MAX_BYTES && !forming.is_empty();
            let crosses = next_chunk.is_some_and(|next| seq > next);
            if full || crosses {
                sealed += self.write_chunk(std::mem::take(&mut forming))?;
                forming_bytes = 0;
            }
            if forming.is_empty() {
                next_chunk = self.first_chunk_after(seq)?;
            }
            forming_bytes += bytes.len();
            forming.push((seq, bytes.to_vec()));
        }
        sealed += self.write_chunk(forming)?;
        Ok(sealed)
    }

    fn first_chunk_after(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        match self
            .tree
            .range(key(SUMMARY, seq)..key(SUMMARY, u64::MAX))
            .next()
        {
            Some(entry) => Ok(seq_of(&entry.map_err(io)?.0)),
            None => Ok(None),
        }
    }

    /// Writes `records` (hot, in order) as a new chunk, then its summary, then removes their
    /// hot records, each a single-key write (see `recover_seal` for a crash in between), and
    /// indexes it.
    fn write_chunk(&self, records: Records) -> Result<usize, StoreError> {
        let Some(&(first, _)) = records.first() else {
            return Ok(0);
        };
        self.put_chunk(first, &records, true)?;
        for (seq, _) in &records {
            self.tree.remove(key(HOT, *seq)).map_err(io)?;
        }
        self.sealed(first, &records)?;
        Ok(records.len())
    }

    /// Puts a straggler (an invoice that stayed pending long after its neighbours) into the
    /// chunk that covers its place.
    fn merge_into(&self, first: u64, seq: u64, bytes: Vec<u8>) -> Result<(), StoreError> {
        let mut records = self.chunk(first)?.unwrap_or_default();
        let at = records.partition_point(|(s, _)| *s < seq);
        records.insert(at, (seq, bytes.clone()));
        self.put_chunk(first, &records, true)?;
        self.tree.remove(key(HOT, seq)).map_err(io)?;
        self.sealed(first, &[(seq, bytes)])
    }

    /// Writes the chunk at `first` (unless `changed` is false: it already holds `records`),
    /// then its summary. The range a chunk covers never shrinks, so invoices that finish late
    /// still seal into the chunk of their neighbours.
    fn put_chunk(&self, first: u64, records: &Records, changed: bool) -> Result<(), StoreError> {
        if changed {
            self.tree
                .insert(key(CHUNK, first), chunk::encode(first, records)?)
                .map_err(io)?;
        }
        let stored = self.tree.get(key(SUMMARY, first)).map_err(io)?;
        let mut summary = summarize(records)?;
        if let Some(stored) = &stored {
            summary.last = summary.last.max(Summary::decode(stored)?.last);
        }
        let bytes = summary.encode()?;
        if stored.as_deref() != Some(bytes.as_slice()) {
            self.tree.insert(key(SUMMARY, first), bytes).map_err(io)?;
        }
        Ok(())
    }

    /// One step of pruning sealed invoices that `rules` let go of at `now`, from the chunk
    /// at `from` on: reads only the chunks whose summaries say they hold some, and stops after
    /// about `budget` summaries and invoices. Returns what went and where to go on (`None`:
    /// every chunk was looked at). A dry run counts and writes nothing.
    pub fn prune(
        &self,
        rules: &Retention,
        now: u64,
        from: u64,
        budget: usize,
        dry_run: bool,
    ) -> Result<(Pruned, Option<u64>), StoreError> {
        let mut pruned = Pruned::default();
        let mut spent = 0;
        for entry in self.tree.range(key(SUMMARY, from)..=key(SUMMARY, u64::MAX)) {
            let (summary_key, value) = entry.map_err(io)?;
            let first = seq_of(&summary_key).ok_or_else(|| corrupt("summary key"))?;
            if spent >= budget {
                return Ok((pruned, Some(first)));
            }
            spent += 1;
            let summary = Summary::decode(&value)?;
            if !rules.drops_unpaid(summary.oldest_expired, now)
                && !rules.drops_paid(summary.oldest_paid, now)
            {
                continue;
            }
            let mut kept = Records::new();
            let mut gone = 0;
            for (seq, bytes) in self.chunk(first)?.unwrap_or_default() {
                let record = invoice::decode(&bytes)?;
                match &record.status {
                    InvoiceStatus::Expired if rules.drops_unpaid(record.expires_at, now) => {
                        pruned.unpaid_invoices += 1;
                    }
                    InvoiceStatus::Paid(paid) if rules.drops_paid(paid.paid_at, now) => {
                        pruned.paid_invoices += 1;
                    }
                    _ => {
                        kept.push((seq, bytes));
                        continue;
                    }
                }
                gone += 1;
            }
            spent += gone;
            if dry_run {
                continue;
            }
            if kept.is_empty() {
                // The chunk first: a summary without its chunk reads as an empty chunk.
                self.tree.remove(key(CHUNK, first)).map_err(io)?;
                self.tree.remove(key(SUMMARY, first)).map_err(io)?;
            } else {
                self.put_chunk(first, &kept, gone > 0)?;
            }
            self.cold_mut().forget(gone);
        }
        if !dry_run && self.cold().needs_rebuild() {
            let rebuilt = build_cold(&self.tree)?;
            *self.cold_mut() = rebuilt;
        }
        Ok((pruned, None))
    }

    /// The index side of sealing `records` into the chunk at `first`.
    fn sealed(&self, first: u64, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let hashes = records
            .iter()
            .map(|(seq, bytes)| Ok((*seq, hash_of(bytes)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.cold_mut()
            .add(first, hashes.iter().map(|(_, hash)| hash_prefix(&hash.0)));
        let mut hot = self.hot_mut();
        for (seq, hash) in &hashes {
            hot.remove(hash, *seq);
        }
        hot.shrink();
        Ok(())
    }

    /// Counts, for reports: (hot invoices, of which pending, index memory in bytes).
    pub fn stats(&self) -> (usize, usize, usize) {
        let hot = self.hot();
        let finished = self
            .finished
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .capacity()
            * 16;
        (
            hot.len(),
            hot.pending(),
            hot.bytes() + self.cold().bytes() + finished,
        )
    }
}

fn check_transition(stored: &InvoiceRecord, next: &InvoiceRecord) -> Result<(), StoreError> {
    match next_status(stored.status, next.status)? {
        Some(_) => Ok(()),
        None => Err(StoreError::Transition {
            from: stored.status.name(),
            to: next.status.name(),
        }),
    }
}

/// Sealing writes a chunk, then its summary, then removes the hot records, one key at a time.
/// If the hot record at `seq` is already in a chunk, a crash came in between: the summary is
/// written again from the chunk and the hot record removed. Returns whether it was.
fn finish_interrupted_seal(tree: &Tree, seq: u64) -> Result<bool, StoreError> {
    let Some(entry) = tree.range(key(CHUNK, 0)..=key(CHUNK, seq)).next_back() else {
        return Ok(false);
    };
    let (chunk_key, bytes) = entry.map_err(io)?;
    let first = seq_of(&chunk_key).ok_or_else(|| corrupt("chunk key"))?;
    let stored_last = match tree.get(key(SUMMARY, first)).map_err(io)? {
        Some(summary) => Some(Summary::decode(&summary)?.last),
        None => None,
    };
    if stored_last.is_some_and(|last| last < seq) {
        // The usual case, at no cost: the chunk ends before this invoice.
        return Ok(false);
    }
    let records = chunk::decode(first, &bytes)?;
    if !records.iter().any(|(s, _)| *s == seq) {
        return Ok(false);
    }
    let mut summary = summarize(&records)?;
    summary.last = summary.last.max(stored_last.unwrap_or(0));
    tree.insert(key(SUMMARY, first), summary.encode()?)
        .map_err(io)?;
    tree.remove(key(HOT, seq)).map_err(io)?;
    tracing::info!(
        seq,
        chunk = first,
        "finished sealing an invoice that a stop interrupted"
    );
    Ok(true)
}

pub(super) fn summarize(records: &[(u64, Vec<u8>)]) -> Result<Summary, StoreError> {
    let mut summary = Summary {
        last: records.last().map_or(0, |(seq, _)| *seq),
        hashes: Vec::with_capacity(records.len()),
        users: UserFilter::default(),
        oldest_expired: u64::MAX,
        oldest_paid: u64::MAX,
    };
    for (_, bytes) in records {
        let record = invoice::decode(bytes)?;
        summary.hashes.push(hash_prefix(&record.payment_hash.0));
        summary.users.add(UserBits::of(record.user.as_str()));
        match &record.status {
            InvoiceStatus::Expired => {
                summary.oldest_expired = summary.oldest_expired.min(record.expires_at);
            }
            InvoiceStatus::Paid(paid) => {
                summary.oldest_paid = summary.oldest_paid.min(paid.paid_at);
            }
            InvoiceStatus::Pending => {}
        }
    }
    Ok(summary)
}

/// The hash index of every sealed invoice, from the chunk summaries.
fn build_cold(tree: &Tree) -> Result<ColdIndex, StoreError> {
    let mut builder = ColdBuilder::default();
    for entry in tree.scan_prefix([SUMMARY]) {
        let (key, value) = entry.map_err(io)?;
        let first = seq_of(&key).ok_or_else(|| corrupt("summary key"))?;
        builder.add(first, &Summary::decode(&value)?.hashes);
    }
    Ok(builder.finish())
}

/// Hot invoices below a sequence number, newest first.
struct HotNewestFirst {
    iter: std::iter::Rev<sled::Iter>,
    head: Option<(u64, IVec)>,
}

impl HotNewestFirst {
    fn peek_seq(&mut self) -> Result<Option<u64>, StoreError> {
        if self.head.is_none() {
            if let Some(entry) = self.iter.next() {
                let (key, value) = entry.map_err(io)?;
                self.head = Some((seq_of(&key).ok_or_else(|| corrupt("hot key"))?, value));
            }
        }
        Ok(self.head.as_ref().map(|(seq, _)| *seq))
    }

    fn take(&mut self) -> Vec<u8> {
        self.head
            .take()
            .map(|(_, bytes)| bytes.to_vec())
            .unwrap_or_default()
    }
}

/// Sealed invoices below a sequence number, newest first, chunk by chunk; with a user's bits,
/// only from chunks whose summary may hold them.
struct SealedNewestFirst<'a> {
    table: &'a InvoiceTable,
    summaries: std::iter::Rev<sled::Iter>,
    user: Option<UserBits>,
    below: u64,
    /// The current chunk's invoices, oldest first (taken from the back).
    current: Records,
}

impl<'a> SealedNewestFirst<'a> {
    fn new(table: &'a InvoiceTable, below: u64, user: Option<UserBits>) -> Self {
        Self {
            summaries: table.tree.range(key(SUMMARY, 0)..key(SUMMARY, below)).rev(),
            table,
            user,
            below,
            current: Vec::new(),
        }
    }

    fn peek_seq(&mut self) -> Result<Option<u64>, StoreError> {
        while self.current.is_empty() {
            let Some(entry) = self.summaries.next() else {
                return Ok(None);
            };
            let (key, value) = entry.map_err(io)?;
            let first = seq_of(&key).ok_or_else(|| corrupt("summary key"))?;
            if let Some(user) = self.user {
                if !Summary::decode(&value)?.users.may_hold(user) {
                    continue;
                }
            }
            let mut records = self.table.chunk(first)?.unwrap_or_default();
            records.retain(|(seq, _)| *seq < self.below);
            self.current = records;
        }
        Ok(self.current.last().map(|(seq, _)| *seq))
    }

    fn take(&mut self) -> Vec<u8> {
        self.current
            .pop()
            .map(|(_, bytes)| bytes)
            .unwrap_or_default()
    }
}
