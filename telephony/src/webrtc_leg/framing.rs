//! Sans-IO halves of the leg's media path: [`Outbound`] turns queued PCM into one PCMU payload per
//! 20 ms tick, [`Inbound`] turns received PCMU packets of any packet time into 20 ms frames.
//! The tokio tasks in the parent module only move these payloads to and from the peer connection.

use std::collections::VecDeque;

use crate::g711::Codec;
use crate::media::PcmFrame;

/// Samples in one 20 ms frame at 8 kHz.
pub(crate) const FRAME_SAMPLES: usize = 160;

/// One packet's worth of outbound audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboundPacket {
    /// PCMU payload, [`FRAME_SAMPLES`] bytes.
    pub payload: Vec<u8>,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// First packet of a talk spurt (RFC 3551 §4.1).
    pub marker: bool,
}

/// The send side: PCM queued by the application, cut into 20 ms PCMU payloads on each tick.
#[derive(Debug)]
pub(crate) struct Outbound {
    queue: VecDeque<i16>,
    timestamp: u32,
    send_silence: bool,
    talking: bool,
}

impl Outbound {
    pub(crate) fn new(initial_timestamp: u32, send_silence: bool) -> Self {
        Self {
            queue: VecDeque::new(),
            timestamp: initial_timestamp,
            send_silence,
            // The very first packet carries the marker, silence or not.
            talking: false,
        }
    }

    /// Queue PCM of any length.
    pub(crate) fn push(&mut self, pcm: &[i16]) {
        self.queue.extend(pcm.iter().copied());
    }

    /// Samples waiting to be sent.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drop everything queued (barge-in).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    /// One 20 ms tick: the packet to send, if any. The RTP clock advances by a frame on every
    /// tick, sent or not, so a pause without silence keeps the receiver's timing true. A short
    /// tail at the end of a prompt is padded with silence.
    pub(crate) fn tick(&mut self) -> Option<OutboundPacket> {
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        if self.queue.is_empty() {
            let first = !self.talking;
            if !self.send_silence {
                self.talking = false;
                return None;
            }
            self.talking = true;
            return Some(OutboundPacket {
                payload: vec![Codec::Pcmu.silence_byte(); FRAME_SAMPLES],
                timestamp,
                marker: first,
            });
        }
        let take = self.queue.len().min(FRAME_SAMPLES);
        let mut payload = Vec::with_capacity(FRAME_SAMPLES);
        Codec::Pcmu.encode_into(&self.queue.drain(..take).collect::<Vec<_>>(), &mut payload);
        payload.resize(FRAME_SAMPLES, Codec::Pcmu.silence_byte());
        let marker = !self.talking;
        self.talking = true;
        Some(OutboundPacket {
            payload,
            timestamp,
            marker,
        })
    }
}

/// The receive side: PCMU packets in arrival order, 20 ms frames out.
///
/// No jitter buffer: the browser sits on the agent's LAN, so packets come in order and a lost
/// one just shortens the stream. A packet whose timestamp does not follow the previous one (a
/// gap, a reorder or a new talk spurt) starts a fresh frame and marks it `concealed`, as the
/// SIP leg's jitter buffer does at a splice.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    pending: Vec<i16>,
    /// RTP timestamp of `pending[0]`.
    pending_timestamp: u32,
    /// RTP timestamp the next packet should carry if it follows on.
    expected: Option<u32>,
    splice: bool,
}

impl Inbound {
    /// Feed one packet's payload; returns the whole 20 ms frames it completes.
    pub(crate) fn push(&mut self, timestamp: u32, payload: &[u8]) -> Vec<PcmFrame> {
        let mut frames = Vec::new();
        if self.expected.is_some_and(|e| e != timestamp) {
            self.splice = true;
            if !self.pending.is_empty() {
                // Pad the partial frame rather than stitching two unrelated runs together.
                self.pending.resize(FRAME_SAMPLES, 0);
                frames.push(self.take_frame());
            }
        }
        if self.pending.is_empty() {
            self.pending_timestamp = timestamp;
        }
        self.expected = Some(timestamp.wrapping_add(payload.len() as u32));
        Codec::Pcmu.decode_into(payload, &mut self.pending);
        while self.pending.len() >= FRAME_SAMPLES {
            frames.push(self.take_frame());
        }
        frames
    }

    fn take_frame(&mut self) -> PcmFrame {
        let rest = self
            .pending
            .split_off(FRAME_SAMPLES.min(self.pending.len()));
        let samples = std::mem::replace(&mut self.pending, rest);
        let frame = PcmFrame {
            samples,
            timestamp: self.pending_timestamp,
            concealed: std::mem::take(&mut self.splice),
        };
        self.pending_timestamp = self.pending_timestamp.wrapping_add(FRAME_SAMPLES as u32);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_cuts_pads_and_marks_talk_spurts() {
        let mut out = Outbound::new(1000, false);
        assert_eq!(out.tick(), None, "nothing queued, no silence");
        out.push(&vec![1000i16; 200]);
        let first = out.tick().expect("a packet");
        assert_eq!(first.timestamp, 1160);
        assert!(first.marker);
        assert_eq!(first.payload, vec![Codec::Pcmu.encode_sample(1000); 160]);
        let tail = out.tick().expect("the tail");
        assert!(!tail.marker);
        assert_eq!(tail.timestamp, 1320);
        assert_eq!(
            &tail.payload[..40],
            &[Codec::Pcmu.encode_sample(1000); 40][..]
        );
        assert!(tail.payload[40..].iter().all(|&b| b == 0xFF));
        assert_eq!(out.tick(), None);
        out.push(&[5; 160]);
        let next = out.tick().expect("a new spurt");
        assert!(next.marker, "a new talk spurt after a pause is marked");
        assert_eq!(next.timestamp, 1640, "the clock ran through the pause");
    }

    #[test]
    fn outbound_sends_silence_when_idle_if_asked() {
        let mut out = Outbound::new(0, true);
        let a = out.tick().expect("silence");
        assert!(a.marker);
        assert!(a.payload.iter().all(|&b| b == 0xFF));
        out.push(&[7; 10]);
        assert_eq!(out.queued(), 10);
        out.clear();
        let b = out.tick().expect("silence again");
        assert!(!b.marker, "silence then speech is one continuous stream");
        assert_eq!(b.timestamp, 160);
    }

    #[test]
    fn inbound_reframes_any_packet_time() {
        let mut inb = Inbound::default();
        let pkt = |n: usize| vec![Codec::Pcmu.encode_sample(300); n];
        // 30 ms packets: 240 samples each.
        let f = inb.push(5000, &pkt(240));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].timestamp, 5000);
        assert_eq!(f[0].samples.len(), 160);
        assert!(!f[0].concealed);
        let f = inb.push(5240, &pkt(240));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].timestamp, 5160);
        assert_eq!(f[1].timestamp, 5320);
        assert!(f.iter().all(|fr| !fr.concealed));
    }

    #[test]
    fn inbound_marks_a_gap_as_a_splice() {
        let mut inb = Inbound::default();
        let pkt = vec![Codec::Pcmu.encode_sample(300); 100];
        assert!(inb.push(0, &pkt).is_empty());
        // 100 samples pending; the next packet jumps ahead.
        let f = inb.push(1000, &pkt);
        assert_eq!(f.len(), 1, "the partial frame is flushed, padded");
        assert!(f[0].concealed);
        assert_eq!(f[0].samples.len(), 160);
        assert!(f[0].samples[100..].iter().all(|&s| s == 0));
        let f = inb.push(1100, &pkt);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].timestamp, 1000);
        assert!(!f[0].concealed);
    }
}
