//! RTP and RTCP from the network, as the media session reads them: RTP header parsing
//! (`RtpPacket::parse`), RTCP compound parsing (`rtcp::parse_compound`), RFC 4733
//! telephone-events (`DtmfReceiver`), and the receive-side state fed by them (jitter buffer,
//! sequence extension, receiver statistics). The input is a sequence of datagrams, each prefixed
//! by a 2-byte length, so the stateful parts see streams.
//!
//! Properties: nothing panics; a parsed RTP packet serialises back to exactly the input bytes
//! (padding octets zeroed), a parsed RTCP compound serialises and parses back to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telephony::dtmf::{DtmfReceiver, TelephoneEvent};
use telephony::jitter::{JitterBuffer, JitterConfig};
use telephony::rtcp::{self, ReceiverStats};
use telephony::rtp::{RtpPacket, SeqExtender, is_rtcp};

fn check_rtp(buf: &[u8], p: &RtpPacket) {
    let bytes = p.to_bytes().expect("a parsed RTP packet serialises");
    assert_eq!(bytes.len(), p.wire_len());
    assert_eq!(bytes.len(), buf.len());
    let pad = usize::from(p.padding);
    // Everything but the padding octets before the count (their content is free) is reproduced.
    let cut = buf.len() - pad;
    assert_eq!(&bytes[..cut], &buf[..cut]);
    if pad > 0 {
        assert_eq!(bytes.last(), buf.last());
    }
    assert_eq!(RtpPacket::parse(&bytes).as_ref(), Ok(p));
}

fuzz_target!(|data: &[u8]| {
    let mut dtmf = DtmfReceiver::new();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut seq = SeqExtender::new();
    let mut stats = ReceiverStats::new(8000);
    let mut rest = data;
    let mut now_ms = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 1500;
        let len = len.min(rest.len() - 2);
        let (buf, tail) = rest[2..].split_at(len);
        rest = tail;
        now_ms += 10;

        if let Ok(packets) = rtcp::parse_compound(buf) {
            // A packet kept raw (`Other`) whose padding was stripped cannot be written back
            // (not a whole number of words); everything that serialises reads back the same.
            if let Ok(bytes) = rtcp::serialize_compound(&packets) {
                let again = rtcp::parse_compound(&bytes).expect("serialised RTCP parses");
                assert_eq!(again, packets);
            }
            for p in &packets {
                if let rtcp::RtcpPacket::SenderReport { info, reports, .. } = p {
                    stats.on_sender_report(info.ntp_timestamp, now_ms);
                    for b in reports {
                        let _ = rtcp::round_trip_ms(b, info.ntp_timestamp);
                    }
                }
            }
        }
        if is_rtcp(buf) {
            continue;
        }
        let Ok(p) = RtpPacket::parse(buf) else {
            continue;
        };
        check_rtp(buf, &p);
        let _ = seq.update(p.sequence);
        if p.payload_type == 101 {
            if let Ok(ev) = TelephoneEvent::parse(&p.payload) {
                assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
            }
            stats.on_rtp_no_jitter(p.ssrc, p.sequence);
            let _ = dtmf.on_packet(p.ssrc, p.timestamp, &p.payload);
        } else {
            stats.on_rtp_ms(p.ssrc, p.sequence, p.timestamp, now_ms);
            let _ = jb.push(p, now_ms);
            let _ = jb.pop(now_ms);
            let _ = jb.current_delay_ms(now_ms);
        }
        let _ = stats.report_block(now_ms);
    }
    let _ = (
        stats.lost(),
        stats.expected(),
        stats.jitter_ms(),
        jb.stats(),
    );
});
