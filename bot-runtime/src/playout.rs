//! The robot's side of the audio: speeches queued as they are synthesised, fed to the media
//! session a few frames ahead of real time, so that the robot can stop at once (barge-in) and
//! pick up again where it stopped (a backchannel), and the runtime knows what was heard.
//!
//! Sans-IO: [`Playout::poll`] takes the call clock and returns the 20 ms frames to queue in the
//! media session now, with events (a speech started or finished playing). Times are
//! milliseconds on the call clock (0 = answer).

use std::collections::VecDeque;

/// 20 ms at 8 kHz.
pub const FRAME: usize = 160;
const FRAME_MS: u64 = 20;

/// Something that happened to a speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// Its first frame plays at `at_ms`.
    Started { id: u64, at_ms: u64 },
    /// Its last frame finished playing at `at_ms`.
    Finished { id: u64, at_ms: u64 },
}

#[derive(Debug, Clone)]
struct Segment {
    id: u64,
    samples: Vec<i16>,
    rendered: bool,
    /// Samples handed to the media session so far.
    pos: usize,
    started: bool,
    /// Whether voiced audio has arrived (until then, leading silence is dropped).
    voiced: bool,
    /// When its last frame finishes playing, once it is fully queued.
    end_ms: Option<u64>,
}

/// Samples quieter than this at the start of a speech are synthesiser padding (Piper begins
/// every sentence with 40–60 ms of it), which would only delay the answer.
const LEAD_SILENCE_LEVEL: i16 = 300;
/// Silence kept before the first voiced sample, for a natural onset: 10 ms.
const LEAD_SILENCE_KEEP: usize = 80;

/// A speech cut off by an interruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unheard {
    pub id: u64,
    /// How much of it was played, in ms (0 when it never started).
    pub played_ms: u64,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Playout {
    /// Speeches not finished playing, in order; the fully queued ones first.
    queue: VecDeque<Segment>,
    lead_ms: u64,
    /// The call-clock time up to which audio has been handed to the media session.
    fed_until: u64,
    paused: bool,
}

impl Playout {
    /// `lead_ms`: how far ahead of real time audio is queued in the media session (at least
    /// one frame; more rides out a late timer and costs nothing at barge-in, since the
    /// session's queue is cleared).
    pub fn new(lead_ms: u64) -> Self {
        Playout {
            queue: VecDeque::new(),
            lead_ms: lead_ms.max(FRAME_MS),
            fed_until: 0,
            paused: false,
        }
    }

    /// A new speech whose audio will follow with [`append`](Self::append).
    pub fn push(&mut self, id: u64) {
        self.queue.push_back(Segment {
            id,
            samples: Vec::new(),
            rendered: false,
            pos: 0,
            started: false,
            voiced: false,
            end_ms: None,
        });
    }

    /// More audio of speech `id` (8 kHz PCM). Silence before a speech's first voiced sample is
    /// dropped, but for the last 10 ms.
    pub fn append(&mut self, id: u64, samples: &[i16]) {
        let Some(s) = self.queue.iter_mut().find(|s| s.id == id) else {
            return;
        };
        if s.voiced {
            s.samples.extend_from_slice(samples);
            return;
        }
        s.samples.extend_from_slice(samples);
        match s
            .samples
            .iter()
            .position(|x| x.unsigned_abs() > LEAD_SILENCE_LEVEL.unsigned_abs())
        {
            Some(first) => {
                s.voiced = true;
                s.samples.drain(..first.saturating_sub(LEAD_SILENCE_KEEP));
            }
            None => {
                let excess = s.samples.len().saturating_sub(LEAD_SILENCE_KEEP);
                s.samples.drain(..excess);
            }
        }
    }

    /// All audio of speech `id` is in.
    pub fn rendered(&mut self, id: u64) {
        if let Some(s) = self.queue.iter_mut().find(|s| s.id == id) {
            s.rendered = true;
        }
    }

    /// Whether anything is playing or waiting to play.
    pub fn is_active(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The call-clock time up to which audio has been handed out.
    pub fn fed_until(&self) -> u64 {
        self.fed_until
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Ids of the speeches not finished playing, in order.
    pub fn pending_ids(&self) -> Vec<u64> {
        self.queue.iter().map(|s| s.id).collect()
    }

    /// Removes the speeches whose last frame has played by `now_ms`, reporting each.
    fn pop_finished(&mut self, now_ms: u64, events: &mut Vec<PlayoutEvent>) {
        while let Some(end) = self.queue.front().and_then(|s| s.end_ms) {
            if end > now_ms {
                break;
            }
            if let Some(s) = self.queue.pop_front() {
                events.push(PlayoutEvent::Finished {
                    id: s.id,
                    at_ms: end,
                });
            }
        }
    }

    /// The frames to queue now and what happened.
    pub fn poll(&mut self, now_ms: u64) -> (Vec<Vec<i16>>, Vec<PlayoutEvent>) {
        let mut frames = Vec::new();
        let mut events = Vec::new();
        self.pop_finished(now_ms, &mut events);
        if self.paused {
            return (frames, events);
        }
        self.fed_until = self.fed_until.max(now_ms);
        while self.fed_until < now_ms + self.lead_ms {
            let fed_until = self.fed_until;
            let Some(seg) = self.queue.iter_mut().find(|s| s.end_ms.is_none()) else {
                break;
            };
            let available = seg.samples.len() - seg.pos;
            if available == 0 && seg.rendered {
                if !seg.started {
                    seg.started = true;
                    events.push(PlayoutEvent::Started {
                        id: seg.id,
                        at_ms: fed_until,
                    });
                }
                seg.end_ms = Some(fed_until);
                continue;
            }
            if available < FRAME && !seg.rendered {
                // Waiting for the synthesiser.
                break;
            }
            if !seg.started {
                seg.started = true;
                events.push(PlayoutEvent::Started {
                    id: seg.id,
                    at_ms: fed_until,
                });
            }
            let n = available.min(FRAME);
            let mut frame = seg.samples[seg.pos..seg.pos + n].to_vec();
            frame.resize(FRAME, 0);
            seg.pos += n;
            frames.push(frame);
            self.fed_until += FRAME_MS;
            if seg.rendered && seg.pos >= seg.samples.len() {
                seg.end_ms = Some(self.fed_until);
            }
        }
        // Speeches that end right now (empty ones) are reported at once.
        self.pop_finished(now_ms, &mut events);
        (frames, events)
    }

    /// Stop now. The caller drops the audio queued ahead in the media session
    /// (`MediaHandle::clear_audio`); the speeches rewind by that much, so that
    /// [`resume`](Self::resume) neither skips nor repeats (exact unless the synthesiser stalled
    /// within the last `lead_ms`, in which case a few frames are repeated).
    pub fn pause(&mut self, now_ms: u64) {
        if self.paused {
            return;
        }
        self.paused = true;
        let mut rewind = (self.fed_until.saturating_sub(now_ms) / FRAME_MS) as usize * FRAME;
        for seg in self.queue.iter_mut().rev() {
            if rewind == 0 {
                break;
            }
            if !seg.started {
                continue;
            }
            let back = rewind.min(seg.pos);
            seg.pos -= back;
            rewind -= back;
            seg.end_ms = None;
            if seg.pos == 0 {
                seg.started = false;
            }
        }
        self.fed_until = now_ms;
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// The robot was interrupted: drop everything left and say which speeches were not heard
    /// to the end.
    pub fn interrupt(&mut self, now_ms: u64) -> Vec<Unheard> {
        self.pause(now_ms);
        self.paused = false;
        let out = self
            .queue
            .drain(..)
            .map(|s| Unheard {
                id: s.id,
                played_ms: (s.pos / FRAME) as u64 * FRAME_MS,
            })
            .collect();
        self.fed_until = now_ms;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Playout, from: u64, to: u64) -> (usize, Vec<PlayoutEvent>) {
        let mut frames = 0;
        let mut events = Vec::new();
        let mut t = from;
        while t <= to {
            let (f, e) = p.poll(t);
            frames += f.len();
            events.extend(e);
            t += 20;
        }
        (frames, events)
    }

    #[test]
    fn plays_a_speech_a_little_ahead_and_reports_its_end() {
        let mut p = Playout::new(60);
        p.push(1);
        p.append(1, &vec![1000; 8 * 500]); // 500 ms
        p.rendered(1);
        let (frames, events) = run(&mut p, 0, 1000);
        assert_eq!(frames, 25);
        assert_eq!(
            events,
            vec![
                PlayoutEvent::Started { id: 1, at_ms: 0 },
                PlayoutEvent::Finished { id: 1, at_ms: 500 }
            ]
        );
        assert!(!p.is_active());
    }

    #[test]
    fn waits_for_the_synthesiser_without_dropping_audio() {
        let mut p = Playout::new(60);
        p.push(1);
        p.append(1, &[1000; 100]); // less than a frame, not finished
        let (frames, _) = run(&mut p, 0, 100);
        assert_eq!(frames, 0);
        p.append(1, &[1000; 220]);
        p.rendered(1);
        let (frames, events) = run(&mut p, 120, 400);
        assert_eq!(frames, 2);
        assert_eq!(events[0], PlayoutEvent::Started { id: 1, at_ms: 120 });
        assert_eq!(events[1], PlayoutEvent::Finished { id: 1, at_ms: 160 });
    }

    #[test]
    fn pause_rewinds_the_dropped_lead_and_resume_continues() {
        let mut p = Playout::new(60);
        p.push(1);
        let samples: Vec<i16> = (0..8 * 1000).map(|i| 1000 + (i / FRAME) as i16).collect();
        p.append(1, &samples);
        p.rendered(1);
        let mut sent = Vec::new();
        for t in (0..=200).step_by(20) {
            sent.extend(p.poll(t).0);
        }
        // Frames 0..=12 queued by t=200 (60 ms lead); at t=200 frames 0..=9 have played.
        assert_eq!(sent.len(), 13);
        p.pause(200);
        assert!(p.poll(220).0.is_empty());
        p.resume();
        let (f, _) = p.poll(400);
        assert_eq!(f[0][0], 1010, "resumes at the first frame not played");
    }

    #[test]
    fn interrupt_names_what_was_not_heard() {
        let mut p = Playout::new(40);
        for id in 1..=3 {
            p.push(id);
            p.append(id, &vec![500; 8 * 300]);
            p.rendered(id);
        }
        let (_, events) = run(&mut p, 0, 400);
        assert!(events.contains(&PlayoutEvent::Finished { id: 1, at_ms: 300 }));
        let unheard = p.interrupt(400);
        assert_eq!(
            unheard,
            vec![
                Unheard {
                    id: 2,
                    played_ms: 100
                },
                Unheard {
                    id: 3,
                    played_ms: 0
                }
            ]
        );
        assert!(!p.is_active());
    }

    #[test]
    fn drops_the_synthesisers_leading_silence_but_10_ms() {
        let mut p = Playout::new(60);
        p.push(1);
        // Streamed in pieces: 50 ms of near-silence, then speech.
        p.append(1, &[20; 200]);
        p.append(1, &[-40; 200]);
        p.append(1, &vec![2000; 8 * 100]);
        p.rendered(1);
        let mut out = Vec::new();
        for t in (0..=200).step_by(20) {
            out.extend(p.poll(t).0.into_iter().flatten());
        }
        assert_eq!(out.len(), 880usize.div_ceil(FRAME) * FRAME);
        assert!(out[..80].iter().all(|&x| x == -40));
        assert_eq!(out[80], 2000);
        // Silence inside a speech is kept.
        p.push(2);
        p.append(2, &[3000; 160]);
        p.append(2, &[0; 320]);
        p.append(2, &[3000; 160]);
        p.rendered(2);
        let mut out = Vec::new();
        for t in (220..=400).step_by(20) {
            out.extend(p.poll(t).0.into_iter().flatten());
        }
        assert_eq!(out.len(), 640);
    }
}
