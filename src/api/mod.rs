//! The invoice API for apps: create invoices for a user, read them, follow them live.

mod view;

pub use view::AppInvoiceView;
