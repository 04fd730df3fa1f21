//! A payment to an address's offer, as a backend reports it, becomes that user's paid invoice:
//! the same record, webhooks, receipts and notifications as an LNURL payment.

use super::Ledger;
use crate::domain::{
    BackendName, Comment, DescriptionSource, InvoiceRecord, InvoiceStatus, OfferPayment,
    PaidDetails, MAX_COMMENT_ALLOWED,
};
use crate::store::offer_records::owner_of;
use crate::store::{Db, StoreError};

/// The payer's note as a comment: control characters dropped, at most the longest comment
/// any address may allow. A note is the payer's words: it is kept, never refused.
fn note_as_comment(note: &str) -> Option<Comment> {
    let clean: String = note
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(usize::from(MAX_COMMENT_ALLOWED))
        .collect();
    let clean = clean.trim();
    Comment::parse(clean, MAX_COMMENT_ALLOWED).ok().flatten()
}

/// Records `payment` as a paid invoice of the offer's owner. `None`: the offer is none of
/// ours (another offer of the same node), which is not an error.
pub async fn record_offer_payment(
    db: &Db,
    ledger: &Ledger,
    payment: OfferPayment,
    backend: &BackendName,
    backend_kind: &str,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let offer_id = payment.offer_id;
    let Some(owner) = db.point(move |s| owner_of(s, &offer_id)).await? else {
        tracing::debug!(offer_id = %offer_id, "a payment to an offer that is not an address's");
        return Ok(None);
    };
    let record = InvoiceRecord {
        payment_hash: payment.payment_hash,
        user: owner,
        amount_msat: payment.amount,
        bolt11: payment.invoice.unwrap_or_default(),
        description_hash: None,
        described_by: DescriptionSource::Offer { offer_id },
        comment: payment.payer_note.as_deref().and_then(note_as_comment),
        status: InvoiceStatus::Pending,
        created_at: payment.paid_at,
        // Paid on arrival: it is never pending for longer than the write that records it.
        expires_at: payment.paid_at.saturating_add(3600),
        backend: backend.clone(),
        backend_kind: backend_kind.to_owned(),
        backend_ref: None,
        app: None,
        payer: None,
        fiat: None,
    };
    let paid = InvoiceStatus::Paid(PaidDetails {
        paid_at: payment.paid_at,
        preimage: payment.preimage,
        amount_received_msat: payment.amount,
    });
    let hash = record.payment_hash;
    ledger.record_arrival(record, paid).await?;
    db.point(move |s| s.invoice(&hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payer_note_is_kept_as_a_clean_comment() {
        assert_eq!(
            note_as_comment("thanks\u{0}\u{7} for\nthe coffee ").map(|c| c.as_str().to_owned()),
            Some("thanks for\nthe coffee".to_owned())
        );
        assert_eq!(note_as_comment("  "), None);
        let long = "x".repeat(5000);
        assert_eq!(
            note_as_comment(&long).map(|c| c.as_str().chars().count()),
            Some(usize::from(MAX_COMMENT_ALLOWED))
        );
    }
}
