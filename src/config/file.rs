//! `rayo.toml`: named backends beyond the one the flags describe. Secrets may stay out of the
//! file: `RAYO_BACKEND_<NAME>_<FIELD>` (name uppercased, `-` as `_`) overrides any field.
//!
//! ```toml
//! default_backend = "node"
//!
//! [backends.node]
//! kind = "lnd"
//! url = "https://127.0.0.1:8080/"
//! macaroon_file = "/var/lib/lnd/invoice.macaroon"
//! tls_cert = "/var/lib/lnd/tls.cert"
//!
//! [backends.exchange]
//! kind = "buda"
//! api_key = "..."          # api_secret from RAYO_BACKEND_EXCHANGE_API_SECRET
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::{BackendKind, BackendSettings, ConfigError, Network};
use crate::domain::{BackendName, Secret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub default_backend: Option<BackendName>,
    #[serde(default)]
    pub backends: BTreeMap<BackendName, BackendSection>,
}

/// One backend's settings; which fields matter depends on `kind`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    pub kind: Option<BackendKind>,
    pub url: Option<String>,
    pub network: Option<Network>,
    pub invoice_key: Option<String>,
    pub rune: Option<String>,
    pub macaroon: Option<String>,
    pub macaroon_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub private_routes: Option<bool>,
    pub password: Option<String>,
    pub webhook_secret: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    /// NWC: the wallet's connection URI.
    pub uri: Option<String>,
}

/// Reads `path`; a missing file is no configuration.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let setting = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::new(setting, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(ConfigError::new(setting, e)),
    }
}

impl ConfigFile {
    /// The named backends' settings, with `env` (a variable lookup) applied over the file.
    pub fn backends(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(BackendName, BackendSettings)>, ConfigError> {
        self.backends
            .iter()
            .map(|(name, section)| Ok((name.clone(), section.settings(name, env)?)))
            .collect()
    }
}

impl BackendSection {
    fn settings(
        &self,
        name: &BackendName,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BackendSettings, ConfigError> {
        let prefix = format!(
            "RAYO_BACKEND_{}_",
            name.as_str().to_uppercase().replace('-', "_")
        );
        let setting = format!("backend '{name}'");
        let field = |key: &str, from_file: &Option<String>| {
            env(&format!("{prefix}{key}")).or_else(|| from_file.clone())
        };
        let secret = |key: &str, from_file: &Option<String>| field(key, from_file).map(Secret::new);
        let kind = self
            .kind
            .ok_or_else(|| ConfigError::new(&setting, "`kind` is missing"))?;
        let url = field("URL", &self.url)
            .map(|u| Url::parse(&u).map_err(|e| ConfigError::new(&setting, format!("url: {e}"))))
            .transpose()?;
        let mut settings = BackendSettings {
            kind,
            network: self.network,
            ..BackendSettings::default()
        };
        match kind {
            BackendKind::Dev => {}
            BackendKind::Lnbits => {
                settings.lnbits_url = url;
                settings.lnbits_invoice_key = secret("INVOICE_KEY", &self.invoice_key);
            }
            BackendKind::Cln => {
                settings.cln_url = url;
                settings.cln_rune = secret("RUNE", &self.rune);
                settings.cln_tls_cert = self.tls_cert.clone();
            }
            BackendKind::Lnd => {
                settings.lnd_url = url;
                settings.lnd_macaroon = secret("MACAROON", &self.macaroon);
                settings.lnd_macaroon_file = self.macaroon_file.clone();
                settings.lnd_tls_cert = self.tls_cert.clone();
                settings.lnd_private_routes = self.private_routes.unwrap_or(false);
            }
            BackendKind::Phoenixd => {
                settings.phoenixd_url = url.unwrap_or(settings.phoenixd_url);
                settings.phoenixd_password = secret("PASSWORD", &self.password);
                settings.phoenixd_webhook_secret = secret("WEBHOOK_SECRET", &self.webhook_secret);
            }
            BackendKind::Nwc => {
                settings.nwc_uri = secret("URI", &self.uri);
            }
            BackendKind::Buda => {
                settings.buda_url = url.unwrap_or(settings.buda_url);
                settings.buda_api_key = secret("API_KEY", &self.api_key);
                settings.buda_api_secret = secret("API_SECRET", &self.api_secret);
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_named_backends_and_takes_secrets_from_the_environment() {
        let file: ConfigFile = toml::from_str(
            r#"
            default_backend = "exchange"
            [backends.exchange]
            kind = "buda"
            api_key = "from-file"
            [backends.my-node]
            kind = "cln"
            url = "https://127.0.0.1:3010/"
            rune = "file-rune"
            "#,
        )
        .unwrap();
        let env = |key: &str| match key {
            "RAYO_BACKEND_EXCHANGE_API_SECRET" => Some("from-env".to_owned()),
            "RAYO_BACKEND_MY_NODE_RUNE" => Some("env-rune".to_owned()),
            _ => None,
        };
        let backends = file.backends(&env).unwrap();
        let exchange = &backends
            .iter()
            .find(|(n, _)| n.as_str() == "exchange")
            .unwrap()
            .1;
        assert_eq!(
            exchange.buda_api_key.as_ref().unwrap().expose(),
            "from-file"
        );
        assert_eq!(
            exchange.buda_api_secret.as_ref().unwrap().expose(),
            "from-env"
        );
        let node = &backends
            .iter()
            .find(|(n, _)| n.as_str() == "my-node")
            .unwrap()
            .1;
        assert_eq!(
            node.cln_rune.as_ref().unwrap().expose(),
            "env-rune",
            "the environment wins"
        );
        assert_eq!(file.default_backend.unwrap().as_str(), "exchange");
    }

    #[test]
    fn refuses_unknown_fields_and_missing_kinds() {
        assert!(
            toml::from_str::<ConfigFile>("[backends.x]\nkind = \"lnd\"\ncolour = \"red\"").is_err()
        );
        let file: ConfigFile = toml::from_str("[backends.x]\nurl = \"https://x/\"").unwrap();
        assert!(file
            .backends(&|_| None)
            .unwrap_err()
            .to_string()
            .contains("`kind` is missing"));
    }
}
