use super::{Hash32, PayerData, User};

/// The LUD-06 metadata string of a user, and its hash. Built deterministically from the user
/// record, so the string served by the well-known endpoint and the one the callback hashes are
/// the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    json: String,
    hash: Hash32,
}

impl Metadata {
    /// `domain` is the host (and port) of the public URL: the part after `@` in the address.
    pub fn for_user(user: &User, domain: &str) -> Self {
        let identifier = format!("{}@{}", user.name, domain);
        let mut entries: Vec<[&str; 2]> = vec![
            ["text/plain", &user.description],
            ["text/identifier", &identifier],
        ];
        if let Some(long) = &user.long_description {
            entries.push(["text/long-desc", long]);
        }
        let image_type;
        if let Some(image) = &user.image {
            image_type = format!("{};base64", image.mime);
            entries.push([&image_type, &image.base64]);
        }
        // Serialising string pairs cannot fail.
        let json = serde_json::to_string(&entries).unwrap_or_default();
        let hash = Hash32::sha256(json.as_bytes());
        Self { json, hash }
    }

    /// Wraps a stored metadata string (for example one an old invoice committed to).
    pub fn from_stored(json: String) -> Self {
        let hash = Hash32::sha256(json.as_bytes());
        Self { json, hash }
    }

    pub fn as_str(&self) -> &str {
        &self.json
    }

    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    /// LUD-18: with payer data, the invoice commits to `sha256(metadata + payerdata)`.
    pub fn hash_with(&self, payer_data: &PayerData) -> Hash32 {
        let mut bytes = Vec::with_capacity(self.json.len() + payer_data.as_str().len());
        bytes.extend_from_slice(self.json.as_bytes());
        bytes.extend_from_slice(payer_data.as_str().as_bytes());
        Hash32::sha256(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_lud06_example_hash() {
        let m = Metadata::from_stored(r#"[["text/plain", "lorem ipsum blah blah"]]"#.to_owned());
        assert_eq!(
            m.hash().to_hex(),
            "f7d6f565d86b0065d2d2af771106de4f8477f1f14b4cca4c009c0d53bb9be25f"
        );
    }
}
