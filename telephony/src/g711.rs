//! G.711 µ-law (PCMU) and A-law (PCMA) companding, as in ITU-T G.711 and its classic reference
//! implementation (Sun Microsystems' `g711.c`, which CPython's `audioop` also follows).
//!
//! Linear samples are 16-bit PCM at 8 kHz. Encoding truncates to the 14-bit (µ-law) or 13-bit
//! (A-law) range G.711 works on, exactly like the reference code, so encoded bytes are bit-exact
//! with other implementations. Decoding uses 256-entry tables built at compile time.
//! Limits: no G.711 Appendix I packet-loss concealment and no Appendix II comfort noise here.

/// Bias added to the magnitude before µ-law segment search (0x84 = 132 on the 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude µ-law can represent before clipping.
const ULAW_CLIP_14: i32 = 8159;
/// Upper bounds of the eight µ-law segments, on the biased 14-bit magnitude.
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

/// Encode one 16-bit linear sample as a µ-law byte (14-bit reference algorithm).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 2;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(ULAW_CLIP_14) + (ULAW_BIAS >> 2);
    let Some(seg) = ULAW_SEG_END.iter().position(|&end| pcm <= end) else {
        return 0x7F ^ mask;
    };
    let uval = ((seg as u8) << 4) | ((pcm >> (seg + 1)) & 0x0F) as u8;
    uval ^ mask
}

/// Decode one µ-law byte to a 16-bit linear sample (computed; see [`ulaw_to_linear`] for the
/// table lookup used on hot paths).
const fn ulaw_decode_calc(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let t = ((mantissa << 3) + ULAW_BIAS) << exponent;
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

/// Upper bounds of the eight A-law segments, on the 13-bit magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// Encode one 16-bit linear sample as an A-law byte (even bits inverted, as sent on the wire).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(seg) = ALAW_SEG_END.iter().position(|&end| pcm <= end) else {
        return 0x7F ^ mask;
    };
    let mut aval = (seg as u8) << 4;
    if seg < 2 {
        aval |= ((pcm >> 1) & 0x0F) as u8;
    } else {
        aval |= ((pcm >> seg) & 0x0F) as u8;
    }
    aval ^ mask
}

/// Decode one A-law byte (computed at compile time into [`ALAW_TABLE`]).
const fn alaw_decode_calc(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_calc(i as u8)
        } else {
            ulaw_decode_calc(i as u8)
        };
        i += 1;
    }
    table
}

/// µ-law byte → linear sample.
pub static ULAW_TABLE: [i16; 256] = build_table(false);
/// A-law byte → linear sample.
pub static ALAW_TABLE: [i16; 256] = build_table(true);

/// Decode one µ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(byte: u8) -> i16 {
    ULAW_TABLE[usize::from(byte)]
}

/// Decode one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(byte: u8) -> i16 {
    ALAW_TABLE[usize::from(byte)]
}

/// The two G.711 variants, with their static RTP payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, payload type 0 (North America, Japan).
    Pcmu,
    /// A-law, payload type 8 (Europe and most of the rest of the world).
    Pcma,
}

impl Codec {
    /// The static RTP payload type: 0 for PCMU, 8 for PCMA.
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is 0 or 8.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`PCMU` or `PCMA`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate, always 8000 Hz for G.711.
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// The byte that encodes linear zero (0xFF for µ-law, 0xD5 for A-law).
    pub fn silence_byte(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encode one linear sample.
    #[inline]
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(sample),
            Codec::Pcma => linear_to_alaw(sample),
        }
    }

    /// Decode one byte.
    #[inline]
    pub fn decode_sample(self, byte: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_to_linear(byte),
            Codec::Pcma => alaw_to_linear(byte),
        }
    }

    /// Encode a block of linear samples, one byte per sample, appending to `out`.
    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        out.extend(pcm.iter().map(|&s| self.encode_sample(s)));
    }

    /// Decode a block of bytes, one sample per byte, appending to `out`.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Codec::Pcmu => &ULAW_TABLE,
            Codec::Pcma => &ALAW_TABLE,
        };
        out.extend(bytes.iter().map(|&b| table[usize::from(b)]));
    }

    /// Encode a block of linear samples.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pcm.len());
        self.encode_into(pcm, &mut out);
        out
    }

    /// Decode a block of bytes.
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len());
        self.decode_into(bytes, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// FNV-1a 64, to compare whole tables against hashes taken from an independent implementation.
    fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    fn all_samples() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    #[test]
    fn known_values() {
        // Values of the ITU-T G.711 reference / Sun g711.c.
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        assert_eq!(ulaw_to_linear(0x70), -120);
        assert_eq!(ulaw_to_linear(0x10), -15996);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0x80), 5504);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0x00), -5504);
        assert_eq!(alaw_to_linear(0xFF), 848);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7E); // the reference truncates towards -inf
        assert_eq!(linear_to_ulaw(3), 0xFF);
        assert_eq!(linear_to_ulaw(4), 0xFE);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(1000), 0xFA);
    }

    #[test]
    fn whole_tables_match_reference_implementation() {
        // Hashes of CPython's audioop (Sun reference code): lin2ulaw/lin2alaw over every 16-bit
        // sample from -32768 to 32767, and ulaw2lin/alaw2lin over bytes 0..=255 (LE i16).
        assert_eq!(
            fnv(all_samples().map(linear_to_ulaw)),
            0xd5ee_23f7_d0ff_ae91
        );
        assert_eq!(
            fnv(all_samples().map(linear_to_alaw)),
            0xf030_666e_b780_cf25
        );
        assert_eq!(
            fnv(ULAW_TABLE.iter().flat_map(|s| s.to_le_bytes())),
            0xb91e_65d6_8481_a1a8
        );
        assert_eq!(
            fnv(ALAW_TABLE.iter().flat_map(|s| s.to_le_bytes())),
            0x693a_40ca_62a3_d2a5
        );
    }

    #[test]
    fn codes_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
            let expect = if b == 0x7F { 0xFF } else { b }; // µ-law has two zeros
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), expect, "ulaw {b:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        for (codec, table) in [(Codec::Pcmu, &ULAW_TABLE), (Codec::Pcma, &ALAW_TABLE)] {
            let mut levels: Vec<i32> = table.iter().map(|&v| i32::from(v)).collect();
            levels.sort_unstable();
            levels.dedup();
            for x in all_samples() {
                let y = i32::from(codec.decode_sample(codec.encode_sample(x)));
                let x = i32::from(x);
                let (first, last) = (levels[0], levels[levels.len() - 1]);
                if x <= first || x >= last {
                    // Clipping region: the outermost level.
                    let edge = if x <= first { first } else { last };
                    assert!((y - edge).abs() <= 8, "{codec:?} x {x} y {y}");
                    continue;
                }
                // Between two reconstruction levels: the output is one of them, and x lies
                // within half a step of it, the step being that of y's own segment (the spacing
                // to the next level away from zero), plus the reference algorithm's truncation
                // of the 2 or 3 low bits.
                let idx = levels.partition_point(|&l| l < x);
                let (lo, hi) = (levels[idx - 1], levels[idx]);
                assert!(
                    y == lo || y == hi,
                    "{codec:?} x {x} y {y} levels {lo}..{hi}"
                );
                let k = levels.partition_point(|&l| l < y);
                let step = if y >= 0 {
                    levels.get(k + 1).map_or(y - levels[k - 1], |&n| n - y)
                } else {
                    k.checked_sub(1)
                        .map_or(levels[k + 1] - y, |p| y - levels[p])
                };
                let err = (y - x).abs();
                assert!(
                    err <= step / 2 + 8,
                    "{codec:?} x {x} y {y} step {step} levels {lo}..{hi}"
                );
            }
        }
    }

    #[test]
    fn decoding_is_monotonic_in_magnitude() {
        // Larger code magnitude (after removing the line inversion) → larger output magnitude.
        let mut prev = -1;
        for m in 0..=0x7Fu8 {
            let b = !m; // sign bit clear after inversion: positive
            let v = i32::from(ulaw_to_linear(b));
            assert!(v > prev, "ulaw magnitude {m}");
            prev = v;
        }
        let mut prev = -1;
        for m in 0..=0x7Fu8 {
            let v = i32::from(alaw_to_linear((m | 0x80) ^ 0x55));
            assert!(v > prev, "alaw magnitude {m}");
            prev = v;
        }
    }

    #[test]
    fn codec_helpers() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.3).sin() * 12000.0) as i16)
            .collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let enc = codec.encode(&pcm);
            assert_eq!(enc.len(), 160);
            let dec = codec.decode(&enc);
            // Re-encoding decoded audio is lossless (the decoded values are code points).
            assert_eq!(codec.encode(&dec), enc);
            let snr = {
                let s: f64 = pcm.iter().map(|&v| f64::from(v).powi(2)).sum();
                let n: f64 = pcm
                    .iter()
                    .zip(&dec)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                10.0 * (s / n).log10()
            };
            assert!(snr > 30.0, "{codec:?} SNR {snr}");
        }
    }
}
