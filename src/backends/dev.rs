//! The built-in dev backend: real, signed regtest invoices from a node key kept in the store,
//! so every flow works without a Lightning node. It moves no money: an invoice is "paid" only
//! when the operator says so (`rayo dev settle`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bitcoin_hashes::{sha256, Hash};
use lightning_invoice::{Bolt11Invoice, Currency as InvoiceNetwork, InvoiceBuilder, PaymentSecret};
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

use super::{
    Backend, BackendError, BackendResult, Capabilities, CreatedInvoice, Identity, InvoiceBackend,
    InvoiceDescription, InvoiceRequest, InvoiceState, PaymentNotice,
};
use crate::clock::{Clock, Random};
use crate::crypto::hmac_sha256;
use crate::domain::{Hash32, Preimage};

const MIN_FINAL_CLTV_EXPIRY_DELTA: u64 = 18;

pub struct DevBackend {
    node_key: SecretKey,
    /// Preimages are derived, not stored: `preimage = HMAC(preimage_key, payment_secret)`, and the
    /// payment secret travels inside the invoice, so settling needs nothing but the bolt11.
    preimage_key: [u8; 32],
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl DevBackend {
    /// Derives the node key and the preimage key from one stored seed.
    pub fn from_seed(
        seed: &[u8; 32],
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Backend<Self> {
        let mut node_secret = hmac_sha256(seed, b"rayo dev node key");
        let node_key = loop {
            // Out of range with probability ~2^-128; rehash rather than fail.
            match SecretKey::from_slice(&node_secret) {
                Ok(key) => break key,
                Err(_) => node_secret = sha256::Hash::hash(&node_secret).to_byte_array(),
            }
        };
        Backend::new(
            Capabilities {
                kind: "dev",
                description_hash: true,
                msat_precision: true,
                max_expiry: Duration::from_secs(7 * 24 * 3600),
                network: InvoiceNetwork::Regtest,
                lookup_sees_unpaid: false,
                payments: PaymentNotice::Manual,
            },
            Self {
                node_key,
                preimage_key: hmac_sha256(seed, b"rayo dev preimage key"),
                clock,
                random,
            },
        )
    }

    pub fn node_id(&self) -> PublicKey {
        self.node_key.public_key(SECP256K1)
    }

    /// The preimage of an invoice this backend made, or `None` if it did not make it.
    pub fn preimage_for(&self, bolt11: &str) -> Option<Preimage> {
        let invoice: Bolt11Invoice = bolt11.parse().ok()?;
        if invoice.recover_payee_pub_key() != self.node_id() {
            return None;
        }
        let preimage = Preimage(Hash32(hmac_sha256(
            &self.preimage_key,
            &invoice.payment_secret().0,
        )));
        (preimage.payment_hash().0 == invoice.payment_hash().to_byte_array()).then_some(preimage)
    }

    /// What a payer's wallet and the node would have done for a payment of `amount` to
    /// `offer` (`rayo dev pay-offer`): the offer must be one this node made, and the payment
    /// gets a fresh preimage. No BOLT12 invoice is made; nothing moves.
    pub fn simulate_offer_payment(
        &self,
        offer: &str,
        amount: crate::domain::Msat,
        payer_note: Option<String>,
    ) -> BackendResult<crate::domain::OfferPayment> {
        let offer: lightning::offers::offer::Offer = offer
            .parse()
            .map_err(|e| BackendError::Rejected(format!("not a BOLT12 offer: {e:?}")))?;
        if offer.issuer_signing_pubkey() != Some(self.node_id()) {
            return Err(BackendError::Rejected(
                "the offer was not made by this server's dev node key".into(),
            ));
        }
        if amount.msat() == 0 {
            return Err(BackendError::Rejected(
                "the amount must be above zero".into(),
            ));
        }
        let preimage = Preimage(Hash32(self.random.bytes32()));
        Ok(crate::domain::OfferPayment {
            offer_id: Hash32(offer.id().0),
            payment_hash: preimage.payment_hash(),
            preimage: Some(preimage),
            amount,
            paid_at: self.clock.unix(),
            payer_note,
            invoice: None,
        })
    }
}

#[async_trait]
impl InvoiceBackend for DevBackend {
    async fn create_invoice(&self, request: InvoiceRequest<'_>) -> BackendResult<CreatedInvoice> {
        let payment_secret = self.random.bytes32();
        let preimage = Preimage(Hash32(hmac_sha256(&self.preimage_key, &payment_secret)));
        let payment_hash = preimage.payment_hash();
        let builder = InvoiceBuilder::new(InvoiceNetwork::Regtest)
            .amount_milli_satoshis(request.amount.msat())
            .payment_hash(sha256::Hash::from_byte_array(payment_hash.0))
            .payment_secret(PaymentSecret(payment_secret))
            .duration_since_epoch(
                self.clock
                    .now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
            )
            .expiry_time(request.expiry)
            .min_final_cltv_expiry_delta(MIN_FINAL_CLTV_EXPIRY_DELTA);
        let signed = match &request.description {
            InvoiceDescription::Hash { hash, .. } => builder
                .description_hash(sha256::Hash::from_byte_array(hash.0))
                .build_signed(|m: &Message| SECP256K1.sign_ecdsa_recoverable(m, &self.node_key)),
            InvoiceDescription::Memo(memo) => builder
                .description(memo.to_string())
                .build_signed(|m: &Message| SECP256K1.sign_ecdsa_recoverable(m, &self.node_key)),
        };
        let invoice = signed.map_err(|e| {
            BackendError::Rejected(format!("dev backend could not build the invoice: {e}"))
        })?;
        Ok(CreatedInvoice {
            bolt11: invoice.to_string(),
            payment_hash: Some(payment_hash),
            backend_ref: None,
        })
    }

    fn offer_support(&self) -> super::OfferSupport {
        super::OfferSupport::PerAddress
    }

    /// A real offer (rust-lightning's `OfferBuilder`) signed for by the dev node key, with no
    /// blinded path: deterministic, so every instance makes the same one.
    async fn make_offer(
        &self,
        request: super::OfferRequest<'_>,
    ) -> BackendResult<super::MadeOffer> {
        let offer = lightning::offers::offer::OfferBuilder::new(self.node_id())
            .description(request.description.to_owned())
            .issuer(request.issuer.to_owned())
            .chain(lightning::bitcoin::Network::Regtest)
            .build()
            .map_err(|e| {
                BackendError::Rejected(format!("dev backend could not build the offer: {e:?}"))
            })?;
        Ok(super::MadeOffer {
            offer: offer.to_string(),
            backend_ref: None,
        })
    }

    async fn identity(&self) -> BackendResult<Identity> {
        Ok(Identity {
            node_id: Some(self.node_id()),
            name: Some("dev node".into()),
        })
    }

    /// The dev backend keeps no payment state: `rayo dev settle` records payment in the store.
    async fn lookup_invoice(&self, _payment_hash: &Hash32) -> BackendResult<InvoiceState> {
        Ok(InvoiceState::Unknown)
    }
}
