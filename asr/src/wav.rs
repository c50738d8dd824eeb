//! WAV input: linear PCM (8/16/24/32-bit), IEEE float, µ-law and A-law; mono or stereo.
//!
//! The RIFF chunks are walked here first, so every file gets the same checks and the same
//! errors (not a WAV, truncated, unsupported encoding or channel count). Linear PCM and float
//! are then decoded by `hound`; G.711 (which `hound` does not read) is decoded with [`crate::g711`].

use std::io::Cursor;
use std::path::Path;

use crate::AsrError;
use crate::g711::{decode_alaw, decode_ulaw};

const TAG_PCM: u16 = 0x0001;
const TAG_FLOAT: u16 = 0x0003;
const TAG_ALAW: u16 = 0x0006;
const TAG_ULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// Mono audio at its original sample rate, samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Audio {
    pub fn duration_s(&self) -> f32 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f32 / self.sample_rate as f32
    }

    /// The same audio at 16 kHz, the rate Whisper and the 16 kHz VAD take.
    pub fn to_16k(&self) -> Result<Vec<f32>, AsrError> {
        crate::resample::resample(&self.samples, self.sample_rate, crate::WHISPER_SAMPLE_RATE)
    }
}

/// Why a WAV file cannot be read. Shown after the file name, so it says what is wrong, not where.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("file is empty")]
    Empty,
    #[error("not a WAV file (expected a RIFF/WAVE header, found {0:?})")]
    NotWav(String),
    #[error("unsupported WAV variant {0} (only little-endian RIFF is read)")]
    UnsupportedVariant(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error(
        "unsupported encoding {name} (format tag {tag:#06x}); supported: linear PCM, IEEE float, µ-law, A-law"
    )]
    UnsupportedEncoding { tag: u16, name: &'static str },
    #[error("unsupported channel count {0} (mono or stereo only)")]
    UnsupportedChannels(u16),
    #[error("unsupported sample size: {bits}-bit {encoding}")]
    UnsupportedBits { encoding: &'static str, bits: u16 },
    #[error("unsupported sample rate {0} Hz (4000..=192000)")]
    UnsupportedRate(u32),
    #[error("decoding samples: {0}")]
    Decode(#[from] hound::Error),
}

/// Reads a WAV file into mono audio at its own sample rate.
pub fn read_wav(path: &Path) -> Result<Audio, AsrError> {
    let wrap = |reason| AsrError::Audio {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| wrap(WavError::Io(e)))?;
    parse_wav(&bytes).map_err(wrap)
}

/// Reads a WAV file and resamples it to 16 kHz mono.
pub fn read_wav_16k(path: &Path) -> Result<Vec<f32>, AsrError> {
    read_wav(path)?.to_16k()
}

#[derive(Debug, Clone, Copy)]
struct Format {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    bits: u16,
}

/// Parses a whole WAV file held in memory.
pub fn parse_wav(bytes: &[u8]) -> Result<Audio, WavError> {
    if bytes.is_empty() {
        return Err(WavError::Empty);
    }
    if bytes.len() < 12 {
        if bytes.starts_with(b"RIFF") {
            return Err(WavError::Truncated(format!(
                "{} bytes, shorter than a RIFF header",
                bytes.len()
            )));
        }
        return Err(WavError::NotWav(preview(bytes)));
    }
    match &bytes[0..4] {
        b"RIFF" => {}
        b"RIFX" | b"RF64" | b"BW64" => {
            return Err(WavError::UnsupportedVariant(preview(&bytes[0..4])));
        }
        _ => return Err(WavError::NotWav(preview(bytes))),
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav(preview(bytes)));
    }

    let mut format = None;
    let mut data = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4) as usize;
        let body = pos + 8;
        let available = bytes.len() - body;
        if id == b"data" {
            if size > available {
                return Err(WavError::Truncated(format!(
                    "data chunk declares {size} bytes but only {available} follow"
                )));
            }
            data = Some(&bytes[body..body + size]);
            // Chunks after the data (LIST, id3) carry no audio; stop once the format is known.
            if format.is_some() {
                break;
            }
        } else if id == b"fmt " {
            if size > available {
                return Err(WavError::Truncated(format!(
                    "fmt chunk declares {size} bytes but only {available} follow"
                )));
            }
            format = Some(parse_fmt(&bytes[body..body + size])?);
        } else if size > available {
            break;
        }
        pos = body + size + (size & 1);
    }
    let format = format.ok_or_else(|| {
        WavError::Truncated("no fmt chunk (the header ends before the format)".into())
    })?;
    let data = data.ok_or_else(|| WavError::Truncated("no data chunk".into()))?;

    if !(4000..=192_000).contains(&format.sample_rate) {
        return Err(WavError::UnsupportedRate(format.sample_rate));
    }
    let channels = usize::from(format.channels);
    let interleaved = match format.tag {
        TAG_ULAW | TAG_ALAW => {
            if format.bits != 8 {
                let encoding = if format.tag == TAG_ULAW {
                    "µ-law"
                } else {
                    "A-law"
                };
                return Err(WavError::UnsupportedBits {
                    encoding,
                    bits: format.bits,
                });
            }
            let decode = if format.tag == TAG_ULAW {
                decode_ulaw
            } else {
                decode_alaw
            };
            let whole = data.len() - data.len() % channels;
            data[..whole]
                .iter()
                .map(|&b| f32::from(decode(b)) / 32768.0)
                .collect()
        }
        _ => decode_with_hound(bytes, format)?,
    };
    Ok(Audio {
        samples: downmix(interleaved, channels),
        sample_rate: format.sample_rate,
    })
}

fn parse_fmt(chunk: &[u8]) -> Result<Format, WavError> {
    if chunk.len() < 16 {
        return Err(WavError::Malformed(format!(
            "fmt chunk is {} bytes, at least 16 needed",
            chunk.len()
        )));
    }
    let mut tag = u16_at(chunk, 0);
    if tag == TAG_EXTENSIBLE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if chunk.len() < 26 {
            return Err(WavError::Malformed(
                "extensible fmt chunk without a sub-format".into(),
            ));
        }
        tag = u16_at(chunk, 24);
    }
    let format = Format {
        tag,
        channels: u16_at(chunk, 2),
        sample_rate: u32_at(chunk, 4),
        block_align: u16_at(chunk, 12),
        bits: u16_at(chunk, 14),
    };
    match format.tag {
        TAG_PCM | TAG_FLOAT | TAG_ULAW | TAG_ALAW => {}
        tag => {
            return Err(WavError::UnsupportedEncoding {
                tag,
                name: encoding_name(tag),
            });
        }
    }
    if !(1..=2).contains(&format.channels) {
        return Err(WavError::UnsupportedChannels(format.channels));
    }
    if format.block_align == 0 {
        return Err(WavError::Malformed("block align is 0".into()));
    }
    Ok(format)
}

fn decode_with_hound(bytes: &[u8], format: Format) -> Result<Vec<f32>, WavError> {
    let reader = hound::WavReader::new(Cursor::new(bytes))?;
    let spec = reader.spec();
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(WavError::from),
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<Vec<_>, _>>()
                .map_err(WavError::from)
        }
        (hound::SampleFormat::Float, bits) => Err(WavError::UnsupportedBits {
            encoding: "float",
            bits,
        }),
        (hound::SampleFormat::Int, bits) => Err(WavError::UnsupportedBits {
            encoding: if format.tag == TAG_PCM {
                "PCM"
            } else {
                "integer"
            },
            bits,
        }),
    }
}

fn downmix(interleaved: Vec<f32>, channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved;
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

fn encoding_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0055 => "MPEG Layer 3",
        0x0064 | 0x0065 => "G.723 ADPCM",
        0x0050 => "MPEG",
        0x0000 => "unknown",
        _ => "non-PCM",
    }
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(4)]).into_owned()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes mono samples as a G.711 WAV (format tag 7 for µ-law, 6 for A-law) at `sample_rate`.
/// Used to make telephony test files and to store what a call heard.
pub fn write_g711_wav(
    path: &Path,
    samples: &[f32],
    sample_rate: u32,
    law: G711Law,
) -> std::io::Result<()> {
    let encode = match law {
        G711Law::Ulaw => crate::g711::encode_ulaw,
        G711Law::Alaw => crate::g711::encode_alaw,
    };
    let body: Vec<u8> = samples.iter().map(|&s| encode(f32_to_i16(s))).collect();
    let data_len = body.len() as u32;
    let mut out = Vec::with_capacity(body.len() + 58);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 12 + 8 + data_len + (data_len & 1)).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    let tag = match law {
        G711Law::Ulaw => TAG_ULAW,
        G711Law::Alaw => TAG_ALAW,
    };
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    // Non-PCM WAVs carry a fact chunk with the sample count.
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&body);
    if data_len & 1 == 1 {
        out.push(0);
    }
    std::fs::write(path, out)
}

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    Ulaw,
    Alaw,
}

/// Converts a sample in [-1, 1] to 16-bit PCM, clipping out-of-range values.
pub fn f32_to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts 16-bit PCM (e.g. a decoded RTP frame) to samples in [-1, 1).
pub fn i16_to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pcm16_wav(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    #[test]
    fn reads_pcm16_and_downmixes_stereo() {
        let audio = parse_wav(&pcm16_wav(&[16384, 0, -16384, -16384], 8000, 2)).unwrap();
        assert_eq!(audio.sample_rate, 8000);
        assert_eq!(audio.samples, vec![0.25, -0.5]);
    }

    #[test]
    fn g711_wav_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<f32> = (0..801).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        for law in [G711Law::Ulaw, G711Law::Alaw] {
            let path = dir.path().join(format!("{law:?}.wav"));
            write_g711_wav(&path, &samples, 8000, law).unwrap();
            let audio = read_wav(&path).unwrap();
            assert_eq!(audio.sample_rate, 8000);
            assert_eq!(audio.samples.len(), samples.len());
            for (a, b) in audio.samples.iter().zip(&samples) {
                assert!((a - b).abs() < 0.02, "{law:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn clear_errors() {
        let err = |b: &[u8]| parse_wav(b).unwrap_err().to_string();
        assert_eq!(err(b""), "file is empty");
        assert!(err(b"hello, world\n").contains("not a WAV file"));
        let good = pcm16_wav(&[1, 2, 3, 4], 8000, 1);
        assert!(err(&good[..10]).contains("truncated"));
        assert!(
            err(&good[..30]).contains("truncated"),
            "{}",
            err(&good[..30])
        );
        assert!(err(&good[..good.len() - 2]).contains("data chunk declares 8 bytes"));
        let mut adpcm = good.clone();
        adpcm[20] = 0x02;
        assert!(err(&adpcm).contains("Microsoft ADPCM"));
        let mut quad = good.clone();
        quad[22] = 4;
        assert!(err(&quad).contains("channel count 4"));
    }
}
