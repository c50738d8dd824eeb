//! SIP user agent, SDP, RTP/RTCP, G.711 and DTMF.
//!
//! Not built yet (issue 4). This crate is an empty placeholder in the workspace.
