//! G.711 µ-law and A-law (ITU-T G.711), the codecs of telephony RTP and of WAV format tags 7 and 6.
//!
//! Bit-exact with the reference (Sun Microsystems) implementation that every PBX uses.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Decodes one µ-law byte to 16-bit linear PCM.
pub const fn decode_ulaw(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let magnitude = ((((u & 0x0F) as i32) << 3) + ULAW_BIAS) << exponent;
    let sample = magnitude - ULAW_BIAS;
    if u & 0x80 != 0 {
        -sample as i16
    } else {
        sample as i16
    }
}

/// Decodes one A-law byte to 16-bit linear PCM.
pub const fn decode_alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mantissa = ((a & 0x0F) as i32) << 4;
    let segment = (a >> 4) & 0x07;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        s => (mantissa + 0x108) << (s - 1),
    };
    // In A-law a set sign bit means positive.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Encodes one 16-bit linear PCM sample to µ-law.
pub const fn encode_ulaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    if s > ULAW_CLIP {
        s = ULAW_CLIP;
    }
    s += ULAW_BIAS;
    // s is in 0x84..=0x7FFF, so its top bit is between bit 7 and bit 14.
    let exponent = (31 - (s as u32).leading_zeros()) as i32 - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Encodes one 16-bit linear PCM sample to A-law.
pub const fn encode_alaw(sample: i16) -> u8 {
    let mut v = (sample as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    // v is in 0..=4095 (13-bit magnitude); segment 0 covers 0..=31, then one per octave.
    let segment = if v <= 31 {
        0
    } else {
        (32 - (v as u32).leading_zeros()) as i32 - 5
    };
    let quant = if segment < 2 { v >> 1 } else { v >> segment } & 0x0F;
    (((segment << 4) | quant) ^ mask) as u8
}

/// Decodes a buffer of µ-law bytes (e.g. an RTP PCMU payload) to samples in [-1, 1).
pub fn ulaw_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .iter()
        .map(|&b| f32::from(decode_ulaw(b)) / 32768.0)
        .collect()
}

/// Decodes a buffer of A-law bytes (e.g. an RTP PCMA payload) to samples in [-1, 1).
pub fn alaw_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .iter()
        .map(|&b| f32::from(decode_alaw(b)) / 32768.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(decode_ulaw(0xFF), 0);
        assert_eq!(decode_ulaw(0x7F), 0);
        assert_eq!(decode_ulaw(0x00), -32124);
        assert_eq!(decode_ulaw(0x80), 32124);
        assert_eq!(decode_alaw(0xD5), 8);
        assert_eq!(decode_alaw(0x55), -8);
        assert_eq!(decode_alaw(0xAA), 32256);
        assert_eq!(decode_alaw(0x2A), -32256);
        assert_eq!(encode_ulaw(0), 0xFF);
        assert_eq!(encode_alaw(0), 0xD5);
        assert_eq!(encode_ulaw(i16::MAX), 0x80);
        assert_eq!(encode_ulaw(i16::MIN), 0x00);
        assert_eq!(encode_alaw(i16::MAX), 0xAA);
        assert_eq!(encode_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let u = decode_ulaw(b);
            // 0x7F and 0xFF are both zero; the encoder picks 0xFF.
            let expect = if b == 0x7F { 0xFF } else { b };
            assert_eq!(encode_ulaw(u), expect, "µ-law {b:#04x} -> {u}");
            assert_eq!(encode_alaw(decode_alaw(b)), b, "A-law {b:#04x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let mag = i32::from(s).abs();
            // Logarithmic companding: the step grows with the magnitude (~1/16 of it, at least 16).
            let bound = (mag / 16).max(16) + 16;
            let u = i32::from(decode_ulaw(encode_ulaw(s)));
            let a = i32::from(decode_alaw(encode_alaw(s)));
            assert!((u - i32::from(s)).abs() <= bound, "µ-law {s} -> {u}");
            assert!((a - i32::from(s)).abs() <= bound, "A-law {s} -> {a}");
        }
    }
}
