//! Exponential backoff with jitter, for reconnecting watchers and retried deliveries: each
//! delay is drawn from the upper half of a window that doubles after every failure, so those
//! that fail together do not retry in lockstep.

use std::time::Duration;

use crate::clock::Random;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            first,
            cap,
            failures: 0,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn next_delay(&mut self, random: &dyn Random) -> Duration {
        let delay = delay_after(self.first, self.cap, self.failures, random);
        self.failures = self.failures.saturating_add(1);
        delay
    }
}

/// The delay before attempt `failures + 1`: half of the window fixed, half random.
pub fn delay_after(first: Duration, cap: Duration, failures: u32, random: &dyn Random) -> Duration {
    let window = first
        .saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX))
        .min(cap);
    let half = window / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random.below(jitter_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    #[test]
    fn delays_grow_and_stay_within_their_window_and_the_cap() {
        let (first, cap) = (Duration::from_secs(1), Duration::from_secs(60));
        for failures in 0..40 {
            let window = (first * 2u32.saturating_pow(failures.min(20))).min(cap);
            let delay = delay_after(first, cap, failures, &OsRandom);
            assert!(
                delay >= window / 2 && delay <= window,
                "{failures}: {delay:?}"
            );
        }
    }
}
