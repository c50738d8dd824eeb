//! TLS material from PEM files: a certificate chain and its private key for a server (SIP over
//! TLS here, the console's HTTPS in `admin-api`), and the certificate authorities a client
//! trusts when it connects (a trunk's or a phone's SIP over TLS). rustls on the `ring` provider,
//! TLS 1.2 and 1.3. Every error names the file and says what is wrong with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use rustls::{ClientConfig, ServerConfig};

/// Why a certificate, key or CA file could not be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS {what} file {}: cannot read it: {error}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("TLS {what} file {}: not valid PEM: {reason}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "TLS certificate file {}: no certificate in it (expected a PEM `BEGIN CERTIFICATE` block)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "TLS key file {}: no private key in it (expected a PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY` block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("TLS key file {}: unusable private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("TLS certificate file {}: unusable certificate: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "TLS key file {}: the private key does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup: {0}")]
    Config(rustls::Error),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

fn bad_pem(what: &'static str, path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The certificates in a PEM file, the server's own first.
///
/// # Errors
/// The file missing or unreadable, bad PEM, or no `CERTIFICATE` block in it.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem("certificate", path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
///
/// # Errors
/// The file missing or unreadable, bad PEM, or no private key in it.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoKey {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(bad_pem("key", path, e)),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Maps rustls's refusal of a certificate and key pair to the file at fault.
fn identity_error(e: rustls::Error, cert: &Path, key: &Path) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            TlsError::BadCertificate {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            }
        }
        other => TlsError::BadKey {
            path: key.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// A server configuration from a PEM certificate chain (the server's certificate first, then
/// any intermediates) and its PEM private key: TLS 1.2 and 1.3, no client certificates asked
/// for, no ALPN (a caller serving HTTP sets its own).
///
/// # Errors
/// Either file unusable, or the key not the certificate's, each naming the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let private_key = load_key(key)?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| identity_error(e, cert, key))
}

/// A client configuration that trusts exactly the certificate authorities in the PEM file `ca`
/// (a bank's own CA, or a trunk's self-signed certificate) and, with `identity`, presents that
/// certificate chain and key to servers that ask for one (mutual TLS with an SBC).
///
/// # Errors
/// A file unusable, a CA certificate that cannot be a trust anchor, or the key not the
/// certificate's.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in load_certs(ca)? {
        roots.add(der).map_err(|e| TlsError::BadCertificate {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| identity_error(e, cert, key)),
    }
}

/// Whether a listener's failed `accept` was the one client's own doing (it reset or went away
/// before it was accepted, or the call was interrupted): accept the next one at once. Any other
/// error (out of file descriptors, out of memory) belongs to this process and comes straight
/// back, so the accept loops serving clients (SIP over TCP and TLS, the console's HTTPS) rest
/// before trying again rather than spin.
pub fn accept_error_is_the_clients(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{
        ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted, WouldBlock,
    };
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted | WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_and_a_missing_file_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = client_config(&empty, None).expect_err("no certificate");
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = client_config(&missing, None).expect_err("missing");
        assert!(e.to_string().contains("missing.pem: cannot read it"), "{e}");
    }

    #[test]
    fn a_self_signed_certificate_is_a_server_identity_and_a_trust_anchor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).expect("cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
        server_config(&cert, &key).expect("server");
        client_config(&cert, None).expect("client trusting it");
        client_config(&cert, Some((&cert, &key))).expect("client presenting it");
        // A key that is not the certificate's.
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert");
        std::fs::write(&key, other.signing_key.serialize_pem()).expect("key");
        let e = server_config(&cert, &key).expect_err("mismatch");
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    }
}
