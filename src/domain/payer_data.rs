use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::ValidateEmail;

/// Upper bound on the `payerdata` JSON a wallet may send (LUD-18 fields are short strings).
pub const MAX_PAYER_DATA_BYTES: usize = 2048;

/// The LUD-18 fields rayo can ask for. `auth` needs an LNURL-auth round trip and is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayerDataField {
    Name,
    Pubkey,
    Identifier,
    Email,
}

impl PayerDataField {
    pub const ALL: [Self; 4] = [Self::Name, Self::Pubkey, Self::Identifier, Self::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Pubkey => "pubkey",
            Self::Identifier => "identifier",
            Self::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }
}

impl fmt::Display for PayerDataField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRule {
    pub mandatory: bool,
}

/// What a recipient asks payers to share; serialises as LUD-18's `payerData` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PayerDataSpec(BTreeMap<PayerDataField, FieldRule>);

impl PayerDataSpec {
    /// Parses the CLI form `name,email:mandatory`.
    pub fn parse_list(raw: &str) -> Result<Self, String> {
        let mut spec = BTreeMap::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (field, mandatory) = match item.split_once(':') {
                None => (item, false),
                Some((field, "mandatory")) => (field, true),
                Some((field, "optional")) => (field, false),
                Some((_, other)) => {
                    return Err(format!("'{other}' is neither 'mandatory' nor 'optional'"))
                }
            };
            let field = PayerDataField::parse(field).ok_or_else(|| {
                format!("unknown payer data field '{field}' (use name, pubkey, identifier, email)")
            })?;
            spec.insert(field, FieldRule { mandatory });
        }
        Ok(Self(spec))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = (PayerDataField, bool)> + '_ {
        self.0.iter().map(|(f, r)| (*f, r.mandatory))
    }

    pub fn to_list(&self) -> String {
        self.fields()
            .map(|(f, m)| {
                if m {
                    format!("{f}:mandatory")
                } else {
                    f.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A payer's LUD-18 data, kept as the exact string received: the invoice commits to
/// `sha256(metadata + payerdata)` over these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerData {
    raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayerDataError {
    #[error("Payer data too large: at most {MAX_PAYER_DATA_BYTES} bytes")]
    TooLarge,
    #[error("Payer data is not valid JSON")]
    NotJson,
    #[error("Payer data must be a JSON object")]
    NotObject,
    #[error("Payer data is missing the mandatory field '{0}'")]
    MissingMandatory(PayerDataField),
    #[error("Payer data field '{0}' must be a non-empty string")]
    NotAString(PayerDataField),
    #[error("Payer data field 'email' is not an email address")]
    BadEmail,
    #[error("Payer data field 'pubkey' must be hex")]
    BadPubkey,
}

impl PayerData {
    /// Checks the wallet's `payerdata` against what the recipient asked for. Fields beyond the
    /// request are tolerated (the wallet already hashed them into its expectation); the known
    /// ones must have the right shape, and every mandatory one must be there.
    pub fn parse(raw: &str, spec: &PayerDataSpec) -> Result<Self, PayerDataError> {
        if raw.len() > MAX_PAYER_DATA_BYTES {
            return Err(PayerDataError::TooLarge);
        }
        let value: Value = serde_json::from_str(raw).map_err(|_| PayerDataError::NotJson)?;
        let object = value.as_object().ok_or(PayerDataError::NotObject)?;
        for field in PayerDataField::ALL {
            let Some(v) = object.get(field.as_str()) else {
                continue;
            };
            let text = v
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or(PayerDataError::NotAString(field))?;
            match field {
                PayerDataField::Email if !text.validate_email() => {
                    return Err(PayerDataError::BadEmail)
                }
                PayerDataField::Pubkey if hex::decode(text).is_err() => {
                    return Err(PayerDataError::BadPubkey)
                }
                _ => {}
            }
        }
        if let Some((missing, _)) = spec
            .fields()
            .find(|(field, mandatory)| *mandatory && !object.contains_key(field.as_str()))
        {
            return Err(PayerDataError::MissingMandatory(missing));
        }
        Ok(Self {
            raw: raw.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn into_string(self) -> String {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(list: &str) -> PayerDataSpec {
        PayerDataSpec::parse_list(list).unwrap()
    }

    #[test]
    fn serialises_as_lud18_payer_data() {
        let json = serde_json::to_string(&spec("name,email:mandatory")).unwrap();
        assert_eq!(
            json,
            r#"{"name":{"mandatory":false},"email":{"mandatory":true}}"#
        );
    }

    #[test]
    fn refuses_malformed_and_incomplete_data() {
        let s = spec("name,email:mandatory");
        assert_eq!(PayerData::parse("{", &s), Err(PayerDataError::NotJson));
        assert_eq!(PayerData::parse("[1]", &s), Err(PayerDataError::NotObject));
        assert_eq!(
            PayerData::parse(r#"{"name":"A"}"#, &s),
            Err(PayerDataError::MissingMandatory(PayerDataField::Email))
        );
        assert_eq!(
            PayerData::parse(r#"{"email":3}"#, &s),
            Err(PayerDataError::NotAString(PayerDataField::Email))
        );
        assert_eq!(
            PayerData::parse(r#"{"email":"nope"}"#, &s),
            Err(PayerDataError::BadEmail)
        );
        let ok = r#"{"name":"Alice","email":"alice@example.com"}"#;
        assert_eq!(PayerData::parse(ok, &s).unwrap().as_str(), ok);
    }

    #[test]
    fn parses_the_cli_list_form() {
        assert!(PayerDataSpec::parse_list("name,phone").is_err());
        assert!(PayerDataSpec::parse_list("name:sometimes").is_err());
        assert_eq!(
            spec("email:mandatory, name").to_list(),
            "name,email:mandatory"
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(raw in "\\PC{0,200}") {
            let _ = PayerData::parse(&raw, &spec("name:mandatory,email"));
        }
    }
}
