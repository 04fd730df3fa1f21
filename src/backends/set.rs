use std::collections::BTreeMap;

use crate::backends::AnyBackend;
use crate::config::ConfigError;
use crate::domain::BackendName;

/// The configured backends by name, and which one serves users who do not name one.
#[derive(Clone)]
pub struct Backends {
    default: BackendName,
    by_name: BTreeMap<BackendName, AnyBackend>,
}

impl Backends {
    pub fn new(
        default: BackendName,
        by_name: BTreeMap<BackendName, AnyBackend>,
    ) -> Result<Self, ConfigError> {
        if by_name.contains_key(&BackendName::user_wallet()) {
            return Err(ConfigError::new(
                "backends",
                "'user-wallet' names users' own wallets (user add --nwc): call the backend something else",
            ));
        }
        if !by_name.contains_key(&default) {
            return Err(ConfigError::new(
                "default_backend",
                format!("the default backend '{default}' is not configured"),
            ));
        }
        Ok(Self { default, by_name })
    }

    /// The backend called `name`, or the default one; with the name it goes by.
    pub fn get(&self, name: Option<&BackendName>) -> Option<(&BackendName, &AnyBackend)> {
        self.by_name.get_key_value(name.unwrap_or(&self.default))
    }

    pub fn default_backend(&self) -> (&BackendName, &AnyBackend) {
        self.get(None)
            .unwrap_or_else(|| unreachable!("checked in new"))
    }

    pub fn contains(&self, name: &BackendName) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &BackendName> {
        self.by_name.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&BackendName, &AnyBackend)> {
        self.by_name.iter()
    }
}
