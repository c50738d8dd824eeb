//! The cost of SRTP on one G.711 packet (12-byte header, 160-byte payload): protect (encrypt and
//! tag) and unprotect (authenticate, replay check, decrypt) with each SDES suite, on one core.
//!
//! `cargo bench -p telephony --bench srtp [-- PACKETS]` (default 200000 per suite). Prints the
//! time per packet each way and what that costs for 1000 calls at 50 packets a second each way.

use std::hint::black_box;
use std::time::Instant;

use telephony::srtp::{MasterKey, SrtpKeys, SrtpSession, SrtpSuite};

fn main() {
    let packets: u32 = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    println!("{packets} packets of 172 bytes per suite");
    for suite in SrtpSuite::OFFERED {
        let (a, b) = (MasterKey::random(), MasterKey::random());
        let (Ok(mut alice), Ok(mut bob)) = (
            SrtpSession::new(&SrtpKeys::between(suite, &a, &b)),
            SrtpSession::new(&SrtpKeys::between(suite, &b, &a)),
        ) else {
            println!("{suite}: contexts could not be made");
            continue;
        };
        let mut rtp = vec![0x80u8, 0x00, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        rtp.extend(std::iter::repeat_n(0xffu8, 160));
        // Protect every packet first (timed), then unprotect them in order (timed).
        let mut wire = Vec::with_capacity(packets as usize);
        let start = Instant::now();
        for i in 0..packets {
            let seq = (i & 0xffff) as u16;
            rtp[2..4].copy_from_slice(&seq.to_be_bytes());
            rtp[4..8].copy_from_slice(&(i.wrapping_mul(160)).to_be_bytes());
            match alice.protect_rtp(black_box(&rtp)) {
                Ok(p) => wire.push(p),
                Err(e) => {
                    println!("{suite}: protect failed: {e}");
                    return;
                }
            }
        }
        let protect = start.elapsed();
        let start = Instant::now();
        let mut refused = 0u32;
        for p in &wire {
            if bob.unprotect_rtp(black_box(p)).is_err() {
                refused += 1;
            }
        }
        let unprotect = start.elapsed();
        let per = |d: std::time::Duration| d.as_nanos() as f64 / f64::from(packets);
        let (p, u) = (per(protect), per(unprotect));
        // 1000 calls × 50 packets/s each way: 50,000 protects and 50,000 unprotects per second.
        let core_share = (p + u) * 50_000.0 / 1e9 * 100.0;
        println!(
            "{suite:<24} protect {p:>6.0} ns  unprotect {u:>6.0} ns  refused {refused}  \
             1000 calls: {core_share:.1}% of one core"
        );
    }
}
