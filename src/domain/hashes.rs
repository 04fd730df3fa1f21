use std::fmt;
use std::str::FromStr;

use bitcoin_hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};

/// A 32-byte value shown as lowercase hex: payment hashes, description hashes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub fn sha256(data: &[u8]) -> Self {
        Self(sha256::Hash::hash(data).to_byte_array())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Hash32 {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

impl TryFrom<String> for Hash32 {
    type Error = hex::FromHexError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Hash32> for String {
    fn from(value: Hash32) -> Self {
        value.to_hex()
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

/// A payment preimage: whoever shows it proves the invoice with hash `sha256(preimage)` was paid.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Preimage(pub Hash32);

impl Preimage {
    pub fn payment_hash(&self) -> Hash32 {
        Hash32::sha256(&self.0 .0)
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Preimage({})", self.0)
    }
}
