//! Links in messages that act without a sign-in: confirming an email address, and turning a
//! channel off (RFC 8058 one-click unsubscribe). Each carries a MAC over exactly what it does,
//! under a key only the server holds, so nobody can make one for someone else.

use crate::crypto::hmac_sha256;
use crate::domain::Username;

/// How long a confirmation link works.
pub const CONFIRM_VALID_SECS: u64 = 24 * 3600;
pub const CONFIRM_VALID_FOR_WORDS: &str = "24 hours";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("This link is not valid: it may have been cut short when it was copied.")]
    Forged,
    #[error("This link has expired. Ask for a new one from your account page.")]
    Expired,
}

#[derive(Clone)]
pub struct Links {
    key: [u8; 32],
}

fn tag(mac: [u8; 32]) -> String {
    hex::encode(&mac[..16])
}

fn query(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Links {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, parts: &[&str]) -> String {
        tag(hmac_sha256(&self.key, parts.join("\0").as_bytes()))
    }

    fn matches(&self, parts: &[&str], given: &str) -> bool {
        // Compared in constant time: the tag is a secret until it is right.
        crate::crypto::secrets_match(self.mac(parts).as_bytes(), given.as_bytes())
    }

    pub fn confirm_url(&self, base: &str, user: &Username, address: &str, now: u64) -> String {
        let until = (now + CONFIRM_VALID_SECS).to_string();
        let t = self.mac(&["confirm", user.as_str(), address, &until]);
        format!(
            "{base}/notify/confirm?u={}&a={}&x={until}&t={t}",
            query(user.as_str()),
            query(address)
        )
    }

    pub fn check_confirm(
        &self,
        user: &Username,
        address: &str,
        until: u64,
        t: &str,
        now: u64,
    ) -> Result<(), LinkError> {
        if !self.matches(&["confirm", user.as_str(), address, &until.to_string()], t) {
            return Err(LinkError::Forged);
        }
        if now > until {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    pub fn unsubscribe_url(&self, base: &str, user: &Username, channel: &str) -> String {
        let t = self.mac(&["unsubscribe", user.as_str(), channel]);
        format!(
            "{base}/notify/unsubscribe?u={}&c={}&t={t}",
            query(user.as_str()),
            query(channel)
        )
    }

    pub fn check_unsubscribe(
        &self,
        user: &Username,
        channel: &str,
        t: &str,
    ) -> Result<(), LinkError> {
        if self.matches(&["unsubscribe", user.as_str(), channel], t) {
            Ok(())
        } else {
            Err(LinkError::Forged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_work_only_for_what_they_were_made_for() {
        let links = Links::new([7; 32]);
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let url = links.confirm_url("https://x.example", &alice, "a@b.example", 100);
        let t = url.rsplit("t=").next().unwrap();
        assert!(links
            .check_confirm(&alice, "a@b.example", 100 + CONFIRM_VALID_SECS, t, 200)
            .is_ok());
        assert_eq!(
            links.check_confirm(&bob, "a@b.example", 100 + CONFIRM_VALID_SECS, t, 200),
            Err(LinkError::Forged)
        );
        assert_eq!(
            links.check_confirm(&alice, "c@b.example", 100 + CONFIRM_VALID_SECS, t, 200),
            Err(LinkError::Forged)
        );
        assert_eq!(
            links.check_confirm(
                &alice,
                "a@b.example",
                100 + CONFIRM_VALID_SECS,
                t,
                200 + CONFIRM_VALID_SECS
            ),
            Err(LinkError::Expired)
        );
        let off = links.unsubscribe_url("https://x.example", &alice, "email:a@b.example");
        let t = off.rsplit("t=").next().unwrap();
        assert!(links
            .check_unsubscribe(&alice, "email:a@b.example", t)
            .is_ok());
        assert!(links
            .check_unsubscribe(&alice, "email:c@b.example", t)
            .is_err());
        assert!(links
            .check_unsubscribe(&alice, "email:a@b.example", "00")
            .is_err());
    }
}
