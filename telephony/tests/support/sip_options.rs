//! OPTIONS pings for the transport tests: the request text and a UDP round trip.
#![allow(dead_code)] // each test file uses part of it

use std::net::{SocketAddr, UdpSocket};

/// An OPTIONS request to the agent at `agent`, sent over `via` ("UDP" or "TCP") from `from`;
/// `n` makes its branch, tag, Call-ID and CSeq unique.
pub fn options(agent: SocketAddr, via: &str, from: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:bot@{agent} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {from};branch=z9hG4bKprobe{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{from}>;tag=p{n}\r\n\
         To: <sip:bot@{agent}>\r\n\
         Call-ID: probe-{n}@127.0.0.1\r\n\
         CSeq: {n} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends an OPTIONS from `probe` over UDP and returns the status line of the answer (an error
/// when none comes within the socket's read timeout).
pub fn udp_status_line(probe: &UdpSocket, agent: SocketAddr, n: u32) -> std::io::Result<String> {
    let local = probe.local_addr()?;
    probe.send_to(options(agent, "UDP", local, n).as_bytes(), agent)?;
    let mut buf = [0u8; 4096];
    let len = probe.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..len])
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}
