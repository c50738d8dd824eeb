//! Helpers shared by the binary's integration tests that run dialer nodes against SIPp.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{Timelike, Utc};

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// `n` distinct loopback ports each free for both UDP and TCP when chosen (a SIP listener takes
/// both): every candidate is held on both until all are picked.
pub fn free_sip_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    for _ in 0..1000 {
        if held.len() == n {
            break;
        }
        let udp = UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
        let port = udp.local_addr().expect("local addr").port();
        if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, udp, tcp));
        }
    }
    assert_eq!(held.len(), n, "no {n} ports free for both UDP and TCP");
    held.into_iter().map(|(port, _, _)| port).collect()
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

/// SIPp running `scenario` as the customers' phones on a free loopback port; its log (the
/// scenario's `<log>` lines) goes to `log`.
pub fn sipp_phones(scenario: &str, log: &Path) -> (Killed, SocketAddr) {
    sipp_phones_on(scenario, log, free_udp_port())
}

/// [`sipp_phones`] on a given loopback port (a trunk brought back where it was).
pub fn sipp_phones_on(scenario: &str, log: &Path, port: u16) -> (Killed, SocketAddr) {
    sipp_phones_args(scenario, log, port, &[])
}

/// [`sipp_phones_on`] with more SIPp arguments.
pub fn sipp_phones_args(
    scenario: &str,
    log: &Path,
    port: u16,
    more: &[&str],
) -> (Killed, SocketAddr) {
    let child = Command::new("sipp")
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-sf", scenario])
        .args(more)
        .args(["-nostdin", "-trace_logs", "-log_file"])
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp is installed (Debian package sip-tester; .ci/setup installs it)");
    std::thread::sleep(Duration::from_millis(500));
    (Killed(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Runs `callbot ARGS --database-url DB` and returns its output; panics with its stderr if it
/// fails.
pub fn callbot(args: &[&str], db: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callbot"))
        .args(args)
        .args(["--database-url", db])
        .output()
        .expect("run callbot");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "callbot {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A zone where it is between 10:00 and 18:59 now, so the default calling window (08:00–21:00
/// local) is the one in force.
pub fn daytime_zone() -> &'static str {
    const ZONES: [&str; 12] = [
        "Pacific/Honolulu",
        "America/Los_Angeles",
        "America/Chicago",
        "America/New_York",
        "America/Sao_Paulo",
        "Europe/London",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Kolkata",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    let now = Utc::now();
    ZONES
        .into_iter()
        .find(|z| {
            let tz: chrono_tz::Tz = z.parse().expect("a zone");
            (10..19).contains(&now.with_timezone(&tz).hour())
        })
        .expect("some zone is in daytime")
}
