//! Time and randomness come in through here, as small traits, so tests can pin them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;

    fn unix(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stays where a test puts it.
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A clock that moves only when a test moves it, in whole seconds.
pub struct HandClock(AtomicU64);

impl HandClock {
    pub fn at(unix: u64) -> Self {
        Self(AtomicU64::new(unix))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for HandClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// Where secrets, keys, ids and jitter come from.
pub trait Random: Send + Sync + 'static {
    fn fill(&self, bytes: &mut [u8]);

    fn bytes32(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        self.fill(&mut bytes);
        bytes
    }

    /// A number below `n` (for jitter: not uniform to the last bit, and need not be).
    fn below(&self, n: u64) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes) % n.max(1)
    }
}

/// The operating system's CSPRNG.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, bytes: &mut [u8]) {
        // getrandom fails only where the OS has no entropy source at all; refusing to run is
        // right then.
        getrandom::getrandom(bytes).expect("the operating system has no random number generator");
    }
}

/// Counts up from a seed: every run of a test gets the same "random" bytes.
pub struct CountingRandom(AtomicU64);

impl CountingRandom {
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }
}

impl Random for CountingRandom {
    fn fill(&self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let next = self.0.fetch_add(1, Ordering::SeqCst).to_le_bytes();
            chunk.copy_from_slice(&next[..chunk.len()]);
        }
    }
}

/// A time as people read it on a page or in a message: `2026-12-07 13:45 UTC`.
pub fn when(at: u64) -> String {
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(at),
    )
    .to_string();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}
