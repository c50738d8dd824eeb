//! Real captures from sipp's test material: RFC 4733 DTMF events (one digit per file) and a
//! G.711 A-law call, parsed with `pcap-file`, stripped of link/IP/UDP headers and fed to the
//! crate's RTP, telephone-event and A-law code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use std::path::PathBuf;
use telephony::dtmf::{DEFAULT_EVENT_PAYLOAD_TYPE, DtmfReceiver, TelephoneEvent};
use telephony::g711::Codec;
use telephony::rtp::RtpPacket;

fn sipp() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/sipp"
    ))
}

/// UDP payloads of all IPv4/UDP packets in a pcap, whatever its link type.
fn udp_payloads(path: &PathBuf) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = PcapReader::new(file).unwrap();
    let link = reader.header().datalink;
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        let data: &[u8] = &pkt.data;
        let ip = match link {
            DataLink::ETHERNET => {
                let mut at = 12;
                let mut ethertype = u16::from_be_bytes([data[at], data[at + 1]]);
                while ethertype == 0x8100 || ethertype == 0x88a8 {
                    at += 4; // VLAN tag
                    ethertype = u16::from_be_bytes([data[at], data[at + 1]]);
                }
                if ethertype != 0x0800 {
                    continue;
                }
                &data[at + 2..]
            }
            DataLink::LINUX_SLL => {
                if u16::from_be_bytes([data[14], data[15]]) != 0x0800 {
                    continue;
                }
                &data[16..]
            }
            DataLink::NULL | DataLink::LOOP => &data[4..],
            DataLink::RAW | DataLink::IPV4 => data,
            other => panic!("unexpected link type {other:?}"),
        };
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue; // not IPv4/UDP
        }
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let udp = &ip[ihl..total.min(ip.len())];
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(udp[8..udp_len.min(udp.len())].to_vec());
    }
    out
}

#[test]
fn rfc4733_captures_give_their_digit_exactly_once() {
    let dir = sipp().join("scenarios/pcap");
    let names: Vec<(String, char)> = (0..=9)
        .map(|d| (d.to_string(), char::from(b'0' + d)))
        .chain([("star".to_string(), '*'), ("pound".to_string(), '#')])
        .collect();
    for (name, want) in names {
        let path = dir.join(format!("dtmf_2833_{name}.pcap"));
        let payloads = udp_payloads(&path);
        assert_eq!(payloads.len(), 10, "{name}");
        let mut rx = DtmfReceiver::new();
        let mut digits = Vec::new();
        let mut ends = 0;
        let mut first_marker = None;
        for p in &payloads {
            let rtp = RtpPacket::parse(p).unwrap();
            assert_eq!(rtp.payload_type, DEFAULT_EVENT_PAYLOAD_TYPE);
            first_marker.get_or_insert(rtp.marker);
            let ev = TelephoneEvent::parse(&rtp.payload).unwrap();
            ends += usize::from(ev.end);
            if let Some(d) = rx.on_packet(rtp.ssrc, rtp.timestamp, &rtp.payload).unwrap() {
                digits.push(d.digit);
            }
        }
        assert_eq!(digits, vec![want], "{name}");
        assert_eq!(
            first_marker,
            Some(true),
            "{name}: first packet has the marker"
        );
        assert_eq!(ends, 3, "{name}: three end packets");
        let (digit, duration, ended) = rx.last_event().unwrap();
        assert_eq!((digit, duration, ended), (want, 2240, true), "{name}");
    }
}

/// The `data` chunk of a RIFF/WAVE file and its format tag (hound reads PCM only).
fn wav_data(bytes: &[u8]) -> (u16, Vec<u8>) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut at = 12;
    let mut format = 0;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            format = u16::from_le_bytes([body[0], body[1]]);
            assert_eq!(u16::from_le_bytes([body[2], body[3]]), 1, "mono");
            assert_eq!(
                u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
                8000
            );
        }
        if id == b"data" {
            return (format, body.to_vec());
        }
        at += 8 + len + (len & 1);
    }
    panic!("no data chunk");
}

/// A-law expansion written straight from the G.711 segment table, independently of the
/// crate's implementation: magnitude (2m+1)·8 in segment 0, (2m+33)·8·2^(e−1) above.
fn alaw_reference(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let e = u32::from((a >> 4) & 7);
    let m = i32::from(a & 0x0F);
    let mag = if e == 0 {
        (2 * m + 1) * 8
    } else {
        ((2 * m + 33) * 8) << (e - 1)
    };
    if a & 0x80 != 0 {
        mag as i16
    } else {
        -mag as i16
    }
}

#[test]
fn g711a_capture_decodes_like_the_reference_recording() {
    let payloads = udp_payloads(&sipp().join("scenarios/pcap/g711a.pcap"));
    let mut packets: Vec<RtpPacket> = payloads
        .iter()
        .map(|p| RtpPacket::parse(p).unwrap())
        .filter(|p| p.payload_type == Codec::Pcma.payload_type())
        .collect();
    assert_eq!(packets.len(), 236);
    packets.sort_by_key(|p| p.sequence);
    // Timestamps advance by the payload length (one byte per sample).
    for w in packets.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp) as usize,
            w[0].payload.len()
        );
    }
    let alaw: Vec<u8> = packets.iter().flat_map(|p| p.payload.clone()).collect();

    // The reference WAV (format 6 = A-law, 8 kHz mono) holds the same stream.
    let wav = std::fs::read(sipp().join("g711a_decoded.wav")).unwrap();
    let (format, ref_alaw) = wav_data(&wav);
    assert_eq!(format, 6, "A-law WAV");
    assert_eq!(alaw.len(), ref_alaw.len());
    assert_eq!(alaw, ref_alaw, "RTP payloads are the recording's bytes");

    // Decode both: ours from the capture, the reference expansion from the WAV.
    let ours = Codec::Pcma.decode(&alaw);
    let reference: Vec<i16> = ref_alaw.iter().map(|&b| alaw_reference(b)).collect();
    assert_eq!(ours, reference, "sample-exact");
    let dot: f64 = ours
        .iter()
        .zip(&reference)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let norm = |v: &[i16]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let corr = dot / (norm(&ours) * norm(&reference));
    assert!(corr > 0.99, "correlation {corr}");
    // Not a silent capture: there is real signal in it.
    let rms = norm(&ours) / (ours.len() as f64).sqrt();
    assert!(rms > 100.0, "rms {rms}");
}
