//! TLS to the database, through rustls, with libpq's `sslmode` meanings: `disable`, `prefer`
//! and `require` (encrypted; the certificate is not checked, as libpq does), `verify-ca` (the
//! chain up to a trusted root) and `verify-full` (and the host name). Roots come from
//! `sslrootcert=<PEM file>`, else the system's bundle. tokio-postgres itself knows only the
//! first three modes and no `sslrootcert`, so both are taken out of the connection string here.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A connection string as tokio-postgres takes it, and how to check the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub config: String,
    pub mode: SslMode,
    pub root_cert: Option<String>,
    /// Through a Unix socket: never TLS (the peer is on the same machine), as with libpq.
    pub socket: bool,
}

fn invalid(what: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("database connection string: {what}"))
}

fn mode(value: &str) -> Result<SslMode, StoreError> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" | "allow" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => return Err(invalid(format!("unknown sslmode '{other}'"))),
    })
}

/// What tokio-postgres is told: it only needs to know whether to ask for TLS. Over a Unix
/// socket TLS is never used (as with libpq): the peer is on the same machine.
fn driver_mode(mode: SslMode, socket: bool) -> &'static str {
    match mode {
        _ if socket => "disable",
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        _ => "require",
    }
}

impl Connection {
    /// Splits `sslmode` and `sslrootcert` out of a `postgres://` URL or a key=value string.
    /// Without `sslmode`, TLS is preferred, as libpq does.
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let mut url = url::Url::parse(raw).map_err(invalid)?;
            let (mut found_mode, mut root_cert) = (SslMode::Prefer, None);
            let mut kept = Vec::new();
            for (key, value) in url.query_pairs() {
                match key.as_ref() {
                    "sslmode" => found_mode = mode(&value)?,
                    "sslrootcert" => root_cert = Some(value.into_owned()),
                    _ => kept.push((key.into_owned(), value.into_owned())),
                }
            }
            let socket = kept
                .iter()
                .any(|(key, value)| key == "host" && value.starts_with('/'));
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("sslmode", driver_mode(found_mode, socket));
            return Ok(Self {
                config: url.to_string(),
                mode: found_mode,
                root_cert,
                socket,
            });
        }
        let (mut found_mode, mut root_cert) = (SslMode::Prefer, None);
        let mut kept = Vec::new();
        for pair in raw.split_whitespace() {
            match pair.split_once('=') {
                Some(("sslmode", value)) => found_mode = mode(value)?,
                Some(("sslrootcert", value)) => root_cert = Some(value.to_owned()),
                _ => kept.push(pair),
            }
        }
        let socket = kept.iter().any(|pair| pair.starts_with("host=/"));
        let sslmode = format!("sslmode={}", driver_mode(found_mode, socket));
        kept.push(&sslmode);
        Ok(Self {
            config: kept.join(" "),
            mode: found_mode,
            root_cert,
            socket,
        })
    }

    /// The TLS connector for this connection's mode (`None` through a Unix socket).
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, StoreError> {
        if self.socket {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            // libpq's meaning: encrypted, not authenticated (`verify-full` is what protects
            // against an impostor).
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                crate::tls::any_certificate(provider.clone())
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let chain = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| StoreError::Io(format!("database TLS: {e}")))?;
                if self.mode == SslMode::VerifyCa {
                    crate::tls::chain_only(chain, provider.clone())
                } else {
                    chain
                }
            }
        };
        let config = crate::tls::client_config(provider, verifier)
            .map_err(|e| StoreError::Io(format!("database TLS: {e}")))?;
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    /// `sslrootcert`, else the system's bundle (`SSL_CERT_FILE`, or Debian's path).
    fn roots(&self) -> Result<RootCertStore, StoreError> {
        let path = self
            .root_cert
            .clone()
            .or_else(|| std::env::var("SSL_CERT_FILE").ok())
            .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
        let mut roots = RootCertStore::empty();
        let certificates = CertificateDer::pem_file_iter(&path)
            .map_err(|e| StoreError::Io(format!("database TLS roots {path}: {e}")))?;
        for certificate in certificates {
            let certificate = certificate
                .map_err(|e| StoreError::Io(format!("database TLS roots {path}: {e}")))?;
            roots
                .add(certificate)
                .map_err(|e| StoreError::Io(format!("database TLS roots {path}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(StoreError::Io(format!(
                "database TLS roots {path}: no certificates"
            )));
        }
        Ok(roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_urls_and_key_value_strings() {
        let url = Connection::parse(
            "postgres://rayo:pw@db.example:5432/rayo?sslmode=verify-full&sslrootcert=/ca.pem&application_name=rayo",
        )
        .unwrap();
        assert_eq!(url.mode, SslMode::VerifyFull);
        assert_eq!(url.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(
            url.config,
            "postgres://rayo:pw@db.example:5432/rayo?application_name=rayo&sslmode=require"
        );
        let pairs = Connection::parse("host=db.example user=rayo sslmode=verify-ca").unwrap();
        assert_eq!(pairs.mode, SslMode::VerifyCa);
        assert_eq!(pairs.config, "host=db.example user=rayo sslmode=require");
        let local = Connection::parse("host=/run/postgresql dbname=rayo").unwrap();
        assert_eq!(local.mode, SslMode::Prefer, "libpq's default");
        assert_eq!(
            local.config, "host=/run/postgresql dbname=rayo sslmode=disable",
            "no TLS over a Unix socket"
        );
        let plain = Connection::parse("postgres://rayo@db.example/rayo").unwrap();
        assert_eq!(
            plain.config,
            "postgres://rayo@db.example/rayo?sslmode=prefer"
        );
        assert!(Connection::parse("host=x sslmode=sometimes").is_err());
    }
}
