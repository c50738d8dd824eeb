//! The console over HTTPS on loopback, with a self-signed certificate made for the test
//! (`rcgen`) and a rustls client that trusts only it: the health check and a login (its cookie
//! marked `Secure`), the console's WebSocket upgraded through TLS, clients that fail the
//! handshake (plain HTTP, a client that does not trust the certificate) losing only their own
//! connection, and the loading errors naming the file and the reason.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use admin_api::auth::hash_password;
use admin_api::tls::{TlsError, server_config};
use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::agents::store::AgentAccount;
use bot_runtime::store::Store;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
mod support;
use support::{NoPhones, Reply};

/// A self-signed certificate for `localhost` and 127.0.0.1, written as `NAME.crt` and
/// `NAME.key` in `dir`.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (cert, key, ck.cert.der().clone())
}

fn connector(trusted: Option<CertificateDer<'static>>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).expect("trust the test certificate");
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    tls: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// Reads one HTTP/1.1 reply's head and its body (by Content-Length) from `stream`; with
/// `until`, goes on reading until those bytes arrive (a WebSocket's first message).
async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    until: Option<&[u8]>,
) -> (Reply, Vec<u8>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let more = until.is_some_and(|u| !raw.windows(u.len()).any(|w| w == u));
                if raw.len() >= end + 4 + length && !more {
                    break;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("reply within 10 s");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let reply = Reply {
        status,
        headers: head.to_string(),
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
        bytes: body.as_bytes().to_vec(),
    };
    (reply, raw)
}

async fn send_request<S: AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("send");
    stream.flush().await.expect("flush");
}

/// One HTTPS request through `tls` and its reply.
async fn https(
    addr: SocketAddr,
    tls: &TlsConnector,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tls_connect(addr, tls).await.expect("TLS handshake");
    send_request(&mut stream, method, path, headers, body).await;
    read_reply(&mut stream, None).await.0
}

fn set_cookie(reply: &Reply) -> String {
    reply
        .headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {}", reply.headers))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_console_and_survives_failed_handshakes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, cert_der) = make_cert(dir.path(), "server");
    let config = server_config(&cert, &key).expect("server config");
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    store
        .ensure_tenant("default", "Default")
        .await
        .expect("tenant");
    store
        .save_agent(
            "default",
            &AgentAccount {
                id: "ann".into(),
                name: "Ann".into(),
                password_hash: hash_password("pw-ann").expect("hash"),
                skills: BTreeMap::new(),
                role: "agent".into(),
                sip_user: None,
                sip_password: None,
                disabled: false,
            },
        )
        .await
        .expect("ann");
    let desk = Desk::start(vec![], Arc::new(NoPhones)).expect("desk");
    // The config does not ask for Secure cookies: serving over TLS marks them anyway.
    let console = Console::new(store, desk, ConsoleConfig::default());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(console.serve_tls(listener, config));
    let trusting = connector(Some(cert_der));

    // The health check over HTTPS, through a client that trusts only this certificate.
    let health = https(addr, &trusting, "GET", "/api/v1/health", &[], "").await;
    assert_eq!(health.status, 200, "{}", health.headers);

    // A login: the session cookie is Secure (and still HttpOnly, SameSite=Strict).
    let ok = https(
        addr,
        &trusting,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &json!({ "agent": "ann", "password": "pw-ann" }).to_string(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let line = set_cookie(&ok);
    assert!(
        line.split(';').any(|a| a.trim() == "Secure")
            && line.contains("HttpOnly")
            && line.contains("SameSite=Strict"),
        "{line}"
    );
    let cookie = line
        .split_once(':')
        .and_then(|(_, v)| v.trim().split(';').next())
        .expect("cookie value")
        .to_string();
    let me = https(
        addr,
        &trusting,
        "GET",
        "/api/me",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["agent"], "ann");

    // Plain HTTP to the TLS port: no HTTP answer, the connection ends.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut got)).await;
    assert!(ended.is_ok(), "the server closes the plain-HTTP connection");
    assert!(
        !got.starts_with(b"HTTP/"),
        "a plain-HTTP answer on the TLS port: {}",
        String::from_utf8_lossy(&got)
    );
    let health = https(addr, &trusting, "GET", "/api/v1/health", &[], "").await;
    assert_eq!(health.status, 200, "serving after a plain-HTTP client");

    // A client that does not trust the certificate fails the handshake; the server goes on.
    let untrusting = connector(None);
    let refused = match tls_connect(addr, &untrusting).await {
        Ok(mut stream) => {
            // TLS 1.3: the client's verdict may only show on first use.
            send_request(&mut stream, "GET", "/api/v1/health", &[], "").await;
            read_reply(&mut stream, None).await.0.status == 0
        }
        Err(e) => {
            assert!(
                e.to_string().to_ascii_lowercase().contains("certificate"),
                "{e}"
            );
            true
        }
    };
    assert!(refused, "an untrusted certificate was accepted");
    let health = https(addr, &trusting, "GET", "/api/v1/health", &[], "").await;
    assert_eq!(health.status, 200, "serving after a failed handshake");

    // The console's WebSocket through TLS: refused without a session (the upgrade reached the
    // handler), opened with one, and the console's first message arrives.
    let ws = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let anon = https(addr, &trusting, "GET", "/api/agent/ws", &ws, "").await;
    assert_eq!(anon.status, 401, "{}", anon.headers);
    let mut with_session = ws.to_vec();
    with_session.push(("Cookie", &cookie));
    let mut stream = tls_connect(addr, &trusting).await.expect("TLS handshake");
    send_request(&mut stream, "GET", "/api/agent/ws", &with_session, "").await;
    let (upgraded, raw) = read_reply(&mut stream, Some(b"\"hello\"")).await;
    assert_eq!(upgraded.status, 101, "{}", upgraded.headers);
    assert!(
        upgraded
            .headers
            .to_ascii_lowercase()
            .contains("upgrade: websocket"),
        "{}",
        upgraded.headers
    );
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end");
    let frame = &raw[end + 4..];
    assert_eq!(frame.first(), Some(&0x81), "a text frame from the console");
    assert!(
        String::from_utf8_lossy(frame).contains("\"type\":\"hello\""),
        "{}",
        String::from_utf8_lossy(frame)
    );
    drop(stream);

    assert!(!server.is_finished(), "the server is still running");
    server.abort();
}

#[test]
fn loading_errors_name_the_file_and_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, _) = make_cert(dir.path(), "server");
    let (_, other_key, _) = make_cert(dir.path(), "other");
    let err = |r: Result<Arc<rustls::ServerConfig>, TlsError>| match r {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    };

    // A missing file.
    let missing = dir.path().join("nope.crt");
    let e = err(server_config(&missing, &key));
    assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("cannot read"),
        "{text}"
    );
    let e = err(server_config(&cert, &dir.path().join("nope.key")));
    assert!(e.to_string().contains("nope.key"), "{e}");

    // A PEM with a certificate and no key.
    let e = err(server_config(&cert, &cert));
    assert!(matches!(e, TlsError::NoKey { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&cert.display().to_string()) && text.contains("no private key"),
        "{text}"
    );

    // A PEM with a key and no certificate (the two paths swapped).
    let e = err(server_config(&key, &key));
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&key.display().to_string()) && text.contains("no certificate"),
        "{text}"
    );

    // Not PEM at all.
    let junk = dir.path().join("junk.crt");
    std::fs::write(&junk, "hello\n").expect("write");
    let e = err(server_config(&junk, &key));
    assert!(e.to_string().contains("junk.crt"), "{e}");

    // Another certificate's key.
    let e = err(server_config(&cert, &other_key));
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&other_key.display().to_string())
            && text.contains(&cert.display().to_string())
            && text.contains("does not match"),
        "{text}"
    );

    // The pair that belongs together loads; so does one file holding both.
    server_config(&cert, &key).expect("the matching pair");
    let both = dir.path().join("both.pem");
    let mut pem = std::fs::read(&cert).expect("cert");
    pem.extend(std::fs::read(&key).expect("key"));
    std::fs::write(&both, pem).expect("write");
    server_config(&both, &both).expect("one file with both");
}
