//! Out of file descriptors: a connection waits in the SIP TCP listener's backlog while this
//! process has no descriptor left to accept it with, so every `accept` fails with EMFILE at
//! once. The agent must not spin on that error (it rests between tries), must go on answering
//! over UDP, and must accept the waiting client once descriptors are free again.
//!
//! Its own test binary: it lowers this process's RLIMIT_NOFILE, which no other test may share.
//! The client is a child `bash` (its descriptors are its own), started before the limit drops.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use telephony::sip::transport::UdpAgent;

#[path = "support/sip_options.rs"]
mod sip_options;
use sip_options::{options, udp_status_line};

fn cpu_seconds() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// Sends an OPTIONS over UDP and returns the status line of the answer.
fn ping(probe: &UdpSocket, agent: SocketAddr, n: u32) -> String {
    udp_status_line(probe, agent, n).expect("an answer to OPTIONS over UDP")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_out_of_descriptors_rests_keeps_serving_udp_and_accepts_later() {
    let agent = UdpAgent::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "bot")
        .await
        .expect("bind");
    let addr = agent.local_addr(); // UDP and TCP share the port
    let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
    probe
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    assert!(ping(&probe, addr, 1).starts_with("SIP/2.0 200"));

    // The client connects in 1.5 s, when this process is out of descriptors, then sends an
    // OPTIONS over TCP and prints the status line it gets (the agent can only answer once it
    // has accepted the connection).
    let request = options(addr, "TCP", addr, 2);
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "sleep 1.5; exec 3<>/dev/tcp/127.0.0.1/{port}; printf '%s' \"$REQ\" >&3; \
             timeout 8 head -n 1 <&3",
            port = addr.port()
        ))
        .env("REQ", request)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("bash");

    // Use up every descriptor: the soft limit at the highest one open, then the holes below
    // filled with /dev/null.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("open descriptors");
    setrlimit(Resource::RLIMIT_NOFILE, highest + 1, hard).expect("setrlimit");
    let mut fillers: Vec<OwnedFd> = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f.into());
    }

    tokio::time::sleep(Duration::from_secs(2)).await; // the client is waiting in the backlog
    let before = cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds() - before;
    let udp_answer = ping(&probe, addr, 3);

    drop(fillers);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore the limit");
    let mut tcp_answer = String::new();
    let mut out = child.stdout.take().expect("child stdout");
    let read = tokio::task::spawn_blocking(move || {
        let _ = out.read_to_string(&mut tcp_answer);
        tcp_answer
    });
    let tcp_answer = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the client finishes")
        .expect("reader");
    let _ = child.wait();

    assert!(
        used < 0.5,
        "the agent spun on EMFILE: {used:.2} s of CPU in 2 s with nothing to do"
    );
    assert!(
        udp_answer.starts_with("SIP/2.0 200"),
        "no UDP answer while out of descriptors: {udp_answer:?}"
    );
    assert!(
        tcp_answer.starts_with("SIP/2.0 200"),
        "the waiting TCP client was not served once descriptors were free: {tcp_answer:?}"
    );
}
