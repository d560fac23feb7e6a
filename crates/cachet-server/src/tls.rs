//! TLS with rustls (ring provider): loads a PEM certificate chain and key and offers HTTP/2
//! and HTTP/1.1 by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsPaths;

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("failed to read {what} from {path}: {reason}")]
    Pem {
        /// `certificate chain` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the pair.
    #[error("failed to use the TLS certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the acceptor for `paths`.
pub fn acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, TlsError> {
    fn pem_err(what: &'static str, path: &Path) -> impl FnOnce(String) -> TlsError {
        let path = path.to_path_buf();
        move |reason| TlsError::Pem { what, path, reason }
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(|e| pem_err("certificate chain", &paths.cert)(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err("certificate chain", &paths.cert)(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("certificate chain", &paths.cert)(
            "no CERTIFICATE block found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| pem_err("private key", &paths.key)(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
