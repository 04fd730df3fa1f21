use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::config::PublicUrl;
use crate::domain::{Metadata, PayerDataSpec, User};

/// A user as the LNURL routes need them, built once per change of the user: the metadata
/// string and its hash, and the payRequest body ready to send. The well-known endpoint then
/// costs one map lookup and no serialisation.
#[derive(Debug)]
pub struct PayProfile {
    pub user: User,
    pub metadata: Arc<Metadata>,
    pub pay_request: Bytes,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayRequest<'a> {
    tag: &'static str,
    callback: &'a str,
    min_sendable: u64,
    max_sendable: u64,
    metadata: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    comment_allowed: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    payer_data: Option<&'a PayerDataSpec>,
    /// NIP-57: only for users whose backend can commit to a zap request's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    allows_nostr: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nostr_pubkey: Option<&'a str>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl PayProfile {
    pub fn build(user: User, public_url: &PublicUrl, nostr_pubkey: Option<&str>) -> Self {
        let metadata = Arc::new(Metadata::for_user(&user, public_url.domain().as_str()));
        let callback = callback_url(public_url, &user);
        let body = PayRequest {
            tag: "payRequest",
            callback: &callback,
            min_sendable: user.min_sendable.msat(),
            max_sendable: user.max_sendable.msat(),
            metadata: metadata.as_str(),
            comment_allowed: user.comment_allowed,
            payer_data: (!user.payer_data.is_empty()).then_some(&user.payer_data),
            allows_nostr: nostr_pubkey.map(|_| true),
            nostr_pubkey,
        };
        // Plain data with string keys: serialising cannot fail.
        let pay_request = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        Self {
            user,
            metadata,
            pay_request,
        }
    }
}

/// `name`'s Lightning Address on the domain of `public_url`: `alice@example.com`.
pub fn address(public_url: &PublicUrl, name: &crate::domain::Username) -> String {
    format!("{name}@{}", public_url.domain())
}

/// The LNURL wallets scan for `name`: the bech32 of its payRequest's URL (LUD-01).
pub fn lnurl(public_url: &PublicUrl, name: &crate::domain::Username) -> String {
    let well_known = public_url.join(&format!("/.well-known/lnurlp/{name}"));
    super::bech32::encode(&well_known).unwrap_or_default()
}

/// The user is in the path, not the query: some wallets (Alby) drop a callback's query string.
fn callback_url(public_url: &PublicUrl, user: &User) -> String {
    public_url.join(&format!("/lnurlp/{}/callback", user.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The metadata is a pure function of the user: built twice it is the same string,
        /// it is what the payRequest serves, and its hash is what invoices commit to.
        #[test]
        fn metadata_is_deterministic_and_served_byte_for_byte(
            description in "[^\\p{C}]{1,120}",
            long in proptest::option::of("[^\\p{C}]{1,300}"),
        ) {
            let ctx = crate::domain::UserContext {
                domain: "example.com",
                now: 1,
                new_secret: &|| crate::domain::Secret::new("s"),
            };
            let settings = crate::domain::UserSettings {
                description: Some(description.clone()),
                long_description: long.clone(),
                ..Default::default()
            };
            let Ok(user) = User::create(crate::domain::Username::parse("alice").unwrap(), settings, &ctx) else {
                return Ok(());
            };
            let first = Metadata::for_user(&user, "example.com");
            let second = Metadata::for_user(&user, "example.com");
            proptest::prop_assert_eq!(first.as_str(), second.as_str());
            let entries: Vec<(String, String)> = serde_json::from_str(first.as_str()).unwrap();
            proptest::prop_assert_eq!(&entries[0], &("text/plain".to_owned(), description));
            let public_url = crate::config::PublicUrl::parse("https://example.com").unwrap();
            let profile = PayProfile::build(user, &public_url, None);
            let served: serde_json::Value = serde_json::from_slice(&profile.pay_request).unwrap();
            proptest::prop_assert_eq!(served["metadata"].as_str().unwrap(), first.as_str());
            proptest::prop_assert_eq!(crate::domain::Hash32::sha256(served["metadata"].as_str().unwrap().as_bytes()), first.hash());
        }
    }
}
