//! How what is stored is encoded. Invoices, by far the most numerous, are compact versioned
//! binary records (`invoice`), packed into chunks once finished (`chunk`); everything else is
//! JSON, which keeps users, events and keys readable in a backup and cheap to evolve.

mod bolt11;
pub mod chunk;
pub mod invoice;

use crate::store::StoreError;

pub(crate) fn encode_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}
