//! Noticing payment: one watcher per backend (push channel with resume, or polling), the
//! sweeper that expires what was not paid in time, and the ledger through which both record
//! what happened, with the events it calls for, in one durable write.

mod ledger;
mod live;
mod offer_payment;
mod sweeper;
mod watcher;

pub use ledger::{Cursor, Ledger};
pub use live::Live;
pub use offer_payment::record_offer_payment;
pub use sweeper::run as run_sweeper;
pub use watcher::{start_all, Hints, Watcher};
