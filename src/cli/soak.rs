//! `rayo dev soak`: weeks of a steady stream of unpaid callbacks, simulated in a minute, through
//! the real store on disk: every simulated hour a batch of real signed invoices is made, finished
//! as the sweeper would (most expire, a few are paid), sealed, and pruned by the retention
//! settings, as the server's background tasks do. Prints the store's size each simulated day,
//! so one can see it level off once retention starts removing as much as arrives.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::populate::{dev_invoice, insert_all, open_with_dev};
use super::CliError;
use crate::backends::Backend;
use crate::backends::DevBackend;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::{InvoiceRecord, InvoiceStatus, Metadata, Msat, PaidDetails, Username};
use crate::invoices::Description;
use crate::store::{upkeep, Pruned, Transitions};

#[derive(Debug, Clone, Copy)]
pub struct Soak {
    pub days: u64,
    pub per_hour: usize,
    /// One in this many is paid; the others expire unpaid.
    pub paid_one_in: usize,
    /// Real time left to sled between simulated days: its segment cleaner works in the
    /// background, in at most half of each second, and a real day gives it 86,400.
    pub settle_ms: u64,
}

pub async fn soak(settings: &Settings, soak: Soak) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::Failed(e.to_string());
    let (db, dev) = open_with_dev(settings).await?;
    let rules = settings.retention;
    let start = SystemClock.unix() - soak.days * 86_400;
    let started = Instant::now();
    let mut made = 0u64;
    let mut pruned = Pruned::default();
    println!("day  invoices made  kept  store MB  bytes per kept invoice");
    for hour in 0..soak.days * 24 {
        let at = start + hour * 3600;
        let batch = sign_hour(&dev, soak, hour, at).await?;
        made += batch.len() as u64;
        let finished: Vec<InvoiceRecord> = batch
            .iter()
            .enumerate()
            .map(|(n, record)| finish(record, n, soak.paid_one_in))
            .collect();
        insert_all(&db, batch).await?;
        for step in finished.chunks(500) {
            let step = Transitions {
                invoices: step.to_vec(),
                ..Transitions::default()
            };
            db.commit(move |s| s.commit_transitions(&step))
                .await
                .map_err(|e| failed(&e))?;
        }
        let end_of_hour = at + 3600;
        db.commit(move |s| s.seal(end_of_hour, usize::MAX))
            .await
            .map_err(|e| failed(&e))?;
        pruned.add(
            upkeep::prune(&db, rules, end_of_hour, false)
                .await
                .map_err(|e| failed(&e))?,
        );
        if (hour + 1) % 24 == 0 {
            db.commit(|s| s.flush()).await.map_err(|e| failed(&e))?;
            tokio::time::sleep(Duration::from_millis(soak.settle_ms)).await;
            let kept = made - pruned.unpaid_invoices - pruned.paid_invoices;
            let bytes = dir_size(&settings.store_path());
            println!(
                "{:>3}  {made:>13}  {kept:>7}  {:>8.1}  {:>6}",
                (hour + 1) / 24,
                bytes as f64 / 1e6,
                bytes / kept.max(1)
            );
        }
    }
    eprintln!(
        "simulated {} days in {:.1} s: {made} invoices made, {} expired unpaid and {} paid pruned",
        soak.days,
        started.elapsed().as_secs_f64(),
        pruned.unpaid_invoices,
        pruned.paid_invoices
    );
    Ok(())
}

/// An hour's invoices, signed on every core.
async fn sign_hour(
    dev: &Arc<Backend<DevBackend>>,
    soak: Soak,
    hour: u64,
    at: u64,
) -> Result<Vec<InvoiceRecord>, CliError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dev = dev.clone();
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let signers: Vec<_> = (0..workers)
                .map(|worker| {
                    let dev = &dev;
                    scope.spawn(move || {
                        (worker..soak.per_hour)
                            .step_by(workers)
                            .map(|n| unpaid(dev, hour * soak.per_hour as u64 + n as u64, at))
                            .collect::<Option<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(soak.per_hour);
            for signer in signers {
                all.extend(signer.join().ok().flatten()?);
            }
            Some(all)
        })
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| CliError::Failed("the dev backend could not sign an invoice".into()))
}

/// The `n`th callback's invoice, made at `at`: a plain payment to one address.
fn unpaid(dev: &DevBackend, n: u64, at: u64) -> Option<InvoiceRecord> {
    const METADATA: &str = "[[\"text/plain\",\"Pay zap-target@example.com\"]]";
    let metadata = Arc::new(Metadata::from_stored(METADATA.into()));
    dev_invoice(
        dev,
        &Username::parse("zap-target").ok()?,
        Msat::from_msat(1000 * (1 + n % 5000)),
        Description::Metadata(metadata),
        at,
    )
}

/// How the `n`th invoice of an hour ends: paid one in `paid_one_in`, else expired.
fn finish(record: &InvoiceRecord, n: usize, paid_one_in: usize) -> InvoiceRecord {
    let mut record = record.clone();
    record.status = if n.is_multiple_of(paid_one_in.max(1)) {
        InvoiceStatus::Paid(PaidDetails {
            paid_at: record.created_at + 30,
            preimage: None,
            amount_received_msat: record.amount_msat,
        })
    } else {
        InvoiceStatus::Expired
    };
    record
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
