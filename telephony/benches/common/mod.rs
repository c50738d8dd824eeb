//! Shared plumbing of the SIPp benches: arguments, free ports, SIPp as UAS, CPU time.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Positional bench arguments (cargo's own `--bench` flags filtered out).
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// A free UDP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// SIPp's built-in `uas` scenario on 127.0.0.1:`port` with `extra` arguments, given time to bind;
/// `None` (with a message) when SIPp is not installed.
pub fn sipp_uas(port: u16, extra: &[&str]) -> Option<Child> {
    let p = port.to_string();
    let child = Command::new("sipp")
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-nostdin",
            "-max_socket",
            "10000",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(c) => {
            std::thread::sleep(Duration::from_millis(300));
            Some(c)
        }
        Err(e) => {
            eprintln!("sipp not found ({e}); install Debian's sip-tester");
            None
        }
    }
}

/// The bench's tokio runtime: two workers, like the 2-core target machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// CPU seconds (user + system) used by this process so far, from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
#[allow(dead_code)] // not every bench looks at another process
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average, from /proc/loadavg.
#[allow(dead_code)]
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was full, all sockets
/// (`RcvbufErrors` in /proc/net/snmp).
#[allow(dead_code)]
pub fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Datagrams dropped so far by the UDP socket(s) bound to local `port` (the `drops` column of
/// /proc/net/udp).
#[allow(dead_code)]
pub fn udp_socket_drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = f.get(1)?;
            local
                .ends_with(&port)
                .then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}
