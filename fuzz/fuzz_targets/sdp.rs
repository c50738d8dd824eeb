//! SDP from the network: `telephony::sdp::Sdp::parse_bytes`, then the offer/answer logic the
//! user agent runs on it (`answer`, `negotiated_from_answer`).
//!
//! Properties: nothing panics; a parsed SDP printed and parsed again is the same; an answer we
//! produce parses; a refusal has a SIP status; an `a=crypto` line that parses prints back to
//! itself; an SRTP answer carries exactly one crypto line, and SRTP is agreed only for an offer
//! that had crypto lines.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use telephony::sdp::{LocalMedia, Sdp, SdpSession, negotiated_from_answer};
use telephony::srtp::{CryptoAttr, SrtpPolicy};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = Sdp::parse_bytes(data) else {
        return;
    };
    // Printing is a fixed point after one round: print → parse → print gives the same text
    // (lines out of place, e.g. `o=` inside a media section, may be regrouped the first time).
    let text = offer.to_string();
    let again =
        Sdp::parse(&text).unwrap_or_else(|e| panic!("printed SDP does not parse: {e}\n{text}"));
    assert_eq!(again.media.len(), offer.media.len());
    let text2 = again.to_string();
    let again2 =
        Sdp::parse(&text2).unwrap_or_else(|e| panic!("printed SDP does not parse: {e}\n{text2}"));
    assert_eq!(
        again2, again,
        "printing is not stable\n{text}\n---\n{text2}"
    );
    for i in 0..offer.media.len() {
        let _ = offer.direction_of(i);
        let _ = offer.connection_of(i);
        let m = &offer.media[i];
        let _ = (
            m.ptime(),
            m.maxptime(),
            m.own_direction(),
            m.is_active_audio(),
        );
        for pt in m.payload_types() {
            let _ = m.encoding_of(pt);
        }
        for c in m.crypto().flatten() {
            assert_eq!(CryptoAttr::parse(&c.to_string()), Ok(c));
        }
    }

    let local = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000);
    let mut session = SdpSession::new(local, 1);
    match session.answer(&offer) {
        Ok((answer, negotiated)) => {
            let text = answer.to_string();
            let parsed = Sdp::parse(&text)
                .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{text}"));
            assert_eq!(parsed, answer);
            let crypto_lines: usize = answer.media.iter().map(|m| m.crypto().count()).sum();
            assert_eq!(crypto_lines, usize::from(negotiated.srtp.is_some()), "{text}");
            if negotiated.srtp.is_some() {
                assert!(offer.media.iter().any(|m| m.crypto().next().is_some()));
            }
        }
        Err(e) => {
            let status = e.sip_status();
            assert!(
                (400..=699).contains(&status),
                "refusal with status {status}"
            );
        }
    }
    // The same text as the answer to our offer (an outbound call).
    let our_offer = session.offer();
    if let Err(e) = negotiated_from_answer(&our_offer, &offer) {
        let _ = e.sip_status();
    }
    // And as the answer to an SRTP offer of ours (a server that requires SRTP).
    let mut secure = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000);
    secure.srtp = SrtpPolicy::Require;
    let secure_offer = SdpSession::new(secure, 1).offer();
    if let Ok(n) = negotiated_from_answer(&secure_offer, &offer) {
        assert!(n.srtp.is_some(), "an answer to an SRTP offer agreed plain RTP");
    }
});
