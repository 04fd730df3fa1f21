//! The sled store's own promises: where invoices live, what they cost, and how a store written
//! by an older rayo is converted.

use std::path::Path;

use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};

use super::*;
use crate::domain::{BackendName, DescriptionSource, InvoiceStatus, Msat, PaidDetails, Preimage};
use crate::store::codec::{
    self,
    chunk::{self, Summary, UserFilter},
};
use crate::store::contract::{aged, everything, user};

/// sled's flusher may hold the lock a moment after the last handle drops.
fn reopen(path: &Path) -> SledStore {
    for _ in 0..250 {
        match SledStore::open(path) {
            Err(StoreError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked");
}

/// A new store in `dir` holding `count` typical invoices, none sealed yet.
fn store_of_typical(dir: &Path, count: u32) -> SledStore {
    let store = SledStore::open(dir).unwrap();
    for n in 0..count {
        store.insert_invoice(&typical(n)).unwrap();
    }
    store
}

/// An invoice as the callback makes most of them: no comment, no zap, a real signed BOLT11
/// (regtest, description hash, 600 s) from a dev-backend-like node.
fn typical(n: u32) -> InvoiceRecord {
    let key = secp256k1::SecretKey::from_slice(&[7; 32]).unwrap();
    let preimage = sha256::Hash::hash(&n.to_be_bytes()).to_byte_array();
    let payment_hash = sha256::Hash::hash(&preimage);
    let metadata_hash = Hash32::sha256(b"[[\"text/plain\",\"Pay alice@example.com\"]]");
    let bolt11 = InvoiceBuilder::new(Currency::Regtest)
        .amount_milli_satoshis(21_000)
        .payment_hash(payment_hash)
        .payment_secret(PaymentSecret(preimage))
        .description_hash(sha256::Hash::from_byte_array(metadata_hash.0))
        .duration_since_epoch(std::time::Duration::from_secs(1_800_000_000))
        .expiry_time(std::time::Duration::from_secs(600))
        .min_final_cltv_expiry_delta(18)
        .build_signed(|m| secp256k1::SECP256K1.sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string();
    InvoiceRecord {
        payment_hash: Hash32(payment_hash.to_byte_array()),
        user: Username::parse("alice").unwrap(),
        amount_msat: Msat::from_msat(21_000),
        bolt11,
        description_hash: Some(metadata_hash),
        described_by: DescriptionSource::Metadata { metadata_hash },
        comment: None,
        status: if n.is_multiple_of(4) {
            InvoiceStatus::Paid(PaidDetails {
                paid_at: 1_800_000_030,
                preimage: Some(Preimage(Hash32(preimage))),
                amount_received_msat: Msat::from_msat(21_000),
            })
        } else {
            InvoiceStatus::Expired
        },
        created_at: 1_800_000_000,
        expires_at: 1_800_000_600,
        backend: BackendName::default_name(),
        backend_kind: "dev".into(),
        backend_ref: None,
        app: None,
        payer: Some(crate::domain::ClientTag(u64::from(n) * 7919)),
        fiat: None,
    }
}

#[test]
fn an_invoice_named_in_a_currency_keeps_its_amount_and_rate() {
    let plain = typical(3);
    let mut named = typical(3);
    named.fiat = Some(crate::domain::FiatAmount {
        currency: "CLP".into(),
        value: "1000".into(),
        rate: "90300000".into(),
        source: "buda,coinbase,yadio".into(),
        at: 1_800_000_000,
    });
    let (plain_bytes, named_bytes) = (
        codec::invoice::encode(&plain).unwrap(),
        codec::invoice::encode(&named).unwrap(),
    );
    assert_eq!(
        plain_bytes[0],
        codec::invoice::V1,
        "others are stored as before"
    );
    assert_eq!(named_bytes[0], codec::invoice::V2);
    assert_eq!(codec::invoice::decode(&named_bytes).unwrap(), named);
    assert!(codec::invoice::is_for(&named_bytes, "alice").unwrap());
    assert!(!codec::invoice::is_for(&named_bytes, "bob").unwrap());
    assert!(
        named_bytes.len() - plain_bytes.len() < 48,
        "{} extra bytes",
        named_bytes.len() - plain_bytes.len()
    );
}

#[test]
fn a_typical_invoice_and_its_index_entries_take_these_many_bytes() {
    let record = typical(1);
    let json = crate::store::codec::encode_json(&record).unwrap().len();
    let v1 = codec::invoice::encode(&record).unwrap().len();
    let bolt11 = record.bolt11.len();
    // The record: the invoice packed to 5/8, hashes as raw bytes, numbers as varints.
    assert!(
        v1 <= 250,
        "{v1} bytes (the BOLT11 alone is {bolt11} characters)"
    );
    assert!(v1 * 2 < json, "{v1} bytes against {json} as JSON");

    // In a chunk: one or two bytes of offset and length per invoice.
    let records: Vec<(u64, Vec<u8>)> = (0..chunk::MAX_RECORDS as u64)
        .map(|seq| {
            (
                1000 + seq,
                codec::invoice::encode(&typical(seq as u32)).unwrap(),
            )
        })
        .collect();
    let payload: usize = records.iter().map(|(_, bytes)| bytes.len()).sum();
    let chunked = chunk::encode(records[0].0, &records).unwrap().len();
    assert!(
        chunked - payload <= 2 + 3 * records.len(),
        "{} bytes of overhead for {} invoices",
        chunked - payload,
        records.len()
    );

    // Its summary: four bytes of hash per invoice, and a 32-byte filter and two times per
    // chunk.
    let summary = Summary {
        last: 1031,
        hashes: vec![[0; 4]; records.len()],
        users: UserFilter::default(),
        oldest_expired: 2_000_000_000,
        oldest_paid: 2_000_000_000,
    };
    let per_invoice = (summary.encode().unwrap().len() - 32 - 10) as f64 / records.len() as f64;
    assert!(per_invoice <= 4.3, "{per_invoice} bytes per invoice");

    // In memory: 8 bytes per sealed invoice to find it by hash, and the slack of growing
    // vectors.
    let dir = tempfile::tempdir().unwrap();
    let store = store_of_typical(dir.path(), 10_000);
    store.seal(2_000_000_000, usize::MAX).unwrap();
    let (hot, pending, index_bytes) = store.invoice_stats();
    assert_eq!((hot, pending), (0, 0), "all sealed");
    assert!(
        index_bytes <= 10_000 * 12,
        "{index_bytes} bytes of index in memory for 10000 invoices"
    );
}

#[test]
fn finished_invoices_move_into_chunks_once_well_past_their_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_aged(dir.path(), 300);
    let (hot, pending, _) = store.invoice_stats();
    assert_eq!((hot, pending), (300, 24));
    // Expired at 10_600 + n: nothing moves until SEAL_DELAY after that.
    assert_eq!(
        store
            .seal(10_600 + invoices::SEAL_DELAY - 1, usize::MAX)
            .unwrap(),
        0
    );
    assert_eq!(store.seal(10_700 + invoices::SEAL_DELAY, 40).unwrap(), 40);
    assert!(store.seal(1_000_000, usize::MAX).unwrap() > 200);
    let (hot, pending, _) = store.invoice_stats();
    assert_eq!((hot, pending), (24, 24), "only the pending ones stay");
}

#[test]
fn a_sealed_store_reopens_with_everything_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open_with_aged(dir.path(), 400);
        store.seal(1_000_000, 250).unwrap();
        store.flush().unwrap();
        everything(&store, 400)
    };
    let store = reopen(dir.path());
    assert_eq!(everything(&store, 400), before);
    assert_eq!(store.invoice_stats().0, 400 - 250);
}

/// Writes a store as rayo did before layout 1: JSON records under `r` + sequence number, and
/// the `h`, `u` and `x` indexes.
fn write_legacy_store(path: &Path, count: u16) {
    let db = sled::open(path).unwrap();
    let invoices = db.open_tree("invoices").unwrap();
    for n in 0..count {
        let record = aged(n);
        let seq = (u64::from(n) + 1) * 3;
        invoices
            .insert(key(b'r', seq), serde_json::to_vec(&record).unwrap())
            .unwrap();
        invoices
            .insert(
                [&[b'h'][..], &record.payment_hash.0].concat(),
                &seq.to_be_bytes(),
            )
            .unwrap();
        let mut by_user = vec![b'u'];
        by_user.extend_from_slice(record.user.as_str().as_bytes());
        by_user.push(0);
        by_user.extend_from_slice(&seq.to_be_bytes());
        invoices.insert(by_user, &[]).unwrap();
        if record.is_pending() {
            let mut by_expiry = vec![b'x'];
            by_expiry.extend_from_slice(&record.expires_at.to_be_bytes());
            by_expiry.extend_from_slice(&seq.to_be_bytes());
            invoices.insert(by_expiry, &record.payment_hash.0).unwrap();
        }
    }
    let users = db.open_tree("users").unwrap();
    users
        .insert("alice", serde_json::to_vec(&user("alice")).unwrap())
        .unwrap();
    db.open_tree("meta").unwrap().insert("k", b"v").unwrap();
    db.flush().unwrap();
}

fn key(space: u8, seq: u64) -> Vec<u8> {
    [&[space][..], &seq.to_be_bytes()].concat()
}

#[test]
fn a_store_written_before_layout_1_is_converted_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    write_legacy_store(&path, 500);
    // What the old layout shows, read the way rayo used to store it.
    let reference = {
        let memory = crate::store::MemoryStore::new();
        for n in 0..500 {
            memory.insert_invoice(&aged(n)).unwrap();
        }
        everything(&memory, 500)
    };
    let store = reopen(&path);
    assert_eq!(everything(&store, 500), reference);
    assert!(store
        .user(&Username::parse("alice").unwrap())
        .unwrap()
        .is_some());
    assert_eq!(store.meta("k").unwrap().as_deref(), Some(&b"v"[..]));
    let (hot, pending, _) = store.invoice_stats();
    assert_eq!(
        (hot, pending),
        (39, 39),
        "the finished invoices were sealed on the way"
    );
    // The old indexes are gone: only hot records, chunks and summaries remain.
    let spaces: std::collections::BTreeSet<u8> = store
        .invoices
        .tree()
        .iter()
        .keys()
        .map(|k| k.unwrap()[0])
        .collect();
    assert_eq!(spaces, [b'c', b'r', b's'].into());
    drop(store);
    // And the converted store opens as it is, the next time.
    let store = reopen(&path);
    assert_eq!(everything(&store, 500), reference);
    assert!(!path.with_file_name("store.restoring").exists());
    assert!(!path.with_file_name("store.replaced").exists());
}

#[test]
fn a_ledger_step_a_stop_interrupted_is_finished_when_the_store_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut paid_one = aged(1);
    paid_one.status = InvoiceStatus::Paid(PaidDetails {
        paid_at: 20_000,
        preimage: None,
        amount_received_msat: Msat::from_msat(1001),
    });
    let event = {
        let mut item = crate::store::contract::outbox_item(3, 50);
        item.payment_hash = paid_one.payment_hash;
        item
    };
    {
        let store = open_with_aged(dir.path(), 3);
        // The step's journal entry is written, and the stop comes before any of its parts.
        let step = Transitions {
            invoices: vec![paid_one.clone()],
            events: vec![event.clone()],
            meta: vec![("watch.cursor.dev".into(), vec![9])],
        };
        store
            .meta
            .insert(JOURNAL_KEY, encode(&JournalEntry::of(&step)).unwrap())
            .unwrap();
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(
        store.invoice(&paid_one.payment_hash).unwrap(),
        Some(paid_one)
    );
    assert_eq!(store.outbox_item(&event.id).unwrap(), Some(event));
    assert_eq!(store.meta("watch.cursor.dev").unwrap(), Some(vec![9]));
    assert_eq!(store.meta(JOURNAL_KEY).unwrap(), None);
    // Applied once: a second replay (or the same step again) changes nothing.
    assert_eq!(store.outbox_items(&mut |_| true, 10).unwrap().len(), 1);
}

#[test]
fn a_seal_a_stop_interrupted_is_finished_when_the_store_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open_with_aged(dir.path(), 60);
        let before = everything(&store, 60);
        // Two chunks written as a seal would, one with its summary and one without, and the
        // stop comes before their hot records are removed.
        let tree = store.invoices.tree();
        let hot: Vec<(u64, Vec<u8>)> = tree
            .scan_prefix([b'r'])
            .map(|e| {
                let (k, v) = e.unwrap();
                (u64::from_be_bytes(k[1..9].try_into().unwrap()), v.to_vec())
            })
            .filter(|(_, v)| !codec::invoice::decode(v).unwrap().is_pending())
            .collect();
        let (left, right) = hot.split_at(20);
        tree.insert(
            key(b'c', left[0].0),
            chunk::encode(left[0].0, left).unwrap(),
        )
        .unwrap();
        tree.insert(
            key(b's', left[0].0),
            invoices::summarize(left).unwrap().encode().unwrap(),
        )
        .unwrap();
        tree.insert(
            key(b'c', right[0].0),
            chunk::encode(right[0].0, &right[..10]).unwrap(),
        )
        .unwrap();
        store.flush().unwrap();
        before
    };
    let store = reopen(dir.path());
    assert_eq!(everything(&store, 60), before);
    let (hot, _, _) = store.invoice_stats();
    assert_eq!(hot, 60 - 30, "the sealed ones are no longer hot");
    let spaces: Vec<u8> = store
        .invoices
        .tree()
        .iter()
        .keys()
        .map(|k| k.unwrap()[0])
        .collect();
    assert_eq!(
        spaces.iter().filter(|s| **s == b's').count(),
        2,
        "both chunks have summaries"
    );
}

#[test]
fn pruning_a_large_store_sheds_its_index_and_keeps_late_payments_as_paid() {
    use crate::store::contract::prune_all;
    use crate::store::Retention;

    let dir = tempfile::tempdir().unwrap();
    let store = store_of_typical(dir.path(), 8_000);
    let sealed_at = 1_800_000_000 + 600 + invoices::SEAL_DELAY;
    store.seal(sealed_at, usize::MAX).unwrap();
    let (_, _, index_before) = store.invoice_stats();

    // One sealed expired invoice is paid late: it is a paid invoice now, kept as one.
    let mut late = typical(1);
    late.status = InvoiceStatus::Paid(PaidDetails {
        paid_at: 1_800_100_000,
        preimage: None,
        amount_received_msat: Msat::from_msat(21_000),
    });
    store
        .commit_transitions(&Transitions {
            invoices: vec![late.clone()],
            ..Transitions::default()
        })
        .unwrap();

    let week_later = sealed_at + 7 * 86_400;
    let pruned = prune_all(&store, &Retention::default(), week_later, 500, false);
    assert_eq!(pruned.unpaid_invoices, 6_000 - 1);
    let (_, _, index_after) = store.invoice_stats();
    assert!(
        index_after * 2 < index_before,
        "the hash index was rebuilt: {index_before} -> {index_after} bytes"
    );
    assert_eq!(
        store.invoice(&late.payment_hash).unwrap(),
        Some(late.clone())
    );
    assert!(store.invoice(&typical(2).payment_hash).unwrap().is_none());
    assert_eq!(
        store.invoices(InvoicePage::newest(10_000)).unwrap().len(),
        2_001
    );

    let keep_a_day = Retention {
        paid: Some(86_400),
        ..Retention::default()
    };
    let pruned = prune_all(&store, &keep_a_day, week_later, 500, false);
    assert_eq!(pruned.paid_invoices, 2_001);
    drop(store);
    let store = reopen(dir.path());
    assert!(store.invoices(InvoicePage::newest(10)).unwrap().is_empty());
    let chunks = store.invoices.tree().scan_prefix([b'c']).count();
    assert_eq!(chunks, 0, "empty chunks are removed");
}

/// sled 0.34.7 deadlocks when a batch of many removals meets a file truncation; the store uses
/// single-key writes instead. This churns the way a busy server does (invoices in, sealed,
/// pruned, flushed every few writes) for long enough that the old way hung nearly every run:
/// `cargo test --release --lib churn -- --ignored`.
#[test]
#[ignore = "a minute of churn; run by hand after touching how the store writes"]
fn heavy_churn_never_hangs_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    for n in 0..300_000u32 {
        let mut record = typical(n);
        record.status = InvoiceStatus::Expired;
        store.insert_invoice(&record).unwrap();
        if n % 20 == 0 {
            store.flush().unwrap();
        }
        if n % 2000 == 1999 {
            store.seal(2_000_000_000, usize::MAX).unwrap();
        }
        if n % 20_000 == 19_999 {
            let rules = crate::store::Retention::default();
            crate::store::contract::prune_all(&store, &rules, 2_100_000_000, 512, false);
        }
    }
    assert_eq!(store.invoice_stats().0, 0);
}

/// A store in `dir` holding `count` aged invoices (see `contract::aged`), none sealed yet.
fn open_with_aged(dir: &std::path::Path, count: u16) -> SledStore {
    let store = SledStore::open(dir).unwrap();
    for n in 0..count {
        store.insert_invoice(&aged(n)).unwrap();
    }
    store
}
