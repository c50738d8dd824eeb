//! Beep detection: is a frame one steady pure tone, and which frequency?
//!
//! A bank of Goertzel filters (one every [`BeepConfig::step_hz`] between `min_hz` and `max_hz`)
//! runs over each frame with its mean removed. A pure tone puts nearly all of the frame's energy
//! into the filter nearest its frequency; speech, noise and dual tones (DTMF) spread it. The
//! frame's *purity* is that share: `2·|X(f)|² / (N · Σx²)`, 1.0 for a sinusoid exactly on a
//! filter, ≈ 0.87 half a step (10 Hz) away with the 20 Hz default step on 160 samples. The
//! frequency is refined between filters by parabolic interpolation of the magnitudes.
//!
//! Purity alone is not enough: a voiced vowel on a telephone line (the fundamental cut off
//! below 300 Hz) can put 95% of a frame's energy in one harmonic at 300–500 Hz. What speech
//! does not do is hold one frequency and one level for 120 ms and more, so the detector in
//! `amd` also asks for a steady frequency ([`BeepConfig::max_drift_hz`]) and a steady level
//! ([`BeepConfig::max_level_ratio`]) across a run of frames, and the search starts at 390 Hz.

/// Thresholds of the tone detector (frequencies in Hz, durations in ms).
#[derive(Debug, Clone, PartialEq)]
pub struct BeepConfig {
    /// Lowest beep frequency searched.
    pub min_hz: f32,
    /// Highest beep frequency searched.
    pub max_hz: f32,
    /// Spacing of the Goertzel filters.
    pub step_hz: f32,
    /// Share of the frame's energy the best filter must hold (0..1).
    pub min_purity: f32,
    /// RMS (in 16-bit units) below which a frame is too quiet to be a beep.
    pub min_rms: f32,
    /// How far a tone frame's frequency may be from the run's mean and still be one beep.
    pub max_drift_hz: f32,
    /// Largest ratio of the loudest to the quietest frame of a beep (its first frame, often
    /// only partly tone, aside).
    pub max_level_ratio: f32,
    /// Tone duration from which it counts as a beep (frames are 20 ms, so 100 ms is 5 frames;
    /// a 150 ms beep cut by frame boundaries still fills 6, and each half of Asterisk's
    /// ~120 ms double beep fills 5).
    pub min_ms: u64,
    /// Tone longer than this is not a beep (a fax tone, a stuck line); it is ignored.
    pub max_ms: u64,
    /// Non-tone audio needed after a beep to call it over (one frame of dropout inside a
    /// beep is tolerated regardless).
    pub end_confirm_ms: u64,
}

impl Default for BeepConfig {
    fn default() -> Self {
        Self {
            min_hz: 390.0,
            max_hz: 2100.0,
            step_hz: 20.0,
            min_purity: 0.8,
            min_rms: 150.0,
            max_drift_hz: 15.0,
            max_level_ratio: 1.6,
            min_ms: 100,
            max_ms: 4000,
            end_confirm_ms: 60,
        }
    }
}

/// What the filter bank found in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneFrame {
    /// Frequency of the strongest filter.
    pub hz: f32,
    /// That filter's share of the frame's energy (0..1, see the module docs).
    pub purity: f32,
    /// RMS of the frame (16-bit units, mean removed).
    pub rms: f32,
}

/// A Goertzel filter bank at a fixed sample rate.
#[derive(Debug, Clone)]
pub struct ToneBank {
    /// `(frequency, 2·cos(ω))` per filter.
    filters: Vec<(f32, f32)>,
}

impl ToneBank {
    /// Filters every `step_hz` from `min_hz` to `max_hz` at `sample_rate`.
    pub fn new(config: &BeepConfig, sample_rate: u32) -> Self {
        let mut filters = Vec::new();
        let step = config.step_hz.max(1.0);
        let nyquist = sample_rate as f32 / 2.0;
        let mut hz = config.min_hz.max(step);
        while hz <= config.max_hz && hz < nyquist {
            let w = 2.0 * std::f32::consts::PI * hz / sample_rate as f32;
            filters.push((hz, 2.0 * w.cos()));
            hz += step;
        }
        Self { filters }
    }

    /// The strongest filter of `pcm` (`None` for an empty or all-constant frame).
    pub fn analyse(&self, pcm: &[i16]) -> Option<ToneFrame> {
        if pcm.is_empty() {
            return None;
        }
        let n = pcm.len() as f32;
        let mean = pcm.iter().map(|&s| f32::from(s)).sum::<f32>() / n;
        let x: Vec<f32> = pcm.iter().map(|&s| f32::from(s) - mean).collect();
        let energy: f32 = x.iter().map(|v| v * v).sum();
        if energy <= 0.0 {
            return None;
        }
        let powers: Vec<f32> = self
            .filters
            .iter()
            .map(|&(_, coeff)| {
                let (mut s1, mut s2) = (0.0_f32, 0.0_f32);
                for &v in &x {
                    let s = v + coeff * s1 - s2;
                    s2 = s1;
                    s1 = s;
                }
                (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
            })
            .collect();
        let (i, &power) = powers
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let mut hz = self.filters[i].0;
        if i > 0 && i + 1 < powers.len() {
            let (a, b, c) = (powers[i - 1].sqrt(), power.sqrt(), powers[i + 1].sqrt());
            let denom = a - 2.0 * b + c;
            if denom < 0.0 {
                let step = self.filters[i + 1].0 - self.filters[i].0;
                hz += (0.5 * (a - c) / denom).clamp(-0.5, 0.5) * step;
            }
        }
        Some(ToneFrame {
            hz,
            purity: (2.0 * power / (n * energy)).min(1.0),
            rms: (energy / n).sqrt(),
        })
    }

    /// The frame's tone when it is loud and pure enough to be part of a beep.
    pub fn tone(&self, pcm: &[i16], config: &BeepConfig) -> Option<ToneFrame> {
        self.analyse(pcm)
            .filter(|t| t.rms >= config.min_rms && t.purity >= config.min_purity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, amp: f32, n: usize, phase: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (i + phase) as f32 / 8000.0;
                (amp * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn pure_tones_are_found_at_their_frequency() {
        let config = BeepConfig::default();
        let bank = ToneBank::new(&config, 8000);
        for hz in [425.0, 440.0, 800.0, 1000.0, 1337.0, 1400.0, 2000.0] {
            let t = bank.tone(&sine(hz, 8000.0, 160, 0), &config);
            let t = t.unwrap_or_else(|| panic!("{hz} Hz not detected"));
            assert!((t.hz - hz).abs() <= 4.0, "{hz} Hz found at {}", t.hz);
            assert!(t.purity > 0.8, "{hz} Hz purity {}", t.purity);
        }
    }

    #[test]
    fn dual_tones_noise_and_quiet_tones_are_not_beeps() {
        let config = BeepConfig::default();
        let bank = ToneBank::new(&config, 8000);
        // DTMF "5": 770 + 1336 Hz.
        let a = sine(770.0, 6000.0, 160, 0);
        let b = sine(1336.0, 6000.0, 160, 0);
        let dtmf: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert!(bank.tone(&dtmf, &config).is_none());
        // Deterministic pseudo-noise.
        let mut state = 12345_u32;
        let noise: Vec<i16> = (0..160)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) as i16) / 4
            })
            .collect();
        assert!(bank.tone(&noise, &config).is_none());
        assert!(bank.tone(&sine(1000.0, 50.0, 160, 0), &config).is_none());
        assert!(bank.tone(&[0; 160], &config).is_none());
    }
}
