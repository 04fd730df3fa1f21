//! The wallet-facing safety net: every invoice a backend returns is decoded and compared with
//! what was asked for before any wallet sees it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin_hashes::Hash;
use lightning_invoice::{Currency as InvoiceNetwork, SignedRawBolt11Invoice};
use secp256k1::{Message, PublicKey, SECP256K1};

use crate::domain::{Hash32, Msat};

/// BOLT11: an invoice without an `x` field expires after an hour.
const DEFAULT_EXPIRY_SECS: u64 = 3600;

/// An invoice must leave the payer at least this long to pay it. Below the shortest expiry an
/// app may ask for (30 s), with room for the backend's round trip and second-rounded timestamps.
pub const MIN_REMAINING_VALIDITY: Duration = Duration::from_secs(20);

pub struct Expected<'a> {
    pub amount: Msat,
    /// `Some(h)`: must commit to `h`. `None`: a memo invoice, which must carry `memo`.
    pub description_hash: Option<Hash32>,
    pub memo: Option<&'a str>,
    pub network: InvoiceNetwork,
    /// As the backend reported it, where it does (Buda's answers carry only the invoice).
    pub payment_hash: Option<Hash32>,
    /// The backend's node key, where it is known: the invoice must be signed with it. Without
    /// it, any valid signature passes (the key is recovered from it).
    pub node: Option<PublicKey>,
    pub now: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceCheckError {
    #[error("not a valid signed BOLT11 invoice: {0}")]
    Undecodable(String),
    #[error("amount is {got:?} msat, {expected} msat was requested")]
    WrongAmount { expected: u64, got: Option<u64> },
    #[error("description hash does not match the metadata")]
    WrongDescriptionHash,
    #[error("the invoice commits to no description hash (`h`): the backend ignored the one it was asked for, so wallets that check it, and zaps, would refuse it")]
    MissingDescriptionHash,
    #[error("description does not match the memo")]
    WrongMemo,
    #[error("invoice is for {got:?}, this server is set up for {expected:?}")]
    WrongNetwork {
        expected: InvoiceNetwork,
        got: InvoiceNetwork,
    },
    #[error("payment hash differs from the one the backend reported")]
    WrongPaymentHash,
    #[error("signed by node {got}, not by the backend's node {expected}")]
    WrongNode {
        expected: Box<PublicKey>,
        got: Box<PublicKey>,
    },
    #[error("invoice is expired or expires within {}s", MIN_REMAINING_VALIDITY.as_secs())]
    Expired,
}

/// What the checked invoice says: its payment hash, and its times in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedInvoice {
    pub payment_hash: Hash32,
    pub created_at: u64,
    pub expires_at: u64,
}

pub fn check_invoice(
    bolt11: &str,
    expected: &Expected<'_>,
) -> Result<CheckedInvoice, InvoiceCheckError> {
    // The signed raw form, not `Bolt11Invoice`: that one also enforces feature bits, which some
    // upstreams omit (LNbits' FakeWallet) and wallets do not require. What decides whether a
    // payer can pay is checked below, the signature first.
    let signed: SignedRawBolt11Invoice = bolt11
        .parse()
        .map_err(|e| InvoiceCheckError::Undecodable(format!("{e}")))?;
    check_signature(&signed, expected.node)?;
    let raw = signed.raw_invoice();
    // Amounts are in pico-bitcoin: 10 per millisatoshi.
    let got = raw
        .amount_pico_btc()
        .filter(|p| p % 10 == 0)
        .map(|p| p / 10);
    if got != Some(expected.amount.msat()) {
        return Err(InvoiceCheckError::WrongAmount {
            expected: expected.amount.msat(),
            got,
        });
    }
    match (expected.description_hash, expected.memo) {
        (Some(want), _) => match raw.description_hash() {
            None => return Err(InvoiceCheckError::MissingDescriptionHash),
            Some(h) if h.0.to_byte_array() != want.0 => {
                return Err(InvoiceCheckError::WrongDescriptionHash)
            }
            Some(_) => {}
        },
        (None, memo) => {
            if raw.description().map(|d| d.as_inner().0.as_str()) != memo || memo.is_none() {
                return Err(InvoiceCheckError::WrongMemo);
            }
        }
    }
    if raw.currency() != expected.network {
        return Err(InvoiceCheckError::WrongNetwork {
            expected: expected.network.clone(),
            got: raw.currency(),
        });
    }
    let payment_hash = raw
        .payment_hash()
        .map(|h| Hash32(h.0.to_byte_array()))
        .ok_or(InvoiceCheckError::WrongPaymentHash)?;
    if expected
        .payment_hash
        .is_some_and(|reported| reported != payment_hash)
    {
        return Err(InvoiceCheckError::WrongPaymentHash);
    }
    let created_at = raw.data.timestamp.as_unix_timestamp();
    let expiry = raw
        .expiry_time()
        .map_or(DEFAULT_EXPIRY_SECS, |e| e.as_seconds());
    let expires_at = created_at.saturating_add(expiry);
    let now = expected.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    if Duration::from_secs(expires_at) < now + MIN_REMAINING_VALIDITY {
        return Err(InvoiceCheckError::Expired);
    }
    Ok(CheckedInvoice {
        payment_hash,
        created_at,
        expires_at,
    })
}

/// BOLT11: the signature is over the invoice's hash, by the key in its `n` field if it has one,
/// else by the key it recovers to. Verifying against a known key costs less than recovering
/// one, and says more: the invoice pays the backend's own node. The shared context is built
/// once (`lightning_invoice`'s own check builds and randomizes a new one per call).
fn check_signature(
    signed: &SignedRawBolt11Invoice,
    node: Option<PublicKey>,
) -> Result<(), InvoiceCheckError> {
    let message = Message::from_digest(*signed.signable_hash());
    let recoverable = &signed.signature().0;
    let bad = || InvoiceCheckError::Undecodable("the signature does not verify".into());
    let stated = signed.raw_invoice().payee_pub_key().map(|n| n.0);
    let Some(key) = stated.or(node) else {
        return SECP256K1
            .recover_ecdsa(&message, recoverable)
            .map(|_| ())
            .map_err(|_| bad());
    };
    if let (Some(stated), Some(expected)) = (stated, node) {
        if stated != expected {
            return Err(InvoiceCheckError::WrongNode {
                expected: Box::new(expected),
                got: Box::new(stated),
            });
        }
    }
    // Recovery accepts either form of `s`; so does this, as a wallet would.
    let mut signature = recoverable.to_standard();
    signature.normalize_s();
    if SECP256K1.verify_ecdsa(&message, &signature, &key).is_ok() {
        return Ok(());
    }
    // Only on failure: whose signature is it, if anyone's?
    match (stated, SECP256K1.recover_ecdsa(&message, recoverable)) {
        (None, Ok(got)) => Err(InvoiceCheckError::WrongNode {
            expected: Box::new(key),
            got: Box::new(got),
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin_hashes::sha256;
    use lightning_invoice::{InvoiceBuilder, PaymentSecret, RawBolt11Invoice};
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    use secp256k1::SecretKey;

    const NOW: u64 = 1_800_000_000;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    fn raw(payee: Option<PublicKey>) -> RawBolt11Invoice {
        let builder = InvoiceBuilder::new(InvoiceNetwork::Regtest)
            .amount_milli_satoshis(21_000)
            .payment_hash(sha256::Hash::hash(b"preimage"))
            .payment_secret(PaymentSecret([7; 32]))
            .description_hash(sha256::Hash::hash(b"metadata"))
            .duration_since_epoch(Duration::from_secs(NOW))
            .min_final_cltv_expiry_delta(18);
        match payee {
            Some(payee) => builder.payee_pub_key(payee).build_raw(),
            None => builder.build_raw(),
        }
        .unwrap()
    }

    fn signed_by(signer: &SecretKey, payee: Option<PublicKey>) -> String {
        raw(payee)
            .sign::<_, ()>(|m| Ok(SECP256K1.sign_ecdsa_recoverable(m, signer)))
            .unwrap()
            .to_string()
    }

    fn expected(node: Option<PublicKey>) -> Expected<'static> {
        Expected {
            amount: Msat::from_msat(21_000),
            description_hash: Some(Hash32::sha256(b"metadata")),
            memo: None,
            network: InvoiceNetwork::Regtest,
            payment_hash: Some(Hash32::sha256(b"preimage")),
            node,
            now: UNIX_EPOCH + Duration::from_secs(NOW),
        }
    }

    #[test]
    fn an_invoice_signed_by_the_known_node_passes() {
        let node = key(1).public_key(SECP256K1);
        let checked = check_invoice(&signed_by(&key(1), None), &expected(Some(node))).unwrap();
        assert_eq!(checked.payment_hash, Hash32::sha256(b"preimage"));
    }

    #[test]
    fn an_invoice_signed_by_another_node_is_refused_naming_both() {
        let node = key(1).public_key(SECP256K1);
        let stranger = key(2).public_key(SECP256K1);
        assert_eq!(
            check_invoice(&signed_by(&key(2), None), &expected(Some(node))),
            Err(InvoiceCheckError::WrongNode {
                expected: Box::new(node),
                got: Box::new(stranger)
            })
        );
    }

    #[test]
    fn without_a_known_node_any_valid_signature_passes_by_recovery() {
        assert!(check_invoice(&signed_by(&key(2), None), &expected(None)).is_ok());
    }

    #[test]
    fn a_payee_field_must_name_the_known_node_and_be_the_signer() {
        let node = key(1).public_key(SECP256K1);
        let stranger = key(2).public_key(SECP256K1);
        assert!(check_invoice(&signed_by(&key(1), Some(node)), &expected(Some(node))).is_ok());
        assert!(check_invoice(&signed_by(&key(1), Some(node)), &expected(None)).is_ok());
        assert_eq!(
            check_invoice(&signed_by(&key(2), Some(stranger)), &expected(Some(node))),
            Err(InvoiceCheckError::WrongNode {
                expected: Box::new(node),
                got: Box::new(stranger)
            })
        );
        // Claims to be the node, signed by someone else.
        assert!(matches!(
            check_invoice(&signed_by(&key(2), Some(node)), &expected(None)),
            Err(InvoiceCheckError::Undecodable(_))
        ));
    }

    #[test]
    fn a_signature_with_a_high_s_passes_as_it_does_by_recovery() {
        let node = key(1).public_key(SECP256K1);
        let high_s = raw(None)
            .sign::<_, ()>(|m| {
                let low = SECP256K1.sign_ecdsa_recoverable(m, &key(1));
                let (id, compact) = low.serialize_compact();
                // s' = n - s signs the same message, with the other recovery id.
                let s = SecretKey::from_slice(&compact[32..]).unwrap().negate();
                let mut flipped = compact;
                flipped[32..].copy_from_slice(&s.secret_bytes());
                let id = RecoveryId::from_i32(id.to_i32() ^ 1).unwrap();
                Ok(RecoverableSignature::from_compact(&flipped, id).unwrap())
            })
            .unwrap()
            .to_string();
        assert!(check_invoice(&high_s, &expected(None)).is_ok());
        assert!(check_invoice(&high_s, &expected(Some(node))).is_ok());
    }

    #[test]
    fn a_reported_payment_hash_must_match_and_an_unreported_one_is_read() {
        let bolt11 = signed_by(&key(1), None);
        let mut wrong = expected(None);
        wrong.payment_hash = Some(Hash32([9; 32]));
        assert_eq!(
            check_invoice(&bolt11, &wrong),
            Err(InvoiceCheckError::WrongPaymentHash)
        );
        let mut unreported = expected(None);
        unreported.payment_hash = None;
        assert_eq!(
            check_invoice(&bolt11, &unreported).unwrap().payment_hash,
            Hash32::sha256(b"preimage")
        );
    }
}
