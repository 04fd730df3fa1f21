//! BOLT12 offers: one reusable offer per address, from backends that can make one, so the
//! address can be paid by its BIP-353 name (`₿alice@example.com`) as well as by LNURL.
//!
//! The keeper makes, checks and stores each user's offer and forgets those of users who went;
//! payments to an offer become that user's paid invoices through the ledger, like any other.

mod check;
mod keeper;

pub use check::{check_offer, CheckedOffer, ExpectedOffer, OfferCheckError};
pub use keeper::{Keeper, KeeperReport};

pub use crate::domain::{description_for, OfferPayment, OfferRecord};
pub use crate::store::offer_records::{all_stored, owner_of, stored};
pub use crate::watch::record_offer_payment;
