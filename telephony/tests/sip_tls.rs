//! SIP over TLS on loopback: two of callbot's user agents, one with a TLS listener serving a
//! certificate made here (`rcgen`), the other trusting only that certificate. A call is placed,
//! answered and hung up over TLS; what crosses the wire (copied by a TCP relay in between) is
//! TLS records, not SIP text; a caller that does not trust the certificate, or that asks for a
//! host the certificate does not name, cannot place its call, and the listener goes on serving
//! (a plain-text client on the TLS port included). The sans-IO core names TLS and the TLS
//! listener in Via and Contact for a TLS peer, and does not retransmit to it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use telephony::sip::Uri;
use telephony::sip::transaction::TimerConfig;
use telephony::sip::transport::{SipTlsConfig, SipTransport, UdpAgent};
use telephony::sip::ua::{CallEvent, CallId, Stream, UaConfig, UaOutput, UserAgent};
use telephony::tls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OFFER: &str = "v=0\r\no=callbot 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A self-signed certificate for `names`, written as PEM files into `dir`.
fn identity(dir: &Path, stem: &str, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(
        names.iter().map(|s| s.to_string()).collect::<Vec<String>>(),
    )
    .expect("certificate");
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

/// An agent with a TLS listener serving `cert`, trusting `ca` when it places calls.
async fn agent(
    user: &str,
    (cert, key): &(std::path::PathBuf, std::path::PathBuf),
    ca: Option<&Path>,
) -> UdpAgent {
    let cfg = SipTlsConfig {
        bind: loopback(),
        server: Arc::new(tls::server_config(cert, key).expect("server config")),
        client: ca.map(|ca| Arc::new(tls::client_config(ca, None).expect("client config"))),
    };
    UdpAgent::bind_with_tls(loopback(), user, Some(cfg))
        .await
        .expect("bind")
}

/// Forward one TCP connection at a time from `listener` to `to`, copying what the caller sends.
async fn relay(listener: TcpListener, to: SocketAddr, seen: Arc<Mutex<Vec<u8>>>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(to).await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let up = async {
                let mut buf = vec![0u8; 16_384];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    seen.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
            };
            let down = async {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Place a call to `target` over TLS through `hop` (`None`: the connection could not be made).
async fn call_tls(agent: &UdpAgent, hop: SocketAddr, target: &str) -> Option<CallId> {
    let target = Uri::parse(target).expect("uri");
    agent
        .invite_over(
            hop,
            SipTransport::Tls,
            target,
            OFFER.as_bytes().to_vec(),
            None,
        )
        .await
}

async fn next(agent: &mut UdpAgent) -> CallEvent {
    match tokio::time::timeout(Duration::from_secs(10), agent.next_event()).await {
        Ok(Some((_, e))) => e,
        other => panic!("no call event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tls_is_encrypted_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_id = identity(dir.path(), "server", &["127.0.0.1", "sbc.bank.test"]);
    let client_id = identity(dir.path(), "client", &["127.0.0.1"]);
    let mut server = agent("trunk", &server_id, None).await;
    let mut client = agent("callbot", &client_id, Some(&server_id.0)).await;
    let tls_addr = server.tls_addr().expect("TLS listener");
    assert_ne!(tls_addr.port(), 0);

    // A plain-text client on the TLS port: its handshake fails, nothing else does.
    let mut plain = TcpStream::connect(tls_addr).await.expect("connect");
    plain
        .write_all(b"OPTIONS sip:trunk@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), plain.read_to_end(&mut sink)).await;

    // The call goes through a relay that keeps a copy of what the caller sends.
    let relay_listener = TcpListener::bind(loopback()).await.expect("relay");
    let relay_addr = relay_listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(relay(relay_listener, tls_addr, seen.clone()));

    call_tls(
        &client,
        relay_addr,
        "sip:+15551230000@127.0.0.1;transport=tls",
    )
    .await
    .expect("the INVITE left over TLS");
    let (server_call, from, sdp) = loop {
        match tokio::time::timeout(Duration::from_secs(10), server.next_event()).await {
            Ok(Some((id, CallEvent::Incoming { from, sdp, .. }))) => break (id, from, sdp),
            Ok(Some(_)) => continue,
            other => panic!("no INVITE reached the server: {other:?}"),
        }
    };
    assert!(from.contains("callbot"), "From: {from}");
    assert_eq!(sdp, OFFER.as_bytes(), "the SDP arrived whole");
    server.accept(server_call, OFFER.as_bytes().to_vec());
    loop {
        match next(&mut client).await {
            CallEvent::Answered { sdp } => {
                assert_eq!(sdp, OFFER.as_bytes());
                break;
            }
            CallEvent::Progress { .. } => continue,
            other => panic!("expected the answer, got {other:?}"),
        }
    }
    // The server hangs up: its BYE comes back over the connection the caller opened.
    loop {
        if let CallEvent::Confirmed = next(&mut server).await {
            break;
        }
    }
    server.hangup(server_call);
    loop {
        match next(&mut client).await {
            CallEvent::Ended { remote } => {
                assert!(remote, "the server ended the call");
                break;
            }
            _ => continue,
        }
    }

    let wire = seen.lock().expect("lock").clone();
    assert!(wire.len() > 500, "the relay saw the caller's bytes");
    // TLS records: handshake (22) first, then application data (23); no SIP in the clear.
    assert_eq!(wire[0], 22, "a TLS handshake record starts the stream");
    let text = String::from_utf8_lossy(&wire);
    for needle in ["INVITE", "SIP/2.0", "+15551230000", "m=audio"] {
        assert!(
            !text.contains(needle),
            "{needle:?} crossed the wire in the clear"
        );
    }

    // A caller trusting another certificate cannot place a call over TLS.
    let other_id = identity(dir.path(), "other", &["127.0.0.1"]);
    let stranger = agent("stranger", &client_id, Some(&other_id.0)).await;
    let refused = call_tls(
        &stranger,
        tls_addr,
        "sip:+15551230001@127.0.0.1;transport=tls",
    )
    .await;
    assert!(refused.is_none(), "an untrusted certificate was accepted");
    // Nor one asking for a host the certificate does not name.
    let wrong_name = call_tls(
        &client,
        tls_addr,
        "sip:+15551230002@sbc.other.test;transport=tls",
    )
    .await;
    assert!(
        wrong_name.is_none(),
        "a certificate for another host was accepted"
    );
    // Nor one with no CAs configured.
    let no_ca = agent("no-ca", &client_id, None).await;
    assert!(
        call_tls(&no_ca, tls_addr, "sip:+15551230003@127.0.0.1;transport=tls")
            .await
            .is_none()
    );

    // The listener still serves: a call by the certificate's DNS name, answered and hung up by
    // the caller.
    let call = call_tls(
        &client,
        tls_addr,
        "sip:+15551230004@sbc.bank.test;transport=tls",
    )
    .await
    .expect("a second call over TLS");
    let id = loop {
        match server.next_event().await {
            Some((id, CallEvent::Incoming { .. })) => break id,
            Some(_) => continue,
            None => panic!("server stopped"),
        }
    };
    server.accept(id, OFFER.as_bytes().to_vec());
    loop {
        if let CallEvent::Answered { .. } = next(&mut client).await {
            break;
        }
    }
    client.hangup(call);
    loop {
        if let CallEvent::Ended { remote } = next(&mut server).await {
            assert!(remote);
            break;
        }
    }
}

#[test]
fn the_core_names_tls_and_the_tls_listener_for_a_tls_peer_and_does_not_retransmit() {
    let mut ua = UserAgent::new(UaConfig {
        local: "127.0.0.1:5060".parse().expect("addr"),
        user: "callbot".into(),
        user_agent: "test".into(),
        timers: TimerConfig::default(),
    });
    ua.set_tls_local("127.0.0.1:5061".parse().expect("addr"));
    let peer: SocketAddr = "127.0.0.1:6061".parse().expect("addr");
    ua.set_stream(peer, Some(Stream::Tls));
    let now = Instant::now();
    let target = Uri::parse("sip:+15551230000@127.0.0.1;transport=tls").expect("uri");
    let (_, outs) = ua.invite(peer, target, None, OFFER.as_bytes().to_vec(), None, now);
    let sent: Vec<String> = outs
        .iter()
        .filter_map(|o| match o {
            UaOutput::Send { to, data } if *to == peer => {
                Some(String::from_utf8_lossy(data).to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("Via: SIP/2.0/TLS 127.0.0.1:5061;"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("<sip:callbot@127.0.0.1:5061;transport=tls>"),
        "{}",
        sent[0]
    );
    // No retransmission over a reliable transport (Timer A is not set).
    let later = ua.on_timer(now + Duration::from_secs(2));
    assert!(
        !later.iter().any(|o| matches!(o, UaOutput::Send { .. })),
        "retransmitted over TLS"
    );
    // A UDP peer of the same agent still gets UDP and the UDP address.
    let udp_peer: SocketAddr = "127.0.0.1:7060".parse().expect("addr");
    let target = Uri::parse("sip:+15551230001@127.0.0.1").expect("uri");
    let (_, outs) = ua.invite(udp_peer, target, None, OFFER.as_bytes().to_vec(), None, now);
    let udp = outs
        .iter()
        .find_map(|o| match o {
            UaOutput::Send { data, .. } => Some(String::from_utf8_lossy(data).to_string()),
            _ => None,
        })
        .expect("sent");
    assert!(udp.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;"), "{udp}");
}
