//! Why a wallet's request was refused, in words a person understands. How it goes on the wire
//! (`{"status":"ERROR","reason"}` with HTTP 200) is the routes' business.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LnurlError {
    pub reason: String,
}

impl LnurlError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LnurlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for LnurlError {}
