//! How a listing of invoices is narrowed, shared by the admin API, the invoice API and the CLI.

use serde::{Deserialize, Serialize};

use crate::domain::{blank_is_none, Hash32, InvoiceRecord, ListLimit, StatusName, Username};
use crate::store::{Db, InvoicePage, StoreError};

/// Whose invoices, in which status (as of now), older than which (a cursor: the last payment
/// hash of the previous page), how many; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "blank_is_none"
    )]
    pub user: Option<Username>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "blank_is_none"
    )]
    pub status: Option<StatusName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "blank_is_none"
    )]
    pub cursor: Option<Hash32>,
    /// Only those made at or after this time (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Only those made before this time (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl InvoiceQuery {
    pub fn limit(&self) -> ListLimit {
        ListLimit::new(self.limit)
    }

    /// The invoices this query selects, as of `now`. An unknown cursor is `NotFound`.
    pub async fn run(self, db: &Db, now: u64) -> Result<Vec<InvoiceRecord>, StoreError> {
        let limit = self.limit().get();
        db.read(move |s| {
            s.invoices(InvoicePage {
                user: self.user.as_ref(),
                before: self.cursor.as_ref(),
                keep: Some(&mut |r: &InvoiceRecord| {
                    self.status
                        .is_none_or(|want| StatusName::of(&r.status_at(now)) == want)
                        && self.since.is_none_or(|since| r.created_at >= since)
                        && self.until.is_none_or(|until| r.created_at < until)
                }),
                limit,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<InvoiceQuery, String> {
        serde_urlencoded::from_str::<InvoiceQuery>(query).map_err(|e| e.to_string())
    }

    #[test]
    fn queries_parse_once_at_the_edge() {
        let query = parse("user=Alice&status=paid&limit=5").unwrap();
        assert_eq!(query.user.as_ref().unwrap().as_str(), "alice");
        assert_eq!(query.status, Some(StatusName::Paid));
        assert_eq!(query.limit().get(), 5);
        assert_eq!(parse("status=&user=").unwrap(), InvoiceQuery::default());
        let refused = parse("status=lost").unwrap_err();
        assert!(
            refused.contains("use pending, paid or expired"),
            "{refused}"
        );
        assert!(parse("cursor=xyz").is_err());
        assert!(parse("colour=red").is_err());
    }
}
