//! What an invoice describes, carried as one value from the request that asks for it to the
//! record that remembers it.

use std::borrow::Cow;
use std::sync::Arc;

use crate::backends::InvoiceDescription;
use crate::domain::{DescriptionSource, Hash32, Memo, Metadata, PayerData};

#[derive(Debug, Clone)]
pub enum Description {
    /// `h = sha256(metadata)`: a plain LUD-06 payment.
    Metadata(Arc<Metadata>),
    /// `h = sha256(metadata + payer data)` (LUD-18), payer data exactly as received.
    MetadataAndPayerData {
        metadata: Arc<Metadata>,
        payer_data: PayerData,
    },
    /// No hash: the invoice carries a memo in its `d` field (backends that cannot commit to a
    /// hash, and the invoice API).
    Memo(Memo),
    /// `h = sha256(request)`: a NIP-57 zap request, exactly as received.
    ZapRequest(String),
}

impl Description {
    /// A memo invoice: `memo` if one was asked for, else the user's own description, fitted
    /// to what a BOLT11 `d` field holds.
    pub fn memo_or_description(memo: Option<Memo>, user: &crate::domain::User) -> Self {
        Self::Memo(memo.unwrap_or_else(|| Memo::fitted(&user.description)))
    }

    /// The description hash the invoice must commit to; `None` for a memo invoice.
    pub fn hash(&self) -> Option<Hash32> {
        match self {
            Self::Metadata(metadata) => Some(metadata.hash()),
            Self::MetadataAndPayerData {
                metadata,
                payer_data,
            } => Some(metadata.hash_with(payer_data)),
            Self::Memo(_) => None,
            Self::ZapRequest(request) => Some(Hash32::sha256(request.as_bytes())),
        }
    }

    /// What the backend is asked for: the hash with the exact text behind it (some nodes hash
    /// the text themselves), or the memo.
    pub fn for_backend(&self) -> InvoiceDescription<'_> {
        let text = match self {
            Self::Memo(memo) => return InvoiceDescription::Memo(Cow::Borrowed(memo.as_str())),
            Self::Metadata(metadata) => Cow::Borrowed(metadata.as_str()),
            Self::MetadataAndPayerData {
                metadata,
                payer_data,
            } => Cow::Owned(format!("{}{}", metadata.as_str(), payer_data.as_str())),
            Self::ZapRequest(request) => Cow::Borrowed(request.as_str()),
        };
        InvoiceDescription::Hash {
            hash: self.hash().unwrap_or(Hash32([0; 32])),
            text,
        }
    }

    /// The memo a memo invoice must carry.
    pub fn memo(&self) -> Option<&Memo> {
        match self {
            Self::Memo(memo) => Some(memo),
            _ => None,
        }
    }

    /// What the record keeps: enough to show (and re-derive) what was hashed. The metadata
    /// string itself is stored once, by its hash, with the user.
    pub fn into_source(self) -> DescriptionSource {
        match self {
            Self::Metadata(metadata) => DescriptionSource::Metadata {
                metadata_hash: metadata.hash(),
            },
            Self::MetadataAndPayerData {
                metadata,
                payer_data,
            } => DescriptionSource::MetadataAndPayerData {
                metadata_hash: metadata.hash(),
                payer_data: payer_data.into_string(),
            },
            Self::Memo(memo) => DescriptionSource::Memo { memo },
            Self::ZapRequest(request) => DescriptionSource::ZapRequest { request },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PayerDataSpec;

    #[test]
    fn each_description_commits_to_the_exact_bytes_it_hands_the_backend() {
        let metadata = Arc::new(Metadata::from_stored(
            r#"[["text/plain", "lorem ipsum blah blah"]]"#.to_owned(),
        ));
        let payer_data = PayerData::parse(r#"{"name":"Ann"}"#, &PayerDataSpec::default()).unwrap();
        for description in [
            Description::Metadata(metadata.clone()),
            Description::MetadataAndPayerData {
                metadata,
                payer_data,
            },
            Description::ZapRequest(r#"{"kind":9734}"#.to_owned()),
        ] {
            let InvoiceDescription::Hash { hash, text } = description.for_backend() else {
                panic!("a hash description");
            };
            assert_eq!(Some(hash), description.hash());
            assert_eq!(hash, Hash32::sha256(text.as_bytes()));
        }
        let memo = Description::Memo(Memo::fitted("Tips"));
        assert_eq!(memo.hash(), None);
        assert!(matches!(memo.for_backend(), InvoiceDescription::Memo(m) if m == "Tips"));
    }
}
