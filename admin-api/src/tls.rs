//! HTTPS for the console and the admin API: a certificate chain and its private key read from
//! PEM files into a rustls [`ServerConfig`] (the `ring` provider, ALPN `http/1.1`), and the
//! accept loop that serves the console's router through it ([`crate::Console::serve_tls`]).
//!
//! Each connection's TLS handshake runs in its own task: a client that fails it (plain HTTP
//! sent to the TLS port, a client that does not trust the certificate, a stalled handshake) is
//! dropped and logged at debug level; the server goes on. Every `Set-Cookie` served over TLS
//! is marked `Secure`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
pub use rustls::ServerConfig;
pub use telephony::tls::{TlsError, load_certs, load_key};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// The most a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server configuration from a PEM certificate chain (the server's certificate first, then
/// any intermediates) and its PEM private key: TLS 1.2 and 1.3 with the `ring` provider, ALPN
/// `http/1.1`, no client certificates ([`telephony::tls::server_config`] reads the files).
///
/// # Errors
/// Either file unusable, or the key not the certificate's, each naming the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = telephony::tls::server_config(cert, key)?;
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
            Err(e) if telephony::tls::accept_error_is_the_clients(&e) => continue,
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
