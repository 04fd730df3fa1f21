//! Finding one invoice by its payment hash, for someone: the one rule for who may see which.
//! A user sees their own invoices only; to anyone else another user's invoice does not exist,
//! so a lookup never tells whether a hash is known.

use crate::domain::{Hash32, InvoiceRecord, Username};
use crate::store::{Db, StoreError};

/// Whom an invoice is looked up for.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// The operator, or someone holding the hash as its capability (the pay page): any
    /// invoice.
    Anyone,
    /// A user (their app, or an address's verify URL): their own invoices only.
    Owner(&'a Username),
}

/// The invoice with `hash`, if there is one `viewer` may see.
pub async fn find(
    db: &Db,
    hash: &Hash32,
    viewer: Viewer<'_>,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let wanted = *hash;
    let found = db.point(move |s| s.invoice(&wanted)).await?;
    Ok(found.filter(|record| match viewer {
        Viewer::Anyone => true,
        Viewer::Owner(user) => &record.user == user,
    }))
}
