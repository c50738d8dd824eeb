//! RTP (RFC 3550) packets: parsing and serialisation of the fixed header, CSRC list, header
//! extension and padding; a sans-IO sender state ([`RtpSender`]) that numbers and timestamps
//! outgoing packets; and sequence-number extension ([`SeqExtender`], RFC 3550 appendix A.1 style).
//!
//! Parsing never panics: malformed or short input gives an [`RtpError`]. Limits: no SRTP, no
//! RFC 8285 parsing of the extension's elements (the extension is kept as raw profile + bytes),
//! and no source probation (a new source is accepted from its first packet).

use rand::Rng;
use thiserror::Error;

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;
/// The only RTP version in use.
pub const RTP_VERSION: u8 = 2;

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed header, CSRC list or extension need.
    #[error("RTP packet too short: need {needed} bytes, have {len}")]
    TooShort {
        /// Bytes needed to continue parsing.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// The padding count is zero or larger than the payload.
    #[error("invalid RTP padding length {0}")]
    BadPadding(u8),
    /// A value does not fit its field when serialising.
    #[error("RTP field out of range: {0}")]
    FieldRange(&'static str),
}

/// An RTP header extension (RFC 3550 §5.3.1): a 16-bit profile-defined value and data whose
/// length is a multiple of 4 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpExtension {
    /// The "defined by profile" field (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension data, a multiple of 4 bytes long.
    pub data: Vec<u8>,
}

/// One RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Marker bit (for audio: first packet of a talkspurt).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrc: Vec<u32>,
    /// Optional header extension.
    pub extension: Option<RtpExtension>,
    /// Payload, without padding.
    pub payload: Vec<u8>,
    /// Number of padding bytes (including the count byte) on the wire; 0 for none.
    pub padding: u8,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl RtpPacket {
    /// A plain packet: no CSRC, extension or padding.
    pub fn new(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: Vec<u8>,
    ) -> RtpPacket {
        RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc: Vec::new(),
            extension: None,
            payload,
            padding: 0,
        }
    }

    /// Parse a datagram. Never panics; malformed input gives an error.
    pub fn parse(buf: &[u8]) -> Result<RtpPacket, RtpError> {
        let len = buf.len();
        if len < RTP_HEADER_LEN {
            return Err(RtpError::TooShort {
                needed: RTP_HEADER_LEN,
                len,
            });
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let cc = usize::from(buf[0] & 0x0F);
        let marker = buf[1] & 0x80 != 0;
        let payload_type = buf[1] & 0x7F;
        let sequence = be16(buf, 2);
        let timestamp = be32(buf, 4);
        let ssrc = be32(buf, 8);
        let mut at = RTP_HEADER_LEN;
        let needed = at + 4 * cc;
        if len < needed {
            return Err(RtpError::TooShort { needed, len });
        }
        let csrc = (0..cc).map(|i| be32(buf, at + 4 * i)).collect();
        at = needed;
        let extension = if has_extension {
            if len < at + 4 {
                return Err(RtpError::TooShort {
                    needed: at + 4,
                    len,
                });
            }
            let profile = be16(buf, at);
            let words = usize::from(be16(buf, at + 2));
            let needed = at + 4 + 4 * words;
            if len < needed {
                return Err(RtpError::TooShort { needed, len });
            }
            let data = buf[at + 4..needed].to_vec();
            at = needed;
            Some(RtpExtension { profile, data })
        } else {
            None
        };
        let mut end = len;
        let mut padding = 0;
        if has_padding {
            let count = buf[len - 1];
            if count == 0 || usize::from(count) > len - at {
                return Err(RtpError::BadPadding(count));
            }
            padding = count;
            end = len - usize::from(count);
        }
        Ok(RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc,
            extension,
            payload: buf[at..end].to_vec(),
            padding,
        })
    }

    /// Length of the serialised packet.
    pub fn wire_len(&self) -> usize {
        RTP_HEADER_LEN
            + 4 * self.csrc.len()
            + self.extension.as_ref().map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + usize::from(self.padding)
    }

    /// Serialise, appending to `out`. Fails if a field does not fit (payload type > 127, more
    /// than 15 CSRCs, extension data not a multiple of 4 bytes or too long).
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.payload_type > 0x7F {
            return Err(RtpError::FieldRange("payload type"));
        }
        if self.csrc.len() > 15 {
            return Err(RtpError::FieldRange("CSRC count"));
        }
        let ext_words = match &self.extension {
            Some(e) if e.data.len() % 4 != 0 || e.data.len() / 4 > usize::from(u16::MAX) => {
                return Err(RtpError::FieldRange("extension length"));
            }
            Some(e) => (e.data.len() / 4) as u16,
            None => 0,
        };
        out.reserve(self.wire_len());
        let mut b0 = RTP_VERSION << 6 | self.csrc.len() as u8;
        if self.padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrc {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some(e) = &self.extension {
            out.extend_from_slice(&e.profile.to_be_bytes());
            out.extend_from_slice(&ext_words.to_be_bytes());
            out.extend_from_slice(&e.data);
        }
        out.extend_from_slice(&self.payload);
        if self.padding > 0 {
            out.extend(std::iter::repeat_n(0u8, usize::from(self.padding) - 1));
            out.push(self.padding);
        }
        Ok(())
    }

    /// Serialise to a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RtpError> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.write_to(&mut out)?;
        Ok(out)
    }
}

/// True if a datagram on a shared RTP/RTCP port is RTCP (RFC 5761 §4: second byte 192..=223,
/// i.e. RTCP packet types 192–223, which RTP payload types with the marker bit cannot collide
/// with for the dynamic/static types in use).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == RTP_VERSION && (192..=223).contains(&buf[1])
}

/// Sans-IO state of one outgoing RTP stream: SSRC, next sequence number, media clock, counters
/// for RTCP sender reports, and the talkspurt marker.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    marker_pending: bool,
    packets_sent: u32,
    octets_sent: u32,
    last_timestamp: Option<u32>,
}

/// Samples in one 20 ms frame at 8 kHz.
pub const SAMPLES_PER_FRAME: u32 = 160;

impl RtpSender {
    /// A sender with random SSRC, initial sequence number and initial timestamp (RFC 3550 §5.1).
    pub fn new<R: Rng + ?Sized>(payload_type: u8, rng: &mut R) -> RtpSender {
        RtpSender::with_state(payload_type, rng.random(), rng.random(), rng.random())
    }

    /// A sender with given initial state (tests, or resuming a stream).
    pub fn with_state(payload_type: u8, ssrc: u32, sequence: u16, timestamp: u32) -> RtpSender {
        RtpSender {
            ssrc,
            sequence,
            timestamp,
            payload_type,
            marker_pending: true,
            packets_sent: 0,
            octets_sent: 0,
            last_timestamp: None,
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will get.
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// The media timestamp of the next audio frame.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Packets sent so far (for RTCP SR).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets sent so far (for RTCP SR).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// Timestamp of the last packet sent, if any.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_timestamp
    }

    /// The next audio packet: carries the current timestamp, the marker if a talkspurt starts,
    /// then advances the clock by `samples` (160 for 20 ms at 8 kHz).
    pub fn audio_packet(&mut self, payload: Vec<u8>, samples: u32) -> RtpPacket {
        let marker = std::mem::take(&mut self.marker_pending);
        let ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.emit(self.payload_type, ts, marker, payload)
    }

    /// A packet of another payload type (e.g. RFC 4733 events) with an explicit timestamp; it
    /// shares the sequence space and does not move the audio clock.
    pub fn packet_at(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: Vec<u8>,
    ) -> RtpPacket {
        self.emit(payload_type, timestamp, marker, payload)
    }

    /// Let `samples` of media time pass without sending audio (silence suppression, or a DTMF
    /// event in progress). The next audio packet starts a talkspurt and gets the marker bit.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.marker_pending = true;
    }

    /// Make the next audio packet carry the marker bit.
    pub fn start_talkspurt(&mut self) {
        self.marker_pending = true;
    }

    fn emit(&mut self, pt: u8, ts: u32, marker: bool, payload: Vec<u8>) -> RtpPacket {
        let seq = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_timestamp = Some(ts);
        RtpPacket::new(pt, seq, ts, self.ssrc, marker, payload)
    }
}

/// Largest forward jump accepted as in-order with loss (RFC 3550 A.1 MAX_DROPOUT).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step treated as reordering rather than a restart (RFC 3550 A.1 MAX_MISORDER).
pub const MAX_MISORDER: u16 = 100;

/// What [`SeqExtender::update`] made of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// In order (possibly after a gap, possibly after a wrap): the new highest sequence number.
    InOrder(u64),
    /// Older than the highest seen: reordered or duplicate; its extended value.
    Old(u64),
    /// A large jump; held back until a second consecutive packet confirms it.
    Jump,
    /// The second packet after a large jump: the source restarted, counters were reset.
    Restarted(u64),
}

impl SeqStatus {
    /// The extended sequence number, if the packet was accepted.
    pub fn extended(self) -> Option<u64> {
        match self {
            SeqStatus::InOrder(e) | SeqStatus::Old(e) | SeqStatus::Restarted(e) => Some(e),
            SeqStatus::Jump => None,
        }
    }
}

/// Extends 16-bit RTP sequence numbers to 64 bits across wrap-around (RFC 3550 A.1 without
/// probation): tracks the highest sequence number, the number of wraps, and restarts on a
/// confirmed large jump.
#[derive(Debug, Clone, Default)]
pub struct SeqExtender {
    init: bool,
    base_seq: u16,
    max_seq: u16,
    cycles: u64,
    bad_seq: Option<u16>,
    restarts: u32,
}

impl SeqExtender {
    /// A tracker that has seen nothing.
    pub fn new() -> SeqExtender {
        SeqExtender::default()
    }

    fn reset(&mut self, seq: u16) {
        self.init = true;
        self.base_seq = seq;
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = None;
    }

    /// Account for one received sequence number.
    pub fn update(&mut self, seq: u16) -> SeqStatus {
        if !self.init {
            self.reset(seq);
            return SeqStatus::InOrder(u64::from(seq));
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta == 0 {
            return SeqStatus::Old(self.cycles + u64::from(seq));
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
            self.bad_seq = None;
            SeqStatus::InOrder(self.cycles + u64::from(seq))
        } else if udelta <= u16::MAX - MAX_MISORDER {
            // Large jump: accept only if the next packet continues from it.
            if self.bad_seq == Some(seq) {
                self.reset(seq);
                self.restarts += 1;
                SeqStatus::Restarted(u64::from(seq))
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                SeqStatus::Jump
            }
        } else {
            // Reordered or duplicate: belongs to this cycle, or the previous one if it is
            // numerically above the current maximum.
            let ext = if seq > self.max_seq {
                (self.cycles + u64::from(seq)).saturating_sub(1 << 16)
            } else {
                self.cycles + u64::from(seq)
            };
            SeqStatus::Old(ext)
        }
    }

    /// Whether any packet has been seen.
    pub fn is_initialised(&self) -> bool {
        self.init
    }

    /// The first sequence number (since the last restart).
    pub fn base_seq(&self) -> u16 {
        self.base_seq
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// Wrap count shifted left by 16, as in RFC 3550 A.1.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// How many confirmed restarts (large jumps) were seen.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_known_packet() {
        // From sipp's dtmf_2833_0.pcap: PT 101 with marker, seq 0x2f30, ts 0x44e0.
        let bytes = [
            0x80, 0xe5, 0x2f, 0x30, 0x00, 0x00, 0x44, 0xe0, 0x0e, 0x05, 0x38, 0x4e, 0x00, 0x0a,
            0x00, 0x00,
        ];
        let p = RtpPacket::parse(&bytes).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 101);
        assert_eq!(p.sequence, 0x2f30);
        assert_eq!(p.timestamp, 0x44e0);
        assert_eq!(p.ssrc, 0x0e05_384e);
        assert_eq!(p.payload, vec![0, 0x0a, 0, 0]);
        assert!(p.csrc.is_empty() && p.extension.is_none() && p.padding == 0);
        assert_eq!(p.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn full_header_round_trips() {
        let p = RtpPacket {
            marker: false,
            payload_type: 8,
            sequence: 65535,
            timestamp: u32::MAX,
            ssrc: 0xdead_beef,
            csrc: vec![1, 2, 3],
            extension: Some(RtpExtension {
                profile: 0xBEDE,
                data: vec![0x10, 0xAA, 0, 0],
            }),
            payload: vec![0xD5; 160],
            padding: 4,
        };
        let b = p.to_bytes().unwrap();
        assert_eq!(b.len(), p.wire_len());
        assert_eq!(b.len(), 12 + 12 + 8 + 160 + 4);
        assert_eq!(b[0], 0x80 | 0x20 | 0x10 | 3);
        assert_eq!(*b.last().unwrap(), 4);
        assert_eq!(RtpPacket::parse(&b).unwrap(), p);
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            RtpPacket::parse(&[0x80, 0, 0]),
            Err(RtpError::TooShort { needed: 12, len: 3 })
        ));
        let mut b = RtpPacket::new(0, 1, 2, 3, false, vec![1, 2, 3])
            .to_bytes()
            .unwrap();
        b[0] = 0x40; // version 1
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadVersion(1)));
        b[0] = 0x82; // two CSRCs claimed, 3 bytes present
        assert!(matches!(
            RtpPacket::parse(&b),
            Err(RtpError::TooShort { needed: 20, .. })
        ));
        b[0] = 0x90; // extension claimed, header missing
        assert!(matches!(
            RtpPacket::parse(&b),
            Err(RtpError::TooShort { needed: 16, .. })
        ));
        b[0] = 0xA0; // padding of 3 bytes = whole payload is fine …
        assert_eq!(RtpPacket::parse(&b).unwrap().payload, Vec::<u8>::new());
        let mut c = b.clone();
        *c.last_mut().unwrap() = 4; // … more than the payload is not
        assert_eq!(RtpPacket::parse(&c), Err(RtpError::BadPadding(4)));
        *c.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&c), Err(RtpError::BadPadding(0)));
        // Extension length word pointing past the end.
        let mut d = vec![
            0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 5, 1, 2,
        ];
        assert!(matches!(
            RtpPacket::parse(&d),
            Err(RtpError::TooShort { needed: 36, .. })
        ));
        d[15] = 0;
        assert_eq!(RtpPacket::parse(&d).unwrap().payload, vec![1, 2]);
    }

    #[test]
    fn serialise_checks_ranges() {
        let mut p = RtpPacket::new(128, 0, 0, 0, false, vec![]);
        assert!(p.to_bytes().is_err());
        p.payload_type = 0;
        p.csrc = vec![0; 16];
        assert!(p.to_bytes().is_err());
        p.csrc.clear();
        p.extension = Some(RtpExtension {
            profile: 1,
            data: vec![1, 2, 3],
        });
        assert!(p.to_bytes().is_err());
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&[0x80, 0, 0, 6]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8, 0, 6])); // PCMA with marker
        assert!(!is_rtcp(&[0x80, 0xe5, 0, 6])); // PT 101 with marker
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn sender_numbers_and_times_packets() {
        let mut s = RtpSender::with_state(0, 42, 65534, u32::MAX - 159);
        let a = s.audio_packet(vec![0xFF; 160], SAMPLES_PER_FRAME);
        let b = s.audio_packet(vec![0xFF; 160], SAMPLES_PER_FRAME);
        let c = s.audio_packet(vec![0xFF; 160], SAMPLES_PER_FRAME);
        assert_eq!((a.sequence, b.sequence, c.sequence), (65534, 65535, 0));
        assert_eq!(
            (a.timestamp, b.timestamp, c.timestamp),
            (u32::MAX - 159, 0, 160)
        );
        assert!(
            a.marker && !b.marker && !c.marker,
            "marker on first packet only"
        );
        assert_eq!(a.ssrc, 42);
        // Silence: time passes, the next packet starts a talkspurt.
        s.skip(3 * SAMPLES_PER_FRAME);
        let d = s.audio_packet(vec![0xFF; 160], SAMPLES_PER_FRAME);
        assert!(d.marker);
        assert_eq!(d.sequence, 1, "no sequence gap for suppressed silence");
        assert_eq!(d.timestamp, 160 + 4 * 160);
        // An event packet shares the sequence space but not the clock.
        let e = s.packet_at(101, d.timestamp, true, vec![1, 0, 0, 0]);
        assert_eq!((e.sequence, e.payload_type), (2, 101));
        assert_eq!(s.timestamp(), d.timestamp + 160);
        assert_eq!(s.packets_sent(), 5);
        assert_eq!(s.octets_sent(), 4 * 160 + 4);
    }

    #[test]
    fn random_initial_state_differs() {
        let mut rng = rand::rng();
        let a = RtpSender::new(0, &mut rng);
        let b = RtpSender::new(0, &mut rng);
        assert_ne!(
            (a.ssrc(), a.next_sequence(), a.timestamp()),
            (b.ssrc(), b.next_sequence(), b.timestamp())
        );
    }

    #[test]
    fn seq_extension_wraps_and_reorders() {
        let mut x = SeqExtender::new();
        assert_eq!(x.update(65533), SeqStatus::InOrder(65533));
        assert_eq!(x.update(65535), SeqStatus::InOrder(65535));
        assert_eq!(x.update(1), SeqStatus::InOrder(65537));
        // Reordered packet from before the wrap.
        assert_eq!(x.update(65534), SeqStatus::Old(65534));
        // Duplicate of the current maximum.
        assert_eq!(x.update(1), SeqStatus::Old(65537));
        assert_eq!(x.update(0), SeqStatus::Old(65536));
        assert_eq!(x.extended_max(), 65537);
        assert_eq!(x.cycles(), 65536);
        // Gap within MAX_DROPOUT is loss, not a restart.
        assert_eq!(x.update(2001), SeqStatus::InOrder(65536 + 2001));
        // A large jump needs confirmation.
        assert_eq!(x.update(30000), SeqStatus::Jump);
        assert_eq!(x.update(2002), SeqStatus::InOrder(65536 + 2002));
        assert_eq!(x.update(40000), SeqStatus::Jump);
        assert_eq!(x.update(40001), SeqStatus::Restarted(40001));
        assert_eq!(x.restarts(), 1);
        assert_eq!(x.base_seq(), 40001);
        assert_eq!(x.update(40002), SeqStatus::InOrder(40002));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RtpPacket::parse(&bytes);
        }

        #[test]
        fn round_trip(
            marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
            csrc in proptest::collection::vec(any::<u32>(), 0..16),
            ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u32>(), 0..4))),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            padding in 0u8..8,
        ) {
            let p = RtpPacket {
                marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc, csrc,
                extension: ext.map(|(profile, words)| RtpExtension {
                    profile,
                    data: words.iter().flat_map(|w| w.to_be_bytes()).collect(),
                }),
                payload, padding,
            };
            let b = p.to_bytes().unwrap();
            prop_assert_eq!(RtpPacket::parse(&b).unwrap(), p);
        }

        #[test]
        fn in_order_stream_extends_monotonically(start: u16, n in 1usize..200_000) {
            let mut x = SeqExtender::new();
            let mut seq = start;
            for i in 0..n.min(140_000) {
                let st = x.update(seq);
                prop_assert_eq!(st, SeqStatus::InOrder(u64::from(start) + i as u64));
                seq = seq.wrapping_add(1);
            }
        }
    }
}
