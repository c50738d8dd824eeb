//! SIPp (Debian's `sip-tester`) as the customer's phone in the runtime's tests: one call on
//! 127.0.0.1 with a scenario from `tests/sipp/`, its messages logged.

#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A free UDP port on 127.0.0.1 (bound and released; SIPp binds it right after).
pub fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// SIPp as the customer's phone, answering one call on 127.0.0.1 with a scenario, logging the
/// messages it sends and receives.
pub struct Sipp {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Sipp {
    pub fn uas(scenario_file: &str) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let media = free_port();
        let sf = scenario(scenario_file);
        let child = Command::new("sipp")
            .current_dir(dir.path())
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-sf", sf.to_str().expect("path"), "-m", "1"])
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"))
            .args(["-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args([
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
                "-max_recv_loops",
                "100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp is installed (Debian package sip-tester; .ci/setup installs it)");
        // Give SIPp time to bind its socket.
        std::thread::sleep(Duration::from_millis(300));
        Sipp {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits (up to 10 s) for SIPp to finish its one call; its exit status says whether every
    /// step of the scenario happened as written (and the Refer-To check matched). Returns the
    /// message log.
    pub fn finish(mut self) -> String {
        let mut status = None;
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let messages = self.log("messages.log");
        match status {
            Some(s) if s.success() => messages,
            other => panic!(
                "SIPp's scenario failed ({other:?})\n--- errors ---\n{}\n--- messages ---\n{messages}",
                self.log("errors.log")
            ),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
