//! Durable delivery of events (webhooks): queued in the store with the change that caused
//! them, delivered at least once with retries, backoff and a dead-letter state.

mod deliver;
mod event;

pub use deliver::{Deliverer, DeliveryPolicy};
pub use event::{
    events_for, prepare_zap_receipt, signature, test_event, ZapContext, ZapReceipt,
    EVENT_ID_HEADER, SIGNATURE_HEADER,
};
