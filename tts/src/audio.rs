//! Mono audio buffers, resampling (rubato's FFT resampler, tail flushed) and WAV I/O (hound).

use std::path::Path;

use rubato::{FftFixedIn, Resampler};

use crate::TtsError;

/// The telephony rate (G.711).
pub const TELEPHONY_RATE: u32 = 8_000;

/// Mono PCM, samples in [-1.0, 1.0].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// The rate a caller wants audio at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputRate {
    /// The voice's own rate (22,050 Hz for the medium Piper voices).
    Native,
    /// Any other rate in Hz, e.g. [`TELEPHONY_RATE`].
    Hz(u32),
}

impl OutputRate {
    pub const TELEPHONY: OutputRate = OutputRate::Hz(TELEPHONY_RATE);

    /// The rate in Hz, given the voice's native rate.
    pub fn resolve(self, native: u32) -> u32 {
        match self {
            OutputRate::Native => native,
            OutputRate::Hz(hz) => hz,
        }
    }
}

impl Audio {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }

    /// `secs` of silence at `sample_rate`.
    pub fn silence(secs: f64, sample_rate: u32) -> Audio {
        let n = (secs * f64::from(sample_rate)).round().max(0.0) as usize;
        Audio {
            samples: vec![0.0; n],
            sample_rate,
        }
    }

    /// Appends `other` (which must have the same rate).
    pub fn append(&mut self, other: &Audio) -> Result<(), TtsError> {
        if other.sample_rate != self.sample_rate {
            return Err(TtsError::RateMismatch(self.sample_rate, other.sample_rate));
        }
        self.samples.extend_from_slice(&other.samples);
        Ok(())
    }

    /// 16-bit PCM, clipped.
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples
            .iter()
            .map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .collect()
    }

    /// Root-mean-square level in [0, 1].
    pub fn rms(&self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self.samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        (sum / self.samples.len() as f64).sqrt() as f32
    }

    /// Resamples to `rate` with rubato's band-limited FFT resampler. The output holds exactly
    /// `round(len × rate / self.rate)` samples: the resampler's delay is trimmed from the front and
    /// its tail flushed with zeros, so nothing is lost or shifted.
    pub fn resample(&self, rate: u32) -> Result<Audio, TtsError> {
        if rate == self.sample_rate || self.samples.is_empty() {
            return Ok(Audio {
                samples: self.samples.clone(),
                sample_rate: rate,
            });
        }
        let err = |e: &dyn std::fmt::Display| TtsError::Resample(e.to_string());
        let mut resampler =
            FftFixedIn::<f32>::new(self.sample_rate as usize, rate as usize, 1024, 2, 1)
                .map_err(|e| err(&e))?;
        let expected = (self.samples.len() as f64 * f64::from(rate) / f64::from(self.sample_rate))
            .round() as usize;
        let delay = resampler.output_delay();
        let mut out: Vec<f32> = Vec::with_capacity(expected + delay + 2048);
        let mut pos = 0;
        while self.samples.len() - pos >= resampler.input_frames_next() {
            let n = resampler.input_frames_next();
            let chunk = resampler
                .process(&[&self.samples[pos..pos + n]], None)
                .map_err(|e| err(&e))?;
            out.extend_from_slice(&chunk[0]);
            pos += n;
        }
        if pos < self.samples.len() {
            let chunk = resampler
                .process_partial(Some(&[&self.samples[pos..]]), None)
                .map_err(|e| err(&e))?;
            out.extend_from_slice(&chunk[0]);
        }
        // Flush: feed silence until the delayed tail of the real signal has come out.
        while out.len() < delay + expected {
            let chunk = resampler
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| err(&e))?;
            if chunk[0].is_empty() {
                break;
            }
            out.extend_from_slice(&chunk[0]);
        }
        let samples: Vec<f32> = out.into_iter().skip(delay).take(expected).collect();
        // Some ratios (large coprime rates) make the FFT resampler stop early: say so rather
        // than hand back truncated speech.
        if samples.len() + 64 < expected {
            return Err(TtsError::Resample(format!(
                "{} Hz to {rate} Hz gave {} of {expected} samples",
                self.sample_rate,
                samples.len()
            )));
        }
        Ok(Audio {
            samples,
            sample_rate: rate,
        })
    }

    /// Writes 16-bit mono PCM WAV.
    pub fn write_wav(&self, path: &Path) -> Result<(), TtsError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: self.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav_err = |e: hound::Error| TtsError::Wav {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut w = hound::WavWriter::create(path, spec).map_err(wav_err)?;
        for s in self.to_i16() {
            w.write_sample(s).map_err(wav_err)?;
        }
        w.finalize().map_err(wav_err)
    }

    /// Writes 32-bit float WAV: lossless, used by the phrase cache.
    pub(crate) fn write_wav_f32(&self, path: &Path) -> Result<(), TtsError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: self.sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let wav_err = |e: hound::Error| TtsError::Wav {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut w = hound::WavWriter::create(path, spec).map_err(wav_err)?;
        for &s in &self.samples {
            w.write_sample(s).map_err(wav_err)?;
        }
        w.finalize().map_err(wav_err)
    }

    /// Reads a mono WAV (16-bit int or 32-bit float).
    pub fn read_wav(path: &Path) -> Result<Audio, TtsError> {
        let wav_err = |e: hound::Error| TtsError::Wav {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut r = hound::WavReader::open(path).map_err(wav_err)?;
        let spec = r.spec();
        if spec.channels != 1 {
            return Err(TtsError::Wav {
                path: path.to_path_buf(),
                message: format!("{} channels, expected mono", spec.channels),
            });
        }
        let samples = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => r
                .samples::<f32>()
                .collect::<Result<Vec<_>, _>>()
                .map_err(wav_err)?,
            (hound::SampleFormat::Int, 16) => r
                .samples::<i16>()
                .map(|s| s.map(|v| f32::from(v) / 32768.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(wav_err)?,
            (format, bits) => {
                return Err(TtsError::Wav {
                    path: path.to_path_buf(),
                    message: format!("unsupported sample format {format:?} {bits}-bit"),
                });
            }
        };
        Ok(Audio {
            samples,
            sample_rate: spec.sample_rate,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Audio {
        let n = (secs * rate as f32) as usize;
        Audio {
            samples: (0..n)
                .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
                .collect(),
            sample_rate: rate,
        }
    }

    #[test]
    fn resampling_keeps_length_phase_and_level() {
        let native = sine(440.0, 22_050, 1.3);
        let phone = native.resample(8_000).unwrap();
        assert_eq!(phone.samples.len(), (1.3f64 * 8_000.0).round() as usize);
        let reference = sine(440.0, 8_000, 1.3);
        // Away from the edges the output is the same sine, in phase (the delay is trimmed).
        let middle = 400..phone.samples.len() - 400;
        let err = middle
            .clone()
            .map(|i| (phone.samples[i] - reference.samples[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
        // The tail is flushed: the last samples still carry the tone.
        let tail = &phone.samples[phone.samples.len() - 100..];
        assert!(tail.iter().any(|s| s.abs() > 0.3));
    }

    #[test]
    fn awkward_ratios_resample_in_full_or_fail_loudly() {
        for from in [19_200, 19_183, 44_100, 11_025] {
            let a = sine(300.0, from, 1.2);
            match a.resample(8_000) {
                Ok(out) => assert_eq!(out.samples.len(), 9_600, "{from} Hz"),
                Err(e) => assert!(e.to_string().contains("samples"), "{from} Hz: {e}"),
            }
        }
        assert_eq!(
            sine(300.0, 19_200, 1.2)
                .resample(8_000)
                .map(|a| a.samples.len())
                .ok(),
            Some(9_600)
        );
    }

    #[test]
    fn tones_above_the_new_nyquist_are_removed() {
        let native = sine(6_000.0, 22_050, 0.5);
        let phone = native.resample(8_000).unwrap();
        assert!(phone.rms() < 0.01, "aliasing: rms {}", phone.rms());
    }

    #[test]
    fn joining_different_rates_is_an_error() {
        let mut a = Audio::silence(0.1, 8_000);
        assert!(a.append(&Audio::silence(0.1, 16_000)).is_err());
        assert_eq!(a.to_i16().len(), 800);
    }
}
