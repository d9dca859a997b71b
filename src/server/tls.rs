//! TLS of the hub's own server (`[server.tls]`): `wss://` for both
//! endpoints and `https://` for `/health` and `/metrics`, with rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::ServerTlsConfig;
use crate::transport::pem;

/// Why the hub's TLS settings cannot be used; names the config key.
#[derive(Debug, thiserror::Error)]
#[error("{key} ({path}): {reason}")]
pub struct TlsError {
    /// The config key, e.g. `server.tls.cert_file`.
    pub key: &'static str,
    /// The file it names.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem::certificates(path).map_err(|reason| TlsError {
        key,
        path: path.to_owned(),
        reason,
    })
}

/// The rustls server configuration `[server.tls]` describes: HTTP/1.1, the
/// ring provider, and client certificates checked against `client_ca_file`
/// when it is set (mutual TLS).
pub(crate) fn server_config(tls: &ServerTlsConfig) -> Result<ServerConfig, TlsError> {
    let chain = certificates("server.tls.cert_file", &tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|error| TlsError {
        key: "server.tls.key_file",
        path: tls.key_file.clone(),
        reason: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError {
            key: "server.tls",
            path: PathBuf::new(),
            reason: error.to_string(),
        })?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let key = "server.tls.client_ca_file";
            let mut roots = RootCertStore::empty();
            for cert in certificates(key, path)? {
                roots.add(cert).map_err(|error| TlsError {
                    key,
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsError {
                    key,
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsError {
            key: "server.tls.key_file",
            path: tls.key_file.clone(),
            reason: format!("does not go with server.tls.cert_file: {error}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
