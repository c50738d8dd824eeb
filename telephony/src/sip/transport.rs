//! The tokio shell around [`UserAgent`]: one UDP socket, one task. Commands go in through a
//! handle; call events come out of a channel. The task only moves bytes and time between the
//! socket and the sans-IO core.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::transaction::TimerConfig;
use super::ua::{CallEvent, CallId, Credentials, UaConfig, UaOutput, UserAgent};
use super::uri::Uri;

enum Command {
    Invite {
        next_hop: SocketAddr,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
        reply: oneshot::Sender<CallId>,
    },
    Hangup(CallId),
    Accept(CallId, Vec<u8>),
    Reject(CallId, u16, String),
    Refer(CallId, Uri),
}

/// A running SIP user agent on a UDP socket.
pub struct UdpAgent {
    local: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<(CallId, CallEvent)>,
}

impl UdpAgent {
    /// Bind `addr` (port 0 picks one) and start the agent's task on the current runtime.
    pub async fn bind(addr: SocketAddr, user: &str) -> std::io::Result<UdpAgent> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let ua = UserAgent::new(UaConfig {
            local,
            user: user.to_string(),
            user_agent: format!("callbot/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
        });
        let (ctx, crx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, ua, crx, etx));
        Ok(UdpAgent {
            local,
            commands: ctx,
            events: erx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Place a call; returns its id once the INVITE is on its way.
    pub async fn invite(
        &self,
        next_hop: SocketAddr,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
    ) -> Option<CallId> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Invite {
                next_hop,
                target,
                sdp,
                credentials,
                reply,
            })
            .ok()?;
        rx.await.ok()
    }

    pub fn hangup(&self, call: CallId) {
        let _ = self.commands.send(Command::Hangup(call));
    }

    pub fn accept(&self, call: CallId, sdp: Vec<u8>) {
        let _ = self.commands.send(Command::Accept(call, sdp));
    }

    pub fn reject(&self, call: CallId, status: u16, reason: &str) {
        let _ = self
            .commands
            .send(Command::Reject(call, status, reason.to_string()));
    }

    /// Cold transfer of an established call to `target` (REFER).
    pub fn refer(&self, call: CallId, target: Uri) {
        let _ = self.commands.send(Command::Refer(call, target));
    }

    /// The next call event (None when the agent stopped).
    pub async fn next_event(&mut self) -> Option<(CallId, CallEvent)> {
        self.events.recv().await
    }
}

async fn run(
    socket: UdpSocket,
    mut ua: UserAgent,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<(CallId, CallEvent)>,
) {
    let mut buf = vec![0u8; 65_535];
    // SIP timers are hundreds of milliseconds; a 10 ms tick is precise enough and keeps the cost
    // of timer bookkeeping independent of the traffic.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_gc = Instant::now();
    loop {
        let outputs = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => ua.on_datagram(&buf[..n], from, Instant::now()),
                Err(e) => {
                    tracing::warn!("SIP socket receive error: {e}");
                    Vec::new()
                }
            },
            c = commands.recv() => match c {
                None => return,
                Some(Command::Invite { next_hop, target, sdp, credentials, reply }) => {
                    let (id, out) = ua.invite(next_hop, target, None, sdp, credentials, Instant::now());
                    let _ = reply.send(id);
                    out
                }
                Some(Command::Hangup(id)) => ua.hangup(id, Instant::now()),
                Some(Command::Accept(id, sdp)) => ua.accept(id, sdp, Instant::now()),
                Some(Command::Reject(id, status, reason)) => ua.reject(id, status, &reason, Instant::now()),
                Some(Command::Refer(id, target)) => ua.refer(id, &target, Instant::now()),
            },
            _ = tick.tick() => ua.on_timer(Instant::now()),
        };
        for o in outputs {
            match o {
                UaOutput::Send { to, data } => {
                    if let Err(e) = socket.send_to(&data, to).await {
                        tracing::warn!("SIP send to {to} failed: {e}");
                    }
                }
                UaOutput::Event { call, event } => {
                    let _ = events.send((call, event));
                }
            }
        }
        if last_gc.elapsed() >= std::time::Duration::from_secs(1) {
            ua.collect_garbage();
            last_gc = Instant::now();
        }
    }
}
