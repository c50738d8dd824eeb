//! The call server: one SIP user agent, outbound calls placed with [`Runtime::dial`], inbound
//! calls matched to a lead by the caller's number, a robot conversation ([`crate::call`]) on
//! every answered call, and every call's record saved to the store.
//!
//! A dispatcher task owns the agent's event stream and routes each call's events to the task
//! that runs the call. Events that arrive before their call is registered (a fast 180 right
//! after the INVITE) are kept until it is.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dialog_flows::Flow;
use telephony::g711::Codec as G711;
use telephony::media::{
    MediaConfig, MediaSession, SchedulerConfig, WorkerPriority, configure_scheduler,
};
use telephony::progress::{self, CallProgress, Disposition, ProgressConfig};
use telephony::sdp::{self, Codec, LocalMedia, Negotiated, Origin, Sdp};
use telephony::sip::Uri;
pub use telephony::sip::transport::SipTlsConfig;
use telephony::sip::transport::{AgentHandle, SipTransport, UdpAgent};
use telephony::sip::ua::{CallEvent, CallId};
pub use telephony::srtp::SrtpPolicy;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::agents::desk::{AgentLines, Desk, PhoneLeg, Ring, RingResult};
use crate::amd::AmdConfig;
use crate::call::{CallSetup, LiveEvent, SipLeg, run_call};
use crate::engines::Engines;
use crate::record::{CallRecord, Direction};
use crate::store::Store;
use crate::turn::TurnConfig;

/// Settings of the call server.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// SIP address (UDP and TCP).
    pub sip_bind: SocketAddr,
    /// The address media sockets bind to and advertise in SDP.
    pub media_ip: IpAddr,
    /// SIP user name of the server (From of outbound calls).
    pub user: String,
    pub recording_dir: Option<PathBuf>,
    /// Bytes the recordings disk must keep free for new calls to be dialed
    /// ([`Runtime::recordings_blocked`]).
    pub recordings_min_free: u64,
    pub turn: TurnConfig,
    pub amd: AmdConfig,
    pub max_call: Duration,
    /// A call with no RTP from the far end for this long is ended (see
    /// [`crate::call::CallSetup::media_timeout`]).
    pub media_timeout: Option<Duration>,
    pub progress: ProgressConfig,
    /// The media scheduler's threads (RTP pacing for every call). Media servers run them at
    /// realtime priority so that ASR and TTS inference on the same cores cannot delay a packet;
    /// where the OS refuses (no `CAP_SYS_NICE`), they keep the normal policy and a warning is
    /// logged. Applied by the first [`Runtime::start`] of the process, before any media starts.
    pub media: SchedulerConfig,
    /// SRTP (SDES) for calls' media: answered whenever a phone or trunk offers it; with
    /// [`SrtpPolicy::Require`] offered on every call placed and required of every call taken.
    pub srtp: SrtpPolicy,
    /// SIP over TLS: a listener for phones and trunks that connect over TLS, and the CAs trusted
    /// for calls placed to `sips:` or `;transport=tls` targets (a campaign trunk's
    /// `"transport": "tls"`).
    pub sip_tls: Option<SipTlsConfig>,
}

impl RuntimeConfig {
    pub fn loopback() -> Self {
        RuntimeConfig {
            sip_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            media_ip: IpAddr::from([127, 0, 0, 1]),
            user: "callbot".into(),
            recording_dir: None,
            recordings_min_free: 256 << 20,
            turn: TurnConfig::default(),
            amd: AmdConfig::default(),
            max_call: Duration::from_secs(600),
            media_timeout: Some(Duration::from_secs(60)),
            progress: ProgressConfig::default(),
            media: SchedulerConfig {
                workers: 0,
                priority: WorkerPriority::Realtime(MEDIA_PRIORITY),
            },
            srtp: SrtpPolicy::Accept,
            sip_tls: None,
        }
    }
}

/// The `SCHED_FIFO` priority of media threads by default: above ordinary realtime helpers, below
/// the kernel's own threads (FreeSWITCH's `-rp` and Asterisk's `-p` use comparable values).
pub const MEDIA_PRIORITY: u8 = 50;

/// SIP over TLS from PEM files: listen on `bind` serving `cert` and `key`; with `ca`, place
/// calls over TLS trusting exactly those CAs and present `cert` to peers that ask for a client
/// certificate.
///
/// # Errors
/// A file unusable, or the key not the certificate's; each error names the file.
pub fn sip_tls_from_files(
    bind: SocketAddr,
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: Option<&std::path::Path>,
) -> Result<SipTlsConfig, telephony::tls::TlsError> {
    let client = match ca {
        Some(ca) => Some(Arc::new(telephony::tls::client_config(
            ca,
            Some((cert, key)),
        )?)),
        None => None,
    };
    Ok(SipTlsConfig {
        bind,
        server: Arc::new(telephony::tls::server_config(cert, key)?),
        client,
    })
}

/// The transport a call to `target` goes over: its `transport` parameter (`udp`, `tcp`, `tls`),
/// TLS for a `sips:` URI, UDP otherwise (RFC 3263 §4.1 without DNS).
pub fn transport_of(target: &Uri) -> SipTransport {
    if target.scheme.eq_ignore_ascii_case("sips") {
        return SipTransport::Tls;
    }
    target
        .param("transport")
        .flatten()
        .and_then(SipTransport::from_name)
        .unwrap_or(SipTransport::Udp)
}

/// One outbound call to place.
#[derive(Clone)]
pub struct Dial {
    /// Request-URI, e.g. `sip:+15551234567@trunk`.
    pub target: Uri,
    /// Where to send the INVITE (the trunk or the phone).
    pub next_hop: SocketAddr,
    pub flow: Arc<Flow>,
    pub lead: serde_json::Map<String, serde_json::Value>,
    pub lead_id: Option<String>,
    pub campaign: Option<String>,
    /// The customer's number, for the record.
    pub phone: String,
    /// The caller ID presented (the From user; `None`: the server's SIP user).
    pub caller_id: Option<String>,
    pub amd: bool,
    pub live: Option<mpsc::UnboundedSender<LiveEvent>>,
}

/// A call whose INVITE has left (or that could not be placed): see [`Runtime::place`].
pub struct PlacedCall(Placed);

impl PlacedCall {
    /// The record so far (id, number, campaign, SIP Call-ID).
    pub fn record(&self) -> &CallRecord {
        match &self.0 {
            Placed::Failed(r) => r,
            Placed::Sent(s) => &s.record,
        }
    }

    /// Whether the INVITE was sent.
    pub fn sent(&self) -> bool {
        matches!(self.0, Placed::Sent(_))
    }

    /// Transfers of this call wait at most `max_wait` for an agent (when shorter than the
    /// queue's `max_wait`): the dialer's safe harbour for human campaigns.
    pub fn limit_transfer_wait(&mut self, max_wait: Duration) {
        if let Placed::Sent(s) = &mut self.0 {
            s.transfer_max_wait = Some(max_wait);
        }
    }
}

enum Placed {
    Failed(Box<CallRecord>),
    Sent(Box<Sent>),
}

struct Sent {
    record: CallRecord,
    call: CallId,
    offer: Sdp,
    /// Our media and SDP origin, kept to answer the phone's re-INVITEs.
    local: LocalMedia,
    origin: Origin,
    socket: UdpSocket,
    events: mpsc::UnboundedReceiver<CallEvent>,
    dial: Dial,
    transfer_max_wait: Option<Duration>,
}

/// How an inbound call is handled: the flow and the lead data it runs with.
#[derive(Clone)]
pub struct InboundRoute {
    pub flow: Arc<Flow>,
    pub lead: serde_json::Map<String, serde_json::Value>,
    pub lead_id: Option<String>,
    pub campaign: Option<String>,
}

/// Picks the route of an inbound call from the caller's number (`None` rejects the call with
/// 404).
pub type InboundRouter = Arc<dyn Fn(&str) -> Option<InboundRoute> + Send + Sync>;

type InboundHandler = (InboundRouter, Option<mpsc::UnboundedSender<LiveEvent>>);

enum Dispatch {
    Register(CallId, mpsc::UnboundedSender<CallEvent>),
    Unregister(CallId),
}

/// See the module docs.
#[derive(Clone)]
pub struct Runtime {
    engines: Arc<Engines>,
    agent: AgentHandle,
    dispatch: mpsc::UnboundedSender<Dispatch>,
    cfg: Arc<RuntimeConfig>,
    store: Option<Arc<Store>>,
    inbound: Arc<Mutex<Option<InboundHandler>>>,
    /// The finished-records stream: bounded, so a caller that keeps the receiver without reading
    /// it holds at most [`RECORD_STREAM_CAPACITY`] records, not every call's (a dialer node did:
    /// ~3 KB a call, found by the soak).
    finished: mpsc::Sender<CallRecord>,
    desk: Arc<Mutex<Option<Desk>>>,
}

/// The caller's number from a From header value: the user part of its URI.
pub fn caller_number(from: &str) -> String {
    let uri = match (from.find('<'), from.find('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.split(';').next().unwrap_or(from),
    };
    let uri = uri.trim();
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    rest.split(['@', ';']).next().unwrap_or("").to_string()
}

/// Media settings for what an offer/answer agreed: the codec, the telephone-event payload type
/// and, for secure RTP, the SRTP keys.
pub fn media_config(neg: &Negotiated) -> MediaConfig {
    MediaConfig {
        codec: if neg.codec == Codec::Pcmu {
            G711::Pcmu
        } else {
            G711::Pcma
        },
        dtmf_payload_type: neg.telephone_event,
        srtp: neg.srtp.clone(),
        ..MediaConfig::default()
    }
}

fn disposition_name(d: Disposition) -> String {
    d.as_str().to_string()
}

/// How many finished call records wait in [`Runtime::start`]'s stream for a reader; later ones
/// are not sent until it reads (they are in the store all the same).
pub const RECORD_STREAM_CAPACITY: usize = 1024;

impl Runtime {
    /// Binds the SIP agent and starts the dispatcher. Finished call records are saved to
    /// `store` (when given) and sent to the returned receiver, which holds at most
    /// [`RECORD_STREAM_CAPACITY`] unread records (drop it if the records are not wanted).
    pub async fn start(
        engines: Arc<Engines>,
        cfg: RuntimeConfig,
        store: Option<Arc<Store>>,
    ) -> std::io::Result<(Runtime, mpsc::Receiver<CallRecord>)> {
        match configure_scheduler(cfg.media) {
            Ok(info) => tracing::info!(
                workers = info.workers,
                realtime = info.realtime_workers,
                "media scheduler started"
            ),
            Err(_) => tracing::debug!("media scheduler already running"),
        }
        let agent = UdpAgent::bind_with_tls(cfg.sip_bind, &cfg.user, cfg.sip_tls.clone()).await?;
        let (handle, mut events) = agent.split();
        let (dtx, mut drx) = mpsc::unbounded_channel::<Dispatch>();
        let (ftx, frx) = mpsc::channel(RECORD_STREAM_CAPACITY);
        let rt = Runtime {
            engines,
            agent: handle,
            dispatch: dtx,
            cfg: Arc::new(cfg),
            store,
            inbound: Arc::new(Mutex::new(None)),
            finished: ftx,
            desk: Arc::new(Mutex::new(None)),
        };
        let rt2 = rt.clone();
        tokio::spawn(async move {
            let mut routes: HashMap<CallId, mpsc::UnboundedSender<CallEvent>> = HashMap::new();
            let mut early: HashMap<CallId, (Instant, Vec<CallEvent>)> = HashMap::new();
            loop {
                tokio::select! {
                    cmd = drx.recv() => match cmd {
                        Some(Dispatch::Register(id, tx)) => {
                            if let Some((_, evs)) = early.remove(&id) {
                                for e in evs {
                                    let _ = tx.send(e);
                                }
                            }
                            routes.insert(id, tx);
                        }
                        Some(Dispatch::Unregister(id)) => {
                            routes.remove(&id);
                        }
                        None => break,
                    },
                    ev = events.recv() => {
                        let Some((id, ev)) = ev else { break };
                        if let CallEvent::Incoming { from, sdp, call_id, .. } = &ev {
                            rt2.incoming(id, from.clone(), call_id.clone(), sdp.clone());
                            continue;
                        }
                        match routes.get(&id) {
                            Some(tx) => {
                                let _ = tx.send(ev);
                            }
                            None => {
                                early.retain(|_, (t, _)| t.elapsed() < Duration::from_secs(60));
                                early.entry(id).or_insert_with(|| (Instant::now(), Vec::new())).1.push(ev);
                            }
                        }
                    }
                }
            }
        });
        Ok((rt, frx))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.agent.local_addr()
    }

    /// Why new calls should wait for the recordings disk, if they should: a recording is held
    /// in memory for want of space, or the disk has less than `recordings_min_free` free. `None`
    /// when calls are not recorded.
    pub fn recordings_blocked(&self) -> Option<String> {
        let dir = self.cfg.recording_dir.as_ref()?;
        let waiting = self.engines.metrics.recordings_waiting.get();
        if waiting > 0 {
            return Some(format!(
                "{waiting} recording(s) held in memory, waiting for space in {}",
                dir.display()
            ));
        }
        match crate::recorder::free_bytes(dir) {
            Ok(free) if free < self.cfg.recordings_min_free => Some(format!(
                "{} KiB free in {}, under the {} KiB kept free",
                free >> 10,
                dir.display(),
                self.cfg.recordings_min_free >> 10
            )),
            Ok(_) => None,
            Err(e) => Some(format!(
                "cannot read the free space of {}: {e}",
                dir.display()
            )),
        }
    }

    pub fn engines(&self) -> &Arc<Engines> {
        &self.engines
    }

    /// Routes inbound calls (replaces any previous router).
    pub fn set_inbound(
        &self,
        router: InboundRouter,
        live: Option<mpsc::UnboundedSender<LiveEvent>>,
    ) {
        *self.inbound.lock().unwrap_or_else(|e| e.into_inner()) = Some((router, live));
    }

    /// Where the flows' transfers go (without a desk, a transfer finds no agent and the flow's
    /// fallback runs).
    pub fn set_desk(&self, desk: Desk) {
        *self.desk.lock().unwrap_or_else(|e| e.into_inner()) = Some(desk);
    }

    /// The agent desk set with [`Runtime::set_desk`], if any.
    pub fn desk(&self) -> Option<Desk> {
        self.desk.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Be the registrar of the agents' SIP phones (user → password, digest in `realm`).
    pub fn set_registrar_accounts(&self, realm: &str, accounts: HashMap<String, String>) {
        self.agent.set_registrar_accounts(realm, accounts);
    }

    /// Where a SIP user's phone is registered now.
    pub async fn registered(&self, user: &str) -> Option<SocketAddr> {
        self.agent.lookup(user).await
    }

    /// Rings a registered agent phone with `caller` as the From user; resolves when it
    /// answers (its media running), fails, or `cancel` fires (the ringing is cancelled).
    async fn ring_phone(
        &self,
        user: String,
        caller: String,
        mut cancel: oneshot::Receiver<()>,
    ) -> RingResult {
        let Some(addr) = self.agent.lookup(&user).await else {
            return Err((0, format!("SIP user `{user}` is not registered")));
        };
        let (socket, local) = self
            .media_socket()
            .await
            .map_err(|e| (500, e.to_string()))?;
        let origin = self.origin();
        let offer = sdp::make_offer(&local, &origin);
        let target = Uri::sip(Some(&user), &addr.ip().to_string(), Some(addr.port()));
        let (etx, mut erx) = mpsc::unbounded_channel();
        let Some(call) = self
            .agent
            .invite_as(
                addr,
                // A phone registered over TCP or TLS is reached on its connection, whatever
                // transport is named here.
                SipTransport::Udp,
                target,
                Some(caller.as_str()).filter(|c| !c.is_empty()),
                offer.to_string().into_bytes(),
            )
            .await
        else {
            return Err((503, "the INVITE could not be sent".into()));
        };
        let _ = self.dispatch.send(Dispatch::Register(call, etx));
        let unregister = {
            let agent = self.agent.clone();
            let dispatch = self.dispatch.clone();
            move |hang_up: bool| {
                if hang_up {
                    agent.hangup(call);
                }
                let _ = dispatch.send(Dispatch::Unregister(call));
            }
        };
        let answer = loop {
            tokio::select! {
                _ = &mut cancel => {
                    unregister(true);
                    return Err((487, "offer withdrawn".into()));
                }
                ev = erx.recv() => match ev {
                    Some(CallEvent::Answered { sdp }) => break sdp,
                    Some(CallEvent::Failed { status, reason, .. }) => {
                        unregister(false);
                        return Err((status, reason));
                    }
                    Some(CallEvent::Timeout) => {
                        unregister(false);
                        return Err((408, "no answer from the phone".into()));
                    }
                    None => return Err((503, "the SIP agent stopped".into())),
                    Some(_) => {}
                }
            }
        };
        let media = Sdp::parse_bytes(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::negotiated_from_answer(&offer, &a).map_err(|e| e.to_string()))
            .and_then(|neg| {
                let remote = SocketAddr::new(neg.remote_addr, neg.remote_port);
                MediaSession::start(socket, remote, media_config(&neg)).map_err(|e| e.to_string())
            });
        match media {
            Ok(media) => Ok(PhoneLeg {
                media,
                events: erx,
                hangup: Box::new(move || unregister(true)),
            }),
            Err(e) => {
                unregister(true);
                Err((488, e))
            }
        }
    }

    async fn finish(&self, record: CallRecord) -> CallRecord {
        if let Some(store) = &self.store {
            // Held and retried while the database is away: a call that happened is recorded.
            let what = format!("call record {}", record.id);
            if let Err(e) =
                crate::durable::persist(&what, &self.engines.metrics, || store.save_call(&record))
                    .await
            {
                tracing::error!(call = %record.id, error = %e, "could not save the call record");
                self.engines.metrics.error("store");
            }
        }
        if let Err(mpsc::error::TrySendError::Full(r)) = self.finished.try_send(record.clone()) {
            tracing::debug!(call = %r.id, "finished-record stream full: not sent to it");
        }
        record
    }

    /// The SDP origin of a new session of ours.
    fn origin(&self) -> Origin {
        Origin::new(
            &self.cfg.user,
            rand::random::<u32>() as u64,
            1,
            self.cfg.media_ip,
        )
    }

    async fn media_socket(&self) -> std::io::Result<(UdpSocket, LocalMedia)> {
        let socket = UdpSocket::bind(SocketAddr::new(self.cfg.media_ip, 0)).await?;
        let port = socket.local_addr()?.port();
        let mut local = LocalMedia::new(self.cfg.media_ip, port);
        local.srtp = self.cfg.srtp;
        Ok((socket, local))
    }

    fn setup(
        &self,
        record: CallRecord,
        flow: Arc<Flow>,
        lead: serde_json::Map<String, serde_json::Value>,
        amd: bool,
        live: Option<mpsc::UnboundedSender<LiveEvent>>,
    ) -> CallSetup {
        CallSetup {
            record,
            flow,
            lead,
            amd,
            amd_config: self.cfg.amd.clone(),
            recording_dir: self.cfg.recording_dir.clone(),
            recording_keys: self.store.as_ref().map(|s| s.vault_arc()),
            turn: self.cfg.turn.clone(),
            live,
            max_duration: self.cfg.max_call,
            media_timeout: self.cfg.media_timeout,
            desk: self.desk.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            transfer_max_wait: None,
        }
    }

    /// Places a call and runs it to the end; returns its record (also saved and published).
    pub async fn dial(&self, d: Dial) -> CallRecord {
        let placed = self.place(d).await;
        self.complete(placed).await
    }

    /// Sends the INVITE of a call (after rendering its first words in the background) and
    /// returns once the request has left; [`Runtime::complete`] then runs the call. A call that
    /// could not be placed is a [`PlacedCall`] too: completing it finishes its record.
    pub async fn place(&self, d: Dial) -> PlacedCall {
        let mut record = CallRecord::new(Direction::Outbound, &d.phone, crate::record::now());
        record.campaign = d.campaign.clone();
        record.lead_id = d.lead_id.clone();
        record.flow = d.flow.name.clone();
        record.flow_version = d.flow.version;
        let (socket, local) = match self.media_socket().await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "no media socket");
                record.disposition = "network_error".into();
                record.ended_at = crate::record::now();
                return PlacedCall(Placed::Failed(Box::new(record)));
            }
        };
        // Render the call's first words while the phone rings.
        // Then the rest of the lead's prompts (its amounts, dates, card digits), in the background.
        if let Ok((call, first)) =
            dialog_flows::Call::start(d.flow.clone(), &d.lead, chrono::Local::now().naive_local())
        {
            let mut texts: Vec<String> = first
                .into_iter()
                .filter_map(|a| match a {
                    dialog_flows::CallAction::Speak(s) => Some(s.text),
                    _ => None,
                })
                .collect();
            for t in call.lead_prompts() {
                if !texts.contains(&t) {
                    texts.push(t);
                }
            }
            let engines = self.engines.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = engines.prerender_texts(&texts) {
                    tracing::warn!(error = %e, "could not pre-render the greeting");
                }
            });
        }
        let origin = self.origin();
        let offer = sdp::make_offer(&local, &origin);
        let (etx, erx) = mpsc::unbounded_channel();
        let Some(call) = self
            .agent
            .invite_as(
                d.next_hop,
                transport_of(&d.target),
                d.target.clone(),
                d.caller_id.as_deref(),
                offer.to_string().into_bytes(),
            )
            .await
        else {
            record.disposition = "network_error".into();
            record.ended_at = crate::record::now();
            return PlacedCall(Placed::Failed(Box::new(record)));
        };
        let _ = self.dispatch.send(Dispatch::Register(call, etx));
        record.sip_call_id = self.agent.sip_call_id(call).await;
        PlacedCall(Placed::Sent(Box::new(Sent {
            record,
            call,
            offer,
            local,
            origin,
            socket,
            events: erx,
            dial: d,
            transfer_max_wait: None,
        })))
    }

    /// Runs a placed call to its end (ringing, answer, the robot's conversation) and returns its
    /// record (also saved and published).
    pub async fn complete(&self, placed: PlacedCall) -> CallRecord {
        let Sent {
            mut record,
            call,
            offer,
            local,
            origin,
            socket,
            events: mut erx,
            dial: d,
            transfer_max_wait,
        } = match placed.0 {
            Placed::Failed(record) => return self.finish(*record).await,
            Placed::Sent(sent) => *sent,
        };
        let t0 = Instant::now();
        let mut cp = CallProgress::new(self.cfg.progress, 0);
        let answer = loop {
            let deadline = cp
                .next_deadline()
                .map(|ms| Duration::from_millis(ms.saturating_sub(t0.elapsed().as_millis() as u64)))
                .unwrap_or(Duration::from_secs(1));
            let ev =
                tokio::time::timeout(deadline.max(Duration::from_millis(10)), erx.recv()).await;
            let now = t0.elapsed().as_millis() as u64;
            let decided = match ev {
                Err(_) => cp.handle(now, &progress::Event::Tick),
                Ok(None) => cp.handle(now, &progress::Event::response(503, "agent stopped")),
                Ok(Some(CallEvent::Progress { status, reason, .. })) => {
                    cp.handle(now, &progress::Event::response(status, &reason))
                }
                Ok(Some(CallEvent::Answered { sdp })) => {
                    let _ = cp.handle(now, &progress::Event::response(200, "OK"));
                    break Some(sdp);
                }
                Ok(Some(CallEvent::Failed {
                    status,
                    reason,
                    headers,
                })) => {
                    let ev = match headers.get("Reason") {
                        Some(r) => progress::Event::response_with_reason(status, &reason, r),
                        None => progress::Event::response(status, &reason),
                    };
                    cp.handle(now, &ev)
                }
                Ok(Some(CallEvent::Timeout)) => {
                    cp.handle(now, &progress::Event::response(408, "Request Timeout"))
                }
                Ok(Some(_)) => None,
            };
            if let Some(outcome) = decided.or_else(|| cp.outcome().copied())
                && outcome.disposition != Disposition::Answered
            {
                match outcome.action {
                    progress::Action::Cancel
                    | progress::Action::Abandon
                    | progress::Action::HangUp => self.agent.hangup(call),
                    _ => {}
                }
                record.disposition = disposition_name(outcome.disposition);
                break None;
            }
        };
        let Some(answer) = answer else {
            let _ = self.dispatch.send(Dispatch::Unregister(call));
            record.ended_at = crate::record::now();
            return self.finish(record).await;
        };
        let negotiated = Sdp::parse_bytes(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::negotiated_from_answer(&offer, &a).map_err(|e| e.to_string()));
        let neg = match negotiated {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "unusable SDP answer; hanging up");
                self.agent.hangup(call);
                let _ = self.dispatch.send(Dispatch::Unregister(call));
                record.disposition = "network_error".into();
                record.ended_at = crate::record::now();
                return self.finish(record).await;
            }
        };
        let remote = SocketAddr::new(neg.remote_addr, neg.remote_port);
        let media = match MediaSession::start(socket, remote, media_config(&neg)) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "media session failed to start");
                self.agent.hangup(call);
                let _ = self.dispatch.send(Dispatch::Unregister(call));
                record.disposition = "network_error".into();
                record.ended_at = crate::record::now();
                return self.finish(record).await;
            }
        };
        let mut setup = self.setup(
            record,
            d.flow.clone(),
            d.lead.clone(),
            d.amd,
            d.live.clone(),
        );
        setup.transfer_max_wait = transfer_max_wait;
        let sip = SipLeg {
            agent: self.agent.clone(),
            call,
            events: erx,
            remote: Some(d.target.clone()),
            local_media: local,
            origin,
        };
        let record = run_call(self.engines.clone(), setup, media, sip).await;
        let _ = self.dispatch.send(Dispatch::Unregister(call));
        self.finish(record).await
    }

    fn incoming(&self, call: CallId, from: String, sip_call_id: String, offer: Vec<u8>) {
        let rt = self.clone();
        tokio::spawn(async move {
            let number = caller_number(&from);
            let route = rt
                .inbound
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(router, live)| (router(&number), live.clone()));
            let Some((Some(route), live)) = route else {
                tracing::info!(%number, "inbound call with no route: 404");
                rt.agent.reject(call, 404, "Not Found");
                return;
            };
            let (etx, erx) = mpsc::unbounded_channel();
            let _ = rt.dispatch.send(Dispatch::Register(call, etx));
            let mut record = CallRecord::new(Direction::Inbound, &number, crate::record::now());
            record.campaign = route.campaign.clone();
            record.lead_id = route.lead_id.clone();
            record.sip_call_id = Some(sip_call_id).filter(|c| !c.is_empty());
            let answered = async {
                let offer = Sdp::parse_bytes(&offer).map_err(|e| (400u16, e.to_string()))?;
                let (socket, local) = rt
                    .media_socket()
                    .await
                    .map_err(|e| (500u16, e.to_string()))?;
                let origin = rt.origin();
                let (answer, neg) = sdp::answer(&offer, &local, &origin)
                    .map_err(|e| (e.sip_status(), e.to_string()))?;
                let remote = SocketAddr::new(neg.remote_addr, neg.remote_port);
                let media = MediaSession::start(socket, remote, media_config(&neg))
                    .map_err(|e| (500u16, e.to_string()))?;
                Ok::<_, (u16, String)>((answer, media, local, origin))
            }
            .await;
            let (answer, media, local_media, origin) = match answered {
                Ok(x) => x,
                Err((status, why)) => {
                    tracing::warn!(%number, status, %why, "inbound call refused");
                    rt.agent.reject(call, status, &why);
                    let _ = rt.dispatch.send(Dispatch::Unregister(call));
                    return;
                }
            };
            rt.agent.accept(call, answer.to_string().into_bytes());
            let setup = rt.setup(record, route.flow.clone(), route.lead.clone(), false, live);
            let sip = SipLeg {
                agent: rt.agent.clone(),
                call,
                events: erx,
                remote: None,
                local_media,
                origin,
            };
            let record = run_call(rt.engines.clone(), setup, media, sip).await;
            let _ = rt.dispatch.send(Dispatch::Unregister(call));
            rt.finish(record).await;
        });
    }
}

impl AgentLines for Runtime {
    fn ring(&self, user: String, caller: String, cancel: oneshot::Receiver<()>) -> Ring {
        let rt = self.clone();
        Box::pin(async move { rt.ring_phone(user, caller, cancel).await })
    }
}

#[cfg(test)]
mod tests {
    use super::{SipTransport, Uri, caller_number, transport_of};

    #[test]
    fn a_targets_transport_comes_from_its_parameter_or_scheme() {
        let t = |s: &str| transport_of(&Uri::parse(s).expect("uri"));
        assert_eq!(t("sip:+15551234567@10.0.0.5:5060"), SipTransport::Udp);
        assert_eq!(
            t("sip:+15551234567@sbc.bank;transport=TLS"),
            SipTransport::Tls
        );
        assert_eq!(
            t("sip:+15551234567@sbc.bank;transport=tcp"),
            SipTransport::Tcp
        );
        assert_eq!(t("sips:+15551234567@sbc.bank"), SipTransport::Tls);
        assert_eq!(
            t("sip:+15551234567@sbc.bank;transport=sctp"),
            SipTransport::Udp
        );
    }

    #[test]
    fn caller_numbers_from_from_headers() {
        assert_eq!(
            caller_number("\"Ana\" <sip:+15551234567@10.0.0.1>;tag=abc"),
            "+15551234567"
        );
        assert_eq!(
            caller_number("<sip:100@example.com:5060;transport=udp>;tag=1"),
            "100"
        );
        assert_eq!(
            caller_number("sip:alice@atlanta.example.com;tag=9"),
            "alice"
        );
        assert_eq!(caller_number("<tel:+442071234567>"), "+442071234567");
    }
}
