//! `rayo dev populate`: fills a store with many users and invoices, through the store itself
//! (no HTTP), for benchmarks of what a store looks like after years of use. The invoices are
//! real: signed by the dev backend's stored key, so `rayo dev settle` works on the pending ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::CliError;
use crate::backends::Backend;
use crate::backends::{DevBackend, InvoiceBackend, InvoiceRequest};
use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::config::Settings;
use crate::domain::{
    BackendName, InvoiceRecord, InvoiceStatus, Metadata, Msat, PaidDetails, Secret, User,
    UserContext, UserSettings, Username,
};
use crate::invoices::Description;
use crate::keys::ServerKeys;
use crate::store::{Db, SledStore};

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub users: usize,
    pub invoices: usize,
    /// Of the invoices, this many (the newest) stay pending.
    pub pending: usize,
    /// Of the others, one in this many was paid; the rest expired.
    pub paid_one_in: usize,
}

/// Writes per flush: large enough that the flushes do not dominate.
const BATCH: usize = 2000;

/// The store of `settings`, opened here, and the dev backend with the store's own key.
pub(super) async fn open_with_dev(
    settings: &Settings,
) -> Result<(Db, Arc<Backend<DevBackend>>), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::Failed(e.to_string());
    crate::data_dir::prepare(&settings.data_dir).map_err(|e| failed(&e))?;
    let store = SledStore::open(&settings.store_path()).map_err(|e| failed(&e))?;
    let db = Db::new(Arc::new(store));
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let keys = ServerKeys::load_or_create(&db, random.as_ref())
        .await
        .map_err(|e| failed(&e))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dev = Arc::new(DevBackend::from_seed(&keys.dev_seed, clock, random));
    Ok((db, dev))
}

/// Stores `batch` as one durable write.
pub(super) async fn insert_all(db: &Db, batch: Vec<InvoiceRecord>) -> Result<(), CliError> {
    db.commit(move |s| {
        for record in &batch {
            s.insert_invoice(record)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| CliError::Failed(e.to_string()))
}

pub async fn populate(settings: &Settings, population: Population) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::Failed(e.to_string());
    let (db, dev) = open_with_dev(settings).await?;
    let clock = SystemClock;
    let domain = settings
        .domains()
        .map_err(|e| failed(&e))?
        .primary()
        .domain()
        .clone();
    let started = Instant::now();

    let now = clock.unix();
    let users: Vec<(User, Arc<Metadata>)> = (0..population.users)
        .map(|n| {
            let ctx = UserContext {
                domain: domain.as_str(),
                now,
                new_secret: &|| Secret::new(""),
            };
            let name = Username::parse(&format!("user{n:06}")).map_err(|e| failed(&e))?;
            let user = User::create(name, UserSettings::default(), &ctx).map_err(|e| failed(&e))?;
            let metadata = Arc::new(Metadata::for_user(&user, domain.as_str()));
            Ok((user, metadata))
        })
        .collect::<Result<_, CliError>>()?;
    for chunk in users.chunks(BATCH) {
        let chunk: Vec<_> = chunk.to_vec();
        db.commit(move |s| {
            for (user, metadata) in &chunk {
                s.put_user(user)?;
                s.put_metadata(metadata.as_str())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| failed(&e))?;
    }
    eprintln!(
        "{} users in {:.1} s",
        population.users,
        started.elapsed().as_secs_f64()
    );

    // Invoices are signed on every core but one; the store writes them as they come.
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Option<Vec<InvoiceRecord>>>(4);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let users = Arc::new(users);
    let signers: Vec<_> = (0..workers)
        .map(|worker| {
            let (sender, dev, users) = (sender.clone(), dev.clone(), users.clone());
            std::thread::spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for n in (worker..population.invoices).step_by(workers) {
                    let Some(record) = invoice(&dev, &users, n, now, population) else {
                        let _ = sender.blocking_send(None);
                        return;
                    };
                    batch.push(record);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if sender.blocking_send(Some(full)).is_err() {
                            return;
                        }
                    }
                }
                let _ = sender.blocking_send(Some(batch));
            })
        })
        .collect();
    drop(sender);
    let mut written = 0usize;
    while let Some(batch) = batches.recv().await {
        let batch = batch.ok_or_else(|| failed(&"the dev backend could not sign an invoice"))?;
        written += batch.len();
        insert_all(&db, batch).await?;
        // Finished invoices go into chunks as they would in a running server: a few thousand
        // at a time, which also lets sled reuse the space they leave.
        db.commit(move |s| s.seal(now, usize::MAX))
            .await
            .map_err(|e| failed(&e))?;
        if written % 100_000 < BATCH {
            eprintln!(
                "{written} invoices in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for signer in signers {
        let _ = signer.join();
    }
    db.commit(move |s| s.seal(now, usize::MAX))
        .await
        .map_err(|e| failed(&e))?;
    drop(db);
    eprintln!(
        "done: {} users and {written} invoices in {:.1} s",
        population.users,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `n`th invoice: spread over the users and the last 60 days, oldest first; the newest
/// `pending` are still open, of the others one in `paid_one_in` was paid.
fn invoice(
    dev: &DevBackend,
    users: &[(User, Arc<Metadata>)],
    n: usize,
    now: u64,
    population: Population,
) -> Option<InvoiceRecord> {
    let (user, metadata) = &users[n % users.len()];
    let age = (population.invoices - n) as u64 * (60 * 24 * 3600) / population.invoices as u64;
    let amount = Msat::from_msat(1000 * (21 + (n as u64 % 1000)));
    let pending = population.invoices - n <= population.pending;
    let created_at = if pending { now } else { now - age };
    let mut record = dev_invoice(
        dev,
        &user.name,
        amount,
        Description::Metadata(metadata.clone()),
        created_at,
    )?;
    record.status = if pending {
        InvoiceStatus::Pending
    } else if n.is_multiple_of(population.paid_one_in) {
        InvoiceStatus::Paid(PaidDetails {
            paid_at: created_at + 30,
            preimage: dev.preimage_for(&record.bolt11),
            amount_received_msat: amount,
        })
    } else {
        InvoiceStatus::Expired
    };
    Some(record)
}

/// A pending invoice for `user` that the dev backend signs now, as a callback would have
/// stored it at `created_at`.
pub(super) fn dev_invoice(
    dev: &DevBackend,
    user: &Username,
    amount: Msat,
    description: Description,
    created_at: u64,
) -> Option<InvoiceRecord> {
    let request = InvoiceRequest {
        amount,
        description: description.for_backend(),
        expiry: Duration::from_secs(600),
        label: "synthetic",
    };
    // The dev backend signs without waiting.
    let created = dev.create_invoice(request).now_or_never()?.ok()?;
    Some(InvoiceRecord {
        payment_hash: created.payment_hash?,
        user: user.clone(),
        amount_msat: amount,
        bolt11: created.bolt11,
        description_hash: description.hash(),
        described_by: description.into_source(),
        comment: None,
        status: InvoiceStatus::Pending,
        created_at,
        expires_at: created_at + 600,
        backend: BackendName::default_name(),
        backend_kind: "dev".into(),
        backend_ref: None,
        app: None,
        payer: None,
        fiat: None,
    })
}
