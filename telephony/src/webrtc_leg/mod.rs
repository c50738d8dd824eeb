//! The agent console's softphone leg: WebRTC audio (DTLS-SRTP, G.711 µ-law) to a browser.
//!
//! A human agent takes a transferred call in a browser page. The page sends an SDP offer,
//! [`WebRtcLeg::answer`] answers it, and from then on the leg looks like the SIP leg's media:
//! [`WebRtcLeg::send_audio`] queues 8 kHz PCM, [`WebRtcLeg::next_frame`] yields 20 ms
//! [`PcmFrame`]s, so a bridge pumps frames between the two with no resampling or transcoding
//! beyond G.711.
//!
//! Design:
//! - **webrtc-rs** (`webrtc` over its sans-IO core `rtc`) owns ICE, DTLS and SRTP; one peer
//!   connection per leg, on the caller's tokio runtime.
//! - **Full ICE, host candidates only, non-trickle.** No STUN/TURN servers and mDNS off: the
//!   server gathers one host candidate per configured IP ([`WebRtcConfig::host_ips`], loopback by
//!   default), waits for gathering to finish, and puts them all in the one answer, so signaling
//!   is a single offer/answer exchange. Full ICE rather than ICE-lite so that the server also
//!   runs connectivity checks, which finds a path when the agent's browser is behind a NAT on
//!   the contact-centre LAN.
//! - **PCMU only.** The media engine knows one codec, PCMU (payload type 0, 8 kHz), so the
//!   answer selects it whatever else the browser offers; an offer without PCMU is refused.
//! - **Pacing.** A task ticks every 20 ms (catching up after a late tick, so the RTP clock keeps
//!   to the wall clock) and sends one 160-sample packet per tick: queued audio, else silence
//!   ([`WebRtcConfig::send_silence`]). It starts once the connection is up; audio queued before
//!   then waits. The packetising and reframing are sans-IO (`framing.rs`).
//! - **Hang-up.** [`WebRtcLeg::close`] ends the leg at once. A browser that closes its peer
//!   connection is noticed only when ICE gives up (`ice_disconnected_timeout` +
//!   `ice_failed_timeout`, 30 s by default), so the console's signalling should say "hung up"
//!   and the server call `close`.

mod framing;
mod peer;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

use crate::media::PcmFrame;
use peer::{Events, bind_addrs, mark_terminal, negotiate, offers_pcmu, pace, pcmu_only_engine};

/// How the leg binds and how patient ICE is.
#[derive(Debug, Clone)]
pub struct WebRtcConfig {
    /// The local IPs to bind and offer as host candidates, one UDP socket each. Default:
    /// 127.0.0.1 only; production sets the agent-facing interface(s). A wildcard (0.0.0.0, ::)
    /// is refused: it would expose every interface.
    pub host_ips: Vec<IpAddr>,
    /// UDP ports to bind from (the first free one per IP, starting at a random offset), or
    /// `None` for an ephemeral port.
    pub ports: Option<RangeInclusive<u16>>,
    /// How long [`WebRtcLeg::answer`] waits for candidate gathering.
    pub gather_timeout: Duration,
    /// ICE: time without traffic before the connection counts as disconnected.
    pub ice_disconnected_timeout: Duration,
    /// ICE: time disconnected before the connection counts as failed.
    pub ice_failed_timeout: Duration,
    /// ICE: keepalive interval while idle.
    pub ice_keepalive_interval: Duration,
    /// Received 20 ms frames buffered for [`WebRtcLeg::next_frame`]; when full, new frames are
    /// dropped (and counted in the log).
    pub inbound_capacity: usize,
    /// Chunks of PCM [`WebRtcLeg::send_audio`] may queue before it waits.
    pub outbound_capacity: usize,
    /// Send silence while nothing is queued (keeps the browser's jitter buffer and ICE consent
    /// fed); otherwise send nothing and mark the next talk spurt.
    pub send_silence: bool,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            host_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ports: None,
            gather_timeout: Duration::from_secs(5),
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(25),
            ice_keepalive_interval: Duration::from_secs(2),
            inbound_capacity: 50,
            outbound_capacity: 512,
            send_silence: true,
        }
    }
}

/// Where a leg is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// Answered; ICE has not started.
    New,
    /// ICE checks or the DTLS handshake in progress.
    Connecting,
    /// Media flowing.
    Connected,
    /// ICE lost the path; it may come back (then `Connected` again) or fail.
    Disconnected,
    /// Closed by [`WebRtcLeg::close`] or by the browser.
    Closed,
    /// ICE or DTLS failed; the leg is dead.
    Failed,
}

impl LegState {
    /// True once the leg can no longer carry media.
    pub fn is_terminal(self) -> bool {
        matches!(self, LegState::Closed | LegState::Failed)
    }

    fn from_peer(state: RTCPeerConnectionState) -> Option<Self> {
        match state {
            RTCPeerConnectionState::New => Some(LegState::New),
            RTCPeerConnectionState::Connecting => Some(LegState::Connecting),
            RTCPeerConnectionState::Connected => Some(LegState::Connected),
            RTCPeerConnectionState::Disconnected => Some(LegState::Disconnected),
            RTCPeerConnectionState::Failed => Some(LegState::Failed),
            RTCPeerConnectionState::Closed => Some(LegState::Closed),
            _ => None,
        }
    }
}

impl fmt::Display for LegState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What can go wrong with a WebRTC leg.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The browser's offer is not usable SDP.
    #[error("bad SDP offer from the browser: {0}")]
    BadOffer(String),
    /// The offer has no audio stream that can carry PCMU.
    #[error("the SDP offer has no audio stream offering PCMU/8000 (G.711 µ-law is required)")]
    NoPcmu,
    /// The configuration cannot work.
    #[error("bad WebRTC configuration: {0}")]
    Config(String),
    /// No UDP port could be bound.
    #[error("cannot bind a UDP port on {ip} for WebRTC: {source}")]
    Bind {
        /// The address that failed.
        ip: IpAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The WebRTC stack refused a step of the offer/answer.
    #[error("WebRTC {step} failed: {source}")]
    Stack {
        /// Which step.
        step: &'static str,
        /// The stack's error.
        #[source]
        source: webrtc::error::Error,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// The leg ended before it connected.
    #[error("the WebRTC leg ended ({0}) before it connected")]
    Ended(LegState),
    /// The leg is closed; nothing more can be sent.
    #[error("the WebRTC leg is closed")]
    Closed,
    /// The send queue is full ([`WebRtcLeg::try_send_audio`]).
    #[error("the WebRTC leg's send queue is full")]
    QueueFull,
}

pub(super) fn stack(step: &'static str) -> impl FnOnce(webrtc::error::Error) -> WebRtcError {
    move |source| WebRtcError::Stack { step, source }
}

/// A browser's audio leg: one answered peer connection with one PCMU track each way.
pub struct WebRtcLeg {
    pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<LegState>,
    state_tx: Arc<watch::Sender<LegState>>,
    audio_tx: mpsc::Sender<Outgoing>,
    frames: mpsc::Receiver<PcmFrame>,
    pacer: JoinHandle<()>,
    closed: AtomicBool,
}

pub(super) enum Outgoing {
    Audio(Vec<i16>),
    Clear,
}

impl fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl WebRtcLeg {
    /// Answer a browser's SDP offer. Non-trickle: returns once candidate gathering is complete,
    /// so the answer SDP carries every candidate. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`WebRtcError::BadOffer`] if the offer does not parse, [`WebRtcError::NoPcmu`] if it
    /// cannot carry PCMU, [`WebRtcError::Bind`]/[`WebRtcError::Config`] for local problems,
    /// [`WebRtcError::Timeout`] if gathering does not finish in
    /// [`WebRtcConfig::gather_timeout`].
    pub async fn answer(
        offer_sdp: &str,
        cfg: &WebRtcConfig,
    ) -> Result<(WebRtcLeg, String), WebRtcError> {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
        if !offers_pcmu(offer_sdp) {
            return Err(WebRtcError::NoPcmu);
        }
        let addrs = bind_addrs(cfg)?;

        let (state_tx, state) = watch::channel(LegState::New);
        let state_tx = Arc::new(state_tx);
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (frames_tx, frames) = mpsc::channel(cfg.inbound_capacity.max(1));
        let handler = Arc::new(Events {
            state: Arc::clone(&state_tx),
            gathered: gathered_tx,
            frames: frames_tx,
        });

        let (engine, interceptors) = pcmu_only_engine()?;
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(engine)
                .with_interceptor_registry(interceptors)
                .with_setting_engine(
                    SettingEngineBuilder::new()
                        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                        .with_ice_timeouts(
                            Some(cfg.ice_disconnected_timeout),
                            Some(cfg.ice_failed_timeout),
                            Some(cfg.ice_keepalive_interval),
                        )
                        .build(),
                )
                .with_handler(handler)
                .with_udp_addrs(addrs.clone())
                .build()
                .await
                .map_err(stack("peer connection setup"))?,
        );

        match negotiate(&pc, offer, cfg, &mut gathered).await {
            Ok((track, ssrc, answer)) => {
                info!(?addrs, ssrc, "webrtc leg answered");
                let (audio_tx, audio_rx) = mpsc::channel(cfg.outbound_capacity.max(1));
                let pacer =
                    tokio::spawn(pace(track, ssrc, audio_rx, state.clone(), cfg.send_silence));
                let leg = WebRtcLeg {
                    pc,
                    state,
                    state_tx,
                    audio_tx,
                    frames,
                    pacer,
                    closed: AtomicBool::new(false),
                };
                Ok((leg, answer))
            }
            Err(e) => {
                if let Err(close) = pc.close().await {
                    debug!(error = %close, "closing a half-built peer connection");
                }
                Err(e)
            }
        }
    }

    /// Queue 8 kHz PCM for the browser (any length; cut into 20 ms PCMU packets and paced in
    /// real time). Waits while the queue is full.
    ///
    /// # Errors
    /// [`WebRtcError::Closed`] once the leg is closed.
    pub async fn send_audio(&self, pcm: Vec<i16>) -> Result<(), WebRtcError> {
        if self.state().is_terminal() {
            return Err(WebRtcError::Closed);
        }
        self.audio_tx
            .send(Outgoing::Audio(pcm))
            .await
            .map_err(|_| WebRtcError::Closed)
    }

    /// Queue PCM without waiting.
    ///
    /// # Errors
    /// [`WebRtcError::QueueFull`] or [`WebRtcError::Closed`].
    pub fn try_send_audio(&self, pcm: Vec<i16>) -> Result<(), WebRtcError> {
        if self.state().is_terminal() {
            return Err(WebRtcError::Closed);
        }
        self.audio_tx
            .try_send(Outgoing::Audio(pcm))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WebRtcError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WebRtcError::Closed,
            })
    }

    /// Drop all audio queued but not yet sent (barge-in); silence follows.
    ///
    /// # Errors
    /// [`WebRtcError::QueueFull`] or [`WebRtcError::Closed`].
    pub fn clear_audio(&self) -> Result<(), WebRtcError> {
        self.audio_tx
            .try_send(Outgoing::Clear)
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WebRtcError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WebRtcError::Closed,
            })
    }

    /// The next 20 ms of 8 kHz PCM from the browser; `None` once the leg is closed or failed.
    pub async fn next_frame(&mut self) -> Option<PcmFrame> {
        let mut state = self.state.clone();
        tokio::select! {
            biased;
            frame = self.frames.recv() => frame,
            _ = state.wait_for(|s| s.is_terminal()) => None,
        }
    }

    /// Resolves once ICE and DTLS are up.
    ///
    /// # Errors
    /// [`WebRtcError::Ended`] if the leg closes or fails first, [`WebRtcError::Timeout`] after
    /// `timeout`.
    pub async fn connected(&self, timeout: Duration) -> Result<(), WebRtcError> {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(
            timeout,
            state.wait_for(|s| *s == LegState::Connected || s.is_terminal()),
        )
        .await
        .map_err(|_| WebRtcError::Timeout {
            what: "the WebRTC leg to connect",
            after: timeout,
        })?
        .map(|s| *s)
        .unwrap_or(LegState::Closed);
        match reached {
            LegState::Connected => Ok(()),
            other => Err(WebRtcError::Ended(other)),
        }
    }

    /// The leg's state now.
    pub fn state(&self) -> LegState {
        *self.state.borrow()
    }

    /// Hang up: stop sending, close the peer connection (the browser sees the DTLS close), end
    /// [`next_frame`](Self::next_frame). Idempotent.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pacer.abort();
        mark_terminal(&self.state_tx, LegState::Closed);
        if let Err(e) = self.pc.close().await {
            warn!(error = %e, "closing the webrtc peer connection");
        }
        info!("webrtc leg closed");
    }
}

impl Drop for WebRtcLeg {
    fn drop(&mut self) {
        self.pacer.abort();
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        mark_terminal(&self.state_tx, LegState::Closed);
        // Also after a failure: the peer connection's driver runs until closed.
        let pc = Arc::clone(&self.pc);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = pc.close().await {
                    debug!(error = %e, "closing a dropped webrtc leg");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn garbage_offer_is_refused_with_a_clear_error() {
        let err = WebRtcLeg::answer("this is not SDP", &WebRtcConfig::default())
            .await
            .expect_err("garbage must not be answered");
        assert!(matches!(err, WebRtcError::BadOffer(_)), "{err:?}");
        assert!(err.to_string().contains("bad SDP offer"));
    }
}
