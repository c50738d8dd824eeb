//! SIP messages from the network: `telephony::sip::parse` (datagram and stream framing),
//! `stream_frame_len` (TCP framing), `check_request` (RFC 3261 §8.2 checks), and the user agent's
//! whole receive path, `UserAgent::on_datagram`, which answers bad requests with a 400.
//!
//! Properties: nothing panics; a parsed message re-serialised parses again to the same message;
//! a parse error that is answered has a non-empty reason, and its response parses; every
//! datagram the user agent sends back parses as a SIP response with a status and a reason.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use telephony::sip::msg::stream_frame_len;
use telephony::sip::transaction::TimerConfig;
use telephony::sip::ua::{UaConfig, UaOutput, UserAgent};
use telephony::sip::{Framing, Message, check_request, parse};

fn reserialise(m: &Message) -> Vec<u8> {
    match m {
        Message::Request(r) => r.to_bytes(),
        Message::Response(r) => r.to_bytes(),
    }
}

fn without_length(m: &Message) -> Message {
    let mut m = m.clone();
    match &mut m {
        Message::Request(r) => r.headers.remove("Content-Length"),
        Message::Response(r) => r.headers.remove("Content-Length"),
    }
    m
}

fn check_round_trip(m: &Message) {
    let bytes = reserialise(m);
    for framing in [Framing::Datagram, Framing::Stream] {
        match parse(&bytes, framing) {
            // Content-Length is rewritten, at the end of the header section.
            Ok(again) => assert_eq!(
                without_length(&again),
                without_length(m),
                "re-serialised message parses differently"
            ),
            Err(e) => panic!(
                "re-serialised message does not parse ({framing:?}): {e}\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    assert_eq!(stream_frame_len(&bytes), Ok(Some(bytes.len())));
}

/// What the user agent sends back: always a well-formed status line and framing. Its Via, From,
/// To, Call-ID and CSeq are copied from the request (RFC 3261 §8.2.6), so when the request itself
/// was refused for one of those (RFC 4475's `badvers` keeps a `SIP/7.0` Via in the 505), only a
/// request that parsed promises a response that parses.
fn check_sent(data: &[u8], request_parsed: bool) {
    let text = String::from_utf8_lossy(data);
    let line = text.split("\r\n").next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("SIP/2.0"), "bad status line {line:?}");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    assert!((100..=699).contains(&status));
    assert!(
        !parts.next().unwrap_or("").trim().is_empty(),
        "a response without a reason: {line:?}"
    );
    assert_eq!(
        stream_frame_len(data),
        Ok(Some(data.len())),
        "framing of\n{text}"
    );
    if request_parsed && let Err(e) = parse(data, Framing::Datagram) {
        panic!("the user agent sent a message that does not parse: {e}\n{text}");
    }
}

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Datagram, Framing::Stream] {
        match parse(data, framing) {
            Ok(m) => {
                check_round_trip(&m);
                if let Message::Request(r) = &m
                    && let Err((status, reason, _)) = check_request(r)
                {
                    assert!((400..=699).contains(&status));
                    assert!(!reason.is_empty(), "an empty rejection reason");
                }
            }
            Err(e) => {
                if let Some(status) = e.status {
                    assert!((400..=699).contains(&status));
                    assert!(!e.reason.is_empty(), "an empty {status} reason");
                }
                if let Some(resp) = e.response() {
                    check_sent(&resp.to_bytes(), false);
                }
            }
        }
    }
    if let Ok(Some(n)) = stream_frame_len(data) {
        assert!(n <= data.len());
    }

    let local: SocketAddr = ([127, 0, 0, 1], 5060).into();
    let peer: SocketAddr = ([192, 0, 2, 7], 5062).into();
    let mut ua = UserAgent::new(UaConfig {
        local,
        user: "callbot".into(),
        user_agent: "callbot-fuzz".into(),
        timers: TimerConfig::default(),
    });
    let now = Instant::now();
    let parsed = parse(data, Framing::Datagram).is_ok();
    // Twice: the second delivery is a retransmission, handled by the transaction layer.
    for _ in 0..2 {
        for out in ua.on_datagram(data, peer, now) {
            if let UaOutput::Send { to, data } = out {
                assert_eq!(to, peer, "an answer to an address read from the message");
                check_sent(&data, parsed);
            }
        }
    }
});
