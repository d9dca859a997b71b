//! PEM files of certificates, as both sides' TLS settings read them.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Every certificate in the PEM file at `path`; an error (in words) when
/// it cannot be read or holds none.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in it".to_owned());
    }
    Ok(certs)
}
