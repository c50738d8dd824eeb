//! The agent console softphone leg: WebRTC (DTLS-SRTP, G.711) to a browser (being written).
