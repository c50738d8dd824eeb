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
        self.encode(keys)?.store(path)
    }

    /// The recording as it will be stored: the WAV, sealed with `keys` when given.
    pub fn encode(&self, keys: Option<&Vault>) -> std::io::Result<EncodedRecording> {
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
        Ok(EncodedRecording {
            bytes,
            duration_ms: n as u64 / 8,
        })
    }
}

/// A recording encoded (and sealed) in memory, ready to be stored; it can be stored again after
/// a failed try (a full disk) without encoding it again.
#[derive(Debug, Clone)]
pub struct EncodedRecording {
    bytes: Vec<u8>,
    duration_ms: u64,
}

impl EncodedRecording {
    /// Writes `PATH.part`, then renames it to `path`. A failed write removes its `.part` file,
    /// so a full disk is not left fuller by half a recording.
    pub fn store(&self, path: &Path) -> std::io::Result<RecordingRef> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        let tmp = std::path::PathBuf::from(tmp);
        if let Err(e) = std::fs::write(&tmp, &self.bytes).and_then(|()| std::fs::rename(&tmp, path))
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(RecordingRef {
            path: path.display().to_string(),
            sha256: hex::encode(Sha256::digest(&self.bytes)),
            duration_ms: self.duration_ms,
            bytes: self.bytes.len() as u64,
        })
    }
}

/// Bytes free for this process on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let (blocks, size): (u64, u64) = (st.blocks_available(), st.fragment_size());
    Ok(blocks.saturating_mul(size))
}
