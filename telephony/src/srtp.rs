//! SRTP for SIP media with keys exchanged in the SDP (SDES, RFC 4568): the `a=crypto` attribute,
//! the suites callbot speaks, the local policy, and the per-session cryptographic contexts that
//! protect RTP/RTCP on the way out and authenticate and decrypt them on the way in (RFC 3711,
//! through the `rtc-srtp` crate of webrtc-rs on ring).
//!
//! The offer/answer side lives in [`crate::sdp`]: an offer in `RTP/SAVP` (or `RTP/AVP` with
//! `a=crypto` lines, the common "best effort" form) is answered with the first crypto line whose
//! suite we support, with our own fresh key under the same tag. Keys are never logged: the
//! `Debug` of every type holding one prints the suite only.
//!
//! Limits: no MKI, no key lifetime enforcement (a lifetime, if given, is accepted and ignored; our
//! sessions re-key at every call), no session parameters (`KDR=`, `UNENCRYPTED_SRTP`, ...: a
//! crypto line carrying one is skipped), no AEAD-GCM suites (RFC 7714).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use thiserror::Error;

/// Salt length of every AES-CM suite, bytes.
const SALT_LEN: usize = 14;
/// The longest master key plus salt we use (AES-256): 32 + 14 bytes.
pub const MASTER_LEN: usize = 32 + SALT_LEN;
/// Packets remembered by the replay check (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 128;

/// An SDES crypto suite (RFC 4568 §6.2, RFC 6188 for AES-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: the suite every SDES peer has.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: a 32-bit RTP tag (RTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80`.
    AesCm256HmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32`.
    AesCm256HmacSha1_32,
}

impl SrtpSuite {
    /// The suites we offer, most preferred first.
    pub const OFFERED: [SrtpSuite; 4] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm256HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::AesCm256HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
        }
    }

    /// The suite of a name (case as written in RFC 4568: upper case).
    pub fn from_name(name: &str) -> Option<SrtpSuite> {
        Self::OFFERED.into_iter().find(|s| s.name() == name)
    }

    /// Master key length, bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => 16,
            SrtpSuite::AesCm256HmacSha1_80 | SrtpSuite::AesCm256HmacSha1_32 => 32,
        }
    }

    /// Master key plus master salt, bytes (what the `inline:` key carries).
    pub fn inline_len(self) -> usize {
        self.key_len() + SALT_LEN
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            SrtpSuite::AesCm256HmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
            SrtpSuite::AesCm256HmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
        }
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When the local side uses SRTP for SIP media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Offer plain RTP; answer an offer that carries crypto lines with SRTP (the default).
    #[default]
    Accept,
    /// Offer only SRTP (`RTP/SAVP`) and refuse offers without a crypto suite in common (488).
    Require,
}

impl SrtpPolicy {
    /// The policy of a name: `accept` or `require`.
    pub fn from_name(name: &str) -> Option<SrtpPolicy> {
        match name {
            "accept" => Some(SrtpPolicy::Accept),
            "require" => Some(SrtpPolicy::Require),
            _ => None,
        }
    }
}

/// Our random master key material for one call's media: the first
/// [`SrtpSuite::inline_len`] bytes are the key and salt of whichever suite is agreed.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_LEN]);

impl MasterKey {
    /// Fresh key material from the operating system's generator.
    pub fn random() -> MasterKey {
        let mut k = [0u8; MASTER_LEN];
        rand::fill(&mut k[..]);
        MasterKey(k)
    }

    /// Key and salt for `suite`.
    pub fn for_suite(&self, suite: SrtpSuite) -> &[u8] {
        &self.0[..suite.inline_len()]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why an `a=crypto` value was not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// Not `<tag> <suite> <key-params>`.
    #[error("malformed crypto attribute")]
    Malformed,
    /// A suite we do not speak.
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// Not `inline:`, a key of the wrong length, or not base64.
    #[error("bad key parameter")]
    BadKey,
    /// An MKI, several keys, or session parameters: features we do not implement.
    #[error("unsupported crypto parameter {0}")]
    Unsupported(String),
}

/// One `a=crypto` line: `<tag> <suite> inline:<key||salt base64>[|lifetime]`.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag that pairs an answer's line with the offer's (1–999999999).
    pub tag: u32,
    /// The suite.
    pub suite: SrtpSuite,
    /// Master key followed by master salt.
    pub key: Vec<u8>,
}

impl fmt::Debug for CryptoAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CryptoAttr({} {} inline:..)", self.tag, self.suite)
    }
}

impl CryptoAttr {
    /// Parse the value of an `a=crypto:` line.
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let tag: u32 = tag
            .parse()
            .ok()
            .filter(|t| (1..=999_999_999).contains(t))
            .ok_or(CryptoError::Malformed)?;
        let suite = SrtpSuite::from_name(suite)
            .ok_or_else(|| CryptoError::UnsupportedSuite(suite.to_string()))?;
        if let Some(p) = fields.next() {
            return Err(CryptoError::Unsupported(p.to_string()));
        }
        if params.contains(';') {
            return Err(CryptoError::Unsupported("several keys".into()));
        }
        let inline = params.strip_prefix("inline:").ok_or(CryptoError::BadKey)?;
        let mut parts = inline.split('|');
        let key = parts.next().ok_or(CryptoError::BadKey)?;
        for extra in parts {
            // `lifetime` is `2^n` or a number; `MKI:length` has a colon.
            if extra.contains(':') {
                return Err(CryptoError::Unsupported(format!("MKI {extra}")));
            }
            let ok = match extra.strip_prefix("2^") {
                Some(n) => n.parse::<u8>().is_ok_and(|n| n <= 64),
                None => extra.parse::<u64>().is_ok(),
            };
            if !ok {
                return Err(CryptoError::BadKey);
            }
        }
        let key = STANDARD.decode(key).map_err(|_| CryptoError::BadKey)?;
        if key.len() != suite.inline_len() {
            return Err(CryptoError::BadKey);
        }
        Ok(CryptoAttr { tag, suite, key })
    }
}

impl fmt::Display for CryptoAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            STANDARD.encode(&self.key)
        )
    }
}

/// The keys a negotiation agreed on: the suite, our key (we protect with it) and the peer's (we
/// check and decrypt with it).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The agreed suite.
    pub suite: SrtpSuite,
    /// Our master key and salt.
    pub local: Vec<u8>,
    /// The peer's master key and salt.
    pub remote: Vec<u8>,
}

impl SrtpKeys {
    /// The keys of a session that protects with `ours` and checks with `theirs`, for `suite`.
    pub fn between(suite: SrtpSuite, ours: &MasterKey, theirs: &MasterKey) -> SrtpKeys {
        SrtpKeys {
            suite,
            local: ours.for_suite(suite).to_vec(),
            remote: theirs.for_suite(suite).to_vec(),
        }
    }
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpKeys({})", self.suite)
    }
}

/// Why SRTP contexts could not be made or a packet not processed.
#[derive(Debug, Error)]
#[error("SRTP: {0}")]
pub struct SrtpError(String);

/// The two cryptographic contexts of one media session: outbound (our key) and inbound (the
/// peer's key, with replay protection).
pub struct SrtpSession {
    out: Context,
    inb: Context,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpSession(..)")
    }
}

fn context(key: &[u8], suite: SrtpSuite, replay: bool) -> Result<Context, SrtpError> {
    if key.len() != suite.inline_len() {
        return Err(SrtpError(format!(
            "a {suite} key is {} bytes, got {}",
            suite.inline_len(),
            key.len()
        )));
    }
    let provider = rtc_srtp::crypto::default_provider().map_err(|e| SrtpError(e.to_string()))?;
    let (master, salt) = key.split_at(suite.key_len());
    let (rtp, rtcp) = if replay {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(master, salt, suite.profile(), rtp, rtcp, provider.crypto())
        .map_err(|e| SrtpError(e.to_string()))
}

impl SrtpSession {
    /// Contexts for the agreed keys.
    pub fn new(keys: &SrtpKeys) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            out: context(&keys.local, keys.suite, false)?,
            inb: context(&keys.remote, keys.suite, true)?,
        })
    }

    /// Encrypt and authenticate one RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.out
            .encrypt_rtp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }

    /// Authenticate (and check for replay) and decrypt one SRTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.inb
            .decrypt_rtp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }

    /// Encrypt and authenticate one RTCP compound packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.out
            .encrypt_rtcp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }

    /// Authenticate (and check for replay) and decrypt one SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.inb
            .decrypt_rtcp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §9.1's example line.
    const EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn the_rfc_example_is_refused_for_its_mki_and_accepted_without_it() {
        assert!(matches!(
            CryptoAttr::parse(EXAMPLE),
            Err(CryptoError::Unsupported(_))
        ));
        let a = CryptoAttr::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20",
        )
        .expect("parses");
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(a.key.len(), 30);
        assert_eq!(
            a.to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
        assert_eq!(CryptoAttr::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn bad_crypto_lines_say_why() {
        let key30 = STANDARD.encode([7u8; 30]);
        let key46 = STANDARD.encode([7u8; 46]);
        for (line, want) in [
            ("", CryptoError::Malformed),
            ("1 AES_CM_128_HMAC_SHA1_80", CryptoError::Malformed),
            ("0 AES_CM_128_HMAC_SHA1_80 inline:x", CryptoError::Malformed),
            ("x AES_CM_128_HMAC_SHA1_80 inline:x", CryptoError::Malformed),
            (
                "1 F8_128_HMAC_SHA1_80 inline:x",
                CryptoError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 key:abc", CryptoError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", CryptoError::BadKey),
            // A 46-byte key is AES-256's, not AES-128's.
            (
                &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key46}"),
                CryptoError::BadKey,
            ),
            (
                &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|2^99"),
                CryptoError::BadKey,
            ),
            (
                &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30} KDR=1"),
                CryptoError::Unsupported("KDR=1".into()),
            ),
        ] {
            assert_eq!(CryptoAttr::parse(line), Err(want), "{line:?}");
        }
        let ok = CryptoAttr::parse(&format!("7 AES_256_CM_HMAC_SHA1_32 inline:{key46}|1048576"))
            .expect("AES-256 with a decimal lifetime");
        assert_eq!(ok.suite, SrtpSuite::AesCm256HmacSha1_32);
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let k = MasterKey::random();
        let keys = SrtpKeys {
            suite: SrtpSuite::AesCm128HmacSha1_80,
            local: k.for_suite(SrtpSuite::AesCm128HmacSha1_80).to_vec(),
            remote: vec![1; 30],
        };
        let attr = CryptoAttr {
            tag: 1,
            suite: keys.suite,
            key: keys.local.clone(),
        };
        let shown = format!("{k:?} {keys:?} {attr:?}");
        assert!(!shown.contains(&STANDARD.encode(&keys.local)), "{shown}");
        assert_eq!(
            shown,
            "MasterKey(..) SrtpKeys(AES_CM_128_HMAC_SHA1_80) CryptoAttr(1 AES_CM_128_HMAC_SHA1_80 inline:..)"
        );
    }

    /// A packet protected with one side's key is accepted by the other side's contexts, once;
    /// a replay, a flipped bit or the wrong key is refused.
    #[test]
    fn protect_and_unprotect_across_two_sessions() {
        for suite in SrtpSuite::OFFERED {
            let (a, b) = (MasterKey::random(), MasterKey::random());
            let mut alice = SrtpSession::new(&SrtpKeys::between(suite, &a, &b)).expect("alice");
            let mut bob = SrtpSession::new(&SrtpKeys::between(suite, &b, &a)).expect("bob");
            let mut rtp = vec![0x80, 0x08, 0, 1, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
            rtp.extend(std::iter::repeat_n(0xd5u8, 160));
            let wire = alice.protect_rtp(&rtp).expect("protect");
            assert_ne!(
                &wire[12..172],
                &rtp[12..],
                "{suite}: the payload is encrypted"
            );
            let tag = if matches!(
                suite,
                SrtpSuite::AesCm128HmacSha1_32 | SrtpSuite::AesCm256HmacSha1_32
            ) {
                4
            } else {
                10
            };
            assert_eq!(wire.len(), rtp.len() + tag, "{suite}");
            assert_eq!(&bob.unprotect_rtp(&wire).expect("unprotect")[..], &rtp[..]);
            assert!(bob.unprotect_rtp(&wire).is_err(), "{suite}: a replay");
            let mut next = rtp.clone();
            next[3] = 2;
            let mut tampered = alice.protect_rtp(&next).expect("protect").to_vec();
            tampered[20] ^= 1;
            assert!(bob.unprotect_rtp(&tampered).is_err(), "{suite}: tampered");
            // Alice's own inbound context has Bob's key: her packet does not authenticate there.
            next[3] = 3;
            let third = alice.protect_rtp(&next).expect("protect");
            assert!(alice.unprotect_rtp(&third).is_err(), "{suite}: wrong key");
            assert_eq!(&bob.unprotect_rtp(&third).expect("in order")[..], &next[..]);

            // RTCP: a receiver report with SDES.
            let rtcp = [
                0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78, 0x81, 202, 0, 2, 0x12, 0x34, 0x56, 0x78,
                1, 1, b'x', 0,
            ];
            let wire = alice.protect_rtcp(&rtcp).expect("protect rtcp");
            assert_eq!(&bob.unprotect_rtcp(&wire).expect("rtcp")[..], &rtcp[..]);
            assert!(
                bob.unprotect_rtcp(&wire).is_err(),
                "{suite}: an RTCP replay"
            );
        }
    }
}
