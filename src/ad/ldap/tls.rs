//! TLS client configuration: which roots are trusted, and how a rustls failure is told
//! apart as "the certificate was not trusted" (an operator must fix trust) versus other
//! handshake problems.

use super::LdapError;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// Builds a rustls client config trusting either the PEM CA file or the system roots.
///
/// The crypto provider is chosen explicitly (aws-lc-rs) so the config never depends on a
/// process-wide default that another crate may or may not have installed.
pub(super) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = load_pem_certs(path)?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(LdapError::CaFile {
                    path: path.to_path_buf(),
                    reason: "no usable CA certificate in it".into(),
                });
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(LdapError::Config(
                    "no system root certificates found; set ca_file to the CA that issued the \
                     domain controller's certificate"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LdapError> {
    let err = |reason: String| LdapError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&data) {
        certs.push(item.map_err(|e| err(format!("not a PEM certificate file: {e}")))?);
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Finds a rustls error inside an ldap3 error (rustls errors arrive wrapped in io::Error).
pub(super) fn rustls_error(e: &ldap3::LdapError) -> Option<&rustls::Error> {
    match e {
        ldap3::LdapError::Rustls { source } => Some(source),
        ldap3::LdapError::Io { source } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// True when the rustls error means "the server's certificate is not acceptable".
pub(super) fn is_verification_failure(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
    }

    #[test]
    fn non_pem_ca_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = client_config(Some(&p)).unwrap_err();
        assert!(matches!(e, LdapError::CaFile { .. }), "{e}");
    }

    #[test]
    fn verification_failures_are_recognised() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(is_verification_failure(&e));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let le = ldap3::LdapError::Io { source: io };
        assert!(rustls_error(&le).is_some_and(is_verification_failure));
        assert!(!is_verification_failure(&rustls::Error::DecryptError));
    }
}
