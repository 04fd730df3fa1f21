//! What every fake upstream shares: an HTTP server on port 0 in this process, and a node key
//! that signs real BOLT11 invoices.

use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpServer};
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use secp256k1::{SecretKey, SECP256K1};

/// Serves the routes `configure` adds; returns the base URL (with a trailing slash).
pub fn serve<F>(configure: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    url
}

pub enum Description<'a> {
    /// The 32-byte `h` to commit to.
    Hash([u8; 32]),
    Memo(&'a str),
}

pub struct Minted {
    pub bolt11: String,
    pub payment_hash: String,
    pub preimage: [u8; 32],
}

/// A real invoice, signed by the fake node's key.
pub fn mint(
    currency: Currency,
    amount_msat: u64,
    description: Description<'_>,
    expiry: Duration,
) -> Minted {
    let preimage = rayo::clock::random_bytes();
    let payment_hash = sha256::Hash::hash(&preimage);
    let builder = InvoiceBuilder::new(currency)
        .amount_milli_satoshis(amount_msat)
        .payment_hash(payment_hash)
        .payment_secret(PaymentSecret(rayo::clock::random_bytes()))
        .duration_since_epoch(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
        .expiry_time(expiry)
        .min_final_cltv_expiry_delta(144);
    let key = SecretKey::from_slice(&[0x51; 32]).unwrap();
    let sign = |m: &secp256k1::Message| SECP256K1.sign_ecdsa_recoverable(m, &key);
    let invoice = match description {
        Description::Hash(h) => builder
            .description_hash(sha256::Hash::from_byte_array(h))
            .build_signed(sign),
        Description::Memo(m) => builder.description(m.to_owned()).build_signed(sign),
    }
    .expect("the fake node builds invoices");
    Minted {
        bolt11: invoice.to_string(),
        payment_hash: hex::encode(payment_hash.to_byte_array()),
        preimage,
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
