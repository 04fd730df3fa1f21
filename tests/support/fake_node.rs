//! What every fake upstream shares: an HTTP server on port 0 in this process, a node key that
//! signs real BOLT11 invoices, and a switch that makes the upstream misbehave.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use secp256k1::{SecretKey, SECP256K1};

/// Ways an upstream goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accepts the request and never answers.
    Hangs,
    /// 503 with a plain-text body.
    ServerError,
    /// 200 with a body that is not what the API promises.
    Garbage,
    /// Mints invoices for 1 sat more than asked.
    WrongAmount,
    /// Mints invoices committing to another description (hash or memo).
    WrongDescription,
    /// Mints valid invoices signed by another node than the one `getinfo` names.
    ForeignSigner,
    /// The node has a new key: `getinfo` names it and invoices are signed with it.
    RotatedKey,
    /// Answers 200 and then trickles the body a byte at a time, forever (slowloris).
    Trickle,
    /// Starts an answer and drops the connection mid-body.
    Reset,
}

/// The switch a test flips; the fake's server and minting read it.
#[derive(Clone)]
pub struct Faults(Arc<Mutex<Fault>>);

impl Faults {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Fault::None)))
    }

    pub fn set(&self, fault: Fault) {
        *self.0.lock().unwrap() = fault;
    }

    pub fn get(&self) -> Fault {
        *self.0.lock().unwrap()
    }
}

/// Serves the routes `configure` adds, over TLS if given; returns the base URL (with a trailing
/// slash). Transport faults are applied before any route runs.
pub fn serve<F>(configure: F, faults: Faults, tls: Option<rustls::ServerConfig>) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let faults = faults.clone();
        App::new()
            .wrap_fn(move |req, srv| {
                let fault = faults.get();
                let misbehave = matches!(
                    fault,
                    Fault::Hangs
                        | Fault::ServerError
                        | Fault::Garbage
                        | Fault::Trickle
                        | Fault::Reset
                );
                let (held, call) = if misbehave {
                    (Some(req), None)
                } else {
                    (None, Some(srv.call(req)))
                };
                async move {
                    if let Some(call) = call {
                        return call.await.map(|r| r.map_into_boxed_body());
                    }
                    let req = held.expect("held when misbehaving");
                    let answer = match fault {
                        Fault::Hangs => {
                            // Never answers: the caller's timeout is what ends it.
                            std::future::pending().await
                        }
                        Fault::ServerError => {
                            HttpResponse::ServiceUnavailable().body("upstream exploded")
                        }
                        Fault::Trickle => HttpResponse::Ok()
                            .content_type("application/json")
                            .streaming(futures_util::stream::unfold((), |()| async {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b" ")), ()))
                            })),
                        Fault::Reset => HttpResponse::Ok()
                            .content_type("application/json")
                            .streaming(futures_util::stream::iter([
                                Ok(web::Bytes::from_static(b"{\"partial\":")),
                                Err(actix_web::error::ErrorInternalServerError(
                                    "connection reset",
                                )),
                            ])),
                        _ => HttpResponse::Ok()
                            .content_type("application/json")
                            .body("<html>surprise</html>"),
                    };
                    Ok(req.into_response(answer).map_into_boxed_body())
                }
            })
            .configure(configure.clone())
    })
    .workers(1);
    let (server, scheme) = match tls {
        Some(tls) => (server.listen_rustls_0_23(listener, tls).unwrap(), "https"),
        None => (server.listen(listener).unwrap(), "http"),
    };
    tokio::spawn(server.run());
    format!("{scheme}://127.0.0.1:{port}/")
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

/// A real invoice, signed by the fake node's key, tampered with as `faults` says.
pub fn mint(
    faults: &Faults,
    currency: Currency,
    amount_msat: u64,
    description: Description<'_>,
    expiry: Duration,
) -> Minted {
    let amount_msat = if faults.get() == Fault::WrongAmount {
        amount_msat + 1000
    } else {
        amount_msat
    };
    let description = match (faults.get(), description) {
        (Fault::WrongDescription, Description::Hash(_)) => Description::Hash([0x66; 32]),
        (Fault::WrongDescription, Description::Memo(_)) => Description::Memo("tampered"),
        (_, description) => description,
    };
    let preimage = rayo::clock::Random::bytes32(&rayo::clock::OsRandom);
    let payment_hash = sha256::Hash::hash(&preimage);
    let builder = InvoiceBuilder::new(currency)
        .amount_milli_satoshis(amount_msat)
        .payment_hash(payment_hash)
        .payment_secret(PaymentSecret(rayo::clock::Random::bytes32(
            &rayo::clock::OsRandom,
        )))
        .duration_since_epoch(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
        .expiry_time(expiry)
        .min_final_cltv_expiry_delta(144);
    let key = match faults.get() {
        Fault::ForeignSigner => SecretKey::from_slice(&[0x53; 32]).unwrap(),
        Fault::RotatedKey => rotated_key(),
        _ => node_key(),
    };
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

pub fn node_key() -> SecretKey {
    SecretKey::from_slice(&[0x51; 32]).unwrap()
}

fn rotated_key() -> SecretKey {
    SecretKey::from_slice(&[0x52; 32]).unwrap()
}

/// The fake node's public key, hex: what its `getinfo` reports.
pub fn node_id() -> String {
    hex::encode(node_key().public_key(SECP256K1).serialize())
}

/// What `getinfo` reports under `faults`: the new key once it is rotated.
pub fn reported_node_id(faults: &Faults) -> String {
    match faults.get() {
        Fault::RotatedKey => hex::encode(rotated_key().public_key(SECP256K1).serialize()),
        _ => node_id(),
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
