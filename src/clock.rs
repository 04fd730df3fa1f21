//! Time and randomness come in through here, so tests can pin them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin_hashes::{hmac, sha256, Hash, HashEngine};

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

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // getrandom only fails where the OS has no entropy source at all; refusing to run is right.
    getrandom::getrandom(&mut bytes).expect("the operating system has no random number generator");
    bytes
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(data);
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// Compares two secrets without leaking, through timing, how much of them matched. Hashing
/// first makes the comparison fixed-length whatever the inputs' lengths.
pub fn secrets_match(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (sha256::Hash::hash(a), sha256::Hash::hash(b));
    bitcoin_hashes::cmp::fixed_time_eq(a.as_byte_array(), b.as_byte_array())
}
