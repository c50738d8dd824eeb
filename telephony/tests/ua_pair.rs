//! Two sans-IO user agents wired together in memory with simulated time: calls both ways, hold
//! and resume by re-INVITE, CANCEL, OPTIONS, REGISTER with digest, and packet loss. No sockets,
//! no sleeps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use telephony::sip::Uri;
use telephony::sip::transaction::TimerConfig;
use telephony::sip::ua::{CallEvent, CallId, Credentials, UaConfig, UaOutput, UserAgent};

const A: &str = "127.0.0.1:5060";
const B: &str = "127.0.0.1:5070";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn ua(at: &str, user: &str) -> UserAgent {
    UserAgent::new(UaConfig {
        local: addr(at),
        user: user.into(),
        user_agent: "test".into(),
        timers: TimerConfig::default(),
    })
}

struct Net {
    a: UserAgent,
    b: UserAgent,
    now: Instant,
    /// (to, data) in flight.
    queue: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    events: Vec<(char, CallId, CallEvent)>,
    /// Drop the n-th datagram (counting from 1) when it starts with the given text.
    drops: Vec<(String, usize)>,
    seen: HashMap<String, usize>,
}

impl Net {
    fn new() -> Net {
        Net {
            a: ua(A, "alice"),
            b: ua(B, "bob"),
            now: Instant::now(),
            queue: Vec::new(),
            events: Vec::new(),
            drops: Vec::new(),
            seen: HashMap::new(),
        }
    }

    fn take(&mut self, side: char, outs: Vec<UaOutput>) {
        let from = addr(if side == 'a' { A } else { B });
        for o in outs {
            match o {
                UaOutput::Send { to, data } => self.queue.push((from, to, data)),
                UaOutput::Event { call, event } => self.events.push((side, call, event)),
            }
        }
    }

    /// Deliver everything in flight, then advance time in 10 ms steps for `dur`.
    fn run(&mut self, dur: Duration) {
        let end = self.now + dur;
        loop {
            while !self.queue.is_empty() {
                let (from, to, data) = self.queue.remove(0);
                let first_line = String::from_utf8_lossy(&data)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let mut dropped = false;
                for (prefix, nth) in &self.drops {
                    if first_line.starts_with(prefix.as_str()) {
                        let n = self.seen.entry(prefix.clone()).or_insert(0);
                        *n += 1;
                        if *n == *nth {
                            dropped = true;
                        }
                    }
                }
                if dropped {
                    continue;
                }
                let now = self.now;
                if to == addr(A) {
                    let outs = self.a.on_datagram(&data, from, now);
                    self.take('a', outs);
                } else if to == addr(B) {
                    let outs = self.b.on_datagram(&data, from, now);
                    self.take('b', outs);
                }
            }
            if self.now >= end {
                return;
            }
            self.now += Duration::from_millis(10);
            let now = self.now;
            let oa = self.a.on_timer(now);
            self.take('a', oa);
            let ob = self.b.on_timer(now);
            self.take('b', ob);
        }
    }

    fn drain(&mut self, side: char) -> Vec<(CallId, CallEvent)> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.events.drain(..).partition(|e| e.0 == side);
        self.events = rest;
        mine.into_iter().map(|(_, c, e)| (c, e)).collect()
    }
}

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";

fn establish(net: &mut Net) -> (CallId, CallId) {
    let now = net.now;
    let (ca, outs) = net.a.invite(
        addr(B),
        Uri::parse("sip:bob@127.0.0.1:5070").expect("uri"),
        Some("Bank"),
        SDP.to_vec(),
        None,
        now,
    );
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    let ev = net.drain('b');
    let (cb, CallEvent::Incoming { sdp, from, .. }) = ev[0].clone() else {
        panic!("{ev:?}")
    };
    assert_eq!(sdp, SDP);
    assert!(from.contains("\"Bank\""), "{from}");
    let outs = net.b.accept(cb, SDP.to_vec(), net.now);
    net.take('b', outs);
    net.run(Duration::from_millis(50));
    assert!(
        net.drain('a')
            .contains(&(ca, CallEvent::Answered { sdp: SDP.to_vec() }))
    );
    assert_eq!(net.drain('b'), vec![(cb, CallEvent::Confirmed)]);
    (ca, cb)
}

#[test]
fn a_call_is_set_up_and_torn_down_from_either_side() {
    let mut net = Net::new();
    let (ca, cb) = establish(&mut net);
    let outs = net.a.hangup(ca, net.now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('a'),
        vec![(ca, CallEvent::Ended { remote: false })]
    );
    assert_eq!(
        net.drain('b'),
        vec![(cb, CallEvent::Ended { remote: true })]
    );

    let (ca, cb) = establish(&mut net);
    let outs = net.b.hangup(cb, net.now);
    net.take('b', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('a'),
        vec![(ca, CallEvent::Ended { remote: true })]
    );
    assert_eq!(
        net.drain('b'),
        vec![(cb, CallEvent::Ended { remote: false })]
    );
}

#[test]
fn hold_and_resume_by_re_invite() {
    let mut net = Net::new();
    let (ca, cb) = establish(&mut net);
    let hold = String::from_utf8_lossy(SDP)
        .replace("sendrecv", "sendonly")
        .into_bytes();
    let outs = net.a.reinvite(ca, hold.clone(), net.now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(net.drain('b'), vec![(cb, CallEvent::Reoffer { sdp: hold })]);
    let answer = String::from_utf8_lossy(SDP)
        .replace("sendrecv", "recvonly")
        .into_bytes();
    let outs = net.b.accept(cb, answer.clone(), net.now);
    net.take('b', outs);
    net.run(Duration::from_secs(5));
    assert_eq!(
        net.drain('a'),
        vec![(ca, CallEvent::Reanswered { sdp: answer })]
    );
    // The re-INVITE's 2xx was ACKed: no retransmissions reached A after 5 s.
    assert!(net.drain('b').is_empty());
    // The call still works: hang up normally.
    let outs = net.a.hangup(ca, net.now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('b'),
        vec![(cb, CallEvent::Ended { remote: true })]
    );
}

#[test]
fn a_re_invite_refused_with_488_leaves_the_call_up() {
    let mut net = Net::new();
    let (ca, cb) = establish(&mut net);
    let offer = String::from_utf8_lossy(SDP)
        .replace("sendrecv", "inactive")
        .into_bytes();
    let outs = net.a.reinvite(ca, offer.clone(), net.now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('b'),
        vec![(cb, CallEvent::Reoffer { sdp: offer })]
    );
    let outs = net.b.reject(cb, 488, "Not Acceptable Here", net.now);
    net.take('b', outs);
    net.run(Duration::from_secs(5));
    assert_eq!(
        net.drain('a'),
        vec![(ca, CallEvent::ReofferFailed { status: 488 })]
    );
    assert!(net.drain('b').is_empty());
    // The call is still up: a BYE ends it normally.
    let outs = net.a.hangup(ca, net.now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('b'),
        vec![(cb, CallEvent::Ended { remote: true })]
    );
}

#[test]
fn cancel_waits_for_a_provisional_then_ends_the_ringing_call() {
    let mut net = Net::new();
    let now = net.now;
    let (ca, outs) = net.a.invite(
        addr(B),
        Uri::parse("sip:bob@127.0.0.1:5070").expect("uri"),
        None,
        SDP.to_vec(),
        None,
        now,
    );
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    let (cb, _) = net.drain('b')[0].clone();
    // Only 100 Trying so far: RFC 3261 §9.1 says CANCEL waits for a provisional response.
    let outs = net.a.hangup(ca, net.now);
    assert!(outs.is_empty(), "no CANCEL before a provisional response");
    let outs = net.b.ring(cb, net.now);
    net.take('b', outs);
    net.run(Duration::from_millis(50));
    let ev = net.drain('a');
    assert!(
        matches!(ev[0], (c, CallEvent::Progress { status: 180, .. }) if c == ca),
        "{ev:?}"
    );
    assert!(
        matches!(ev[1], (c, CallEvent::Failed { status: 487, .. }) if c == ca),
        "the held CANCEL went out on the 180: {ev:?}"
    );
    assert_eq!(net.drain('b'), vec![(cb, CallEvent::Cancelled)]);
}

#[test]
fn options_ping_gets_a_reply() {
    let mut net = Net::new();
    let now = net.now;
    let (id, outs) = net.a.options(addr(B), now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(net.drain('a'), vec![(id, CallEvent::Reply { status: 200 })]);
}

#[test]
fn options_to_nobody_times_out() {
    let mut net = Net::new();
    let now = net.now;
    let (id, outs) = net.a.options(addr("127.0.0.1:5999"), now);
    net.take('a', outs);
    net.run(Duration::from_secs(33));
    assert_eq!(net.drain('a'), vec![(id, CallEvent::Timeout)]);
}

#[test]
fn register_with_digest_and_lookup() {
    let mut net = Net::new();
    net.b.set_registrar_accounts(
        "callbot",
        HashMap::from([("alice".to_string(), "pw1".to_string())]),
    );
    let now = net.now;
    let creds = Credentials {
        username: "alice".into(),
        password: "pw1".into(),
    };
    let (id, outs) = net
        .a
        .register(addr(B), "callbot.test", 600, Some(creds), now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(
        net.drain('a'),
        vec![(id, CallEvent::Registered { expires: 600 })]
    );
    assert_eq!(net.b.lookup("alice", net.now), Some(addr(A)));
    assert_eq!(
        net.b.lookup("alice", net.now + Duration::from_secs(601)),
        None,
        "bindings expire"
    );

    // A wrong password is refused and binds nothing.
    let mut net = Net::new();
    net.b.set_registrar_accounts(
        "callbot",
        HashMap::from([("alice".to_string(), "pw1".to_string())]),
    );
    let creds = Credentials {
        username: "alice".into(),
        password: "nope".into(),
    };
    let now = net.now;
    let (id, outs) = net
        .a
        .register(addr(B), "callbot.test", 600, Some(creds), now);
    net.take('a', outs);
    net.run(Duration::from_millis(50));
    assert_eq!(net.drain('a'), vec![(id, CallEvent::Reply { status: 401 })]);
    assert_eq!(net.b.lookup("alice", net.now), None);
}

#[test]
fn lost_invite_and_lost_200_are_recovered_by_retransmission() {
    let mut net = Net::new();
    net.drops = vec![("INVITE".into(), 1), ("SIP/2.0 200".into(), 1)];
    let now = net.now;
    let (ca, outs) = net.a.invite(
        addr(B),
        Uri::parse("sip:bob@127.0.0.1:5070").expect("uri"),
        None,
        SDP.to_vec(),
        None,
        now,
    );
    net.take('a', outs);
    net.run(Duration::from_millis(600));
    let ev = net.drain('b');
    assert_eq!(
        ev.len(),
        1,
        "one call despite the retransmitted INVITE: {ev:?}"
    );
    let cb = ev[0].0;
    let outs = net.b.accept(cb, SDP.to_vec(), net.now);
    net.take('b', outs);
    net.run(Duration::from_millis(600));
    assert!(
        net.drain('a')
            .contains(&(ca, CallEvent::Answered { sdp: SDP.to_vec() }))
    );
    assert_eq!(net.drain('b'), vec![(cb, CallEvent::Confirmed)]);
}
