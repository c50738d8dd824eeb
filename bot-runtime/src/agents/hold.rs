//! Music on hold, synthesised: a slow four-chord arpeggio of soft sine tones (no audio file to
//! ship or license), about −24 dBFS, looping every 8 s. Comfortable on a narrow-band phone line
//! (every note between 260 and 800 Hz) and unlike speech, so no one mistakes it for an agent.

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
const RATE: f32 = 8000.0;
/// One note lasts 500 ms.
const NOTE: usize = 4000;
/// Peak amplitude (about −24 dBFS).
const PEAK: f32 = 2000.0;

/// C major, A minor, F major, G major; four notes each (Hz).
const NOTES: [f32; 16] = [
    261.63, 329.63, 392.00, 523.25, // C
    220.00, 261.63, 329.63, 440.00, // Am
    349.23, 440.00, 523.25, 698.46, // F
    392.00, 493.88, 587.33, 783.99, // G
];

/// An endless source of hold-music frames.
#[derive(Debug, Clone, Default)]
pub struct HoldMusic {
    /// Samples produced so far, modulo one loop.
    pos: usize,
}

impl HoldMusic {
    pub fn new() -> Self {
        HoldMusic::default()
    }

    /// The next 20 ms of music (8 kHz PCM).
    pub fn next_frame(&mut self) -> Vec<i16> {
        let period = NOTE * NOTES.len();
        (0..FRAME)
            .map(|_| {
                let i = self.pos;
                self.pos = (self.pos + 1) % period;
                let note = NOTES[i / NOTE];
                let t = (i % NOTE) as f32;
                // 20 ms attack, exponential decay: a soft, bell-like note.
                let attack = (t / 160.0).min(1.0);
                let decay = (-t / 2400.0).exp();
                let phase = 2.0 * std::f32::consts::PI * note * t / RATE;
                (PEAK * attack * decay * phase.sin()) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_20_ms_quiet_and_not_silent() {
        let mut m = HoldMusic::new();
        let frames: Vec<Vec<i16>> = (0..400).map(|_| m.next_frame()).collect();
        assert!(frames.iter().all(|f| f.len() == FRAME));
        let peak = frames.iter().flatten().map(|s| s.unsigned_abs()).max();
        assert!(peak.is_some_and(|p| p > 1000 && p <= PEAK as u16));
        // Every note starts audibly: no 500 ms stretch is silent.
        for note in frames.chunks(25) {
            let energy: f64 = note.iter().flatten().map(|&s| f64::from(s).powi(2)).sum();
            assert!(energy > 1e6, "a silent note");
        }
    }

    #[test]
    fn it_loops_every_eight_seconds() {
        let mut m = HoldMusic::new();
        let first = m.next_frame();
        for _ in 1..400 {
            m.next_frame();
        }
        assert_eq!(m.next_frame(), first);
    }
}
