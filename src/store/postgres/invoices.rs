//! The `invoices` table: inserts (sent ahead; a payment hash already stored is refused alone),
//! ledger steps under a savepoint, listings, expiry, and pruning.

use super::group::{block_on, Answer, Pending, SentInsert, WriteGuard};
use super::outbox::outbox_state;
use super::*;

pub(super) fn paid_at(record: &InvoiceRecord) -> Option<i64> {
    match &record.status {
        InvoiceStatus::Paid(paid) => Some(int(paid.paid_at)),
        _ => None,
    }
}

impl PgStore {
    /// Deletes up to `budget` rows `query` (a `SELECT` of keys with `$1` = the cut-off)
    /// picks from `table`; in a dry run, counts them all.
    pub(super) fn prune_rows(
        &self,
        table: &str,
        key: &str,
        query: &str,
        cutoff: i64,
        request: &PruneRequest<'_>,
    ) -> Result<u64, StoreError> {
        let (budget, dry_run) = (request.budget, request.dry_run);
        if dry_run {
            let sql = format!("SELECT count(*) FROM ({query}) AS due");
            let row = block_on(self.reads().query_one(&sql, &[&cutoff])).map_err(db)?;
            return Ok(uint(row.get(0)));
        }
        let sql = format!("DELETE FROM {table} WHERE {key} IN ({query} LIMIT $2)");
        let deleted = self
            .writes()?
            .execute(&sql, &[&cutoff, &int(budget as u64)])?;
        Ok(deleted)
    }
}

/// A ledger step's statements, in the group's transaction (see `commit_transitions`), and
/// what to tell the other processes if it stands.
pub(super) fn apply_step(
    w: &mut WriteGuard<'_>,
    step: &Transitions,
) -> Result<(usize, Vec<Change>), StoreError> {
    let mut told = Vec::new();
    let mut within: HashMap<Hash32, InvoiceRecord> = HashMap::new();
    for record in &step.invoices {
        let stored = match within.remove(&record.payment_hash) {
            Some(earlier) => earlier,
            None => {
                let found = block_on(w.client().query_opt(
                    "SELECT record FROM invoices WHERE payment_hash = $1 FOR UPDATE",
                    &[&record.payment_hash.0.as_slice()],
                ));
                let row = w.check(found)?.ok_or_else(|| {
                    StoreError::NotFound(format!("invoice {}", record.payment_hash))
                })?;
                invoice::decode(row.get(0))?
            }
        };
        if next_status(stored.status, record.status)?.is_none() {
            return Err(StoreError::Transition {
                from: stored.status.name(),
                to: record.status.name(),
            });
        }
        w.execute(
            "UPDATE invoices SET status = $2, expires_at = $3, paid_at = $4, record = $5
             WHERE payment_hash = $1",
            &[
                &record.payment_hash.0.as_slice(),
                &record.status.name(),
                &int(record.expires_at),
                &paid_at(record),
                &invoice::encode(record)?,
            ],
        )?;
        told.push(Change::Moved {
            payment_hash: record.payment_hash,
            user: record.user.clone(),
            payer: record.payer,
            was_pending: stored.is_pending(),
        });
        within.insert(record.payment_hash, record.clone());
    }
    let mut queued = 0;
    for item in &step.events {
        let (state, at) = outbox_state(item);
        queued += w.execute(
            "INSERT INTO outbox (id, state, at, created_at, item)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &item.id.0.as_slice(),
                &state,
                &int(at),
                &int(item.created_at),
                &encode_json(item)?,
            ],
        )? as usize;
    }
    for (key, value) in &step.meta {
        w.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key.as_str(), &value.as_slice()],
        )?;
    }
    if queued > 0 {
        told.push(Change::Queued);
    }
    Ok((queued, told))
}

pub(super) fn invoice(store: &PgStore, hash: &Hash32) -> Result<Option<InvoiceRecord>, StoreError> {
    store
        .one(
            "SELECT record FROM invoices WHERE payment_hash = $1",
            &hash.0.as_slice(),
        )?
        .map(|v| invoice::decode(&v))
        .transpose()
}

/// Sent ahead: the statement goes out now, and its answer is read when the connection is
/// next needed (at the latest by the flush), so a group of callbacks' inserts costs one
/// round trip, not one each. A payment hash already stored (a broken or hostile backend
/// reusing someone's invoice) inserts nothing and leaves the transaction whole: the flush
/// refuses that insert alone, and the rest of the group commits.
pub(super) fn insert_invoice(store: &PgStore, record: &InvoiceRecord) -> Result<(), StoreError> {
    let mut w = store.writes_ahead()?;
    let client = w.0.client.clone();
    let ticket = SentAhead {
        id: w.0.next_insert,
        payment_hash: record.payment_hash,
    };
    w.0.next_insert += 1;
    let told = record.is_pending().then(|| {
        Change::Added {
            payment_hash: record.payment_hash,
            user: record.user.clone(),
            payer: record.payer,
        }
        .encode(store.origin)
    });
    let writer = &mut *w.0;
    let Some(group) = writer.open.as_mut() else {
        return Err(StoreError::Io("no transaction is open".into()));
    };
    let (hash, user, status, expires_at, paid_at, encoded) = (
        record.payment_hash.0.to_vec(),
        record.user.as_str().to_owned(),
        record.status.name(),
        int(record.expires_at),
        paid_at(record),
        invoice::encode(record)?,
    );
    let mut answer: Pending<_> = Box::pin(async move {
        client
            .execute_typed(
                "INSERT INTO invoices
                     (payment_hash, username, status, expires_at, paid_at, record)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    (&hash, Type::BYTEA),
                    (&user, Type::TEXT),
                    (&status, Type::TEXT),
                    (&expires_at, Type::INT8),
                    (&paid_at, Type::INT8),
                    (&encoded, Type::BYTEA),
                ],
            )
            .await
    });
    // The first poll sends the statement (tokio-postgres queues it on the connection
    // before awaiting anything); the answer is awaited later, with a real waker.
    let answer = match answer
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(outcome) => Answer::Done(outcome),
        Poll::Pending => Answer::Waiting(answer),
    };
    group.sent.push(SentInsert {
        ticket,
        told,
        answer,
    });
    writer.unclaimed.push(ticket);
    Ok(())
}

pub(super) fn sent_ahead(store: &PgStore) -> Vec<SentAhead> {
    let mut writer = store.writer.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::take(&mut writer.unclaimed)
}

pub(super) fn commit_transitions(store: &PgStore, step: &Transitions) -> Result<usize, StoreError> {
    let mut w = store.writes()?;
    // A savepoint around the step: a refused step leaves the rest of the group as it was.
    let opened = block_on(w.client().batch_execute("SAVEPOINT step"));
    w.check(opened)?;
    let outcome = apply_step(&mut w, step);
    let outcome = outcome.map(|(queued, told)| {
        for change in told {
            w.tell(store.origin, change);
        }
        queued
    });
    let closing = match &outcome {
        Ok(_) => "RELEASE SAVEPOINT step",
        Err(_) => "ROLLBACK TO SAVEPOINT step",
    };
    let closed = block_on(w.client().batch_execute(closing));
    if closed.is_ok() && outcome.is_err() {
        // Whatever failed inside the step was rolled back with it.
        if let Some(group) = w.0.open.as_mut() {
            group.aborted = false;
        }
    }
    w.check(closed)?;
    outcome
}

pub(super) fn invoices(
    store: &PgStore,
    mut page: InvoicePage<'_>,
) -> Result<Vec<InvoiceRecord>, StoreError> {
    const PAGE: i64 = 256;
    let mut below = match page.before {
        Some(hash) => {
            let row = block_on(store.reads().query_opt(
                "SELECT seq FROM invoices WHERE payment_hash = $1",
                &[&hash.0.as_slice()],
            ))
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("invoice {hash}")))?;
            row.get::<_, i64>(0)
        }
        None => i64::MAX,
    };
    let mut out = Vec::new();
    while out.len() < page.limit {
        let rows = match page.user {
            Some(name) => block_on(store.reads().query(
                "SELECT seq, record FROM invoices WHERE username = $1 AND seq < $2
                 ORDER BY seq DESC LIMIT $3",
                &[&name.as_str(), &below, &PAGE],
            )),
            None => block_on(store.reads().query(
                "SELECT seq, record FROM invoices WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&below, &PAGE],
            )),
        }
        .map_err(db)?;
        for row in &rows {
            below = row.get(0);
            let record = invoice::decode(row.get(1))?;
            if page.keeps(&record) {
                out.push(record);
                if out.len() == page.limit {
                    break;
                }
            }
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    Ok(out)
}

pub(super) fn expiring(
    store: &PgStore,
    until: u64,
    limit: usize,
) -> Result<Vec<InvoiceRecord>, StoreError> {
    let rows = block_on(store.reads().query(
        "SELECT record FROM invoices WHERE status = 'pending' AND expires_at <= $1
         ORDER BY expires_at, seq LIMIT $2",
        &[&int(until), &int(limit as u64)],
    ))
    .map_err(db)?;
    rows.iter().map(|row| invoice::decode(row.get(0))).collect()
}

/// Each kind in turn, `budget` rows at a time: a step that removed a full budget of any
/// kind says to go on.
pub(super) fn prune(store: &PgStore, request: &PruneRequest<'_>) -> Result<PruneStep, StoreError> {
    let (rules, now) = (request.rules, request.now);
    let invoices = |status: &str, at: &str, until: u64| {
        let query =
            format!("SELECT payment_hash FROM invoices WHERE status = '{status}' AND {at} <= $1");
        store.prune_rows("invoices", "payment_hash", &query, int(until), request)
    };
    let events = |state: &str, until: u64| {
        let query = format!("SELECT id FROM outbox WHERE state = '{state}' AND at <= $1");
        store.prune_rows("outbox", "id", &query, int(until), request)
    };
    let unpaid = invoices("expired", "expires_at", now.saturating_sub(rules.unpaid))?;
    let paid = match rules.paid {
        Some(keep) => invoices("paid", "paid_at", now.saturating_sub(keep))?,
        None => 0,
    };
    let dead_letters = events("dead", rules.dead_letters_until(now))?;
    let events = events("delivered", rules.events_until(now))?;
    let pruned = Pruned {
        unpaid_invoices: unpaid,
        paid_invoices: paid,
        events,
        dead_letters,
    };
    let full = [unpaid, paid, events, dead_letters]
        .iter()
        .any(|n| *n >= request.budget as u64);
    Ok(PruneStep {
        pruned,
        next: (full && !request.dry_run).then(PruneCursor::default),
    })
}
