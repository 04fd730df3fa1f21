//! `/admin/invoices`: search by payment hash, user, status and dates (the invoice query the
//! admin API and the CLI use), one invoice with its events and deliveries, and CSV.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{day_start, message, operator_refusal, when, Frame, Staff};
use crate::accounts::PaymentRow;
use crate::domain::{Hash32, StatusName, Username};
use crate::invoices::{InvoiceQuery, OperatorInvoiceView};
use crate::operator::{WebhookQuery, WebhookView};
use crate::routes::pages::html;
use crate::routes::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/invoices", web::get().to(invoices_page))
        .route("/invoices.csv", web::get().to(invoices_csv))
        .route("/invoices/{hash}", web::get().to(invoice_page));
}

/// The search form as typed: every field optional, each checked before use.
#[derive(Deserialize, Default, Clone)]
struct Search {
    #[serde(default)]
    hash: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

/// Listed on a page; a CSV takes more.
const LISTED: usize = 100;
const EXPORTED: usize = 10_000;

impl Search {
    /// The invoice query this search is, or what is wrong with it.
    fn query(&self, limit: usize) -> Result<InvoiceQuery, String> {
        let user = match self.user.trim() {
            "" => None,
            raw => Some(Username::parse(raw).map_err(|e| format!("user: {e}"))?),
        };
        let status = match self.status.trim() {
            "" => None,
            raw => Some(
                raw.parse::<StatusName>()
                    .map_err(|e| format!("status: {e}"))?,
            ),
        };
        let date = |raw: &str, what: &str| match raw.trim() {
            "" => Ok(None),
            raw => day_start(raw)
                .map(Some)
                .ok_or_else(|| format!("{what}: a date like 2026-12-07")),
        };
        let cursor = match self.cursor.trim() {
            "" => None,
            raw => Some(
                raw.parse::<Hash32>()
                    .map_err(|_| "cursor: not a payment hash".to_owned())?,
            ),
        };
        Ok(InvoiceQuery {
            user,
            status,
            limit: Some(limit),
            cursor,
            since: date(&self.from, "from")?,
            // Through the end of the day given.
            until: date(&self.to, "to")?.map(|day| day + 86_400),
        })
    }

    /// The same search, as a query string (the next page, the CSV).
    fn encoded(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("user", self.user.trim()),
                ("status", self.status.trim()),
                ("from", self.from.trim()),
                ("to", self.to.trim()),
            ])
            .finish()
    }
}

/// An invoice as the list shows it: whose, and the row the person's own page shows.
struct Row {
    user: String,
    row: PaymentRow,
}

async fn rows(state: &State, query: InvoiceQuery) -> Result<Vec<Row>, String> {
    let now = state.services.clock.unix();
    let records = query
        .run(&state.services.db, now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => "cursor: no such invoice".to_owned(),
            other => {
                tracing::error!(error = %other, "listing invoices failed");
                "the store could not be read; try again".to_owned()
            }
        })?;
    Ok(records
        .iter()
        .map(|r| Row {
            user: r.user.to_string(),
            row: PaymentRow::of(r, now),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "console/invoices.html")]
struct InvoicesPage<'a> {
    frame: Frame<'a>,
    search: &'a Search,
    rows: Vec<Row>,
    next: Option<String>,
    encoded: String,
    error: Option<String>,
}

async fn invoices_page(
    staff: Staff,
    search: web::Query<Search>,
    state: web::Data<State>,
) -> HttpResponse {
    // A payment hash finds one invoice.
    let hash = search.hash.trim();
    if !hash.is_empty() {
        return match hash.parse::<Hash32>() {
            Ok(hash) => super::back_to(&format!("/admin/invoices/{hash}")),
            Err(_) => render(
                &staff,
                &search,
                Vec::new(),
                Some("hash: a payment hash is 64 hex characters".into()),
            ),
        };
    }
    let query = match search.query(LISTED) {
        Ok(query) => query,
        Err(why) => return render(&staff, &search, Vec::new(), Some(why)),
    };
    match rows(&state, query).await {
        Ok(rows) => render(&staff, &search, rows, None),
        Err(why) => render(&staff, &search, Vec::new(), Some(why)),
    }
}

fn render(staff: &Staff, search: &Search, rows: Vec<Row>, error: Option<String>) -> HttpResponse {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let encoded = search.encoded();
    let next = (rows.len() == LISTED)
        .then(|| {
            rows.last()
                .map(|r| format!("{encoded}&cursor={}", r.row.payment_hash))
        })
        .flatten();
    html(
        status,
        InvoicesPage {
            frame: Frame::of(staff, "invoices"),
            search,
            rows,
            next,
            encoded,
            error,
        },
    )
}

async fn invoices_csv(
    _: Staff,
    search: web::Query<Search>,
    state: web::Data<State>,
) -> HttpResponse {
    let query = match search.query(EXPORTED) {
        Ok(query) => query,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, "That did not work", &why),
    };
    match rows(&state, query).await {
        Ok(rows) => {
            let (users, rows): (Vec<String>, Vec<PaymentRow>) =
                rows.into_iter().map(|r| (r.user, r.row)).unzip();
            HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"rayo-invoices.csv\"",
                ))
                .body(crate::accounts::csv_with_users(&users, &rows))
        }
        Err(why) => message(StatusCode::UNPROCESSABLE_ENTITY, "That did not work", &why),
    }
}

#[derive(Template)]
#[template(path = "console/invoice.html")]
struct InvoicePage<'a> {
    frame: Frame<'a>,
    invoice: OperatorInvoiceView,
    row: Option<PaymentRow>,
    created: String,
    expires: String,
    paid: Option<String>,
    events: Vec<EventRow>,
}

pub(super) struct EventRow {
    pub view: WebhookView,
    pub created: String,
    pub attempts: Vec<AttemptRow>,
}

pub(super) struct AttemptRow {
    pub when: String,
    pub status: String,
    pub outcome: String,
    pub took: String,
}

pub(super) fn event_row(view: WebhookView) -> EventRow {
    EventRow {
        created: when(view.created_at),
        attempts: view
            .log
            .iter()
            .map(|a| AttemptRow {
                when: when(a.at),
                status: a.status.map(|s| s.to_string()).unwrap_or_default(),
                outcome: a.outcome.clone(),
                took: format!("{} ms", a.duration_ms),
            })
            .collect(),
        view,
    }
}

async fn invoice_page(
    staff: Staff,
    raw: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    let Ok(hash) = raw.parse::<Hash32>() else {
        return message(
            StatusCode::NOT_FOUND,
            "No such invoice",
            "A payment hash is 64 hex characters.",
        );
    };
    let operator = &state.services.operator;
    let invoice = match operator.invoice(&hash).await {
        Ok(invoice) => invoice,
        Err(e) => return operator_refusal(e),
    };
    let now = state.services.clock.unix();
    let row = state
        .services
        .db
        .point(move |s| s.invoice(&hash))
        .await
        .ok()
        .flatten()
        .map(|r| PaymentRow::of(&r, now));
    let mut events = Vec::new();
    let summaries = operator
        .webhooks(WebhookQuery {
            invoice: Some(hash),
            ..WebhookQuery::default()
        })
        .await
        .unwrap_or_default();
    for summary in summaries {
        // Each with its delivery log.
        if let Ok(id) = summary.id.parse() {
            if let Ok(view) = operator.webhook(&id).await {
                events.push(event_row(view));
            }
        }
    }
    html(
        StatusCode::OK,
        InvoicePage {
            frame: Frame::of(&staff, "invoices"),
            created: when(invoice.created_at),
            expires: when(invoice.expires_at),
            paid: invoice.paid_at.map(when),
            row,
            invoice,
            events,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pairs: &str) -> Search {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn a_search_becomes_the_shared_invoice_query_or_says_what_is_wrong() {
        let query = search("user=Alice&status=paid&from=2026-12-01&to=2026-12-07")
            .query(10)
            .unwrap();
        assert_eq!(query.user.unwrap().as_str(), "alice");
        assert_eq!(query.status, Some(StatusName::Paid));
        assert_eq!(query.since, Some(1_796_083_200));
        assert_eq!(query.until, Some(1_796_601_600 + 86_400), "through the 7th");
        for (pairs, says) in [
            ("user=a%20b", "user"),
            ("status=lost", "status"),
            ("from=last%20week", "from"),
            ("cursor=abc", "cursor"),
        ] {
            let refused = search(pairs).query(10).unwrap_err();
            assert!(refused.starts_with(says), "{pairs}: {refused}");
        }
    }
}
