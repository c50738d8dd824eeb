//! A TCP peer that sends requests but never reads its answers: once the kernel's buffers towards
//! it are full, every further write to it would wait. The agent must go on serving everyone else
//! (UDP and other TCP peers) and give up on that connection, not stall its loop on the write.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use telephony::sip::transport::UdpAgent;

#[path = "support/sip_options.rs"]
mod sip_options;
use sip_options::{options, udp_status_line};

/// Sends an OPTIONS over UDP and returns the status line of the answer ("" on none in 3 s).
fn udp_ping(agent: SocketAddr, n: u32) -> String {
    let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
    probe
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    udp_status_line(&probe, agent, n).unwrap_or_default()
}

/// A well-behaved TCP client: one OPTIONS, the status line of the answer ("" on none in 3 s).
fn tcp_ping(agent: SocketAddr, n: u32) -> String {
    let mut s = TcpStream::connect(agent).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let local = s.local_addr().expect("addr");
    s.write_all(options(agent, "TCP", local, n).as_bytes())
        .expect("send OPTIONS");
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_does_not_stall_the_agent() {
    let agent = UdpAgent::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "bot")
        .await
        .expect("bind");
    let addr = agent.local_addr(); // UDP and TCP share the port
    let before = tokio::task::spawn_blocking(move || udp_ping(addr, 1))
        .await
        .expect("ping");
    assert!(before.starts_with("SIP/2.0 200"), "{before:?}");

    // The stalled peer: a 4 KiB receive buffer it never drains, then 30,000 requests whose
    // answers (~300 bytes each, ~9 MB) cannot all fit in the kernel's buffers towards it (the
    // agent's send buffer grows to 4 MiB at most, net.ipv4.tcp_wmem's default maximum).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stalled = socket.connect(addr).await.expect("connect");
    let stalled = stalled.into_std().expect("std stream");
    stalled.set_nonblocking(false).expect("blocking");
    let writer = tokio::task::spawn_blocking(move || {
        let mut s = stalled;
        let local = s.local_addr().expect("addr");
        for n in 0..30000 {
            if s.write_all(options(addr, "TCP", local, 100 + n).as_bytes())
                .is_err()
            {
                break; // the agent gave up on this connection
            }
        }
        s // kept open, never read
    });
    let stalled = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the agent keeps reading the stalled peer's requests")
        .expect("writer");
    // Time for the agent to work through the requests it has read and to answer them.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (udp, tcp) = tokio::task::spawn_blocking(move || (udp_ping(addr, 2), tcp_ping(addr, 3)))
        .await
        .expect("pings");
    drop(stalled);
    assert!(
        udp.starts_with("SIP/2.0 200"),
        "no UDP answer while a TCP peer does not read: {udp:?}"
    );
    assert!(
        tcp.starts_with("SIP/2.0 200"),
        "no answer to another TCP client while a TCP peer does not read: {tcp:?}"
    );
}
