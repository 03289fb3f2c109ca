//! TLS for a listener (the admin API's `--admin-tls-cert`/`--admin-tls-key`):
//! rustls with the ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN. The
//! certificate and key are read from PEM files at start and again on
//! `SIGHUP` ([`TlsFiles::reload`]); a reload that fails keeps the pair in
//! use, and connections already open keep theirs.

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a certificate or key could not be used; names the flag and file,
/// never the key's content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--admin-tls-cert {}: {reason}", .path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("--admin-tls-key {}: {reason}", .path.display())]
    Key { path: PathBuf, reason: String },
    #[error("--admin-tls-cert and --admin-tls-key do not make a pair: {0}")]
    Pair(String),
}

/// A certificate and key from files, replaceable while serving.
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    config: ArcSwap<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, TlsError> {
        Ok(TlsFiles {
            config: ArcSwap::from_pointee(server_config(cert, key)?),
            cert: cert.into(),
            key: key.into(),
        })
    }

    /// Reads the files again; new connections get the new pair, and on an
    /// error the old one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.config.store(Arc::new(server_config(&self.cert, &self.key)?));
        Ok(())
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }
}

fn server_config(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert_path.into(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(
            "no certificate in the file (PEM, `-----BEGIN CERTIFICATE-----`)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.into(),
        reason: format!("no PEM private key read ({e})"),
    })?;
    // ring, as every other TLS client in the binary (reqwest, sqlx): one
    // crypto library, built with a C compiler only. rustls 0.23.48 marks
    // it deprecated because ring has no post-quantum key exchange; moving
    // to aws-lc-rs is a decision for the whole binary, not this listener.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
