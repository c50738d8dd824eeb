//! The Goertzel algorithm: the power of one frequency in a block of samples, the building block of
//! in-band DTMF detection and of call-progress tone detection (SIT, fax CNG, busy, ringback).

/// Power of `freq` Hz in `samples` (linear PCM at `rate` Hz), normalised by the block length so
/// that blocks of different sizes compare.
pub fn power(samples: &[i16], rate: u32, freq: f32) -> f32 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let n = samples.len() as f32;
    let k = (0.5 + n * freq / rate as f32).floor();
    let w = 2.0 * std::f32::consts::PI * k / n;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = f32::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

/// Total power of the block (mean square, same scale as [`power`] × 2 for a pure tone).
pub fn energy(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    samples
        .iter()
        .map(|&x| {
            let v = f32::from(x) / 32768.0;
            v * v
        })
        .sum::<f32>()
        / samples.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn finds_the_tone_it_is_tuned_to() {
        let t = tone(1100.0, 205);
        let on = power(&t, 8000, 1100.0);
        let off = power(&t, 8000, 1400.0);
        assert!(on > 20.0 * off, "on {on} off {off}");
        // A pure tone's Goertzel power is about half its mean square.
        let e = energy(&t);
        assert!((on / e - 0.5).abs() < 0.1, "ratio {}", on / e);
    }
}
