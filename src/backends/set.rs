use std::collections::BTreeMap;
use std::sync::Arc;

use super::InvoiceBackend;

/// The configured backends by name, and which one serves users who do not name one.
#[derive(Clone)]
pub struct Backends {
    default: String,
    by_name: BTreeMap<String, Arc<dyn InvoiceBackend>>,
}

impl Backends {
    pub fn new(
        default: String,
        by_name: BTreeMap<String, Arc<dyn InvoiceBackend>>,
    ) -> Result<Self, String> {
        if !by_name.contains_key(&default) {
            return Err(format!("the default backend '{default}' is not configured"));
        }
        Ok(Self { default, by_name })
    }

    pub fn single(name: &str, backend: Arc<dyn InvoiceBackend>) -> Self {
        Self {
            default: name.to_owned(),
            by_name: BTreeMap::from([(name.to_owned(), backend)]),
        }
    }

    /// The backend called `name`, or the default one; with the name it goes by.
    pub fn get(&self, name: Option<&str>) -> Option<(&str, &Arc<dyn InvoiceBackend>)> {
        let name = name.unwrap_or(&self.default);
        self.by_name
            .get_key_value(name)
            .map(|(n, b)| (n.as_str(), b))
    }

    pub fn default_backend(&self) -> (&str, &Arc<dyn InvoiceBackend>) {
        self.get(None)
            .unwrap_or_else(|| unreachable!("checked in new"))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn InvoiceBackend>)> {
        self.by_name.iter().map(|(n, b)| (n.as_str(), b))
    }
}
