//! A person's payments as their account page lists them: who paid (LUD-18 payer data, or a
//! zap's sender), how much, with what comment; filtered, and as CSV.

use serde::Deserialize;

use super::{AccountError, Accounts};
use crate::domain::{StatusName, Username};
use crate::invoices::PaymentRow;
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
}
