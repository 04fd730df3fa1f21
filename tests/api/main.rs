//! One integration-test binary (one link on two cores), one module per area.

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod admin;
mod backend_contract;
mod binary;
mod bip353;
mod bip353_hosts;
mod buda;
mod callback;
mod callback_backend_faults;
mod cln;
mod console;
mod currencies;
mod domains;
mod fuzz_corpus;
mod invoice_api;
mod lnbits;
mod lnd;
mod named_backends;
mod notify;
mod nwc;
mod ops;
mod pages;
mod phoenixd;
mod postgres;
mod security;
mod settlement;
mod upstream_faults;
mod verify;
mod webhooks;
mod well_known;
mod zaps;
