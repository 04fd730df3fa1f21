//! How many messages rayo sends: per person, so a storm of tiny payments becomes a digest
//! rather than a flood; and per channel kind across everyone, so rayo stays within what mail
//! servers, ntfy.sh and Telegram take from one sender. Counted per instance.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::Username;

pub struct Limits {
    person: DefaultKeyedRateLimiter<Username>,
    email: DefaultDirectRateLimiter,
    ntfy: DefaultDirectRateLimiter,
    telegram: DefaultDirectRateLimiter,
    nostr: DefaultDirectRateLimiter,
}

fn quota(per: Duration, burst: u32) -> Quota {
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limits {
    /// `hourly` messages per person per hour, after a burst of as many.
    pub fn new(hourly: u32) -> Self {
        let hourly = hourly.max(1);
        Self {
            person: RateLimiter::keyed(quota(Duration::from_secs(3600) / hourly, hourly)),
            // A mail relay's usual allowance for one sender.
            email: RateLimiter::direct(quota(Duration::from_secs(1), 30)),
            // ntfy.sh: a burst of 60, then one per 5 seconds, per sending address.
            ntfy: RateLimiter::direct(quota(Duration::from_secs(5), 60)),
            // Telegram: about 30 messages a second across chats.
            telegram: RateLimiter::direct(quota(Duration::from_millis(40), 25)),
            nostr: RateLimiter::direct(quota(Duration::from_millis(100), 50)),
        }
    }

    pub fn person_allows(&self, user: &Username) -> bool {
        let allowed = self.person.check_key(user).is_ok();
        if self.person.len() > 100_000 {
            self.person.retain_recent();
        }
        allowed
    }

    /// How long to wait before a message of `kind` may go, if it may not now.
    pub fn shared_wait(&self, kind: &str) -> Option<Duration> {
        let limiter = match kind {
            "email" => &self.email,
            "ntfy" => &self.ntfy,
            "telegram" => &self.telegram,
            _ => &self.nostr,
        };
        limiter.check().err().map(|not_until| {
            not_until
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .max(Duration::from_secs(1))
        })
    }
}
