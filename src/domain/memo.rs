//! The description a memo invoice carries in its `d` field.

use std::fmt;

use serde::{Deserialize, Serialize};

/// BOLT11 caps the `d` field at 639 bytes.
pub const MAX_MEMO_BYTES: usize = 639;

/// A memo fit for a BOLT11 `d` field: at most 639 bytes, no control characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Memo(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoError {
    #[error("control characters are not allowed")]
    ControlCharacters,
    #[error("at most {MAX_MEMO_BYTES} bytes (the BOLT11 limit)")]
    TooLong,
}

impl Memo {
    /// Exactly `text`, or why it cannot be a memo (an app's description).
    pub fn parse(text: &str) -> Result<Self, MemoError> {
        if text.chars().any(char::is_control) {
            return Err(MemoError::ControlCharacters);
        }
        if text.len() > MAX_MEMO_BYTES {
            return Err(MemoError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    /// `text` made fit: control characters dropped, cut at a character boundary (a user's
    /// description, for backends that take no description hash).
    pub fn fitted(text: &str) -> Self {
        let mut memo: String = text.chars().filter(|c| !c.is_control()).collect();
        if memo.len() > MAX_MEMO_BYTES {
            let mut cut = MAX_MEMO_BYTES;
            while !memo.is_char_boundary(cut) {
                cut -= 1;
            }
            memo.truncate(cut);
        }
        Self(memo)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memo({:?})", self.0)
    }
}

impl fmt::Display for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memos_fit_in_bolt11() {
        assert_eq!(Memo::fitted(&"é".repeat(400)).as_str().len(), 638);
        assert_eq!(Memo::fitted("a\u{7}b").as_str(), "ab");
        assert_eq!(Memo::parse("a\u{7}b"), Err(MemoError::ControlCharacters));
        assert_eq!(Memo::parse(&"a".repeat(640)), Err(MemoError::TooLong));
        assert!(Memo::parse(&"a".repeat(639)).is_ok());
    }

    proptest! {
        #[test]
        fn a_fitted_memo_is_always_a_valid_one(text in "\\PC{0,400}|\\p{C}{0,10}") {
            let memo = Memo::fitted(&text);
            prop_assert_eq!(Memo::parse(memo.as_str()), Ok(memo.clone()));
        }
    }
}
