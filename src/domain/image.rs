use base64::Engine;
use serde::{Deserialize, Serialize};

use super::UserError;

/// Largest image accepted for the metadata (raw bytes): every payRequest carries it.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `image/png` or `image/jpeg`
    pub mime: String,
    pub base64: String,
}

impl Image {
    /// Recognises PNG and JPEG by their magic bytes; anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, UserError> {
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(UserError::Invalid(format!(
                "image: {} bytes, at most {MAX_IMAGE_BYTES}",
                bytes.len()
            )));
        }
        let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            "image/jpeg"
        } else {
            return Err(UserError::Invalid(
                "image: only PNG and JPEG are supported".into(),
            ));
        };
        Ok(Self {
            mime: mime.into(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    pub(super) fn check(&self) -> Result<(), UserError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .map_err(|_| UserError::Invalid("image: not valid base64".into()))?;
        let parsed = Self::from_bytes(&bytes)?;
        if parsed.mime != self.mime {
            return Err(UserError::Invalid(format!(
                "image: the data is {}, not {}",
                parsed.mime, self.mime
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_magic_bytes() {
        assert_eq!(
            Image::from_bytes(b"\x89PNG\r\n\x1a\n....").unwrap().mime,
            "image/png"
        );
        assert!(Image::from_bytes(b"GIF89a").is_err());
        assert!(Image::from_bytes(&vec![0xff; MAX_IMAGE_BYTES + 1]).is_err());
    }
}
