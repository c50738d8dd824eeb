//! Property tests for the SIP parser: arbitrary bytes and mutated real messages never panic it,
//! and what it accepts survives a serialise → parse round trip.

use std::path::Path;

use proptest::prelude::*;
use telephony::sip::{self, Framing, Message};

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sip/rfc4475/dat");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("rfc4475 dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    v.sort();
    v
}

fn round_trip(data: &[u8]) {
    if let Ok(m) = sip::parse(data, Framing::Datagram) {
        let bytes = match &m {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        let again = sip::parse(&bytes, Framing::Datagram).expect("a serialised message parses");
        match (&m, &again) {
            (Message::Request(a), Message::Request(b)) => {
                assert_eq!(a.method, b.method);
                assert_eq!(a.uri, b.uri);
                assert_eq!(a.body, b.body);
                assert_eq!(a.cseq(), b.cseq());
                assert_eq!(a.call_id(), b.call_id());
            }
            (Message::Response(a), Message::Response(b)) => {
                assert_eq!(a.status, b.status);
                assert_eq!(a.body, b.body);
            }
            _ => panic!("kind changed"),
        }
        // Over a stream the serialised form (which always has Content-Length) also frames.
        assert!(sip::parse(&bytes, Framing::Stream).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = sip::parse(&data, Framing::Datagram);
        let _ = sip::parse(&data, Framing::Stream);
    }

    #[test]
    fn mutated_torture_messages_never_panic_and_round_trip(
        pick in 0usize..1000,
        edits in proptest::collection::vec((0usize..4000, any::<u8>(), 0u8..3), 1..8),
    ) {
        let c = corpus();
        let mut data = c[pick % c.len()].clone();
        for (pos, byte, kind) in edits {
            if data.is_empty() { break; }
            let i = pos % data.len();
            match kind {
                0 => data[i] = byte,
                1 => { data.remove(i); }
                _ => data.insert(i, byte),
            }
        }
        round_trip(&data);
    }
}

#[test]
fn every_torture_message_round_trips() {
    for m in corpus() {
        round_trip(&m);
    }
}
