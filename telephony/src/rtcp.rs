//! RTCP (RFC 3550 §6): sender and receiver reports with report blocks, SDES (CNAME and other
//! items), BYE, compound-packet parsing and serialisation, and a sans-IO [`ReceiverStats`] that
//! produces report blocks for one remote source: packets expected and lost, fraction lost,
//! interarrival jitter (appendix A.8) and LSR/DLSR for round-trip time.
//!
//! Parsing never panics; malformed input gives an [`RtcpError`]. Unknown packet types (APP, XR,
//! feedback) are kept raw as [`RtcpPacket::Other`]. Limits: no SRTCP, no reduced-size RTCP
//! checks (a compound is not required to start with SR/RR), no RTCP interval computation (the
//! shell picks the interval).

use crate::rtp::{RTP_VERSION, SeqExtender, SeqStatus};
use thiserror::Error;

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type of application-defined.
pub const PT_APP: u8 = 204;

/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Why a datagram is not valid RTCP.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// Fewer bytes than a header or its declared length needs.
    #[error("RTCP packet too short: need {needed} bytes, have {len}")]
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTCP version {0}")]
    BadVersion(u8),
    /// Counts or lengths inside a packet do not add up.
    #[error("malformed RTCP {0}")]
    Malformed(&'static str),
    /// A value does not fit its field when serialising.
    #[error("RTCP field out of range: {0}")]
    FieldRange(&'static str),
    /// An empty datagram.
    #[error("empty RTCP compound packet")]
    Empty,
}

/// One reception report block (24 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; negative with duplicates).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from the source (0: none).
    pub lsr: u32,
    /// Delay since that SR was received, in 1/65536 s.
    pub dlsr: u32,
}

/// The sender-info section of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of the report.
    pub ntp_timestamp: u64,
    /// The RTP timestamp corresponding to the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

/// One SDES item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    /// Item type (1 CNAME, 2 NAME, … 8 PRIV).
    pub kind: u8,
    /// Item text (UTF-8 by the RFC, kept as bytes), at most 255 bytes.
    pub value: Vec<u8>,
}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The described source.
    pub ssrc: u32,
    /// Its items.
    pub items: Vec<SdesItem>,
}

impl SdesChunk {
    /// A chunk holding only a CNAME.
    pub fn cname(ssrc: u32, cname: &str) -> SdesChunk {
        SdesChunk {
            ssrc,
            items: vec![SdesItem {
                kind: SDES_CNAME,
                value: cname.as_bytes().to_vec(),
            }],
        }
    }

    /// The CNAME item, if present and UTF-8.
    pub fn cname_str(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|i| i.kind == SDES_CNAME)
            .and_then(|i| std::str::from_utf8(&i.value).ok())
    }
}

/// One RTCP packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report (PT 200).
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// Its sender info.
        info: SenderInfo,
        /// Reception reports, at most 31.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report (PT 201).
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// Reception reports, at most 31.
        reports: Vec<ReportBlock>,
    },
    /// Source description (PT 202).
    SourceDescription(Vec<SdesChunk>),
    /// Goodbye (PT 203).
    Bye {
        /// Sources leaving, at most 31.
        sources: Vec<u32>,
        /// Optional reason text (at most 255 bytes).
        reason: Option<Vec<u8>>,
    },
    /// Any other packet type, kept raw (body after the 4-byte header, without padding).
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count/subtype field.
        count: u8,
        /// The body.
        body: Vec<u8>,
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_blocks(body: &[u8], count: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    if body.len() < 24 * count {
        return Err(RtcpError::Malformed("report block count exceeds length"));
    }
    Ok((0..count)
        .map(|i| {
            let b = &body[24 * i..24 * i + 24];
            let lost_raw = be32(b, 4) & 0x00FF_FFFF;
            // Sign-extend the 24-bit field.
            let cumulative_lost = ((lost_raw << 8) as i32) >> 8;
            ReportBlock {
                ssrc: be32(b, 0),
                fraction_lost: b[4],
                cumulative_lost,
                highest_seq: be32(b, 8),
                jitter: be32(b, 12),
                lsr: be32(b, 16),
                dlsr: be32(b, 20),
            }
        })
        .collect())
}

fn parse_sdes(body: &[u8], count: usize) -> Result<Vec<SdesChunk>, RtcpError> {
    let mut chunks = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        if body.len() < at + 4 {
            return Err(RtcpError::Malformed("SDES chunk truncated"));
        }
        let ssrc = be32(body, at);
        at += 4;
        let mut items = Vec::new();
        loop {
            let Some(&kind) = body.get(at) else {
                return Err(RtcpError::Malformed("SDES items unterminated"));
            };
            if kind == 0 {
                // End of list; skip to the next 32-bit boundary.
                at = (at + 4) & !3;
                break;
            }
            let Some(&len) = body.get(at + 1) else {
                return Err(RtcpError::Malformed("SDES item truncated"));
            };
            let end = at + 2 + usize::from(len);
            if body.len() < end {
                return Err(RtcpError::Malformed("SDES item truncated"));
            }
            items.push(SdesItem {
                kind,
                value: body[at + 2..end].to_vec(),
            });
            at = end;
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Ok(chunks)
}

fn parse_one(pt: u8, count: usize, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    Ok(match pt {
        PT_SR => {
            if body.len() < 24 {
                return Err(RtcpError::Malformed("SR shorter than sender info"));
            }
            let info = SenderInfo {
                ntp_timestamp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                rtp_timestamp: be32(body, 12),
                packet_count: be32(body, 16),
                octet_count: be32(body, 20),
            };
            RtcpPacket::SenderReport {
                ssrc: be32(body, 0),
                info,
                reports: parse_blocks(&body[24..], count)?,
            }
        }
        PT_RR => {
            if body.len() < 4 {
                return Err(RtcpError::Malformed("RR without SSRC"));
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0),
                reports: parse_blocks(&body[4..], count)?,
            }
        }
        PT_SDES => RtcpPacket::SourceDescription(parse_sdes(body, count)?),
        PT_BYE => {
            if body.len() < 4 * count {
                return Err(RtcpError::Malformed("BYE source count exceeds length"));
            }
            let sources = (0..count).map(|i| be32(body, 4 * i)).collect();
            let rest = &body[4 * count..];
            let reason = match rest.first() {
                Some(&len) if len > 0 => {
                    let end = 1 + usize::from(len);
                    if rest.len() < end {
                        return Err(RtcpError::Malformed("BYE reason truncated"));
                    }
                    Some(rest[1..end].to_vec())
                }
                _ => None,
            };
            RtcpPacket::Bye { sources, reason }
        }
        _ => RtcpPacket::Other {
            packet_type: pt,
            count: count as u8,
            body: body.to_vec(),
        },
    })
}

/// Parse a compound RTCP datagram into its packets.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < 4 {
            return Err(RtcpError::TooShort {
                needed: 4,
                len: rest.len(),
            });
        }
        let version = rest[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtcpError::BadVersion(version));
        }
        let padding = rest[0] & 0x20 != 0;
        let count = usize::from(rest[0] & 0x1F);
        let pt = rest[1];
        let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if rest.len() < len {
            return Err(RtcpError::TooShort {
                needed: len,
                len: rest.len(),
            });
        }
        let mut body = &rest[4..len];
        if padding {
            let pad = usize::from(*body.last().unwrap_or(&0));
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::Malformed("padding"));
            }
            body = &body[..body.len() - pad];
        }
        out.push(parse_one(pt, count, body)?);
        at += len;
    }
    Ok(out)
}

fn write_blocks(out: &mut Vec<u8>, blocks: &[ReportBlock]) {
    for b in blocks {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
}

impl RtcpPacket {
    /// Serialise this packet (header included), appending to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = out.len();
        let (count, pt) = match self {
            RtcpPacket::SenderReport { reports, .. } => (reports.len(), PT_SR),
            RtcpPacket::ReceiverReport { reports, .. } => (reports.len(), PT_RR),
            RtcpPacket::SourceDescription(chunks) => (chunks.len(), PT_SDES),
            RtcpPacket::Bye { sources, .. } => (sources.len(), PT_BYE),
            RtcpPacket::Other {
                packet_type, count, ..
            } => (usize::from(*count), *packet_type),
        };
        if count > 31 {
            return Err(RtcpError::FieldRange("count above 31"));
        }
        out.extend_from_slice(&[RTP_VERSION << 6 | count as u8, pt, 0, 0]);
        match self {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&info.ntp_timestamp.to_be_bytes());
                out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&info.packet_count.to_be_bytes());
                out.extend_from_slice(&info.octet_count.to_be_bytes());
                write_blocks(out, reports);
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                out.extend_from_slice(&ssrc.to_be_bytes());
                write_blocks(out, reports);
            }
            RtcpPacket::SourceDescription(chunks) => {
                for c in chunks {
                    let chunk_start = out.len();
                    out.extend_from_slice(&c.ssrc.to_be_bytes());
                    for item in &c.items {
                        if item.kind == 0 {
                            return Err(RtcpError::FieldRange("SDES item type 0"));
                        }
                        let Ok(len) = u8::try_from(item.value.len()) else {
                            return Err(RtcpError::FieldRange("SDES item longer than 255"));
                        };
                        out.push(item.kind);
                        out.push(len);
                        out.extend_from_slice(&item.value);
                    }
                    // At least one null octet, then pad the chunk to 32 bits.
                    out.push(0);
                    while !(out.len() - chunk_start).is_multiple_of(4) {
                        out.push(0);
                    }
                }
            }
            RtcpPacket::Bye { sources, reason } => {
                for s in sources {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(r) = reason {
                    let Ok(len) = u8::try_from(r.len()) else {
                        return Err(RtcpError::FieldRange("BYE reason longer than 255"));
                    };
                    out.push(len);
                    out.extend_from_slice(r);
                    while !(out.len() - start).is_multiple_of(4) {
                        out.push(0);
                    }
                }
            }
            RtcpPacket::Other { body, .. } => {
                if body.len() % 4 != 0 {
                    return Err(RtcpError::FieldRange("body not a multiple of 4 bytes"));
                }
                out.extend_from_slice(body);
            }
        }
        let words = (out.len() - start) / 4 - 1;
        let Ok(words) = u16::try_from(words) else {
            return Err(RtcpError::FieldRange("packet longer than 256 KiB"));
        };
        out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        Ok(())
    }
}

/// Serialise packets into one compound datagram.
pub fn serialize_compound(packets: &[RtcpPacket]) -> Result<Vec<u8>, RtcpError> {
    let mut out = Vec::with_capacity(128);
    for p in packets {
        p.write_to(&mut out)?;
    }
    Ok(out)
}

/// A 64-bit NTP timestamp from time since the Unix epoch.
pub fn ntp_from_unix(since_epoch: std::time::Duration) -> u64 {
    let secs = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
    let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR format, units of 1/65536 s).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time in milliseconds from a report block about our stream, given the NTP time at
/// which the report arrived (RFC 3550 §6.4.1: A − LSR − DLSR). `None` if the peer has not
/// received an SR from us yet (LSR = 0).
pub fn round_trip_ms(block: &ReportBlock, arrival_ntp: u64) -> Option<f64> {
    if block.lsr == 0 {
        return None;
    }
    let a = ntp_middle(arrival_ntp);
    let rtt = a.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
    // A negative result (clock error) wraps to a huge value; reject it.
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(f64::from(rtt) * 1000.0 / 65536.0)
}

/// Reception statistics for one remote source (RFC 3550 A.3 and A.8), sans-IO: the caller
/// passes each packet's sequence number, RTP timestamp and arrival time.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    ssrc: Option<u32>,
    seq: SeqExtender,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<i32>,
    jitter: f64,
    last_sr: Option<(u32, u64)>,
}

impl ReceiverStats {
    /// Statistics for a stream with the given RTP clock rate (8000 for G.711).
    pub fn new(clock_rate: u32) -> ReceiverStats {
        ReceiverStats {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            seq: SeqExtender::new(),
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    /// The source being tracked (set by the first packet; a new SSRC resets the statistics).
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn check_ssrc(&mut self, ssrc: u32) {
        if self.ssrc != Some(ssrc) {
            *self = ReceiverStats::new(self.clock_rate);
            self.ssrc = Some(ssrc);
        }
    }

    fn count(&mut self, seq: u16) -> bool {
        match self.seq.update(seq) {
            SeqStatus::InOrder(_) | SeqStatus::Old(_) => {
                self.received += 1;
                true
            }
            SeqStatus::Restarted(_) => {
                self.received = 1;
                self.expected_prior = 0;
                self.received_prior = 0;
                self.transit = None;
                true
            }
            SeqStatus::Jump => false,
        }
    }

    /// Account for an RTP packet; `arrival` is the arrival time in RTP timestamp units (any
    /// origin, wrapping).
    pub fn on_rtp(&mut self, ssrc: u32, seq: u16, rtp_ts: u32, arrival: u32) {
        self.check_ssrc(ssrc);
        if !self.count(seq) {
            return;
        }
        let transit = arrival.wrapping_sub(rtp_ts) as i32;
        if let Some(prev) = self.transit {
            let d = f64::from(transit.wrapping_sub(prev).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Account for an RTP packet with its arrival time in milliseconds (any origin).
    pub fn on_rtp_ms(&mut self, ssrc: u32, seq: u16, rtp_ts: u32, arrival_ms: u64) {
        let units = (u128::from(arrival_ms) * u128::from(self.clock_rate) / 1000) as u32;
        self.on_rtp(ssrc, seq, rtp_ts, units);
    }

    /// Count a packet for loss statistics only, leaving jitter alone (for RFC 4733 event
    /// packets, whose timestamps repeat).
    pub fn on_rtp_no_jitter(&mut self, ssrc: u32, seq: u16) {
        self.check_ssrc(ssrc);
        self.count(seq);
    }

    /// Note a sender report from the source, received at `arrival_ms` (for LSR/DLSR).
    pub fn on_sender_report(&mut self, ntp_timestamp: u64, arrival_ms: u64) {
        self.last_sr = Some((ntp_middle(ntp_timestamp), arrival_ms));
    }

    /// Packets received (duplicates included, as in RFC 3550).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the sequence numbers seen.
    pub fn expected(&self) -> u64 {
        if !self.seq.is_initialised() {
            return 0;
        }
        self.seq.extended_max() + 1 - u64::from(self.seq.base_seq())
    }

    /// Cumulative packets lost (negative if duplicates outnumber losses).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u64 {
        self.seq.extended_max()
    }

    /// Build the report block for this source at `now_ms` (same time base as
    /// [`on_sender_report`](Self::on_sender_report)), and start a new fraction-lost interval.
    /// `None` before any packet arrived.
    pub fn report_block(&mut self, now_ms: u64) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now_ms.saturating_sub(at);
                (lsr, (delay * 65536 / 1000).min(u64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: self.seq.extended_max() as u32,
            jitter: self.jitter as u32,
            lsr,
            dlsr,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 3,
            cumulative_lost: -5,
            highest_seq: 0x0001_0005,
            jitter: 77,
            lsr: 0x1234_5678,
            dlsr: 65536,
        }
    }

    #[test]
    fn compound_round_trip() {
        let packets = vec![
            RtcpPacket::SenderReport {
                ssrc: 1,
                info: SenderInfo {
                    ntp_timestamp: 0xE000_0000_8000_0000,
                    rtp_timestamp: 160,
                    packet_count: 50,
                    octet_count: 8000,
                },
                reports: vec![block(2), block(3)],
            },
            RtcpPacket::SourceDescription(vec![
                SdesChunk::cname(1, "bot@127.0.0.1"),
                SdesChunk {
                    ssrc: 9,
                    items: vec![
                        SdesItem {
                            kind: 1,
                            value: b"abc".to_vec(),
                        },
                        SdesItem {
                            kind: 6,
                            value: b"callbot".to_vec(),
                        },
                    ],
                },
            ]),
            RtcpPacket::Bye {
                sources: vec![1],
                reason: Some(b"hangup".to_vec()),
            },
        ];
        let bytes = serialize_compound(&packets).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        // SR: 4 header + 24 sender info + 2 × 24 blocks.
        assert_eq!(&bytes[..4], &[0x82, 200, 0, (4 + 24 + 48) / 4 - 1]);
        let parsed = parse_compound(&bytes).unwrap();
        assert_eq!(parsed, packets);
        let RtcpPacket::SourceDescription(chunks) = &parsed[1] else {
            panic!("not SDES");
        };
        assert_eq!(chunks[0].cname_str(), Some("bot@127.0.0.1"));
        let rr = RtcpPacket::ReceiverReport {
            ssrc: 7,
            reports: vec![],
        };
        let b = serialize_compound(std::slice::from_ref(&rr)).unwrap();
        assert_eq!(b, [0x80, 201, 0, 1, 0, 0, 0, 7]);
        assert_eq!(parse_compound(&b).unwrap(), vec![rr]);
    }

    #[test]
    fn parses_a_wire_example() {
        // RR with one block, then SDES CNAME "ab" and an APP packet, written by hand.
        let mut b = vec![0x81, 201, 0, 7, 0, 0, 0, 1];
        b.extend_from_slice(&[0, 0, 0, 2, 0x40, 0xFF, 0xFF, 0xFE]); // 25% lost, cumulative -2
        b.extend_from_slice(&[0, 1, 0, 9, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x81, 202, 0, 3, 0, 0, 0, 1, 1, 2, b'a', b'b', 0, 0, 0, 0]);
        b.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
        let p = parse_compound(&b).unwrap();
        assert_eq!(p.len(), 3);
        let RtcpPacket::ReceiverReport { ssrc, reports } = &p[0] else {
            panic!("not RR");
        };
        assert_eq!(*ssrc, 1);
        assert_eq!(reports[0].fraction_lost, 64);
        assert_eq!(reports[0].cumulative_lost, -2);
        assert_eq!(reports[0].highest_seq, 0x0001_0009);
        assert_eq!(reports[0].jitter, 20);
        assert_eq!(
            p[1],
            RtcpPacket::SourceDescription(vec![SdesChunk::cname(1, "ab")])
        );
        assert!(matches!(
            &p[2],
            RtcpPacket::Other {
                packet_type: 204,
                ..
            }
        ));
        assert_eq!(serialize_compound(&p).unwrap(), b);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        assert!(matches!(
            parse_compound(&[0x80, 201, 0]),
            Err(RtcpError::TooShort { .. })
        ));
        assert_eq!(
            parse_compound(&[0x40, 201, 0, 0]),
            Err(RtcpError::BadVersion(1))
        );
        // Length says 2 words, only 1 present.
        assert!(matches!(
            parse_compound(&[0x80, 201, 0, 1]),
            Err(RtcpError::TooShort { needed: 8, .. })
        ));
        // RR claiming one report block with none present.
        assert!(matches!(
            parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Malformed(_))
        ));
        // SDES item running past the end.
        assert!(matches!(
            parse_compound(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b']),
            Err(RtcpError::Malformed(_))
        ));
        // Padding bigger than the body.
        assert!(matches!(
            parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 9]),
            Err(RtcpError::Malformed("padding"))
        ));
        // Padding accepted when consistent: RR ssrc + 4 padding bytes.
        let p = parse_compound(&[0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4]).unwrap();
        assert_eq!(
            p,
            vec![RtcpPacket::ReceiverReport {
                ssrc: 9,
                reports: vec![]
            }]
        );
        // Too many report blocks to serialise.
        let rr = RtcpPacket::ReceiverReport {
            ssrc: 1,
            reports: vec![block(1); 32],
        };
        assert!(serialize_compound(&[rr]).is_err());
    }

    #[test]
    fn receiver_stats_count_loss_and_fraction() {
        let mut s = ReceiverStats::new(8000);
        assert!(s.report_block(0).is_none());
        // 100 packets starting near the wrap, with 10 lost and one duplicate.
        let mut n = 0;
        for i in 0..100u16 {
            let seq = 65500u16.wrapping_add(i);
            if i % 10 == 5 {
                continue;
            }
            s.on_rtp_ms(0xAB, seq, u32::from(i) * 160, u64::from(i) * 20);
            n += 1;
        }
        s.on_rtp_ms(0xAB, 65500u16.wrapping_add(99), 99 * 160, 99 * 20);
        assert_eq!(s.expected(), 100);
        assert_eq!(s.received(), n + 1);
        assert_eq!(s.lost(), 9);
        let rb = s.report_block(2000).unwrap();
        assert_eq!(rb.ssrc, 0xAB);
        assert_eq!(rb.cumulative_lost, 9);
        assert_eq!(rb.fraction_lost, (9 * 256 / 100) as u8);
        assert_eq!(rb.highest_seq, 65536 + 63);
        assert_eq!(rb.jitter, 0, "perfectly paced arrivals have zero jitter");
        assert_eq!((rb.lsr, rb.dlsr), (0, 0));
        // Next interval: no loss → fraction 0, cumulative unchanged.
        for i in 100..150u16 {
            s.on_rtp_ms(
                0xAB,
                65500u16.wrapping_add(i),
                u32::from(i) * 160,
                u64::from(i) * 20,
            );
        }
        let rb = s.report_block(3000).unwrap();
        assert_eq!(rb.fraction_lost, 0);
        assert_eq!(rb.cumulative_lost, 9);
        // A new SSRC resets everything.
        s.on_rtp_ms(0xCD, 5, 0, 4000);
        assert_eq!((s.expected(), s.received(), s.lost()), (1, 1, 0));
    }

    #[test]
    fn jitter_follows_rfc3550_a8() {
        let mut s = ReceiverStats::new(8000);
        // Arrivals alternate 0 and +5 ms (40 units) around the ideal 20 ms grid.
        let mut expect = 0.0f64;
        let mut prev_transit: Option<i64> = None;
        for i in 0..400u32 {
            let extra = if i % 2 == 1 { 40 } else { 0 };
            let arrival = 1000 + i * 160 + extra;
            s.on_rtp(1, i as u16, i * 160, arrival);
            let transit = i64::from(arrival) - i64::from(i * 160);
            if let Some(p) = prev_transit {
                expect += ((transit - p).abs() as f64 - expect) / 16.0;
            }
            prev_transit = Some(transit);
        }
        assert!((s.jitter() - expect).abs() < 1e-9);
        // Converges to the mean |D| = 40 units = 5 ms.
        assert!((s.jitter() - 40.0).abs() < 1.0, "{}", s.jitter());
        assert!((s.jitter_ms() - 5.0).abs() < 0.2);
        // Event packets do not disturb jitter.
        let j = s.jitter();
        s.on_rtp_no_jitter(1, 400);
        assert_eq!(s.jitter(), j);
        assert_eq!(s.expected(), 401);
    }

    #[test]
    fn lsr_dlsr_and_rtt() {
        // Peer sent us an SR with NTP T; we report 1.5 s later; the peer receives our report
        // 100 ms after we sent it and 1.5 s + 100 ms after its SR → RTT ≈ 100 ms.
        let t = ntp_from_unix(std::time::Duration::from_millis(1_700_000_000_000));
        let mut s = ReceiverStats::new(8000);
        s.on_rtp_ms(5, 1, 0, 10_000);
        s.on_sender_report(t, 10_000);
        let rb = s.report_block(11_500).unwrap();
        assert_eq!(rb.lsr, ntp_middle(t));
        assert_eq!(rb.dlsr, 1500 * 65536 / 1000);
        let arrival = ntp_from_unix(std::time::Duration::from_millis(1_700_000_001_600));
        let rtt = round_trip_ms(&rb, arrival).unwrap();
        assert!((rtt - 100.0).abs() < 0.1, "rtt {rtt}");
        assert!(round_trip_ms(&ReportBlock::default(), arrival).is_none());
    }

    #[test]
    fn ntp_conversion() {
        let t = ntp_from_unix(std::time::Duration::new(1, 500_000_000));
        assert_eq!(t >> 32, NTP_UNIX_OFFSET_SECS + 1);
        assert_eq!(t & 0xFFFF_FFFF, 0x8000_0000);
        assert_eq!(
            ntp_middle(t),
            (((NTP_UNIX_OFFSET_SECS + 1) as u32) << 16) | 0x8000
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_compound(&bytes);
        }

        #[test]
        fn report_blocks_round_trip(
            ssrc: u32, fl: u8, lost in -0x80_0000i32..0x80_0000, hs: u32, j: u32, lsr: u32, dlsr: u32,
        ) {
            let b = ReportBlock { ssrc, fraction_lost: fl, cumulative_lost: lost, highest_seq: hs,
                jitter: j, lsr, dlsr };
            let p = RtcpPacket::ReceiverReport { ssrc: 1, reports: vec![b] };
            let bytes = serialize_compound(std::slice::from_ref(&p)).unwrap();
            prop_assert_eq!(parse_compound(&bytes).unwrap(), vec![p]);
        }
    }
}
