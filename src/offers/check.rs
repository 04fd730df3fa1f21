//! What an offer from a backend must be before rayo publishes it: a BOLT12 offer that decodes,
//! for any amount, on the backend's network, describing the address it was made for, and
//! signed for by the backend's node where the offer names a signing key. Decoding is the
//! `lightning` crate's (rust-lightning), not ours.

use std::str::FromStr;

use lightning::offers::offer::Offer;
use secp256k1::PublicKey;

use crate::backends::InvoiceNetwork;
use crate::domain::Hash32;

/// What the offer was asked to be.
pub struct ExpectedOffer<'a> {
    pub description: &'a str,
    pub issuer: &'a str,
    pub network: InvoiceNetwork,
    /// The backend's node key, when known: an offer naming another signing key is not ours.
    pub node_id: Option<PublicKey>,
}

/// An offer that passed, with what rayo keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOffer {
    /// The offer as published (`lno1…`), re-encoded from what was decoded.
    pub text: String,
    /// BOLT12's offer id (the merkle root of its fields): payments name it.
    pub id: Hash32,
    /// Unix seconds after which it cannot be paid, if it says.
    pub expires_at: Option<u64>,
    /// The key invoices for it are signed with; `None` where only blinded paths lead to it.
    pub signing_key: Option<PublicKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferCheckError {
    #[error("not a BOLT12 offer: {0}")]
    Undecodable(String),
    #[error("the offer asks for a fixed amount; an address offer must take any amount")]
    FixedAmount,
    #[error("the offer describes {found:?}, not {expected:?}")]
    WrongDescription { found: String, expected: String },
    #[error("the offer names issuer {found:?}, not {expected:?}")]
    WrongIssuer { found: String, expected: String },
    #[error("the offer is not for {0:?}")]
    WrongNetwork(InvoiceNetwork),
    #[error("the offer is signed for by {found}, not by the backend's node {expected}")]
    WrongNode {
        found: Box<PublicKey>,
        expected: Box<PublicKey>,
    },
    #[error("the offer names no signing key and no blinded path: nobody could pay it")]
    Unreachable,
    #[error("the offer expired")]
    Expired,
}

pub fn check_offer(
    text: &str,
    expected: &ExpectedOffer<'_>,
    now: u64,
) -> Result<CheckedOffer, OfferCheckError> {
    let offer =
        Offer::from_str(text.trim()).map_err(|e| OfferCheckError::Undecodable(format!("{e:?}")))?;
    if offer.amount().is_some() {
        return Err(OfferCheckError::FixedAmount);
    }
    let description = offer
        .description()
        .map(|d| d.to_string())
        .unwrap_or_default();
    if description != expected.description {
        return Err(OfferCheckError::WrongDescription {
            found: description,
            expected: expected.description.to_owned(),
        });
    }
    // An issuer is optional in BOLT12: a backend may leave it out, but not name someone else.
    if let Some(issuer) = offer.issuer().map(|i| i.to_string()) {
        if issuer != expected.issuer {
            return Err(OfferCheckError::WrongIssuer {
                found: issuer,
                expected: expected.issuer.to_owned(),
            });
        }
    }
    let chain = lightning::bitcoin::constants::ChainHash::using_genesis_block(network_of(
        expected.network.clone(),
    ));
    if !offer.supports_chain(chain) {
        return Err(OfferCheckError::WrongNetwork(expected.network.clone()));
    }
    let signing_key = offer.issuer_signing_pubkey();
    match (signing_key, expected.node_id) {
        (Some(found), Some(node)) if found != node => {
            return Err(OfferCheckError::WrongNode {
                found: Box::new(found),
                expected: Box::new(node),
            })
        }
        (None, _) if offer.paths().is_empty() => return Err(OfferCheckError::Unreachable),
        _ => {}
    }
    let expires_at = offer.absolute_expiry().map(|d| d.as_secs());
    if expires_at.is_some_and(|at| at <= now) {
        return Err(OfferCheckError::Expired);
    }
    Ok(CheckedOffer {
        text: offer.to_string(),
        id: Hash32(offer.id().0),
        expires_at,
        signing_key,
    })
}

pub(crate) fn network_of(network: InvoiceNetwork) -> lightning::bitcoin::Network {
    use lightning::bitcoin::Network;
    match network {
        InvoiceNetwork::Bitcoin => Network::Bitcoin,
        InvoiceNetwork::BitcoinTestnet => Network::Testnet,
        InvoiceNetwork::Regtest => Network::Regtest,
        InvoiceNetwork::Simnet => Network::Regtest,
        InvoiceNetwork::Signet => Network::Signet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning::offers::offer::OfferBuilder;
    use secp256k1::{SecretKey, SECP256K1};

    fn node(byte: u8) -> PublicKey {
        SecretKey::from_slice(&[byte; 32])
            .unwrap()
            .public_key(SECP256K1)
    }

    fn offer(signing: PublicKey, description: &str, network: InvoiceNetwork) -> String {
        OfferBuilder::new(signing)
            .description(description.into())
            .issuer("example.com".into())
            .chain(network_of(network))
            .build()
            .unwrap()
            .to_string()
    }

    fn expected(description: &str) -> ExpectedOffer<'_> {
        ExpectedOffer {
            description,
            issuer: "example.com",
            network: InvoiceNetwork::Regtest,
            node_id: Some(node(1)),
        }
    }

    #[test]
    fn an_offer_for_the_address_from_the_backends_node_passes() {
        let text = offer(node(1), "Pay alice@example.com", InvoiceNetwork::Regtest);
        let checked = check_offer(&text, &expected("Pay alice@example.com"), 0).unwrap();
        assert_eq!(checked.text, text);
        assert_eq!(checked.signing_key, Some(node(1)));
        assert_eq!(checked.expires_at, None);
    }

    #[test]
    fn offers_for_someone_else_are_refused_before_publishing() {
        let want = expected("Pay alice@example.com");
        let other_node = offer(node(2), "Pay alice@example.com", InvoiceNetwork::Regtest);
        assert!(matches!(
            check_offer(&other_node, &want, 0),
            Err(OfferCheckError::WrongNode { .. })
        ));
        let other_user = offer(node(1), "Pay mallory@example.com", InvoiceNetwork::Regtest);
        assert!(matches!(
            check_offer(&other_user, &want, 0),
            Err(OfferCheckError::WrongDescription { .. })
        ));
        let mainnet = offer(node(1), "Pay alice@example.com", InvoiceNetwork::Bitcoin);
        assert!(matches!(
            check_offer(&mainnet, &want, 0),
            Err(OfferCheckError::WrongNetwork(_))
        ));
        let fixed = OfferBuilder::new(node(1))
            .description("Pay alice@example.com".into())
            .amount_msats(1000)
            .chain(network_of(InvoiceNetwork::Regtest))
            .build()
            .unwrap()
            .to_string();
        assert_eq!(
            check_offer(&fixed, &want, 0),
            Err(OfferCheckError::FixedAmount)
        );
        for garbage in ["", "lno1", "lnbc1xyz", "{\"offer\":1}", "lno1qqqq\u{0}"] {
            assert!(matches!(
                check_offer(garbage, &want, 0),
                Err(OfferCheckError::Undecodable(_))
            ));
        }
    }

    #[test]
    fn an_expired_offer_is_refused() {
        let text = OfferBuilder::new(node(1))
            .description("Pay alice@example.com".into())
            .chain(network_of(InvoiceNetwork::Regtest))
            .absolute_expiry(std::time::Duration::from_secs(100))
            .build()
            .unwrap()
            .to_string();
        let want = expected("Pay alice@example.com");
        assert_eq!(check_offer(&text, &want, 50).unwrap().expires_at, Some(100));
        assert_eq!(
            check_offer(&text, &want, 100),
            Err(OfferCheckError::Expired)
        );
    }

    proptest::proptest! {
        #[test]
        fn the_check_never_panics(text in ".{0,300}") {
            let _ = check_offer(&text, &expected("x"), 0);
        }

        #[test]
        fn nor_on_bech32_shaped_noise(text in "lno1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{0,400}") {
            let _ = check_offer(&text, &expected("x"), 0);
        }
    }
}
