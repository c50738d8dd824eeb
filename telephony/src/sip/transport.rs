//! The tokio shell around [`UserAgent`]: a UDP socket and a TCP listener on the same address, one
//! task. Commands go in through a handle; call events come out of a channel. The task only moves
//! bytes and time between the sockets and the sans-IO core; TCP connections (opened for calls
//! placed over TCP, or accepted) are framed by Content-Length and each has a reader task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use super::msg::stream_frame_len;
use super::transaction::TimerConfig;
use super::ua::{CallEvent, CallId, Credentials, UaConfig, UaOutput, UserAgent};
use super::uri::Uri;

/// Which transport a call's signalling uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

enum Command {
    Invite {
        next_hop: SocketAddr,
        transport: SipTransport,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
        from_user: Option<String>,
        reply: oneshot::Sender<Option<CallId>>,
    },
    Hangup(CallId),
    Accept(CallId, Vec<u8>),
    Reject(CallId, u16, String),
    Refer(CallId, Uri),
    SipCallId(CallId, oneshot::Sender<Option<String>>),
    RegistrarAccounts(String, HashMap<String, String>),
    Lookup(String, oneshot::Sender<Option<SocketAddr>>),
    Register {
        registrar: SocketAddr,
        domain: String,
        expires: u32,
        credentials: Option<Credentials>,
        reply: oneshot::Sender<CallId>,
    },
}

enum Inbound {
    Message(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// A running SIP user agent on UDP and TCP. Its commands are [`AgentHandle`]'s (through
/// `Deref`); [`UdpAgent::split`] separates the cloneable command side from the event stream.
pub struct UdpAgent {
    handle: AgentHandle,
    events: mpsc::UnboundedReceiver<(CallId, CallEvent)>,
}

/// The command side of a [`UdpAgent`]: cloneable, usable from any task.
#[derive(Clone)]
pub struct AgentHandle {
    local: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::ops::Deref for UdpAgent {
    type Target = AgentHandle;

    fn deref(&self) -> &AgentHandle {
        &self.handle
    }
}

/// A UDP socket and a TCP listener on the same address. With port 0 the kernel picks the UDP
/// port, and that number may already be taken for TCP by an unrelated process: then both are
/// dropped and another port is tried, a bounded number of times.
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    const TRIES: usize = 64;
    let mut last = None;
    for _ in 0..TRIES {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        match TcpListener::bind(local).await {
            Ok(listener) => return Ok((socket, listener)),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free UDP+TCP port pair")))
}

impl UdpAgent {
    /// Bind `addr` (port 0 picks one) for UDP and TCP and start the agent's task on the current
    /// runtime.
    pub async fn bind(addr: SocketAddr, user: &str) -> std::io::Result<UdpAgent> {
        let (socket, listener) = bind_pair(addr).await?;
        let local = socket.local_addr()?;
        let ua = UserAgent::new(UaConfig {
            local,
            user: user.to_string(),
            user_agent: format!("callbot/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
        });
        let (ctx, crx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, listener, ua, crx, etx));
        Ok(UdpAgent {
            handle: AgentHandle {
                local,
                commands: ctx,
            },
            events: erx,
        })
    }

    /// The next call event (None when the agent stopped).
    pub async fn next_event(&mut self) -> Option<(CallId, CallEvent)> {
        self.events.recv().await
    }

    /// The command handle and the event stream, for a dispatcher task that owns the events
    /// while other tasks place and end calls.
    pub fn split(self) -> (AgentHandle, mpsc::UnboundedReceiver<(CallId, CallEvent)>) {
        (self.handle, self.events)
    }
}

impl AgentHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Place a call over UDP; returns its id once the INVITE has been handed to the socket.
    pub async fn invite(
        &self,
        next_hop: SocketAddr,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
    ) -> Option<CallId> {
        self.invite_over(next_hop, SipTransport::Udp, target, sdp, credentials)
            .await
    }

    /// Place a call over the given transport (`None` when a TCP connection cannot be opened).
    pub async fn invite_over(
        &self,
        next_hop: SocketAddr,
        transport: SipTransport,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
    ) -> Option<CallId> {
        self.send_invite(next_hop, transport, target, sdp, credentials, None)
            .await
    }

    /// Place a call over UDP presenting `from_user` (a caller ID) as the From header's user.
    pub async fn invite_as(
        &self,
        next_hop: SocketAddr,
        target: Uri,
        from_user: Option<&str>,
        sdp: Vec<u8>,
    ) -> Option<CallId> {
        self.send_invite(
            next_hop,
            SipTransport::Udp,
            target,
            sdp,
            None,
            from_user.map(str::to_string),
        )
        .await
    }

    async fn send_invite(
        &self,
        next_hop: SocketAddr,
        transport: SipTransport,
        target: Uri,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
        from_user: Option<String>,
    ) -> Option<CallId> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Invite {
                next_hop,
                transport,
                target,
                sdp,
                credentials,
                from_user,
                reply,
            })
            .ok()?;
        rx.await.ok().flatten()
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

    /// The SIP Call-ID header of a call (`None` once the agent has forgotten it).
    pub async fn sip_call_id(&self, call: CallId) -> Option<String> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::SipCallId(call, reply)).ok()?;
        rx.await.ok().flatten()
    }

    /// Cold transfer of an established call to `target` (REFER).
    pub fn refer(&self, call: CallId, target: Uri) {
        let _ = self.commands.send(Command::Refer(call, target));
    }

    /// Act as the registrar of these SIP users (user → password, digest-checked in `realm`):
    /// agents' phones register here and [`AgentHandle::lookup`] finds them. Replaces the
    /// previous accounts; with none, REGISTER is accepted from anyone.
    pub fn set_registrar_accounts(&self, realm: &str, accounts: HashMap<String, String>) {
        let _ = self
            .commands
            .send(Command::RegistrarAccounts(realm.to_string(), accounts));
    }

    /// Register this agent's user at `registrar` for `domain` (a phone registering to its
    /// PBX); the result arrives as [`CallEvent::Registered`] or [`CallEvent::Reply`] on the
    /// returned id.
    pub async fn register(
        &self,
        registrar: SocketAddr,
        domain: &str,
        expires: u32,
        credentials: Option<Credentials>,
    ) -> Option<CallId> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Register {
                registrar,
                domain: domain.to_string(),
                expires,
                credentials,
                reply,
            })
            .ok()?;
        rx.await.ok()
    }

    /// Where a registered user can be reached now (`None`: not registered, or expired).
    pub async fn lookup(&self, user: &str) -> Option<SocketAddr> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Lookup(user.to_string(), reply))
            .ok()?;
        rx.await.ok().flatten()
    }
}

/// Read framed messages from one TCP connection until it closes or cannot be framed.
fn spawn_reader(
    mut read: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16_384];
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            loop {
                match stream_frame_len(&buf) {
                    Ok(Some(len)) => {
                        let msg: Vec<u8> = buf.drain(..len).collect();
                        if msg.iter().any(|b| !b.is_ascii_whitespace())
                            && inbound.send(Inbound::Message(peer, msg)).is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("closing SIP connection from {peer}: {e}");
                        let _ = inbound.send(Inbound::Closed(peer));
                        return;
                    }
                }
            }
        }
        let _ = inbound.send(Inbound::Closed(peer));
    });
}

async fn run(
    socket: UdpSocket,
    listener: TcpListener,
    mut ua: UserAgent,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<(CallId, CallEvent)>,
) {
    let mut buf = vec![0u8; 65_535];
    // SIP timers are hundreds of milliseconds; a 10 ms tick is precise enough and keeps the cost
    // of timer bookkeeping independent of the traffic.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_gc = Instant::now();
    let mut writers: HashMap<SocketAddr, OwnedWriteHalf> = HashMap::new();
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Inbound>();
    loop {
        // An INVITE's caller is told once the request has been handed to the socket, so that
        // "invite() returned" means "the INVITE left" (the dialer commits its attempt then).
        let mut invited: Option<(oneshot::Sender<Option<CallId>>, CallId)> = None;
        let outputs = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => ua.on_datagram(&buf[..n], from, Instant::now()),
                Err(e) => {
                    tracing::warn!("SIP socket receive error: {e}");
                    Vec::new()
                }
            },
            a = listener.accept() => {
                if let Ok((stream, peer)) = a {
                    let (read, write) = stream.into_split();
                    writers.insert(peer, write);
                    ua.set_reliable(peer, true);
                    spawn_reader(read, peer, in_tx.clone());
                }
                Vec::new()
            }
            m = in_rx.recv() => match m {
                Some(Inbound::Message(peer, data)) => ua.on_datagram(&data, peer, Instant::now()),
                Some(Inbound::Closed(peer)) => {
                    writers.remove(&peer);
                    ua.set_reliable(peer, false);
                    Vec::new()
                }
                None => Vec::new(),
            },
            c = commands.recv() => match c {
                None => return,
                Some(Command::Invite { next_hop, transport, target, sdp, credentials, from_user, reply }) => {
                    if transport == SipTransport::Tcp && !writers.contains_key(&next_hop) {
                        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(next_hop)).await {
                            Ok(Ok(stream)) => {
                                let (read, write) = stream.into_split();
                                writers.insert(next_hop, write);
                                ua.set_reliable(next_hop, true);
                                spawn_reader(read, next_hop, in_tx.clone());
                            }
                            _ => {
                                tracing::warn!("cannot open a SIP TCP connection to {next_hop}");
                                let _ = reply.send(None);
                                continue;
                            }
                        }
                    }
                    let (id, out) = ua.invite_from(next_hop, target, from_user.as_deref(), None, sdp, credentials, Instant::now());
                    invited = Some((reply, id));
                    out
                }
                Some(Command::Hangup(id)) => ua.hangup(id, Instant::now()),
                Some(Command::Accept(id, sdp)) => ua.accept(id, sdp, Instant::now()),
                Some(Command::Reject(id, status, reason)) => ua.reject(id, status, &reason, Instant::now()),
                Some(Command::Refer(id, target)) => ua.refer(id, &target, Instant::now()),
                Some(Command::RegistrarAccounts(realm, accounts)) => {
                    ua.set_registrar_accounts(&realm, accounts);
                    Vec::new()
                }
                Some(Command::Register { registrar, domain, expires, credentials, reply }) => {
                    let (id, out) = ua.register(registrar, &domain, expires, credentials, Instant::now());
                    let _ = reply.send(id);
                    out
                }
                Some(Command::Lookup(user, reply)) => {
                    let _ = reply.send(ua.lookup(&user, Instant::now()));
                    Vec::new()
                }
                Some(Command::SipCallId(id, reply)) => {
                    let _ = reply.send(ua.sip_call_id(id).map(str::to_string));
                    continue;
                }
            },
            _ = tick.tick() => ua.on_timer(Instant::now()),
        };
        for o in outputs {
            match o {
                UaOutput::Send { to, data } => {
                    if let Some(w) = writers.get_mut(&to) {
                        if let Err(e) = w.write_all(&data).await {
                            tracing::warn!("SIP TCP send to {to} failed: {e}");
                            writers.remove(&to);
                            ua.set_reliable(to, false);
                        }
                    } else if let Err(e) = socket.send_to(&data, to).await {
                        tracing::warn!("SIP send to {to} failed: {e}");
                    }
                }
                UaOutput::Event { call, event } => {
                    let _ = events.send((call, event));
                }
            }
        }
        if let Some((reply, id)) = invited {
            let _ = reply.send(Some(id));
        }
        if last_gc.elapsed() >= Duration::from_secs(1) {
            ua.collect_garbage();
            last_gc = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_tcp_port_is_an_error_for_a_fixed_address_and_skipped_for_port_zero() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let taken = tcp.local_addr().expect("addr");
        let err = bind_pair(taken).await.expect_err("TCP side is taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        let (udp, listener) = bind_pair(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free pair");
        let port = udp.local_addr().expect("udp addr").port();
        assert_eq!(listener.local_addr().expect("tcp addr").port(), port);
        assert_ne!(port, 0);
    }
}
