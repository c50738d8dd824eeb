//! The peer connection behind a leg: offer checks, the PCMU-only media engine, socket
//! addresses, the offer/answer itself, and the two media tasks (receive, pace).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use bytes::Bytes;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_PCMU;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription, Registry, register_default_interceptors,
};

use super::framing::{FRAME_SAMPLES, Inbound, Outbound};
use super::{LegState, Outgoing, WebRtcConfig, WebRtcError, stack};
use crate::media::{PTIME, PcmFrame};

/// The RTP payload type of PCMU (RFC 3551, static).
const PCMU_PAYLOAD_TYPE: u8 = 0;

/// Move to a terminal state unless already in one (the first cause wins).
pub(super) fn mark_terminal(state: &watch::Sender<LegState>, to: LegState) {
    state.send_if_modified(|s| {
        if s.is_terminal() {
            false
        } else {
            *s = to;
            true
        }
    });
}

/// True if some `m=audio` section offers PCMU: static payload type 0 in its format list, or
/// a dynamic one mapped to `PCMU/8000`.
pub(super) fn offers_pcmu(sdp: &str) -> bool {
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split_whitespace();
            in_audio = fields.next() == Some("audio");
            // m=audio <port> <proto> <fmt>...
            if in_audio && fields.nth(2).into_iter().chain(fields).any(|f| f == "0") {
                return true;
            }
        } else if in_audio
            && let Some(map) = line.strip_prefix("a=rtpmap:")
            && map
                .split_whitespace()
                .nth(1)
                .is_some_and(|enc| enc.eq_ignore_ascii_case("PCMU/8000"))
        {
            return true;
        }
    }
    false
}

fn pcmu_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_PCMU.to_owned(),
        clock_rate: 8000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

pub(super) fn pcmu_only_engine() -> Result<(MediaEngine, Registry), WebRtcError> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: pcmu_codec(),
                payload_type: PCMU_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(stack("codec registration"))?;
    // Sender/receiver reports and NACK; the browser's stats and the leg's quality rely on them.
    let interceptors = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(stack("interceptor registration"))?;
    Ok((engine, interceptors))
}

/// One socket address per configured IP: port 0, or the first free port of the range.
pub(super) fn bind_addrs(cfg: &WebRtcConfig) -> Result<Vec<SocketAddr>, WebRtcError> {
    if cfg.host_ips.is_empty() {
        return Err(WebRtcError::Config(
            "no host IPs to gather candidates on".into(),
        ));
    }
    if let Some(ip) = cfg.host_ips.iter().find(|ip| ip.is_unspecified()) {
        return Err(WebRtcError::Config(format!(
            "host IP {ip} is a wildcard; name the interface addresses to offer"
        )));
    }
    let Some(range) = cfg.ports.clone() else {
        return Ok(cfg
            .host_ips
            .iter()
            .map(|&ip| SocketAddr::new(ip, 0))
            .collect());
    };
    if range.is_empty() || *range.start() == 0 {
        return Err(WebRtcError::Config(format!(
            "UDP port range {range:?} is empty or starts at 0"
        )));
    }
    let span = u32::from(*range.end()) - u32::from(*range.start()) + 1;
    let offset = rand::random_range(0..span);
    cfg.host_ips
        .iter()
        .map(|&ip| {
            let mut last = None;
            for i in 0..span {
                let port = u32::from(*range.start()) + (offset + i) % span;
                let Ok(port) = u16::try_from(port) else {
                    continue;
                };
                // Probe, then let the stack bind it: the builder takes addresses, not sockets.
                match UdpSocket::bind((ip, port)) {
                    Ok(_) => return Ok(SocketAddr::new(ip, port)),
                    Err(e) => last = Some(e),
                }
            }
            Err(WebRtcError::Bind {
                ip,
                source: last.unwrap_or_else(|| std::io::Error::other("no port in range")),
            })
        })
        .collect()
}

/// Offer in, answer out: track, remote description, answer, gathering.
pub(super) async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
    cfg: &WebRtcConfig,
    gathered: &mut watch::Receiver<bool>,
) -> Result<(Arc<TrackLocalStaticRTP>, u32, String), WebRtcError> {
    let ssrc = rand::random::<u32>();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "callbot".to_owned(),
        "callbot-audio".to_owned(),
        "callbot audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            active: true,
            codec: pcmu_codec(),
            ..Default::default()
        }],
    )));
    pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .map_err(stack("adding the audio track"))?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(stack("creating the answer"))?;
    pc.set_local_description(answer)
        .await
        .map_err(stack("applying the answer"))?;
    tokio::time::timeout(cfg.gather_timeout, gathered.wait_for(|done| *done))
        .await
        .map_err(|_| WebRtcError::Timeout {
            what: "ICE candidate gathering",
            after: cfg.gather_timeout,
        })?
        .map_err(|_| WebRtcError::Ended(LegState::Closed))?;
    let answer = pc
        .local_description()
        .await
        .ok_or_else(|| WebRtcError::Config("no local description after answering".into()))?
        .sdp;
    if !offers_pcmu(&answer) {
        return Err(WebRtcError::NoPcmu);
    }
    Ok((track, ssrc, answer))
}

/// The peer connection's callbacks, turned into channel sends.
pub(super) struct Events {
    pub(super) state: Arc<watch::Sender<LegState>>,
    pub(super) gathered: watch::Sender<bool>,
    pub(super) frames: mpsc::Sender<PcmFrame>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        debug!(%state, "webrtc ice gathering");
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        info!(%state, "webrtc leg state");
        let Some(next) = LegState::from_peer(state) else {
            return;
        };
        if next.is_terminal() {
            mark_terminal(&self.state, next);
        } else {
            self.state.send_if_modified(|s| {
                let changed = !s.is_terminal() && *s != next;
                if changed {
                    *s = next;
                }
                changed
            });
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Audio {
            debug!("ignoring a non-audio track from the browser");
            return;
        }
        tokio::spawn(receive(track, self.frames.clone()));
    }
}

/// Browser → server: PCMU packets to 20 ms frames.
async fn receive(track: Arc<dyn TrackRemote>, frames: mpsc::Sender<PcmFrame>) {
    let mut inbound = Inbound::default();
    let mut dropped = 0u64;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if packet.header.payload_type != PCMU_PAYLOAD_TYPE {
                    debug!(pt = packet.header.payload_type, "non-PCMU packet dropped");
                    continue;
                }
                for frame in inbound.push(packet.header.timestamp, &packet.payload) {
                    match frames.try_send(frame) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            dropped += 1;
                            if dropped.is_power_of_two() {
                                warn!(dropped, "webrtc inbound frames dropped: reader too slow");
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    debug!("browser audio track ended");
}

/// Server → browser: one PCMU packet per 20 ms tick once connected.
pub(super) async fn pace(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    mut audio_rx: mpsc::Receiver<Outgoing>,
    mut state: watch::Receiver<LegState>,
    send_silence: bool,
) {
    if !matches!(
        state
            .wait_for(|s| *s == LegState::Connected || s.is_terminal())
            .await
            .map(|s| *s),
        Ok(LegState::Connected)
    ) {
        return;
    }
    let mut outbound = Outbound::new(rand::random(), send_silence);
    let mut sequence: u16 = rand::random();
    let mut ticker = tokio::time::interval_at(Instant::now(), PTIME);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut write_errors = 0u64;
    loop {
        ticker.tick().await;
        if state.borrow().is_terminal() {
            return;
        }
        while outbound.queued() < FRAME_SAMPLES {
            match audio_rx.try_recv() {
                Ok(Outgoing::Audio(pcm)) => outbound.push(&pcm),
                Ok(Outgoing::Clear) => outbound.clear(),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        let Some(out) = outbound.tick() else { continue };
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                marker: out.marker,
                payload_type: PCMU_PAYLOAD_TYPE,
                sequence_number: sequence,
                timestamp: out.timestamp,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from(out.payload),
        };
        sequence = sequence.wrapping_add(1);
        if let Err(e) = track.write_rtp(packet).await {
            write_errors += 1;
            if write_errors.is_power_of_two() {
                warn!(error = %e, write_errors, "webrtc audio packet not sent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    #[test]
    fn pcmu_is_found_static_or_mapped() {
        let chrome =
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13\r\na=rtpmap:0 PCMU/8000\r\n";
        assert!(offers_pcmu(chrome));
        let mapped = "m=audio 9 RTP/SAVPF 96\na=rtpmap:96 pcmu/8000\n";
        assert!(offers_pcmu(mapped));
        let opus_only = "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n";
        assert!(!offers_pcmu(opus_only));
        let video = "m=video 9 UDP/TLS/RTP/SAVPF 0 96\na=rtpmap:96 PCMU/8000\n";
        assert!(!offers_pcmu(video));
    }

    #[test]
    fn wildcard_host_ip_is_refused() {
        let cfg = WebRtcConfig {
            host_ips: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
            ..WebRtcConfig::default()
        };
        assert!(matches!(bind_addrs(&cfg), Err(WebRtcError::Config(_))));
    }

    #[test]
    fn port_range_picks_a_free_port_in_range() {
        let cfg = WebRtcConfig {
            ports: Some(40000..=40100),
            ..WebRtcConfig::default()
        };
        let addrs = bind_addrs(&cfg).expect("a free port");
        assert_eq!(addrs.len(), 1);
        assert!((40000..=40100).contains(&addrs[0].port()));
        assert!(addrs[0].ip().is_loopback());
    }
}
