//! A person's payments as their account page lists them: who paid (LUD-18 payer data, or a
//! zap's sender), how much, with what comment; filtered, and as CSV.

use serde::{Deserialize, Serialize};

use super::{AccountError, Accounts};
use crate::domain::{InvoiceRecord, StatusName, Username};
use crate::store::InvoicePage;

/// The list's filter, from the page's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentFilter {
    /// pending, paid or expired; empty: all.
    #[serde(default)]
    pub status: String,
    /// Words to find in the comment, payer or amount.
    #[serde(default)]
    pub q: String,
}

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
            when: super::when(paid.map_or(record.created_at, |p| p.paid_at)),
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

    fn matches(&self, words: &str) -> bool {
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

/// The page lists at most this many; the CSV export more.
pub const LISTED: usize = 100;
pub const EXPORTED: usize = 10_000;

impl Accounts {
    /// `user`'s payments, newest first, as `filter` narrows them, at most `limit`.
    pub async fn payments(
        &self,
        user: &Username,
        filter: &PaymentFilter,
        limit: usize,
    ) -> Result<Vec<PaymentRow>, AccountError> {
        let status = match filter.status.trim() {
            "" | "all" => None,
            "pending" => Some(StatusName::Pending),
            "paid" => Some(StatusName::Paid),
            "expired" => Some(StatusName::Expired),
            _ => return Err(super::refused("Status: pending, paid or expired.")),
        };
        let now = self.now();
        let (user, words) = (user.clone(), filter.q.clone());
        let records = self
            .db
            .read(move |s| {
                s.invoices(InvoicePage::newest(limit).of(&user).keeping(&mut |r| {
                    status.is_none_or(|want| StatusName::of(&r.status_at(now)) == want)
                        && PaymentRow::of(r, now).matches(&words)
                }))
            })
            .await?;
        Ok(records
            .iter()
            .map(|r| PaymentRow::of(r, now))
            .take(limit)
            .collect())
    }
}

/// One CSV field: quoted, quotes doubled, and a leading `= + - @` (or tab, CR) defused so a
/// spreadsheet never runs a payer's comment as a formula.
fn field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// The payments as CSV, with a header line.
pub fn csv(rows: &[PaymentRow]) -> String {
    csv_of(None, rows)
}

/// The same, with whose each payment was first (the operator console's export of everyone's).
pub fn csv_with_users(users: &[String], rows: &[PaymentRow]) -> String {
    csv_of(Some(users), rows)
}

fn csv_of(users: Option<&[String]>, rows: &[PaymentRow]) -> String {
    let mut out = String::from(if users.is_some() { "user," } else { "" });
    out.push_str("payment_hash,status,created_at,paid_at,sats,fiat,comment,payer,zap_from\n");
    for (i, row) in rows.iter().enumerate() {
        let user = users.and_then(|users| users.get(i));
        let line = user
            .into_iter()
            .cloned()
            .chain([
                row.payment_hash.clone(),
                row.status.to_owned(),
                row.created_at.to_string(),
                row.paid_at.map(|t| t.to_string()).unwrap_or_default(),
                row.sats.clone(),
                row.fiat.clone().unwrap_or_default(),
                row.comment.clone().unwrap_or_default(),
                row.payer.clone().unwrap_or_default(),
                row.zap_from.clone().unwrap_or_default(),
            ])
            .map(|v| field(&v))
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "\"plain\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "\"'-1\"");
    }

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
