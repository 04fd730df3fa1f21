//! Invoices: the one place they are made (`Issuer`), the check every backend's invoice
//! passes, what an invoice describes, how listings are narrowed, and how each audience sees
//! an invoice.

mod check;
mod description;
mod issuer;
pub mod lookup;
mod payment_row;
mod query;
mod slots;
mod view;

pub use check::{
    check_invoice, CheckedInvoice, Expected, InvoiceCheckError, MIN_REMAINING_VALIDITY,
};
pub use description::Description;
pub use issuer::{IssueError, Issuer, IssuerParts, NewInvoice, Upstream};
pub use payment_row::PaymentRow;
pub use query::InvoiceQuery;
pub use view::{AppInvoiceView, ForApps, ForOperators, InvoiceView, OperatorInvoiceView};
