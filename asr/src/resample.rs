//! Sample-rate conversion with rubato's synchronous FFT resampler.
//!
//! Whole-buffer conversion: the resampler's delay is removed from the front and its tail is
//! flushed, so the output is exactly `len * to / from` samples (rounded up), aligned in time.

use rubato::{FftFixedIn, Resampler};

use crate::AsrError;

const CHUNK: usize = 1024;

/// Converts mono `samples` from `from` Hz to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AsrError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let err = |message: String| AsrError::Resample { from, to, message };
    let (f, t) = (from as usize, to as usize);
    // Chunks must be multiples of from/gcd: 1 for 8k->16k, 441 for 44.1k->16k; an odd rate
    // (44101 Hz) makes one large FFT, still exact and fast enough for a file.
    let r = FftFixedIn::<f32>::new(f, t, CHUNK, 2, 1).map_err(|e| err(e.to_string()))?;
    run(r, samples, f, t).map_err(|e| err(e.to_string()))
}

fn run<R: Resampler<f32>>(
    mut resampler: R,
    samples: &[f32],
    from: usize,
    to: usize,
) -> rubato::ResampleResult<Vec<f32>> {
    let expected = (samples.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(expected + delay + 2 * CHUNK);
    let mut pos = 0;
    loop {
        let need = resampler.input_frames_next();
        if pos + need > samples.len() {
            break;
        }
        let chunk = resampler.process(&[&samples[pos..pos + need]], None)?;
        out.extend_from_slice(&chunk[0]);
        pos += need;
    }
    if pos < samples.len() {
        let chunk = resampler.process_partial(Some(&[&samples[pos..]]), None)?;
        out.extend_from_slice(&chunk[0]);
    }
    // Flush: feed silence until the delayed tail of the real input has come out.
    // Calls may return nothing while a large FFT block fills, so bound the loop by input fed.
    // (The FFT block is 2 × delay output samples long.)
    let mut budget = 8 + 3 * (delay + expected) * from / to.max(1) / CHUNK;
    while out.len() < delay + expected && budget > 0 {
        let chunk = resampler.process_partial::<&[f32]>(None, None)?;
        out.extend_from_slice(&chunk[0]);
        budget -= 1;
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tone(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn length_and_alignment_are_kept() {
        for (from, to, n) in [
            (8000, 16000, 8000 + 37),
            (44100, 16000, 44100),
            (16000, 8000, 999),
            (44101, 16000, 5000),
        ] {
            let input = tone(440.0, from, n);
            let out = resample(&input, from, to).unwrap();
            let expected = (n as u64 * to as u64).div_ceil(from as u64) as usize;
            assert_eq!(out.len(), expected, "{from}->{to}");
            // Compare with the ideal tone away from the edges: delay removed means in phase.
            let ideal = tone(440.0, to, expected);
            let mid = expected / 4..expected * 3 / 4;
            let err: f32 = mid
                .clone()
                .map(|i| (out[i] - ideal[i]).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.02, "{from}->{to}: max error {err}");
            // The tail is flushed: the last quarter still carries the tone.
            let tail_rms = (out[expected * 7 / 8..expected - 2]
                .iter()
                .map(|s| s * s)
                .sum::<f32>()
                / (expected / 8 - 2) as f32)
                .sqrt();
            assert!(tail_rms > 0.3, "{from}->{to}: tail rms {tail_rms}");
        }
    }
}
