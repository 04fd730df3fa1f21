//! rayo: a self-hosted Lightning Address server.
//!
//! Dependencies run one way: `routes` (HTTP) -> services (`invoices`, `operator`, `lnurl`,
//! `watch`, `outbox`, `nostr`) -> `domain`, `store` and the `backends` trait. Nothing below
//! `routes` knows HTTP; `domain` knows nothing of ours.

pub mod accounts;
pub mod backends;
pub mod backup;
pub mod bip353;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod crypto;
pub mod data_dir;
pub mod directory;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod invoices;
pub mod keys;
pub mod limits;
pub mod lnurl;
pub mod log_throttle;
pub mod metrics;
pub mod net;
pub mod nostr;
pub mod notify;
pub mod offers;
pub mod operator;
pub mod outbox;
pub mod payments;
pub mod prices;
pub mod retry;
pub mod routes;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod watch;
