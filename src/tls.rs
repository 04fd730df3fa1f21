//! Certificate rules rustls does not ship, for peers public roots do not vouch for: a node
//! whose one self-signed certificate is pinned (LND's `tls.cert` is CA:TRUE, which webpki
//! refuses as a server certificate even when trusted as a root; clnrest makes its own), and a
//! database reached with libpq's `sslmode=require`, which encrypts but checks no certificate.
//! Also libpq's `verify-ca`: the chain up to a trusted root, whatever name the certificate
//! carries. In every case the handshake's signatures are still verified, so the peer holds the
//! key of the certificate it showed.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug)]
enum Rule {
    /// Exactly this certificate.
    Pinned(CertificateDer<'static>),
    /// Any certificate.
    Any,
    /// A chain that leads to a trusted root, for any name.
    ChainOnly(Arc<WebPkiServerVerifier>),
}

#[derive(Debug)]
struct CertificateRule {
    rule: Rule,
    provider: Arc<CryptoProvider>,
}

/// Accepts exactly `certificate`.
pub fn pinned(
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(CertificateRule {
        rule: Rule::Pinned(certificate),
        provider,
    })
}

/// Accepts any certificate (the connection is encrypted, not authenticated).
pub fn any_certificate(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(CertificateRule {
        rule: Rule::Any,
        provider,
    })
}

/// Accepts what `chain` accepts, except that the name need not match.
pub fn chain_only(
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(CertificateRule {
        rule: Rule::ChainOnly(chain),
        provider,
    })
}

/// A client configuration that checks servers with `verifier`.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

impl ServerCertVerifier for CertificateRule {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.rule {
            Rule::ChainOnly(chain) => match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            },
            Rule::Pinned(pinned) if end_entity.as_ref() != pinned.as_ref() => {
                Err(rustls::Error::General(
                    "the peer presented a certificate other than the pinned one".into(),
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
