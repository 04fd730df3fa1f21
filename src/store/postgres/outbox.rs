//! The `outbox` table: queued events, and the claims that hand each due event to one
//! instance.

use super::group::block_on;
use super::*;

pub(super) fn outbox_state(item: &OutboxItem) -> (&'static str, u64) {
    match item.delivery {
        Delivery::Pending => ("pending", item.next_attempt_at),
        Delivery::Delivered { at } => ("delivered", at),
        Delivery::Dead { at } => ("dead", at),
    }
}

pub(super) fn outbox_item(store: &PgStore, id: &EventId) -> Result<Option<OutboxItem>, StoreError> {
    store
        .one("SELECT item FROM outbox WHERE id = $1", &id.0.as_slice())?
        .map(|v| decode_json(&v))
        .transpose()
}

pub(super) fn put_outbox_item(store: &PgStore, item: &OutboxItem) -> Result<(), StoreError> {
    let (state, at) = outbox_state(item);
    store.writes()?.execute(
        "INSERT INTO outbox (id, state, at, created_at, item) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at,
             item = EXCLUDED.item, claimed_until = 0",
        &[
            &item.id.0.as_slice(),
            &state,
            &int(at),
            &int(item.created_at),
            &encode_json(item)?,
        ],
    )?;
    Ok(())
}

pub(super) fn outbox_due(
    store: &PgStore,
    now: u64,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = block_on(store.reads().query(
        "SELECT item FROM outbox WHERE state = 'pending' AND at <= $1 ORDER BY at, id LIMIT $2",
        &[&int(now), &int(limit as u64)],
    ))
    .map_err(db)?;
    rows.iter().map(|row| decode_json(row.get(0))).collect()
}

pub(super) fn outbox_items(
    store: &PgStore,
    keep: &mut dyn FnMut(&OutboxItem) -> bool,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let mut out = Vec::new();
    for bytes in store.all("SELECT item FROM outbox ORDER BY created_at DESC, id DESC")? {
        let item: OutboxItem = decode_json(&bytes)?;
        if keep(&item) {
            out.push(item);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Claims up to `limit` due events for this process until `hold_until`: no other process
/// takes them meanwhile (rows another is claiming right now are skipped, not waited for).
/// Committed at once, on the read connection, outside any group.
pub(super) fn claim_due(
    store: &PgStore,
    now: u64,
    hold_until: u64,
    limit: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = block_on(store.reads_outside_group().query(
        "UPDATE outbox SET claimed_until = $2 WHERE id IN (
             SELECT id FROM outbox
             WHERE state = 'pending' AND at <= $1 AND claimed_until <= $1
             ORDER BY at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING at, id, item",
        &[&int(now), &int(hold_until), &int(limit as u64)],
    ))
    .map_err(db)?;
    let mut due: Vec<(i64, Vec<u8>, OutboxItem)> = rows
        .iter()
        .map(|row| Ok((row.get(0), row.get(1), decode_json(row.get(2))?)))
        .collect::<Result<_, StoreError>>()?;
    due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(due.into_iter().map(|(_, _, item)| item).collect())
}

pub(super) fn hold_claims(
    store: &PgStore,
    ids: &[EventId],
    hold_until: u64,
) -> Result<(), StoreError> {
    let ids: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
    block_on(store.reads_outside_group().execute(
        "UPDATE outbox SET claimed_until = $2 WHERE id = ANY($1) AND state = 'pending'",
        &[&ids, &int(hold_until)],
    ))
    .map_err(db)?;
    Ok(())
}
