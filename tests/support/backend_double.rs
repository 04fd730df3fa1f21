//! A backend double for the callback's defences: it mints real signed BOLT11 invoices, and can
//! be told to get them wrong in each way a real upstream might, or to fail or hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use rayo::backends::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState,
};
use rayo::domain::Hash32;
use secp256k1::{SecretKey, SECP256K1};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    WrongAmount,
    WrongDescriptionHash,
    WrongNetwork,
    AlreadyExpired,
    /// Reports a payment hash other than the invoice's.
    MisreportedPaymentHash,
    Fails,
    /// Never answers.
    Hangs,
    /// Returns text that is not an invoice.
    Garbage,
}

pub struct BackendDouble {
    key: SecretKey,
    fault: Mutex<Fault>,
    pub calls: AtomicUsize,
    /// Lookups asked for (each takes 200 ms).
    pub lookups: AtomicUsize,
    in_flight: AtomicUsize,
    /// The most calls that were ever in progress at once.
    pub max_in_flight: AtomicUsize,
}

/// Counts a call as in progress until dropped (answered, or abandoned by a timeout).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BackendDouble {
    pub fn new(fault: Fault) -> Backend<Self> {
        Self::with_capabilities(fault, true)
    }

    /// A backend that, like phoenixd or LNbits, only makes whole-satoshi invoices.
    pub fn sat_only() -> Backend<Self> {
        Self::with_capabilities(Fault::None, false)
    }

    fn with_capabilities(fault: Fault, msat_precision: bool) -> Backend<Self> {
        Backend::new(
            Capabilities {
                kind: "double",
                description_hash: true,
                msat_precision,
                max_expiry: Duration::from_secs(3600),
                network: Currency::Regtest,
                lookup_sees_unpaid: false,
                payments: rayo::backends::PaymentNotice::Manual,
            },
            Self {
                key: SecretKey::from_slice(&[0x42; 32]).unwrap(),
                fault: Mutex::new(fault),
                calls: AtomicUsize::new(0),
                lookups: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            },
        )
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

#[async_trait]
impl InvoiceBackend for BackendDouble {
    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _in_flight = InFlight(&self.in_flight);
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::Fails => {
                return Err(BackendError::Unavailable(
                    "double: upstream said 503".into(),
                ))
            }
            Fault::Hangs => std::future::pending::<()>().await,
            Fault::Garbage => {
                return Ok(CreatedInvoice {
                    bolt11: "lnbcrt1garbage".into(),
                    payment_hash: Some(Hash32([1; 32])),
                    backend_ref: None,
                })
            }
            _ => {}
        }
        let preimage = rand_bytes();
        let payment_hash = sha256::Hash::hash(&preimage);
        let amount = match fault {
            Fault::WrongAmount => request.amount.msat() + 1000,
            _ => request.amount.msat(),
        };
        let hash = match (&request.description, fault) {
            (_, Fault::WrongDescriptionHash) => sha256::Hash::hash(b"something else"),
            (InvoiceDescription::Hash { hash, .. }, _) => sha256::Hash::from_byte_array(hash.0),
            (InvoiceDescription::Memo(_), _) => {
                return Err(BackendError::Rejected("double wants hashes".into()))
            }
        };
        let currency = if fault == Fault::WrongNetwork {
            Currency::Bitcoin
        } else {
            Currency::Regtest
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let (timestamp, expiry) = if fault == Fault::AlreadyExpired {
            (now - Duration::from_secs(7200), Duration::from_secs(600))
        } else {
            (now, request.expiry)
        };
        let invoice = InvoiceBuilder::new(currency)
            .amount_milli_satoshis(amount)
            .payment_hash(payment_hash)
            .payment_secret(PaymentSecret(rand_bytes()))
            .description_hash(hash)
            .duration_since_epoch(timestamp)
            .expiry_time(expiry)
            .min_final_cltv_expiry_delta(18)
            .build_signed(|m| SECP256K1.sign_ecdsa_recoverable(m, &self.key))
            .expect("double builds invoices");
        let reported = if fault == Fault::MisreportedPaymentHash {
            Hash32([9; 32])
        } else {
            Hash32(payment_hash.to_byte_array())
        };
        Ok(CreatedInvoice {
            bolt11: invoice.to_string(),
            payment_hash: Some(reported),
            backend_ref: Some("double-1".into()),
        })
    }

    /// The double only makes invoices; nothing is ever paid through it.
    async fn lookup_invoice(&self, _payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if *self.fault.lock().unwrap() == Fault::Fails {
            return Err(BackendError::Unavailable(
                "double: upstream said 503 (secret detail)".into(),
            ));
        }
        Ok(InvoiceState::Unknown)
    }
}

fn rand_bytes() -> [u8; 32] {
    rayo::clock::Random::bytes32(&rayo::clock::OsRandom)
}
