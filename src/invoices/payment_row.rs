//! One payment as people read it (the account page, its CSV, notifications): who paid (LUD-18
//! payer data, or a zap's sender), how much, with what comment.

use serde::Serialize;

use crate::domain::{InvoiceRecord, StatusName};

#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    pub payment_hash: String,
    pub status: &'static str,
    pub created_at: u64,
    pub paid_at: Option<u64>,
    /// When it was paid (or asked for), as people read it.
    pub when: String,
    pub sats: String,
    /// "5.00 USD"
    pub fiat: Option<String>,
    pub comment: Option<String>,
    /// The payer's name, identifier or email, as their wallet sent it (LUD-18).
    pub payer: Option<String>,
    /// A zap's sender, as an npub.
    pub zap_from: Option<String>,
}

fn payer_of(payer_data: &str) -> Option<String> {
    let data: serde_json::Value = serde_json::from_str(payer_data).ok()?;
    ["name", "identifier", "email", "pubkey"]
        .iter()
        .find_map(|field| data.get(field).and_then(|v| v.as_str()).map(str::to_owned))
        .filter(|s| !s.is_empty())
}

fn zap_sender(request: &str) -> Option<String> {
    use nostr::ToBech32;
    let event: serde_json::Value = serde_json::from_str(request).ok()?;
    let hex = event.get("pubkey")?.as_str()?;
    // The npub form is what people recognise.
    nostr::PublicKey::from_hex(hex).ok()?.to_bech32().ok()
}

impl PaymentRow {
    pub fn of(record: &InvoiceRecord, now: u64) -> Self {
        let status = record.status_at(now);
        let paid = match status {
            crate::domain::InvoiceStatus::Paid(details) => Some(details),
            _ => None,
        };
        Self {
            payment_hash: record.payment_hash.to_hex(),
            status: StatusName::of(&status).as_str(),
            created_at: record.created_at,
            paid_at: paid.map(|p| p.paid_at),
            when: crate::clock::when(paid.map_or(record.created_at, |p| p.paid_at)),
            sats: paid
                .map_or(record.amount_msat, |p| p.amount_received_msat)
                .sats_decimal(),
            fiat: record
                .fiat
                .as_ref()
                .map(|f| format!("{} {}", f.value, f.currency)),
            comment: record.comment.as_ref().map(|c| c.as_str().to_owned()),
            payer: record.described_by.payer_data().and_then(payer_of),
            zap_from: record.described_by.zap_request().and_then(zap_sender),
        }
    }

    /// Whether `words` appear in the amount, comment, payer, zap sender, currency amount or hash.
    pub fn matches(&self, words: &str) -> bool {
        let words = words.trim().to_lowercase();
        if words.is_empty() {
            return true;
        }
        [
            Some(&self.sats),
            self.comment.as_ref(),
            self.payer.as_ref(),
            self.zap_from.as_ref(),
            self.fiat.as_ref(),
            Some(&self.payment_hash),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(&words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payers_are_named_by_name_then_identifier_then_email() {
        assert_eq!(
            payer_of(r#"{"name":"Bob","email":"b@x"}"#).as_deref(),
            Some("Bob")
        );
        assert_eq!(payer_of(r#"{"email":"b@x"}"#).as_deref(), Some("b@x"));
        assert_eq!(payer_of("not json"), None);
    }
}
