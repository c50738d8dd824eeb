//! The call recording: one 8 kHz 16-bit WAV with two channels, left the customer as received,
//! right the robot as sent, both placed on the call clock (0 = answer).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::record::RecordingRef;
use crate::vault::Vault;

/// The field name sealed recordings are bound to.
pub const RECORDING_FIELD: &str = "recording";

/// Hard cap on a recording's length (samples per channel): 2 hours.
const MAX_SAMPLES: usize = 8000 * 60 * 120;

#[derive(Debug, Default, Clone)]
pub struct Recorder {
    customer: Vec<i16>,
    robot: Vec<i16>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    fn place(track: &mut Vec<i16>, at_ms: u64, samples: &[i16]) {
        let at = (at_ms as usize).saturating_mul(8);
        if at >= MAX_SAMPLES {
            return;
        }
        let end = (at + samples.len()).min(MAX_SAMPLES);
        if track.len() < end {
            track.resize(end, 0);
        }
        track[at..end].copy_from_slice(&samples[..end - at]);
    }

    /// Customer audio that starts at `at_ms`.
    pub fn customer(&mut self, at_ms: u64, samples: &[i16]) {
        Self::place(&mut self.customer, at_ms, samples);
    }

    /// Robot audio that plays from `at_ms`.
    pub fn robot(&mut self, at_ms: u64, samples: &[i16]) {
        Self::place(&mut self.robot, at_ms, samples);
    }

    /// The customer's audio so far (8 kHz).
    pub fn customer_audio(&self) -> &[i16] {
        &self.customer
    }

    pub fn robot_audio(&self) -> &[i16] {
        &self.robot
    }

    /// Writes the WAV (through a temporary file, renamed when complete): sealed with `keys`
    /// when given (`PATH` is then `….wav.sealed`, see [`crate::vault::Vault::seal_bytes`]), else
    /// plain. The reference's SHA-256 and size are those of the file as stored.
    pub fn write(&self, path: &Path, keys: Option<&Vault>) -> std::io::Result<RecordingRef> {
        let n = self.customer.len().max(self.robot.len());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = std::io::Cursor::new(Vec::with_capacity(44 + n * 4));
        {
            let mut w = hound::WavWriter::new(&mut wav, spec).map_err(std::io::Error::other)?;
            for i in 0..n {
                w.write_sample(self.customer.get(i).copied().unwrap_or(0))
                    .map_err(std::io::Error::other)?;
                w.write_sample(self.robot.get(i).copied().unwrap_or(0))
                    .map_err(std::io::Error::other)?;
            }
            w.finalize().map_err(std::io::Error::other)?;
        }
        let bytes = match keys {
            Some(k) => k.seal_bytes(RECORDING_FIELD, &wav.into_inner()),
            None => wav.into_inner(),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(RecordingRef {
            path: path.display().to_string(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            duration_ms: n as u64 / 8,
            bytes: bytes.len() as u64,
        })
    }
}
