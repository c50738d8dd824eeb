//! HTTPS for the console and the admin API: a certificate chain and its private key read from
//! PEM files into a rustls [`ServerConfig`] (the `ring` provider, ALPN `http/1.1`), and the
//! accept loop that serves the console's router through it ([`crate::Console::serve_tls`]).
//!
//! Each connection's TLS handshake runs in its own task: a client that fails it (plain HTTP
//! sent to the TLS port, a client that does not trust the certificate, a stalled handshake) is
//! dropped and logged at debug level; the server goes on. Every `Set-Cookie` served over TLS
//! is marked `Secure`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
pub use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// The most a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or the key could not be used; each names the file.
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

/// A server configuration from a PEM certificate chain (the server's certificate first, then
/// any intermediates) and its PEM private key: TLS 1.2 and 1.3 with the `ring` provider, ALPN
/// `http/1.1`, no client certificates.
///
/// # Errors
/// Either file unusable, or the key not the certificate's, each naming the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let private_key = load_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| match e {
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
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until the task is dropped: one task per connection,
/// HTTP/1.1 with upgrades (the console's WebSocket), the peer's address as
/// `ConnectInfo<SocketAddr>`.
pub(crate) async fn serve(
    router: Router,
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::map_response(secure_cookies));
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "console: accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "console: TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut req: Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "console: connection ended with an error");
            }
        });
    }
}

/// A connection reset before it was accepted: the next one is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Marks every cookie `Secure`: served over TLS, it must never go back over plain HTTP.
async fn secure_cookies(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return resp;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = String::from_utf8_lossy(cookie.as_bytes())
            .split(';')
            .skip(1)
            .any(|attr| attr.trim().eq_ignore_ascii_case("secure"));
        let value = if secure {
            cookie
        } else {
            let mut bytes = cookie.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Secure");
            HeaderValue::from_bytes(&bytes).unwrap_or(cookie)
        };
        headers.append(header::SET_COOKIE, value);
    }
    resp
}
