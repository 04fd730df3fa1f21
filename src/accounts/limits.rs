//! Sign-in and sign-up attempts, limited per client and per account, so a flood of guesses
//! costs the flooder, not the server or the person being guessed at. Kept per instance: behind
//! a balancer of N instances a client gets at most N times the rate.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::limits::ClientKey;

pub struct SignInLimits {
    per_client: DefaultKeyedRateLimiter<ClientKey>,
    per_account: DefaultKeyedRateLimiter<String>,
    signups: DefaultKeyedRateLimiter<ClientKey>,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl Default for SignInLimits {
    /// A person signing in, linking a wallet and adding a passkey in a few minutes stays well
    /// inside these; a script guessing does not.
    fn default() -> Self {
        Self::new(60, 10, 5)
    }
}

impl SignInLimits {
    /// Attempts per minute: from one client, at one account; sign-ups from one client per hour.
    pub fn new(per_client: u32, per_account: u32, signups_per_hour: u32) -> Self {
        let hourly = NonZeroU32::new(signups_per_hour).unwrap_or(NonZeroU32::MIN);
        Self {
            per_client: RateLimiter::keyed(quota(per_client, per_client / 2)),
            per_account: RateLimiter::keyed(quota(per_account, per_account / 2 + 1)),
            signups: RateLimiter::keyed(Quota::per_hour(hourly).allow_burst(hourly)),
        }
    }

    /// Whether `client` may try to sign in (or start a ceremony) now.
    pub fn allow_client(&self, client: Option<ClientKey>) -> bool {
        client.is_none_or(|c| self.per_client.check_key(&c).is_ok())
    }

    /// Whether anyone may try to sign in to `account` now.
    pub fn allow_account(&self, account: &str) -> bool {
        self.per_account.check_key(&account.to_owned()).is_ok()
    }

    /// Whether `client` may claim one more name by open sign-up.
    pub fn allow_signup(&self, client: Option<ClientKey>) -> bool {
        client.is_none_or(|c| self.signups.check_key(&c).is_ok())
    }

    pub fn forget_idle(&self) {
        self.per_client.retain_recent();
        self.per_account.retain_recent();
        self.signups.retain_recent();
    }
}
