//! TLS of outbound connections (`wss://`): rustls, trusting the platform's
//! root certificates and, optionally, a CA bundle of the application's.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::{ClientConfig, RootCertStore};

use crate::transport::pem::certificates;

/// How a connection checks the server's certificate on `wss://`. The
/// server name is always checked against the URL's host.
///
/// ```
/// use switchboard::client::{ConnectionConfig, TlsOptions};
///
/// let mut config = ConnectionConfig::new("wss://hub.internal:4443/socket/websocket");
/// config.tls = TlsOptions {
///     ca_file: Some("/etc/switchboard/ca.pem".into()),
///     ..TlsOptions::default()
/// };
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of CA certificates trusted besides the platform's roots
    /// (a private CA, a test CA).
    pub ca_file: Option<PathBuf>,
    /// A PEM certificate chain presented to servers that ask for one
    /// (mutual TLS); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Why the TLS settings of a connection cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The client certificate or its key could not be used.
    #[error("cannot use client certificate {path}: {reason}")]
    ClientCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS library refused the settings.
    #[error("cannot set up TLS: {reason}")]
    Provider {
        /// What it said.
        reason: String,
    },
}

/// The platform's root certificates, loaded once per process (an empty
/// store where the platform has none: then only `ca_file` is trusted).
fn platform_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a platform root certificate could not be loaded");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "platform root certificates");
        roots
    })
}

/// The rustls client configuration `options` describe: HTTP/1.1 only (a
/// WebSocket upgrade), the ring provider, safe protocol versions. Without a
/// CA file nor client certificate every connection shares one.
pub(crate) fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, TlsSetupError> {
    static SHARED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if options == &TlsOptions::default() {
        if let Some(shared) = SHARED.get() {
            return Ok(shared.clone());
        }
        let built = build(options)?;
        return Ok(SHARED.get_or_init(|| built).clone());
    }
    build(options)
}

fn build(options: &TlsOptions) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = platform_roots().clone();
    if let Some(path) = &options.ca_file {
        let refused = |reason: String| TlsSetupError::CaFile {
            path: path.clone(),
            reason,
        };
        for cert in certificates(path).map_err(refused)? {
            roots
                .add(cert)
                .map_err(|error| refused(error.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError::Provider {
            reason: error.to_string(),
        })?
        .with_root_certificates(roots);
    let mut config = match (&options.cert_file, &options.key_file) {
        (None, None) => config.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let refused = |path: &PathBuf, reason: String| TlsSetupError::ClientCert {
                path: path.clone(),
                reason,
            };
            let chain = certificates(cert).map_err(|reason| refused(cert, reason))?;
            let private = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| refused(key, error.to_string()))?;
            config
                .with_client_auth_cert(chain, private)
                .map_err(|error| refused(cert, error.to_string()))?
        }
        (Some(cert), None) => return Err(refused_alone(cert, "cert_file needs key_file")),
        (None, Some(key)) => return Err(refused_alone(key, "key_file needs cert_file")),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn refused_alone(path: &std::path::Path, reason: &str) -> TlsSetupError {
    TlsSetupError::ClientCert {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The rustls error behind an I/O error of a TLS handshake, if any.
pub(crate) fn handshake_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_with_its_path() {
        let missing = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let error = client_config(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with("cannot use CA file /nonexistent/ca.pem"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = client_config(&TlsOptions {
            ca_file: Some(empty),
            ..TlsOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(error.ends_with("no certificate in it"), "{error}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_both_must_be_readable() {
        let alone = TlsOptions {
            cert_file: Some("/etc/client.pem".into()),
            ..TlsOptions::default()
        };
        let error = client_config(&alone).unwrap_err().to_string();
        assert!(error.ends_with("cert_file needs key_file"), "{error}");
        let missing = TlsOptions {
            cert_file: Some("/nonexistent/client.pem".into()),
            key_file: Some("/nonexistent/client.key".into()),
            ..TlsOptions::default()
        };
        let error = client_config(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with("cannot use client certificate /nonexistent/client.pem"),
            "{error}"
        );
    }

    #[test]
    fn without_a_ca_file_the_platform_roots_are_used() {
        assert!(client_config(&TlsOptions::default()).is_ok());
    }
}
