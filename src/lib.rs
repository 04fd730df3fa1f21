//! rayo: a self-hosted Lightning Address server.

pub mod domain;
pub mod store;
