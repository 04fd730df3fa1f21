use serde::{Deserialize, Serialize};

/// The most a user may allow (LUD-12 leaves it open; wallets show comments in small boxes).
pub const MAX_COMMENT_ALLOWED: u16 = 2000;

/// A payer's LUD-12 comment, within the recipient's `commentAllowed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Comment(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    #[error("Comment too long: {len} characters, at most {allowed} allowed")]
    TooLong { len: usize, allowed: u16 },
    #[error("This address does not accept comments")]
    NotAllowed,
    #[error("Comment contains control characters")]
    ControlCharacters,
}

impl Comment {
    /// A comment as it was stored: it was checked against the allowance in force when it came.
    pub(crate) fn stored(text: String) -> Self {
        Self(text)
    }

    /// Parses the `comment` query value against `allowed` characters (Unicode scalar values,
    /// as LUD-12 counts them). An empty comment is no comment: Zeus always sends `comment=`.
    /// A non-empty comment to an address that allows none is refused, so that a payer is never
    /// left believing a message was delivered.
    pub fn parse(raw: &str, allowed: u16) -> Result<Option<Self>, CommentError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if allowed == 0 {
            return Err(CommentError::NotAllowed);
        }
        let len = raw.chars().count();
        if len > usize::from(allowed) {
            return Err(CommentError::TooLong { len, allowed });
        }
        if raw.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CommentError::ControlCharacters);
        }
        Ok(Some(Self(raw.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Comment::parse(&"é".repeat(10), 10).is_ok());
        assert!(Comment::parse(&"⚡".repeat(10), 10).is_ok());
        assert_eq!(
            Comment::parse(&"⚡".repeat(11), 10),
            Err(CommentError::TooLong {
                len: 11,
                allowed: 10
            })
        );
        assert!(Comment::parse(&"a".repeat(10), 10).is_ok());
        assert!(Comment::parse(&"a".repeat(11), 10).is_err());
    }

    #[test]
    fn empty_is_always_fine_and_nonempty_needs_permission() {
        assert_eq!(Comment::parse("", 0), Ok(None));
        assert_eq!(Comment::parse("hi", 0), Err(CommentError::NotAllowed));
    }

    proptest! {
        #[test]
        fn accepted_comments_fit(raw in "\\PC{0,40}", allowed in 0u16..30) {
            if let Ok(Some(c)) = Comment::parse(&raw, allowed) {
                prop_assert!(c.as_str().chars().count() <= usize::from(allowed));
                prop_assert_eq!(c.as_str(), raw.as_str());
            }
        }
    }
}
