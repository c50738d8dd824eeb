//! SIP user agent, SDP offer/answer, RTP/RTCP media with G.711 and DTMF, and call-progress
//! classification. Protocol cores are sans-IO (messages and time in, messages and events out);
//! thin tokio shells put them on sockets.

pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod jitter;
pub mod media;
pub mod progress;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod srtp;
pub mod tls;
pub mod tones;
pub mod webrtc_leg;
