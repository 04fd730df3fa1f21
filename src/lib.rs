//! rayo: a self-hosted Lightning Address server.

pub mod admin;
pub mod api;
pub mod backends;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod data_dir;
pub mod directory;
pub mod domain;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod limits;
pub mod lnurl;
pub mod log_throttle;
pub mod metrics;
pub mod net;
pub mod nostr;
pub mod outbox;
pub mod pages;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod watch;
