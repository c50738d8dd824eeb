//! DTMF, both ways it travels on a call:
//!
//! * out of band, as RFC 4733 telephone-events: the 4-byte payload ([`TelephoneEvent`]), a
//!   receiver ([`DtmfReceiver`]) that turns the packet stream (repeated start/update packets,
//!   three redundant end packets, reordering) into exactly one digit per event, and a sender
//!   ([`DtmfSender`]) that plans the packets for one digit;
//! * in band, as dual tones in 8 kHz PCM: [`InbandDetector`], a Goertzel detector with energy,
//!   twist, relative-peak and tone-to-total checks, a minimum duration and debounce.
//!
//! Limits: events 0–15 (digits, `*`, `#`, `A`–`D`) only; no RFC 2198 redundancy payloads; one
//! event per payload; an RFC 4733 event longer than one 16-bit duration segment (8.19 s at
//! 8 kHz) is not sent, and a received long event's later segments are recognised only if they
//! follow directly. The in-band detector works on 8 kHz input only.

use crate::goertzel;
use std::collections::VecDeque;
use thiserror::Error;

/// The dynamic payload type commonly used for telephone-event (negotiated in SDP).
pub const DEFAULT_EVENT_PAYLOAD_TYPE: u8 = 101;

/// DTMF errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// A telephone-event payload shorter than 4 bytes.
    #[error("telephone-event payload too short ({0} bytes)")]
    TooShort(usize),
    /// A character that is not a DTMF digit.
    #[error("not a DTMF digit: {0:?}")]
    NotADigit(char),
    /// A duration that does not fit one RFC 4733 event.
    #[error("DTMF duration {0} ms out of range")]
    Duration(u32),
}

/// The DTMF digit of an RFC 4733 event code (0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`).
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The RFC 4733 event code of a DTMF digit (`a`–`d` accepted as `A`–`D`).
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 for DTMF).
    pub event: u8,
    /// End bit: the event has ended (sent three times).
    pub end: bool,
    /// Power level as −dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parse the first 4 bytes of a payload (extra bytes are ignored).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        if payload.len() < 4 {
            return Err(DtmfError::TooShort(payload.len()));
        }
        Ok(TelephoneEvent {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// The 4-byte payload (reserved bit zero, volume masked to 6 bits).
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// The DTMF digit, if the event is one.
    pub fn digit(self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// A digit recognised by [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// The digit.
    pub digit: char,
    /// Its RFC 4733 event code.
    pub event: u8,
    /// RTP timestamp of the event's start.
    pub timestamp: u32,
    /// Volume of the first packet seen (−dBm0).
    pub volume: u8,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    duration: u16,
    ended: bool,
}

/// How many recent events are remembered to suppress their repeats.
const RECENT_EVENTS: usize = 16;

/// Turns RFC 4733 packets into digits, one per event: an event is identified by its SSRC and
/// RTP timestamp, so repeated start/update packets and the redundant end packets of the same
/// event are recognised, in any order. A digit is reported on the first packet of its event
/// (start, update or end, whichever arrives first), so a lost start packet does not lose it.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    current: Option<Current>,
    recent: VecDeque<(u32, u32)>,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// Feed one telephone-event packet's RTP fields and payload. Returns the digit if this
    /// packet starts a new event. Non-DTMF events (codes above 15) are ignored.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<DtmfDigit>, DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = ev.digit() else {
            return Ok(None);
        };
        if self.recent.contains(&(ssrc, timestamp)) {
            if let Some(c) = self.current.as_mut()
                && c.ssrc == ssrc
                && c.timestamp == timestamp
            {
                c.duration = c.duration.max(ev.duration);
                c.ended |= ev.end;
            }
            return Ok(None);
        }
        // A long event continues in a new segment at timestamp + 65535 (RFC 4733 §2.5.2.1).
        let continuation = self.current.is_some_and(|c| {
            c.ssrc == ssrc
                && c.event == ev.event
                && !c.ended
                && c.duration == u16::MAX
                && timestamp.wrapping_sub(c.timestamp) == u32::from(u16::MAX)
        });
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back((ssrc, timestamp));
        self.current = Some(Current {
            ssrc,
            timestamp,
            event: ev.event,
            duration: ev.duration,
            ended: ev.end,
        });
        if continuation {
            return Ok(None);
        }
        Ok(Some(DtmfDigit {
            digit,
            event: ev.event,
            timestamp,
            volume: ev.volume,
        }))
    }

    /// Duration (timestamp units) of the most recent event so far, and whether it has ended.
    pub fn last_event(&self) -> Option<(char, u16, bool)> {
        let c = self.current?;
        Some((event_to_digit(c.event)?, c.duration, c.ended))
    }

    /// Forget all state (e.g. on re-INVITE with a new stream).
    pub fn reset(&mut self) {
        self.current = None;
        self.recent.clear();
    }
}

/// One packet of a planned digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacketPlan {
    /// When to send it, in ms after the event starts.
    pub offset_ms: u32,
    /// RTP marker bit (first packet of the event).
    pub marker: bool,
    /// The telephone-event payload.
    pub event: TelephoneEvent,
}

/// Plans RFC 4733 packets for a digit: a first packet (marker set) at once, updates every
/// [`update_interval_ms`](Self::update_interval_ms), then [`end_packets`](Self::end_packets)
/// end packets [`end_interval_ms`](Self::end_interval_ms) apart. All packets of one event carry
/// the same RTP timestamp (the event start); the caller gives each its own sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSender {
    /// Interval of start/update packets (RFC 4733 suggests 50 ms).
    pub update_interval_ms: u32,
    /// Number of end packets (3 per RFC 4733 §2.5.1.4).
    pub end_packets: u32,
    /// Spacing of the end packets.
    pub end_interval_ms: u32,
    /// Power level, −dBm0 (10 is usual).
    pub volume: u8,
    /// RTP clock rate of the event stream (8000 with G.711).
    pub clock_rate: u32,
}

impl Default for DtmfSender {
    fn default() -> DtmfSender {
        DtmfSender {
            update_interval_ms: 50,
            end_packets: 3,
            end_interval_ms: 20,
            volume: 10,
            clock_rate: 8000,
        }
    }
}

impl DtmfSender {
    /// The packets for `digit` lasting `duration_ms` (40 ms to one 16-bit duration segment).
    pub fn plan(&self, digit: char, duration_ms: u32) -> Result<Vec<DtmfPacketPlan>, DtmfError> {
        let event = digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
        let units = |ms: u32| u64::from(ms) * u64::from(self.clock_rate) / 1000;
        if duration_ms < 40 || units(duration_ms) > u64::from(u16::MAX) {
            return Err(DtmfError::Duration(duration_ms));
        }
        let step = self.update_interval_ms.max(10);
        let mut out = Vec::new();
        let mut at = 0;
        while at < duration_ms {
            out.push(DtmfPacketPlan {
                offset_ms: at,
                marker: at == 0,
                event: TelephoneEvent {
                    event,
                    end: false,
                    volume: self.volume,
                    duration: units(at) as u16,
                },
            });
            at += step;
        }
        for i in 0..self.end_packets.max(1) {
            out.push(DtmfPacketPlan {
                offset_ms: duration_ms + i * self.end_interval_ms,
                marker: false,
                event: TelephoneEvent {
                    event,
                    end: true,
                    volume: self.volume,
                    duration: units(duration_ms) as u16,
                },
            });
        }
        Ok(out)
    }
}

/// Row (low-group) DTMF frequencies.
pub const LOW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high-group) DTMF frequencies.
pub const HIGH_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Tuning of [`InbandDetector`]. Powers are on [`goertzel::power`]'s scale (a full-scale sine
/// gives 0.25).
#[derive(Debug, Clone)]
pub struct InbandConfig {
    /// Samples per analysis block (205 at 8 kHz puts the DTMF frequencies near bin centres).
    pub block: usize,
    /// Samples between block starts (102 = half-overlapping blocks, ~12.8 ms).
    pub hop: usize,
    /// Minimum power of each of the two tones (1e-4 ≈ a tone of amplitude 0.02 full scale,
    /// about −34 dBFS).
    pub min_tone_power: f32,
    /// How much stronger the high tone may be than the low one (normal twist), as a power ratio
    /// (6.3 = 8 dB).
    pub normal_twist: f32,
    /// How much stronger the low tone may be than the high one (reverse twist) (2.5 = 4 dB).
    pub reverse_twist: f32,
    /// How much the strongest tone of a group must exceed the others of that group (6.3 = 8 dB).
    pub relative_peak: f32,
    /// Minimum share of the block's energy in the two tones: the two tone powers summed over
    /// the mean square (0.5 for a pure dual tone exactly on bin centres).
    pub min_tone_to_total: f32,
    /// Consecutive blocks with the same digit before it is reported (the minimum duration).
    pub min_blocks: u32,
    /// Consecutive blocks without it before the same digit can be reported again (debounce:
    /// 4 bridges a 10 ms interruption but not a 40 ms pause).
    pub min_gap_blocks: u32,
}

impl Default for InbandConfig {
    fn default() -> InbandConfig {
        InbandConfig {
            block: 205,
            hop: 102,
            min_tone_power: 1e-4,
            normal_twist: 6.3,
            reverse_twist: 2.5,
            relative_peak: 6.3,
            min_tone_to_total: 0.38,
            min_blocks: 2,
            min_gap_blocks: 4,
        }
    }
}

/// A digit found in PCM by [`InbandDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InbandDigit {
    /// The digit.
    pub digit: char,
    /// Sample index (from the first sample processed) of the block where it was confirmed.
    pub at_sample: u64,
}

/// In-band DTMF detector on 8 kHz linear PCM (see [`InbandConfig`]). Feed audio in any chunk
/// size; each digit press is reported once, when it has lasted the minimum duration.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    cfg: InbandConfig,
    pending: Vec<i16>,
    consumed: u64,
    last: Option<char>,
    run: u32,
    current: Option<char>,
    off_run: u32,
}

impl Default for InbandDetector {
    fn default() -> InbandDetector {
        InbandDetector::new(InbandConfig::default())
    }
}

impl InbandDetector {
    /// A detector with the given tuning.
    pub fn new(cfg: InbandConfig) -> InbandDetector {
        let mut cfg = cfg;
        cfg.block = cfg.block.max(32);
        cfg.hop = cfg.hop.clamp(1, cfg.block);
        InbandDetector {
            cfg,
            pending: Vec::new(),
            consumed: 0,
            last: None,
            run: 0,
            current: None,
            off_run: 0,
        }
    }

    /// The digit (if any) that one block of 8 kHz audio holds, by the energy, twist,
    /// relative-peak and tone-to-total checks alone (no duration check).
    pub fn classify_block(cfg: &InbandConfig, block: &[i16]) -> Option<char> {
        let energy = goertzel::energy(block);
        if energy < cfg.min_tone_power {
            return None;
        }
        let low = LOW_FREQS.map(|f| goertzel::power(block, 8000, f));
        let high = HIGH_FREQS.map(|f| goertzel::power(block, 8000, f));
        let best = |p: &[f32; 4]| {
            let mut i = 0;
            for j in 1..4 {
                if p[j] > p[i] {
                    i = j;
                }
            }
            i
        };
        let (r, c) = (best(&low), best(&high));
        let (lp, hp) = (low[r], high[c]);
        if lp < cfg.min_tone_power || hp < cfg.min_tone_power {
            return None;
        }
        if hp > lp * cfg.normal_twist || lp > hp * cfg.reverse_twist {
            return None;
        }
        let peaked = |p: &[f32; 4], i: usize| {
            p.iter()
                .enumerate()
                .all(|(j, &v)| j == i || p[i] >= v * cfg.relative_peak)
        };
        if !peaked(&low, r) || !peaked(&high, c) {
            return None;
        }
        if lp + hp < cfg.min_tone_to_total * energy {
            return None;
        }
        Some(KEYPAD[r][c])
    }

    /// Feed PCM; returns the digits confirmed in it.
    pub fn process(&mut self, pcm: &[i16]) -> Vec<InbandDigit> {
        self.pending.extend_from_slice(pcm);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= self.cfg.block {
            let block = &self.pending[start..start + self.cfg.block];
            let cand = InbandDetector::classify_block(&self.cfg, block);
            let at = self.consumed + (start + self.cfg.block) as u64;
            if cand == self.last {
                self.run = self.run.saturating_add(1);
            } else {
                self.run = 1;
                self.last = cand;
            }
            if cand.is_some() && cand != self.current && self.run >= self.cfg.min_blocks {
                self.current = cand;
                self.off_run = 0;
                if let Some(digit) = cand {
                    out.push(InbandDigit {
                        digit,
                        at_sample: at,
                    });
                }
            } else if cand != self.current {
                self.off_run += 1;
                if self.off_run >= self.cfg.min_gap_blocks {
                    self.current = None;
                }
            } else {
                self.off_run = 0;
            }
            start += self.cfg.hop;
        }
        self.pending.drain(..start);
        self.consumed += start as u64;
        out
    }

    /// Forget buffered audio and state.
    pub fn reset(&mut self) {
        *self = InbandDetector::new(self.cfg.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::{Path, PathBuf};

    fn data() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
    }

    #[test]
    fn digit_codes() {
        for (d, e) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('D', 15),
        ] {
            assert_eq!(digit_to_event(d), Some(e));
            assert_eq!(event_to_digit(e), Some(d));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn payload_round_trip() {
        // From sipp's pcap: event 0, end, volume 10, duration 2240.
        let e = TelephoneEvent::parse(&[0x00, 0x8a, 0x08, 0xc0]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 0,
                end: true,
                volume: 10,
                duration: 2240
            }
        );
        assert_eq!(e.to_bytes(), [0x00, 0x8a, 0x08, 0xc0]);
        // Reserved bit ignored on input.
        let r = TelephoneEvent::parse(&[11, 0x4a, 0, 0]).unwrap();
        assert_eq!((r.digit(), r.end, r.volume), (Some('#'), false, 10));
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
    }

    fn feed(rx: &mut DtmfReceiver, plans: &[(u32, Vec<DtmfPacketPlan>)]) -> Vec<char> {
        let mut out = Vec::new();
        for (ts, plan) in plans {
            for p in plan {
                if let Some(d) = rx.on_packet(9, *ts, &p.event.to_bytes()).unwrap() {
                    out.push(d.digit);
                }
            }
        }
        out
    }

    #[test]
    fn sender_plan_shape() {
        let s = DtmfSender::default();
        let plan = s.plan('5', 200).unwrap();
        let offsets: Vec<u32> = plan.iter().map(|p| p.offset_ms).collect();
        assert_eq!(offsets, vec![0, 50, 100, 150, 200, 220, 240]);
        assert!(plan[0].marker && plan[1..].iter().all(|p| !p.marker));
        assert!(plan[..4].iter().all(|p| !p.event.end && p.event.event == 5));
        assert!(
            plan[4..]
                .iter()
                .all(|p| p.event.end && p.event.duration == 1600)
        );
        assert_eq!(plan[2].event.duration, 800);
        assert_eq!(s.plan('x', 100), Err(DtmfError::NotADigit('x')));
        assert_eq!(s.plan('1', 10), Err(DtmfError::Duration(10)));
        assert_eq!(s.plan('1', 9000), Err(DtmfError::Duration(9000)));
    }

    #[test]
    fn receiver_reports_each_event_once() {
        let s = DtmfSender::default();
        let plans: Vec<(u32, Vec<DtmfPacketPlan>)> = "12#*0"
            .chars()
            .enumerate()
            .map(|(i, d)| (1000 + i as u32 * 4000, s.plan(d, 100).unwrap()))
            .collect();
        let mut rx = DtmfReceiver::new();
        assert_eq!(feed(&mut rx, &plans), vec!['1', '2', '#', '*', '0']);
        assert_eq!(rx.last_event(), Some(('0', 800, true)));
        // Same digit twice in a row is two events (different timestamps).
        let again = vec![
            (50_000, s.plan('7', 60).unwrap()),
            (52_000, s.plan('7', 60).unwrap()),
        ];
        assert_eq!(feed(&mut rx, &again), vec!['7', '7']);
        // Replaying old packets (late duplicates) reports nothing.
        assert!(feed(&mut rx, &plans[3..]).is_empty());
    }

    #[test]
    fn receiver_survives_loss_and_reordering() {
        let s = DtmfSender::default();
        let plan = s.plan('9', 150).unwrap();
        let mut rx = DtmfReceiver::new();
        // Start packet lost, end packets first, then an update.
        let order = [5usize, 3, 2, 4, 1];
        let got: Vec<char> = order
            .iter()
            .filter_map(|&i| {
                rx.on_packet(1, 777, &plan[i].event.to_bytes())
                    .unwrap()
                    .map(|d| d.digit)
            })
            .collect();
        assert_eq!(got, vec!['9']);
        // Only end packets of an event arrive: still one digit.
        let plan = s.plan('3', 80).unwrap();
        let ends: Vec<_> = plan.iter().filter(|p| p.event.end).collect();
        let got: Vec<char> = ends
            .iter()
            .filter_map(|p| {
                rx.on_packet(1, 9999, &p.event.to_bytes())
                    .unwrap()
                    .map(|d| d.digit)
            })
            .collect();
        assert_eq!(got, vec!['3']);
        // Non-DTMF events (e.g. 32 = answer tone) are ignored; short payloads are errors.
        assert_eq!(rx.on_packet(1, 20_000, &[32, 10, 0, 0]).unwrap(), None);
        assert!(rx.on_packet(1, 20_000, &[1]).is_err());
        // Another source with the same timestamp is another event.
        assert_eq!(
            rx.on_packet(2, 9999, &plan[0].event.to_bytes())
                .unwrap()
                .map(|d| d.digit),
            Some('3')
        );
    }

    #[test]
    fn long_event_segments_are_one_digit() {
        let mut rx = DtmfReceiver::new();
        let seg1 = TelephoneEvent {
            event: 4,
            end: false,
            volume: 10,
            duration: u16::MAX,
        };
        let seg2 = TelephoneEvent {
            duration: 800,
            end: true,
            ..seg1
        };
        assert!(rx.on_packet(1, 100, &seg1.to_bytes()).unwrap().is_some());
        assert!(
            rx.on_packet(1, 100 + 65535, &seg2.to_bytes())
                .unwrap()
                .is_none()
        );
    }

    // ---- in-band ----

    fn tone(low: f32, high: f32, amp: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let v = amp
                    * ((2.0 * std::f32::consts::PI * low * t).sin()
                        + (2.0 * std::f32::consts::PI * high * t).sin());
                (v * 32767.0) as i16
            })
            .collect()
    }

    fn digits_of(pcm: &[i16]) -> String {
        let mut d = InbandDetector::default();
        // Odd chunk size to exercise buffering.
        pcm.chunks(97)
            .flat_map(|c| d.process(c))
            .map(|x| x.digit)
            .collect()
    }

    #[test]
    fn synthetic_keypad() {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &key) in row.iter().enumerate() {
                let mut pcm = vec![0i16; 400];
                pcm.extend(tone(LOW_FREQS[r], HIGH_FREQS[c], 0.1, 480));
                pcm.extend(vec![0i16; 400]);
                assert_eq!(digits_of(&pcm), key.to_string(), "key {key}");
            }
        }
    }

    #[test]
    fn duration_twist_level_and_debounce() {
        let silence = vec![0i16; 480];
        let cat = |parts: &[&[i16]]| parts.concat();
        // 60 ms tones are accepted, 20 ms tones are not.
        let t60 = tone(770.0, 1336.0, 0.1, 480);
        let t20 = tone(770.0, 1336.0, 0.1, 160);
        assert_eq!(digits_of(&cat(&[&silence, &t60, &silence])), "5");
        assert_eq!(digits_of(&cat(&[&silence, &t20, &silence])), "");
        // Two presses separated by 60 ms (or 40 ms) of silence are two digits.
        assert_eq!(digits_of(&cat(&[&t60, &silence, &t60])), "55");
        assert_eq!(digits_of(&cat(&[&t60, &silence[..320], &t60])), "55");
        // A 10 ms dropout inside a press does not split it.
        let t200 = tone(770.0, 1336.0, 0.1, 1600);
        let mut with_dropout = t200.clone();
        with_dropout[800..880].fill(0);
        assert_eq!(digits_of(&with_dropout), "5");
        // Frequencies 1.5% off are accepted, 5% off are rejected.
        assert_eq!(
            digits_of(&tone(770.0 * 1.015, 1336.0 * 0.985, 0.1, 800)),
            "5"
        );
        assert_eq!(digits_of(&tone(770.0 * 1.05, 1336.0 * 1.05, 0.1, 800)), "");
        // Twist: high tone 6 dB above low is fine; 12 dB is not.
        let twisted = |db: f32| -> Vec<i16> {
            let g = 10f32.powf(db / 20.0);
            let lo = tone(852.0, 0.0, 0.05, 800);
            let hi = tone(0.0, 1477.0, 0.05 * g, 800);
            lo.iter()
                .zip(&hi)
                .map(|(a, b)| a.saturating_add(*b))
                .collect()
        };
        assert_eq!(digits_of(&twisted(6.0)), "9");
        assert_eq!(digits_of(&twisted(12.0)), "");
        assert_eq!(digits_of(&twisted(-3.0)), "9");
        assert_eq!(digits_of(&twisted(-8.0)), "");
        // Too quiet: −50 dBFS tones are ignored.
        assert_eq!(digits_of(&tone(697.0, 1209.0, 0.003, 800)), "");
        // A single tone is not a digit.
        assert_eq!(digits_of(&tone(697.0, 0.0, 0.2, 800)), "");
        // Dial tone (350 + 440 Hz) is not a digit.
        assert_eq!(digits_of(&tone(350.0, 440.0, 0.2, 8000)), "");
    }

    #[test]
    fn tone_in_noise() {
        // 0.1 amplitude tones with white noise of 0.02 rms (≈ 17 dB SNR) are still detected.
        let mut rng_state = 12345u32;
        let mut noise = || {
            rng_state = rng_state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            ((rng_state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.07 * 32767.0
        };
        let pcm: Vec<i16> = tone(941.0, 1477.0, 0.1, 800)
            .iter()
            .map(|&s| (f32::from(s) + noise()) as i16)
            .collect();
        assert_eq!(digits_of(&pcm), "#");
    }

    /// Read a mono or stereo WAV (first channel) of 16-bit PCM.
    fn read_wav(path: &Path) -> (Vec<i16>, u32) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        assert_eq!(spec.bits_per_sample, 16, "{}", path.display());
        let ch = usize::from(spec.channels);
        let s: Vec<i16> = r.samples::<i16>().step_by(ch).map(|x| x.unwrap()).collect();
        (s, spec.sample_rate)
    }

    /// Band-limited resampling to 8 kHz for tests: windowed-sinc interpolation with a 3.6 kHz
    /// low-pass (Blackman window).
    fn to_8k(x: &[i16], from: u32) -> Vec<i16> {
        if from == 8000 {
            return x.to_vec();
        }
        let ratio = f64::from(from) / 8000.0;
        let fc = 3600.0 / f64::from(from); // cycles per input sample
        let half = (4.0 / fc).ceil() as i64; // ~4 zero crossings each side … wider window
        let n_out = (x.len() as f64 / ratio) as usize;
        (0..n_out)
            .map(|n| {
                let centre = n as f64 * ratio;
                let k0 = centre.floor() as i64;
                let mut acc = 0.0;
                for k in (k0 - half)..=(k0 + half) {
                    if k < 0 || k as usize >= x.len() {
                        continue;
                    }
                    let t = k as f64 - centre;
                    let sinc = if t == 0.0 {
                        2.0 * fc
                    } else {
                        (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
                    };
                    let w = (t / (half as f64 + 1.0)) * std::f64::consts::PI;
                    let blackman = 0.42 + 0.5 * w.cos() + 0.08 * (2.0 * w).cos();
                    acc += f64::from(x[k as usize]) * sinc * blackman;
                }
                acc.round().clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn baresip_tones_decode_to_their_digits() {
        let dir = data().join("dtmf/baresip-tones");
        // soundroute.wav's spectrum has 941 Hz + 1477 Hz: it is '#'.
        let cases = [
            ("sound0.wav", "0"),
            ("sound1.wav", "1"),
            ("sound2.wav", "2"),
            ("sound3.wav", "3"),
            ("sound4.wav", "4"),
            ("sound5.wav", "5"),
            ("sound6.wav", "6"),
            ("sound7.wav", "7"),
            ("sound8.wav", "8"),
            ("sound9.wav", "9"),
            ("soundstar.wav", "*"),
            ("soundroute.wav", "#"),
        ];
        for (file, want) in cases {
            let (pcm, rate) = read_wav(&dir.join(file));
            assert_eq!(rate, 44100);
            let pcm8 = to_8k(&pcm, rate);
            assert_eq!(digits_of(&pcm8), want, "{file}");
            // Also through µ-law and A-law, as it would arrive on a call.
            for codec in [crate::g711::Codec::Pcmu, crate::g711::Codec::Pcma] {
                let coded = codec.decode(&codec.encode(&pcm8));
                assert_eq!(digits_of(&coded), want, "{file} via {codec:?}");
            }
            // And 10 dB quieter (about −30 dBFS per tone).
            let quiet: Vec<i16> = pcm8.iter().map(|&s| s / 3).collect();
            assert_eq!(digits_of(&quiet), want, "{file} at -10 dB");
        }
    }

    fn wavs_under(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                wavs_under(&p, out);
            } else if p.extension().is_some_and(|e| e == "wav") {
                out.push(p);
            }
        }
    }

    #[test]
    fn no_digits_in_speech() {
        let mut files = Vec::new();
        wavs_under(&data().join("speech"), &mut files);
        assert!(files.len() > 150, "speech corpus missing: {}", files.len());
        let mut total_s = 0.0;
        let mut false_hits = Vec::new();
        for f in &files {
            let Ok(r) = hound::WavReader::open(f) else {
                continue;
            };
            if r.spec().bits_per_sample != 16 || r.spec().sample_format != hound::SampleFormat::Int
            {
                continue;
            }
            drop(r);
            let (pcm, rate) = read_wav(f);
            let pcm8 = to_8k(&pcm, rate);
            total_s += pcm8.len() as f64 / 8000.0;
            let got = digits_of(&pcm8);
            if !got.is_empty() {
                false_hits.push(format!("{}: {got}", f.display()));
            }
        }
        assert!(total_s > 600.0, "only {total_s:.0} s of speech");
        assert!(
            false_hits.is_empty(),
            "talk-off in {} of {} files ({total_s:.0} s): {false_hits:#?}",
            false_hits.len(),
            files.len()
        );
    }
}
