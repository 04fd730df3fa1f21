//! LNURL-auth (LUD-04): the page shows `<public URL>/auth/lnurl?tag=login&k1=…`; the wallet
//! signs `k1` with its linking key for this domain and calls back with `sig` and `key`; the
//! page that showed it, and only that page (it holds a secret of its own in a cookie), learns
//! of the signature and gets the session. Each `k1` is single-use and short-lived.

use secp256k1::{ecdsa::Signature, Message, PublicKey, SECP256K1};
use serde::{Deserialize, Serialize};

use super::challenges::Stored;
use super::{key_of, refused, AccountError, Accounts, SessionStarted};
use crate::config::PublicUrl;
use crate::domain::Username;
use crate::limits::ClientKey;
use crate::store::RecordKind;

/// What a signature does once checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginAction {
    /// Sign in to the account the key is linked to.
    Login,
    /// Link the key to this person's account.
    Link(Username),
    /// Join with the key as the account's first way in: by invite (its key; `None` where
    /// sign-up is open), under `name`, on `domain`.
    Join {
        invite: Option<String>,
        name: Username,
        domain: String,
    },
}

/// A `k1` waiting for its wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Waiting {
    /// The hash of the secret the page's browser holds.
    browser: String,
    action: LoginAction,
    /// The linking key that signed, once one did.
    signed_by: Option<String>,
    /// Why the signature was refused, for the page to say.
    refusal: Option<String>,
    /// Whether what the signature asked for is done: until then the page waits.
    #[serde(default)]
    settled: bool,
}

/// A `k1` handed to a page: what to show, and the secret its browser keeps.
pub struct LnurlAuth {
    pub k1: String,
    /// `lightning:` + this, and the QR code.
    pub lnurl: String,
    pub url: String,
    /// Goes into the browser's cookie: only it may collect the sign-in.
    pub browser_secret: String,
}

/// What the page learns when it asks.
pub enum LoginWait {
    Waiting,
    SignedIn(SessionStarted),
    Linked,
    Refused(String),
    /// No such `k1` (expired, taken, or never).
    Gone,
}

/// Why a wallet's callback was refused: said to the wallet as the LNURL `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LnurlAuthError {
    #[error("{0}")]
    Bad(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error("the server could not record the sign-in; try again")]
    Store,
}

fn challenge_key(k1: &str) -> String {
    format!("k1:{k1}")
}

/// Checks `sig` (hex DER) over the 32 bytes of `k1` (hex) by `key` (hex, compressed), as
/// LUD-04 says: `k1` is the message digest itself. High-S signatures are accepted, as wallets
/// make them and they prove the same thing.
pub fn verify(k1: &str, sig: &str, key: &str) -> Result<(), LnurlAuthError> {
    let k1: [u8; 32] = hex::decode(k1)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(LnurlAuthError::Bad("k1 must be 32 bytes of hex"))?;
    let key_bytes = hex::decode(key).map_err(|_| LnurlAuthError::Bad("key must be hex"))?;
    if key_bytes.len() != 33 {
        return Err(LnurlAuthError::Bad(
            "key must be a 33-byte compressed public key",
        ));
    }
    let key = PublicKey::from_slice(&key_bytes)
        .map_err(|_| LnurlAuthError::Bad("key is not a secp256k1 public key"))?;
    let sig_bytes = hex::decode(sig).map_err(|_| LnurlAuthError::Bad("sig must be hex"))?;
    let mut sig = Signature::from_der(&sig_bytes)
        .map_err(|_| LnurlAuthError::Bad("sig must be a DER-encoded signature"))?;
    sig.normalize_s();
    SECP256K1
        .verify_ecdsa(&Message::from_digest(k1), &sig, &key)
        .map_err(|_| LnurlAuthError::Bad("the signature does not match k1 and key"))
}

impl Accounts {
    /// A fresh `k1` for a page on `url`'s domain.
    pub async fn start_lnurl_auth(
        &self,
        action: LoginAction,
        url: &PublicUrl,
        client: Option<ClientKey>,
    ) -> Result<LnurlAuth, AccountError> {
        if !self.limits.allow_client(client) {
            return Err(AccountError::RateLimited);
        }
        let k1 = hex::encode(self.random.bytes32());
        let browser_secret = self.token();
        let action_name = match action {
            LoginAction::Login => "login",
            LoginAction::Link(_) => "link",
            LoginAction::Join { .. } => "register",
        };
        self.put_challenge_as(
            &challenge_key(&k1),
            Waiting {
                browser: key_of(&browser_secret),
                action,
                signed_by: None,
                refusal: None,
                settled: false,
            },
        )
        .await?;
        let full = url.join(&format!(
            "/auth/lnurl?tag=login&k1={k1}&action={action_name}"
        ));
        let lnurl = crate::lnurl::bech32::encode(&full)
            .ok_or_else(|| refused("This server's URL is too long for an LNURL."))?
            .to_uppercase();
        Ok(LnurlAuth {
            k1,
            lnurl,
            url: full,
            browser_secret,
        })
    }

    /// The wallet's callback: checks the signature, claims the `k1` for its key (once: two
    /// callbacks racing with the same `k1` cannot both act), does what it asks, and records
    /// the outcome for the page.
    pub async fn lnurl_auth_callback(
        &self,
        operator: &crate::operator::Operator,
        k1: &str,
        sig: &str,
        key: &str,
    ) -> Result<(), LnurlAuthError> {
        verify(k1, sig, key)?;
        let key = key.to_ascii_lowercase();
        let now = self.now();
        let store = |_| LnurlAuthError::Store;
        let Some(read) = self
            .read::<Stored<Waiting>>(RecordKind::Challenge, &challenge_key(k1))
            .await
            .map_err(store)?
        else {
            return Err(LnurlAuthError::Bad(
                "this login is unknown or has expired: reload the page",
            ));
        };
        let mut waiting = read.value;
        if waiting.body.signed_by.is_some() || waiting.expires_at < now {
            return Err(LnurlAuthError::Bad(
                "this login was used already or has expired: reload the page",
            ));
        }
        if !self.limits.allow_account(&key) {
            return Err(LnurlAuthError::Refused(
                "too many attempts; wait a minute".into(),
            ));
        }
        let k1_key = challenge_key(k1);
        waiting.body.signed_by = Some(key.clone());
        let claimed = super::encode(&waiting).map_err(store)?;
        if !self
            .swap(
                RecordKind::Challenge,
                &k1_key,
                Some(read.bytes),
                Some(claimed.clone()),
            )
            .await
            .map_err(store)?
        {
            return Err(LnurlAuthError::Bad(
                "this login was used already: reload the page",
            ));
        }
        // A login needs the key linked to an account; a link needs it free (or already this
        // person's); a join needs it linked nowhere. The page is told either way.
        let outcome = match &waiting.body.action {
            LoginAction::Login => match self.account_by_linking_key(&key).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("This wallet is not linked to an account here. Sign in with a passkey, then link it on your account page.".to_owned()),
                Err(_) => return Err(LnurlAuthError::Store),
            },
            LoginAction::Link(user) => match self.link_wallet(user, &key).await {
                Ok(()) => Ok(()),
                Err(AccountError::Refused(why)) => Err(why),
                Err(_) => return Err(LnurlAuthError::Store),
            },
            LoginAction::Join {
                invite,
                name,
                domain,
            } => match self
                .join_with_wallet(operator, invite.as_deref(), name, domain, &key)
                .await
            {
                Ok(()) => Ok(()),
                Err(AccountError::Refused(why) | AccountError::NotFound(why)) => Err(why),
                Err(_) => return Err(LnurlAuthError::Store),
            },
        };
        waiting.body.refusal = outcome.clone().err();
        waiting.body.settled = true;
        let settled = super::encode(&waiting).map_err(store)?;
        // Only this callback holds the claim, and the page takes the record only once it is
        // settled: nothing else can have changed it.
        self.swap(RecordKind::Challenge, &k1_key, Some(claimed), Some(settled))
            .await
            .map_err(store)?;
        outcome.map_err(LnurlAuthError::Refused)
    }

    /// What the page that showed `k1` learns: still waiting, or the outcome (taken once).
    pub async fn lnurl_auth_wait(
        &self,
        k1: &str,
        browser_secret: &str,
        agent: &str,
    ) -> Result<LoginWait, AccountError> {
        if k1.len() != 64 {
            return Ok(LoginWait::Gone);
        }
        let key = challenge_key(k1);
        let Some(read) = self
            .read::<Stored<Waiting>>(RecordKind::Challenge, &key)
            .await?
        else {
            return Ok(LoginWait::Gone);
        };
        let waiting = &read.value;
        // Someone else's browser (who saw the QR code) learns nothing.
        if waiting.body.browser != key_of(browser_secret) {
            return Ok(LoginWait::Gone);
        }
        if waiting.expires_at < self.now() {
            return Ok(LoginWait::Gone);
        }
        let Some(signed_by) = waiting
            .body
            .signed_by
            .clone()
            .filter(|_| waiting.body.settled)
        else {
            return Ok(LoginWait::Waiting);
        };
        if self.take_challenge::<Waiting>(&key).await?.is_none() {
            return Ok(LoginWait::Gone);
        }
        if let Some(why) = waiting.body.refusal.clone() {
            return Ok(LoginWait::Refused(why));
        }
        match &waiting.body.action {
            LoginAction::Link(_) => Ok(LoginWait::Linked),
            LoginAction::Login | LoginAction::Join { .. } => {
                let Some(account) = self.account_by_linking_key(&signed_by).await? else {
                    return Ok(LoginWait::Refused(
                        "That wallet is no longer linked here.".into(),
                    ));
                };
                let now = self.now();
                self.change_account(&account.name, |account| {
                    if let Some(wallet) = account.wallets.iter_mut().find(|w| w.key == signed_by) {
                        wallet.last_used_at = Some(now);
                    }
                    Ok(())
                })
                .await?;
                Ok(LoginWait::SignedIn(
                    self.start_session(&account.name, agent).await?,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::SecretKey;

    fn signed(k1: &[u8; 32], secret: &SecretKey) -> (String, String) {
        let sig = SECP256K1.sign_ecdsa(&Message::from_digest(*k1), secret);
        let key = PublicKey::from_secret_key(SECP256K1, secret);
        (
            hex::encode(sig.serialize_der()),
            hex::encode(key.serialize()),
        )
    }

    #[test]
    fn a_signature_over_k1_by_a_compressed_key_verifies() {
        let k1 = [7u8; 32];
        let secret = SecretKey::from_slice(&[3u8; 32]).unwrap();
        let (sig, key) = signed(&k1, &secret);
        assert_eq!(verify(&hex::encode(k1), &sig, &key), Ok(()));
        // Over another k1, by another key, uncompressed, or not DER: refused.
        assert!(verify(&hex::encode([8u8; 32]), &sig, &key).is_err());
        let other =
            PublicKey::from_secret_key(SECP256K1, &SecretKey::from_slice(&[4u8; 32]).unwrap());
        assert!(verify(&hex::encode(k1), &sig, &hex::encode(other.serialize())).is_err());
        let full = PublicKey::from_secret_key(SECP256K1, &secret).serialize_uncompressed();
        assert!(verify(&hex::encode(k1), &sig, &hex::encode(full)).is_err());
        let compact = SECP256K1
            .sign_ecdsa(&Message::from_digest(k1), &secret)
            .serialize_compact();
        assert!(verify(&hex::encode(k1), &hex::encode(compact), &key).is_err());
        assert!(verify("zz", &sig, &key).is_err());
    }

    #[tokio::test]
    async fn two_wallets_racing_one_k1_cannot_both_act() {
        use crate::config::Settings;
        use crate::services::{Overrides, Services};
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults();
        settings.data_dir = dir.path().to_path_buf();
        let services = Services::open(settings, Overrides::default())
            .await
            .unwrap();
        let (accounts, operator) = (&services.accounts, &services.operator);
        let alice = Username::parse("alice").unwrap();
        operator
            .add_user(alice.clone(), Default::default())
            .await
            .unwrap();
        accounts
            .create_account(super::super::Account {
                name: alice.clone(),
                handle: "00".repeat(16),
                created_at: 1,
                passkeys: Vec::new(),
                wallets: Vec::new(),
            })
            .await
            .unwrap();
        let url = services.directory.public_url().clone();
        let auth = accounts
            .start_lnurl_auth(LoginAction::Link(alice.clone()), &url, None)
            .await
            .unwrap();
        let k1: [u8; 32] = hex::decode(&auth.k1).unwrap().try_into().unwrap();
        let (one, two) = (
            signed(&k1, &SecretKey::from_slice(&[5u8; 32]).unwrap()),
            signed(&k1, &SecretKey::from_slice(&[6u8; 32]).unwrap()),
        );
        let (first, second) = tokio::join!(
            accounts.lnurl_auth_callback(operator, &auth.k1, &one.0, &one.1),
            accounts.lnurl_auth_callback(operator, &auth.k1, &two.0, &two.1),
        );
        assert_eq!(
            [first.is_ok(), second.is_ok()]
                .iter()
                .filter(|ok| **ok)
                .count(),
            1,
            "{first:?} {second:?}"
        );
        let account = accounts.account(&alice).await.unwrap().unwrap();
        assert_eq!(account.wallets.len(), 1, "one link for one k1");
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_refused_without_a_panic(k1 in ".{0,80}", sig in ".{0,160}", key in ".{0,80}") {
            let _ = verify(&k1, &sig, &key);
        }

        #[test]
        fn any_bytes_as_hex_are_refused_without_a_panic(sig in proptest::collection::vec(proptest::num::u8::ANY, 0..80), key in proptest::collection::vec(proptest::num::u8::ANY, 33..=33)) {
            let _ = verify(&hex::encode([1u8; 32]), &hex::encode(sig), &hex::encode(key));
        }
    }
}
