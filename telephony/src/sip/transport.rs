//! The tokio shell around [`UserAgent`]: a UDP socket and a TCP listener on the same address,
//! and optionally a TLS listener on its own (SIPS, conventionally port 5061), one task. Commands
//! go in through a handle; call events come out of a channel. The task only moves bytes and time
//! between the sockets and the sans-IO core; stream connections (TCP or TLS, opened for calls
//! placed over them, or accepted) are framed by Content-Length and each has a reader task and a
//! writer task fed through a bounded queue: a peer that stops reading loses its connection when
//! its queue fills (or a write stalls for 10 s) and never holds up the loop, which serves every
//! other peer.
//!
//! TLS (rustls): an accepted connection's handshake runs in its own task, so a slow or hostile
//! client holds up nobody; a call placed over TLS verifies the peer's certificate against the
//! configured CAs for the Request-URI's host (a DNS name or an IP address). A message for a TLS
//! peer whose connection has gone is dropped with a warning, never sent in the clear over UDP.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::msg::stream_frame_len;
use super::transaction::TimerConfig;
use super::ua::{CallEvent, CallId, Credentials, Stream, UaConfig, UaOutput, UserAgent};
use super::uri::Uri;

/// Which transport a call's signalling uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// `udp`, `tcp` or `tls` (any case), as in a URI's `transport` parameter.
    pub fn from_name(name: &str) -> Option<SipTransport> {
        match name.to_ascii_lowercase().as_str() {
            "udp" => Some(SipTransport::Udp),
            "tcp" => Some(SipTransport::Tcp),
            "tls" => Some(SipTransport::Tls),
            _ => None,
        }
    }
}

/// SIP over TLS for an agent: where it listens, the certificate it serves there, and whom it
/// trusts when it places calls over TLS (see [`crate::tls`] for reading these from PEM files).
#[derive(Clone)]
pub struct SipTlsConfig {
    /// The TLS listener's address (port 0 picks one).
    pub bind: SocketAddr,
    pub server: Arc<rustls::ServerConfig>,
    /// `None`: calls cannot be placed over TLS (taken ones can).
    pub client: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for SipTlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTlsConfig")
            .field("bind", &self.bind)
            .field("places_calls", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// How long a TCP connect plus TLS handshake, or an accepted client's handshake, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After accepting a connection fails for a reason of this process's own (out of file
/// descriptors, out of memory), the listeners rest this long instead of retrying at once: the
/// error would come straight back and the loop would spin, starving the calls it serves.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// Logs a failed accept and says until when the listeners rest: not at all when it was the
/// client's own failure ([`crate::tls::accept_error_is_the_clients`]), else [`ACCEPT_BACKOFF`].
fn pause_after_accept_error(listener: &str, e: &std::io::Error, now: Instant) -> Option<Instant> {
    tracing::warn!("SIP {listener} accept failed: {e}");
    (!crate::tls::accept_error_is_the_clients(e)).then(|| now + ACCEPT_BACKOFF)
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Messages queued for one stream connection before the agent gives up on a peer that does not
/// read (a few hundred SIP messages; a live peer drains them in milliseconds).
const STREAM_QUEUE: usize = 256;
/// How long one message may take to leave on a stream connection before the connection is
/// treated as dead.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's side of one stream connection's writer task: messages go into a bounded queue, so
/// a peer that stops reading fills its own queue and never stalls the agent's loop.
struct StreamWriter {
    queue: mpsc::Sender<Vec<u8>>,
    task: tokio::task::AbortHandle,
}

impl StreamWriter {
    /// Stops the task at once, dropping what is queued. Dropping a `StreamWriter` instead lets the
    /// task finish writing the queue (a peer that half-closed still gets its answers) and end.
    fn abort(self) {
        self.task.abort();
    }
}

/// Starts the task that writes `peer`'s queued messages to `write`, in order. It ends on the first
/// failed or timed-out write; the agent then finds the queue closed.
fn spawn_writer(mut write: Writer, peer: SocketAddr) -> StreamWriter {
    let (queue, mut rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            let sent = tokio::time::timeout(STREAM_WRITE_TIMEOUT, async {
                write.write_all(&data).await?;
                write.flush().await
            })
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!("SIP stream send to {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "SIP stream send to {peer} timed out after {} s",
                        STREAM_WRITE_TIMEOUT.as_secs()
                    );
                    return;
                }
            }
        }
    })
    .abort_handle();
    StreamWriter { queue, task }
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
    /// A TLS client's handshake completed: its write half (its reader is already running).
    TlsAccepted(SocketAddr, Writer),
    /// A connection this agent opened for calls to `peer` is up, or could not be opened.
    Connected {
        peer: SocketAddr,
        stream: Stream,
        conn: Result<Box<dyn Conn>, String>,
    },
}

/// A TCP or TLS connection, type-erased.
trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

/// A call waiting to be placed.
struct PendingInvite {
    target: Uri,
    sdp: Vec<u8>,
    credentials: Option<Credentials>,
    from_user: Option<String>,
    reply: oneshot::Sender<Option<CallId>>,
}

impl PendingInvite {
    /// Start the call through `next_hop`; the caller is told its id once the INVITE left.
    fn send(
        self,
        ua: &mut UserAgent,
        next_hop: SocketAddr,
    ) -> ((oneshot::Sender<Option<CallId>>, CallId), Vec<UaOutput>) {
        let (id, out) = ua.invite_from(
            next_hop,
            self.target,
            self.from_user.as_deref(),
            None,
            self.sdp,
            self.credentials,
            Instant::now(),
        );
        ((self.reply, id), out)
    }
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
    tls_local: Option<SocketAddr>,
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
        Self::bind_with_tls(addr, user, None).await
    }

    /// [`UdpAgent::bind`], and with `tls` a TLS listener too.
    pub async fn bind_with_tls(
        addr: SocketAddr,
        user: &str,
        tls: Option<SipTlsConfig>,
    ) -> std::io::Result<UdpAgent> {
        let (socket, listener) = bind_pair(addr).await?;
        let local = socket.local_addr()?;
        let mut ua = UserAgent::new(UaConfig {
            local,
            user: user.to_string(),
            user_agent: format!("callbot/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
        });
        let tls = match tls {
            Some(cfg) => {
                let listener = TcpListener::bind(cfg.bind).await?;
                let tls_local = listener.local_addr()?;
                ua.set_tls_local(tls_local);
                Some(Tls {
                    listener,
                    local: tls_local,
                    acceptor: TlsAcceptor::from(cfg.server),
                    connector: cfg.client.map(TlsConnector::from),
                })
            }
            None => None,
        };
        let tls_local = tls.as_ref().map(|t| t.local);
        let (ctx, crx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, listener, tls, ua, crx, etx));
        Ok(UdpAgent {
            handle: AgentHandle {
                local,
                tls_local,
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

    /// The TLS listener's address, when the agent has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_local
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

    /// Place a call over the given transport (`None` when a TCP or TLS connection cannot be
    /// opened: refused, timed out, or the peer's certificate not trusted for the target's host).
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

    /// Place a call presenting `from_user` (a caller ID) as the From header's user.
    pub async fn invite_as(
        &self,
        next_hop: SocketAddr,
        transport: SipTransport,
        target: Uri,
        from_user: Option<&str>,
        sdp: Vec<u8>,
    ) -> Option<CallId> {
        self.send_invite(
            next_hop,
            transport,
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

/// Read framed messages from one stream connection until it closes or cannot be framed.
fn spawn_reader<R: AsyncRead + Send + Unpin + 'static>(
    mut read: R,
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

/// The TLS side of an agent.
struct Tls {
    listener: TcpListener,
    local: SocketAddr,
    acceptor: TlsAcceptor,
    connector: Option<TlsConnector>,
}

/// Accept TLS clients on the listener, if there is one (never resolves otherwise).
async fn accept_tls(tls: &Option<Tls>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some(t) => t.listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Run a TLS client's handshake in its own task; on success its reader starts and its writer
/// goes to the agent's task.
fn spawn_tls_handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    tokio::spawn(async move {
        match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                let (read, write) = tokio::io::split(stream);
                if inbound
                    .send(Inbound::TlsAccepted(peer, Box::new(write)))
                    .is_ok()
                {
                    spawn_reader(read, peer, inbound);
                }
            }
            Ok(Err(e)) => tracing::warn!("SIP TLS handshake with {peer} failed: {e}"),
            Err(_) => tracing::warn!("SIP TLS handshake with {peer} timed out"),
        }
    });
}

/// Open a TCP or TLS connection to `peer` in a task of its own (the agent goes on meanwhile);
/// the result comes back as [`Inbound::Connected`].
fn spawn_connect(
    peer: SocketAddr,
    transport: SipTransport,
    host: String,
    connector: Option<TlsConnector>,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    tokio::spawn(async move {
        let (stream, conn) = match connector {
            Some(connector) if transport == SipTransport::Tls => (
                Stream::Tls,
                connect_tls(&connector, peer, &host)
                    .await
                    .map(|s| Box::new(s) as Box<dyn Conn>),
            ),
            _ => (
                Stream::Tcp,
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
                    Ok(Ok(s)) => Ok(Box::new(s) as Box<dyn Conn>),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".into()),
                },
            ),
        };
        let _ = inbound.send(Inbound::Connected { peer, stream, conn });
    });
}

/// Open a TLS connection to `peer`, verifying its certificate for `host` (the target URI's host).
async fn connect_tls(
    connector: &TlsConnector,
    peer: SocketAddr,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| format!("{host:?} is not a name a certificate can be checked for: {e}"))?
        .to_owned();
    let connect = async {
        let tcp = TcpStream::connect(peer).await?;
        connector.connect(name, tcp).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn run(
    socket: UdpSocket,
    listener: TcpListener,
    tls: Option<Tls>,
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
    let mut writers: HashMap<SocketAddr, StreamWriter> = HashMap::new();
    // Peers reached over TLS: what is meant for them never goes over UDP, even after their
    // connection closed.
    let mut tls_peers: HashSet<SocketAddr> = HashSet::new();
    // Calls waiting for a connection being opened to their next hop.
    let mut connecting: HashMap<SocketAddr, Vec<PendingInvite>> = HashMap::new();
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Inbound>();
    // Set after a failed accept (see `pause_after_accept_error`); the 10 ms tick wakes the loop to resume.
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        // An INVITE's caller is told once the request has been handed to the UDP socket or to
        // its connection's writer queue, so that "invite() returned" means "the INVITE is on its
        // way" (the dialer commits its attempt then).
        let mut invited: Vec<(oneshot::Sender<Option<CallId>>, CallId)> = Vec::new();
        let accepting = accept_paused_until.is_none_or(|t| Instant::now() >= t);
        let outputs = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => ua.on_datagram(&buf[..n], from, Instant::now()),
                Err(e) => {
                    tracing::warn!("SIP socket receive error: {e}");
                    Vec::new()
                }
            },
            a = listener.accept(), if accepting => {
                match a {
                    Ok((stream, peer)) => {
                        let (read, write) = stream.into_split();
                        writers.insert(peer, spawn_writer(Box::new(write), peer));
                        ua.set_stream(peer, Some(Stream::Tcp));
                        spawn_reader(read, peer, in_tx.clone());
                    }
                    Err(e) => {
                        accept_paused_until = pause_after_accept_error("TCP", &e, Instant::now());
                    }
                }
                Vec::new()
            }
            a = accept_tls(&tls), if accepting => {
                match (a, &tls) {
                    (Ok((tcp, peer)), Some(t)) => {
                        spawn_tls_handshake(t.acceptor.clone(), tcp, peer, in_tx.clone());
                    }
                    (Err(e), _) => {
                        accept_paused_until = pause_after_accept_error("TLS", &e, Instant::now());
                    }
                    (Ok(_), None) => {}
                }
                Vec::new()
            }
            m = in_rx.recv() => match m {
                Some(Inbound::Message(peer, data)) => ua.on_datagram(&data, peer, Instant::now()),
                Some(Inbound::TlsAccepted(peer, write)) => {
                    writers.insert(peer, spawn_writer(write, peer));
                    tls_peers.insert(peer);
                    ua.set_stream(peer, Some(Stream::Tls));
                    Vec::new()
                }
                Some(Inbound::Connected { peer, stream, conn }) => match conn {
                    Ok(conn) => {
                        let (read, write) = tokio::io::split(conn);
                        writers.insert(peer, spawn_writer(Box::new(write), peer));
                        if stream == Stream::Tls {
                            tls_peers.insert(peer);
                        }
                        ua.set_stream(peer, Some(stream));
                        spawn_reader(read, peer, in_tx.clone());
                        let mut out = Vec::new();
                        for invite in connecting.remove(&peer).unwrap_or_default() {
                            let (id, o) = invite.send(&mut ua, peer);
                            invited.push(id);
                            out.extend(o);
                        }
                        out
                    }
                    Err(e) => {
                        tracing::warn!("cannot open a SIP {stream:?} connection to {peer}: {e}");
                        for invite in connecting.remove(&peer).unwrap_or_default() {
                            let _ = invite.reply.send(None);
                        }
                        Vec::new()
                    }
                },
                Some(Inbound::Closed(peer)) => {
                    writers.remove(&peer);
                    if !tls_peers.contains(&peer) {
                        ua.set_stream(peer, None);
                    }
                    Vec::new()
                }
                None => Vec::new(),
            },
            c = commands.recv() => match c {
                None => return,
                Some(Command::Invite { next_hop, transport, target, sdp, credentials, from_user, reply }) => {
                    let invite = PendingInvite { target, sdp, credentials, from_user, reply };
                    if transport == SipTransport::Udp || writers.contains_key(&next_hop) {
                        let (id, out) = invite.send(&mut ua, next_hop);
                        invited.push(id);
                        out
                    } else if let Some(waiting) = connecting.get_mut(&next_hop) {
                        // A connection to this hop is being opened: the call goes out on it.
                        waiting.push(invite);
                        Vec::new()
                    } else {
                        let connector = tls.as_ref().and_then(|t| t.connector.clone());
                        if transport == SipTransport::Tls && connector.is_none() {
                            tracing::warn!("cannot place a call over TLS to {next_hop}: no certificate authorities configured for SIP over TLS");
                            let _ = invite.reply.send(None);
                            continue;
                        }
                        spawn_connect(next_hop, transport, invite.target.host.clone(), connector, in_tx.clone());
                        connecting.insert(next_hop, vec![invite]);
                        Vec::new()
                    }
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
                    if let Some(w) = writers.get(&to) {
                        let queued = w.queue.try_send(data);
                        if let Err(e) = queued {
                            match e {
                                mpsc::error::TrySendError::Full(_) => tracing::warn!(
                                    "SIP connection to {to} dropped: {STREAM_QUEUE} messages wait unsent (the peer does not read)"
                                ),
                                mpsc::error::TrySendError::Closed(_) => tracing::warn!(
                                    "SIP message for {to} dropped: its connection failed"
                                ),
                            }
                            if let Some(w) = writers.remove(&to) {
                                w.abort();
                            }
                            if !tls_peers.contains(&to) {
                                ua.set_stream(to, None);
                            }
                        }
                    } else if tls_peers.contains(&to) {
                        tracing::warn!(
                            "SIP message for {to} dropped: its TLS connection is closed (not sent in the clear)"
                        );
                    } else if let Err(e) = socket.send_to(&data, to).await {
                        tracing::warn!("SIP send to {to} failed: {e}");
                    }
                }
                UaOutput::Event { call, event } => {
                    let _ = events.send((call, event));
                }
            }
        }
        for (reply, id) in invited {
            let _ = reply.send(Some(id));
        }
        if last_gc.elapsed() >= Duration::from_secs(1) {
            ua.collect_garbage();
            // A TLS peer whose connection closed is remembered while anything refers to it.
            tls_peers.retain(|p| {
                let keep = writers.contains_key(p) || ua.has_peer(*p);
                if !keep {
                    ua.set_stream(*p, None);
                }
                keep
            });
            last_gc = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_of_the_process_pause_the_listeners_and_a_client_s_own_do_not() {
        let now = Instant::now();
        // EMFILE and ENFILE: out of file descriptors, the error that comes straight back.
        for errno in [24, 23] {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(
                pause_after_accept_error("TCP", &e, now),
                Some(now + ACCEPT_BACKOFF),
                "{e}"
            );
        }
        let e = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        assert_eq!(
            pause_after_accept_error("TCP", &e, now),
            Some(now + ACCEPT_BACKOFF)
        );
        for kind in [
            std::io::ErrorKind::ConnectionAborted,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::Interrupted,
        ] {
            assert_eq!(
                pause_after_accept_error("TCP", &std::io::Error::from(kind), now),
                None
            );
        }
    }

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
