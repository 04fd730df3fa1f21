//! Certificate pinning for nodes that serve self-signed certificates: the presented
//! certificate must be exactly the configured one (see `crate::tls`).

use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use super::http;
use super::BackendError;
use super::BackendResult;

/// An HTTP client that trusts only `tls_cert` (PEM), or the usual roots when there is none
/// (a node behind a proxy with a public certificate).
pub fn pinned_client(upstream: &str, tls_cert: Option<&[u8]>) -> BackendResult<reqwest::Client> {
    let Some(pem) = tls_cert else {
        return http::client();
    };
    use rustls_pki_types::pem::PemObject;
    let certificate = CertificateDer::from_pem_slice(pem).map_err(|e| {
        BackendError::Rejected(format!("{upstream} TLS certificate is not PEM: {e}"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = crate::tls::client_config(
        provider.clone(),
        crate::tls::pinned(certificate.into_owned(), provider),
    )
    .map_err(|e| BackendError::Rejected(format!("TLS setup: {e}")))?;
    http::client_builder()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| BackendError::Unavailable(format!("HTTP client: {e}")))
}
