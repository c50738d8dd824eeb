//! The user agent core, sans-IO: outbound calls (INVITE with digest authentication, CANCEL, BYE),
//! inbound calls (answer, reject, BYE, CANCEL), OPTIONS, all over the transaction layer.
//!
//! Datagrams and the time go in ([`UserAgent::on_datagram`], [`UserAgent::on_timer`]); datagrams
//! to send and call events come out. Every request of a call goes to the call's next hop (the
//! trunk or SBC it was placed through, or the address an inbound call came from), and every
//! response goes to the address the request came from — never to an address read from a message
//! (Via, Contact), which a hostile or misconfigured peer controls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::dialog::Dialog;
use super::msg::{self, Framing, Headers, Message, Method, Request, Response};
use super::transaction::{ClientTransaction, ServerTransaction, TimerConfig, TxOutput};
use super::uri::Uri;
use super::{ALLOWED, check_request};

/// Identifies a call inside one user agent.
pub type CallId = u64;

/// Credentials for digest authentication towards a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A stream transport a peer is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    /// The address the transport is bound to (used in Via and Contact).
    pub local: SocketAddr,
    /// The user part of our From and Contact.
    pub user: String,
    pub user_agent: String,
    pub timers: TimerConfig,
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A provisional response (180/183, with the early-media SDP if any).
    Progress {
        status: u16,
        reason: String,
        sdp: Option<Vec<u8>>,
    },
    /// The call was answered; the answer SDP.
    Answered { sdp: Vec<u8> },
    /// The call attempt failed with a final response.
    Failed {
        status: u16,
        reason: String,
        headers: Headers,
    },
    /// No response at all before Timer B.
    Timeout,
    /// A new inbound call: answer with [`UserAgent::accept`] or [`UserAgent::reject`].
    Incoming {
        from: String,
        to: String,
        /// The INVITE's Call-ID header.
        call_id: String,
        sdp: Vec<u8>,
    },
    /// The inbound call we accepted was confirmed by the caller's ACK.
    Confirmed,
    /// The caller cancelled the inbound call before it was answered.
    Cancelled,
    /// The call ended (by the other side when `remote`).
    Ended { remote: bool },
    /// The other side sent a new offer in the call (hold, resume, codec change): answer it with
    /// [`UserAgent::accept`].
    Reoffer { sdp: Vec<u8> },
    /// Our re-INVITE was answered.
    Reanswered { sdp: Vec<u8> },
    /// Our re-INVITE was refused; the call goes on as before.
    ReofferFailed { status: u16 },
    /// The transfer target accepted our REFER (202).
    ReferAccepted,
    /// The REFER was refused.
    ReferFailed { status: u16 },
    /// A NOTIFY about the transfer: the status line of the transferred call.
    ReferProgress { status: u16 },
    /// An OPTIONS ping or REGISTER got its final response.
    Reply { status: u16 },
    /// A registration succeeded for this many seconds.
    Registered { expires: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaOutput {
    Send { to: SocketAddr, data: Vec<u8> },
    Event { call: CallId, event: CallEvent },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Calling,
    Early,
    Confirmed,
    Terminating,
    Ended,
}

#[derive(Debug)]
struct Call {
    peer: SocketAddr,
    phase: Phase,
    outbound: bool,
    invite: Request,
    /// Client transaction key of the INVITE in flight (outbound).
    invite_tx: Option<String>,
    /// Server transaction key of the INVITE (inbound).
    server_tx: Option<String>,
    dialog: Option<Dialog>,
    credentials: Option<Credentials>,
    auth_tries: u32,
    cancel_requested: bool,
    local_tag: String,
    /// Server transaction of a re-INVITE waiting for our answer.
    reoffer_tx: Option<String>,
    /// `Confirmed` was reported (the first ACK of an inbound call).
    confirmed: bool,
}

impl Call {
    fn new(peer: SocketAddr, outbound: bool, invite: Request, local_tag: String) -> Self {
        Call {
            peer,
            phase: Phase::Calling,
            outbound,
            invite,
            invite_tx: None,
            server_tx: None,
            dialog: None,
            credentials: None,
            auth_tries: 0,
            cancel_requested: false,
            local_tag,
            reoffer_tx: None,
            confirmed: false,
        }
    }
}

pub struct UserAgent {
    cfg: UaConfig,
    next_call: CallId,
    calls: HashMap<CallId, Call>,
    clients: HashMap<String, (CallId, SocketAddr, ClientTransaction)>,
    servers: HashMap<String, (Option<CallId>, SocketAddr, ServerTransaction)>,
    /// Calls by their SIP Call-ID, for in-dialog requests.
    by_call_id: HashMap<String, CallId>,
    /// Peers reached over a stream (TCP or TLS): no retransmissions, `TCP`/`TLS` in Via.
    reliable: HashMap<SocketAddr, Stream>,
    /// The TLS listener's address (Via and Contact of calls over TLS), when there is one.
    tls_local: Option<SocketAddr>,
    /// Registrar bindings: user → (source address, expiry).
    bindings: HashMap<String, (SocketAddr, Instant)>,
    accounts: HashMap<String, String>,
    realm: String,
    nonce: String,
}

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl UserAgent {
    pub fn new(cfg: UaConfig) -> Self {
        Self {
            cfg,
            next_call: 1,
            calls: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            by_call_id: HashMap::new(),
            reliable: HashMap::new(),
            tls_local: None,
            bindings: HashMap::new(),
            accounts: HashMap::new(),
            realm: "callbot".into(),
            nonce: token(),
        }
    }

    /// Our Contact, the transport token and our address (Via's sent-by) for a call's peer.
    fn peer_info(&self, call: CallId) -> (String, &'static str, SocketAddr) {
        match self.calls.get(&call) {
            Some(c) => (
                self.contact(c.peer),
                self.proto(c.peer),
                self.local_for(c.peer),
            ),
            None => (
                format!("<sip:{}@{}>", self.cfg.user, self.cfg.local),
                "UDP",
                self.cfg.local,
            ),
        }
    }

    /// Mark `peer` as reached over a TCP connection, or not. The I/O shell calls this when it
    /// opens or accepts a connection, and when one closes.
    pub fn set_reliable(&mut self, peer: SocketAddr, reliable: bool) {
        self.set_stream(peer, reliable.then_some(Stream::Tcp));
    }

    /// Mark `peer` as reached over a stream of this kind (`None`: over UDP).
    pub fn set_stream(&mut self, peer: SocketAddr, stream: Option<Stream>) {
        match stream {
            Some(s) => self.reliable.insert(peer, s),
            None => self.reliable.remove(&peer),
        };
    }

    /// Whether a call, a transaction or a registration still refers to `peer` (the I/O shell
    /// forgets a closed connection's peer once nothing does).
    pub fn has_peer(&self, peer: SocketAddr) -> bool {
        self.calls.values().any(|c| c.peer == peer)
            || self.clients.values().any(|(_, to, _)| *to == peer)
            || self.servers.values().any(|(_, from, _)| *from == peer)
            || self.bindings.values().any(|(at, _)| *at == peer)
    }

    /// The address SIP over TLS listens on: Via and Contact of calls over TLS name it.
    pub fn set_tls_local(&mut self, addr: SocketAddr) {
        self.tls_local = Some(addr);
    }

    fn proto(&self, peer: SocketAddr) -> &'static str {
        match self.reliable.get(&peer) {
            Some(Stream::Tcp) => "TCP",
            Some(Stream::Tls) => "TLS",
            None => "UDP",
        }
    }

    /// The address our Via and Contact give a peer: the TLS listener's for a TLS peer.
    fn local_for(&self, peer: SocketAddr) -> SocketAddr {
        match (self.reliable.get(&peer), self.tls_local) {
            (Some(Stream::Tls), Some(tls)) => tls,
            _ => self.cfg.local,
        }
    }

    fn via(&self, peer: SocketAddr, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.proto(peer),
            self.local_for(peer)
        )
    }

    fn contact(&self, peer: SocketAddr) -> String {
        let local = self.local_for(peer);
        match self.reliable.get(&peer) {
            Some(Stream::Tcp) => format!("<sip:{}@{local};transport=tcp>", self.cfg.user),
            Some(Stream::Tls) => format!("<sip:{}@{local};transport=tls>", self.cfg.user),
            None => format!("<sip:{}@{local}>", self.cfg.user),
        }
    }

    /// Register a call under a new id, indexed by its SIP Call-ID.
    fn add_call(&mut self, call: Call) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        if let Some(cid) = call.invite.call_id() {
            self.by_call_id.insert(cid.to_string(), id);
        }
        self.calls.insert(id, call);
        id
    }

    /// Place a call to `target` through `next_hop` with an SDP offer.
    pub fn invite(
        &mut self,
        next_hop: SocketAddr,
        target: Uri,
        from_display: Option<&str>,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
        now: Instant,
    ) -> (CallId, Vec<UaOutput>) {
        self.invite_from(next_hop, target, None, from_display, sdp, credentials, now)
    }

    /// [`UserAgent::invite`] with `from_user` as the From header's user part — the caller ID a
    /// trunk presents (`None`: this agent's user). The Contact stays this agent's.
    #[allow(clippy::too_many_arguments)]
    pub fn invite_from(
        &mut self,
        next_hop: SocketAddr,
        target: Uri,
        from_user: Option<&str>,
        from_display: Option<&str>,
        sdp: Vec<u8>,
        credentials: Option<Credentials>,
        now: Instant,
    ) -> (CallId, Vec<UaOutput>) {
        // An empty user would make a From header phones drop (`sip:@host`).
        let from_user = from_user
            .filter(|u| !u.is_empty())
            .unwrap_or(&self.cfg.user)
            .to_string();
        let local_tag = token();
        let mut h = Headers::default();
        h.push("Via", self.via(next_hop, &format!("z9hG4bK{}", token())));
        h.push("Max-Forwards", "70");
        let from = match from_display {
            Some(d) => format!(
                "\"{}\" <sip:{from_user}@{}>;tag={local_tag}",
                d.replace('"', ""),
                self.cfg.local.ip()
            ),
            None => format!("<sip:{from_user}@{}>;tag={local_tag}", self.cfg.local.ip()),
        };
        h.push("From", from);
        h.push("To", format!("<{target}>"));
        h.push("Call-ID", format!("{}@{}", token(), self.cfg.local.ip()));
        h.push("CSeq", "1 INVITE");
        h.push("Contact", self.contact(next_hop));
        h.push("Allow", ALLOWED);
        h.push("User-Agent", self.cfg.user_agent.clone());
        if !sdp.is_empty() {
            h.push("Content-Type", "application/sdp");
        }
        let invite = Request {
            method: Method::Invite,
            uri: target,
            headers: h,
            body: sdp,
        };
        let mut call = Call::new(next_hop, true, invite.clone(), local_tag);
        call.credentials = credentials;
        let id = self.add_call(call);
        let out = self.start_client(id, next_hop, invite, now);
        (id, out)
    }

    fn start_client(
        &mut self,
        call: CallId,
        to: SocketAddr,
        req: Request,
        now: Instant,
    ) -> Vec<UaOutput> {
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let key = super::transaction::key(&branch, &req.method);
        let is_invite = req.method == Method::Invite;
        let (tx, outs) =
            ClientTransaction::new(req, self.reliable.contains_key(&to), self.cfg.timers, now);
        self.clients.insert(key.clone(), (call, to, tx));
        if is_invite && let Some(c) = self.calls.get_mut(&call) {
            c.invite_tx = Some(key.clone());
        }
        self.tx_outputs(call, to, outs, now)
    }

    /// Hang up: CANCEL before an answer, BYE after.
    /// The SIP Call-ID header of a call this agent knows.
    pub fn sip_call_id(&self, call: CallId) -> Option<&str> {
        self.calls.get(&call)?.invite.call_id()
    }

    pub fn hangup(&mut self, call: CallId, now: Instant) -> Vec<UaOutput> {
        let (contact, proto, local) = self.peer_info(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return Vec::new();
        };
        match (c.phase, c.outbound) {
            (Phase::Calling | Phase::Early, true) => {
                c.cancel_requested = true;
                let invite = c.invite.clone();
                let peer = c.peer;
                // CANCEL only once a provisional has arrived (RFC 3261 §9.1); otherwise it is
                // sent when one does.
                if c.phase == Phase::Early {
                    let cancel = cancel_for(&invite);
                    return self.start_client(call, peer, cancel, now);
                }
                Vec::new()
            }
            (Phase::Confirmed, _) => {
                let peer = c.peer;
                let via = format!("SIP/2.0/{proto} {local};branch=z9hG4bK{};rport", token());
                let Some(d) = c.dialog.as_mut() else {
                    return Vec::new();
                };
                let bye = d.request(Method::Bye, &via, &contact);
                c.phase = Phase::Terminating;
                self.start_client(call, peer, bye, now)
            }
            (Phase::Calling | Phase::Early, false) => {
                self.reject(call, 480, "Temporarily Unavailable", now)
            }
            _ => Vec::new(),
        }
    }

    /// Answer an inbound call with an SDP answer.
    pub fn accept(&mut self, call: CallId, sdp: Vec<u8>, now: Instant) -> Vec<UaOutput> {
        let (contact, _, _) = self.peer_info(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return Vec::new();
        };
        if let Some(key) = c.reoffer_tx.take() {
            let Some((_, _, tx)) = self.servers.get(&key) else {
                return Vec::new();
            };
            let mut resp = tx.request().response(200, "OK", None);
            resp.headers.push("Contact", contact);
            if !sdp.is_empty() {
                resp.headers.push("Content-Type", "application/sdp");
            }
            resp.body = sdp;
            return self.server_respond(&key, resp, now);
        }
        let Some(key) = c.server_tx.clone() else {
            return Vec::new();
        };
        let mut resp = c.invite.response(200, "OK", Some(&c.local_tag));
        resp.headers.push("Contact", contact);
        resp.headers.push("Allow", ALLOWED);
        if !sdp.is_empty() {
            resp.headers.push("Content-Type", "application/sdp");
        }
        resp.body = sdp;
        c.dialog = Dialog::from_uas(&c.invite, &c.local_tag);
        c.phase = Phase::Confirmed;
        self.server_respond(&key, resp, now)
    }

    /// Tell the caller of an inbound call that it is ringing (180).
    pub fn ring(&mut self, call: CallId, now: Instant) -> Vec<UaOutput> {
        let Some(c) = self.calls.get(&call) else {
            return Vec::new();
        };
        let Some(key) = c.server_tx.clone() else {
            return Vec::new();
        };
        let resp = c.invite.response(180, "Ringing", Some(&c.local_tag));
        self.server_respond(&key, resp, now)
    }

    /// Refuse an inbound call, or the re-INVITE of an established call that waits for our answer.
    pub fn reject(
        &mut self,
        call: CallId,
        status: u16,
        reason: &str,
        now: Instant,
    ) -> Vec<UaOutput> {
        let Some(c) = self.calls.get_mut(&call) else {
            return Vec::new();
        };
        // A re-INVITE waiting for our answer is refused; the call goes on as before.
        if let Some(key) = c.reoffer_tx.take() {
            let Some((_, _, tx)) = self.servers.get(&key) else {
                return Vec::new();
            };
            let resp = tx.request().response(status, reason, None);
            return self.server_respond(&key, resp, now);
        }
        let Some(key) = c.server_tx.clone() else {
            return Vec::new();
        };
        let resp = c.invite.response(status, reason, Some(&c.local_tag));
        c.phase = Phase::Ended;
        self.server_respond(&key, resp, now)
    }

    fn server_respond(&mut self, key: &str, resp: Response, now: Instant) -> Vec<UaOutput> {
        let Some((call, peer, tx)) = self.servers.get_mut(key) else {
            return Vec::new();
        };
        let (call, peer) = (*call, *peer);
        let outs = tx.respond(resp, now);
        self.tx_outputs(call.unwrap_or(0), peer, outs, now)
    }

    fn in_dialog(
        &mut self,
        call: CallId,
        method: Method,
        extra: &[(&str, String)],
        body: Vec<u8>,
        now: Instant,
    ) -> Vec<UaOutput> {
        let (contact, proto, local) = self.peer_info(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return Vec::new();
        };
        if c.phase != Phase::Confirmed {
            return Vec::new();
        }
        let peer = c.peer;
        let via = format!("SIP/2.0/{proto} {local};branch=z9hG4bK{};rport", token());
        let Some(d) = c.dialog.as_mut() else {
            return Vec::new();
        };
        let mut req = d.request(method, &via, &contact);
        for (n, v) in extra {
            req.headers.push(n, v.clone());
        }
        req.body = body;
        self.start_client(call, peer, req, now)
    }

    /// Send a new offer in an established call (hold: `a=sendonly`; resume: `a=sendrecv`).
    pub fn reinvite(&mut self, call: CallId, sdp: Vec<u8>, now: Instant) -> Vec<UaOutput> {
        self.in_dialog(
            call,
            Method::Invite,
            &[("Content-Type", "application/sdp".to_string())],
            sdp,
            now,
        )
    }

    /// Cold transfer: ask the other side to call `target` (REFER, RFC 3515).
    pub fn refer(&mut self, call: CallId, target: &Uri, now: Instant) -> Vec<UaOutput> {
        let (by, _, _) = self.peer_info(call);
        self.in_dialog(
            call,
            Method::Refer,
            &[("Refer-To", format!("<{target}>")), ("Referred-By", by)],
            Vec::new(),
            now,
        )
    }

    /// A request outside any call (OPTIONS keep-alive, REGISTER), tracked like a call so its
    /// answer arrives as [`CallEvent::Reply`] / [`CallEvent::Registered`].
    #[allow(clippy::too_many_arguments)] // private; each argument is a distinct part of the request
    fn standalone(
        &mut self,
        next_hop: SocketAddr,
        method: Method,
        uri: Uri,
        to: String,
        extra: Vec<(&str, String)>,
        credentials: Option<Credentials>,
        now: Instant,
    ) -> (CallId, Vec<UaOutput>) {
        let local_tag = token();
        let mut h = Headers::default();
        h.push("Via", self.via(next_hop, &format!("z9hG4bK{}", token())));
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{}@{}>;tag={local_tag}",
                self.cfg.user,
                self.cfg.local.ip()
            ),
        );
        h.push("To", to);
        h.push("Call-ID", format!("{}@{}", token(), self.cfg.local.ip()));
        h.push("CSeq", format!("1 {method}"));
        h.push("User-Agent", self.cfg.user_agent.clone());
        for (n, v) in extra {
            h.push(n, v);
        }
        let req = Request {
            method,
            uri,
            headers: h,
            body: Vec::new(),
        };
        let mut call = Call::new(next_hop, true, req.clone(), local_tag);
        call.credentials = credentials;
        let id = self.add_call(call);
        let out = self.start_client(id, next_hop, req, now);
        (id, out)
    }

    /// An OPTIONS ping to a trunk or proxy (keep-alive and health check).
    pub fn options(&mut self, next_hop: SocketAddr, now: Instant) -> (CallId, Vec<UaOutput>) {
        let uri = Uri::sip(None, &next_hop.ip().to_string(), Some(next_hop.port()));
        let to = format!("<{uri}>");
        self.standalone(
            next_hop,
            Method::Options,
            uri,
            to,
            vec![("Accept", "application/sdp".into())],
            None,
            now,
        )
    }

    /// Register our contact for `user@domain` at a registrar, with digest credentials if asked.
    pub fn register(
        &mut self,
        registrar: SocketAddr,
        domain: &str,
        expires: u32,
        credentials: Option<Credentials>,
        now: Instant,
    ) -> (CallId, Vec<UaOutput>) {
        let uri = Uri::sip(None, domain, None);
        let aor = format!("<sip:{}@{domain}>", self.cfg.user);
        let contact = format!("{};expires={expires}", self.contact(registrar));
        self.standalone(
            registrar,
            Method::Register,
            uri,
            aor,
            vec![("Contact", contact), ("Expires", expires.to_string())],
            credentials,
            now,
        )
    }

    /// Where a registered user (an agent's SIP phone) can be reached: the address its
    /// REGISTER came from, while the binding lasts.
    pub fn lookup(&self, user: &str, now: Instant) -> Option<SocketAddr> {
        self.bindings.get(user).filter(|b| b.1 > now).map(|b| b.0)
    }

    /// Require digest authentication for REGISTER from these users (user → password).
    pub fn set_registrar_accounts(&mut self, realm: &str, accounts: HashMap<String, String>) {
        self.realm = realm.to_string();
        self.accounts = accounts;
    }

    /// When [`UserAgent::on_timer`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|(_, _, t)| t.next_deadline())
            .chain(
                self.servers
                    .values()
                    .filter_map(|(_, _, t)| t.next_deadline()),
            )
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<UaOutput> {
        let mut out = Vec::new();
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        let keys: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, (_, _, t))| due(t.next_deadline()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some((call, to, tx)) = self.clients.get_mut(&k) {
                let (call, to) = (*call, *to);
                let outs = tx.on_timer(now);
                out.extend(self.tx_outputs(call, to, outs, now));
            }
        }
        let keys: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, (_, _, t))| due(t.next_deadline()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some((call, to, tx)) = self.servers.get_mut(&k) {
                let (call, to) = (call.unwrap_or(0), *to);
                let outs = tx.on_timer(now);
                out.extend(self.tx_outputs(call, to, outs, now));
            }
        }
        self.clients.retain(|_, (_, _, t)| !t.is_terminated());
        self.servers.retain(|_, (_, _, t)| !t.is_terminated());
        out
    }

    fn tx_outputs(
        &mut self,
        call: CallId,
        to: SocketAddr,
        outs: Vec<TxOutput>,
        now: Instant,
    ) -> Vec<UaOutput> {
        let mut out = Vec::new();
        for o in outs {
            match o {
                TxOutput::SendRequest(r) => out.push(UaOutput::Send {
                    to,
                    data: r.to_bytes(),
                }),
                TxOutput::SendResponse(r) => out.push(UaOutput::Send {
                    to,
                    data: r.to_bytes(),
                }),
                TxOutput::Response(r) => out.extend(self.on_response(call, r, now)),
                TxOutput::Timeout => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        match c.phase {
                            Phase::Calling | Phase::Early => {
                                c.phase = Phase::Ended;
                                out.push(UaOutput::Event {
                                    call,
                                    event: CallEvent::Timeout,
                                });
                            }
                            Phase::Terminating => {
                                c.phase = Phase::Ended;
                                out.push(UaOutput::Event {
                                    call,
                                    event: CallEvent::Ended { remote: false },
                                });
                            }
                            _ => {}
                        }
                    }
                }
                TxOutput::Acked => {
                    if let Some(c) = self.calls.get_mut(&call)
                        && !c.outbound
                        && c.phase == Phase::Confirmed
                        && !c.confirmed
                    {
                        c.confirmed = true;
                        out.push(UaOutput::Event {
                            call,
                            event: CallEvent::Confirmed,
                        });
                    }
                }
                TxOutput::Terminated => {}
            }
        }
        out
    }

    /// A response reached the transaction user.
    fn on_response(&mut self, call: CallId, resp: Response, now: Instant) -> Vec<UaOutput> {
        let mut out = Vec::new();
        let (contact, proto, local) = self.peer_info(call);
        let Some((_, method)) = resp.cseq() else {
            return out;
        };
        let via = format!("SIP/2.0/{proto} {local};branch=z9hG4bK{};rport", token());

        let Some(c) = self.calls.get_mut(&call) else {
            return out;
        };
        match method {
            Method::Invite => {
                let code = resp.status;
                if code < 200 {
                    // Provisionals matter only while the call is being set up (not for a
                    // re-INVITE in an established call).
                    if code > 100 && matches!(c.phase, Phase::Calling | Phase::Early) {
                        let first_early = c.phase == Phase::Calling;
                        c.phase = Phase::Early;
                        let sdp = (!resp.body.is_empty()).then(|| resp.body.clone());
                        out.push(UaOutput::Event {
                            call,
                            event: CallEvent::Progress {
                                status: code,
                                reason: resp.reason.clone(),
                                sdp,
                            },
                        });
                        if first_early && c.cancel_requested {
                            let cancel = cancel_for(&c.invite);
                            let peer = c.peer;
                            out.extend(self.start_client(call, peer, cancel, now));
                        }
                    }
                } else if code < 300 {
                    // ACK every 2xx (retransmissions too) from the dialog, with the CSeq of the
                    // INVITE it answers (the first one or a re-INVITE).
                    if c.dialog.is_none() {
                        c.dialog = Dialog::from_uac(&c.invite, &resp);
                    }
                    let cseq = resp.cseq().map_or(1, |x| x.0);
                    if let Some(d) = &c.dialog {
                        let ack = d.ack(cseq, &via, &contact);
                        out.push(UaOutput::Send {
                            to: c.peer,
                            data: ack.to_bytes(),
                        });
                    }
                    if c.phase == Phase::Calling || c.phase == Phase::Early {
                        if c.cancel_requested {
                            // Answered while we were cancelling: hang up at once.
                            c.phase = Phase::Confirmed;
                            out.extend(self.hangup(call, now));
                        } else {
                            c.phase = Phase::Confirmed;
                            out.push(UaOutput::Event {
                                call,
                                event: CallEvent::Answered {
                                    sdp: resp.body.clone(),
                                },
                            });
                        }
                    } else if c.phase == Phase::Confirmed
                        && cseq != c.invite.cseq().map_or(0, |x| x.0)
                    {
                        out.push(UaOutput::Event {
                            call,
                            event: CallEvent::Reanswered {
                                sdp: resp.body.clone(),
                            },
                        });
                    }
                } else if c.phase == Phase::Confirmed {
                    out.push(UaOutput::Event {
                        call,
                        event: CallEvent::ReofferFailed { status: code },
                    });
                } else if (code == 401 || code == 407)
                    && c.auth_tries == 0
                    && c.credentials.is_some()
                    && !c.cancel_requested
                {
                    c.auth_tries += 1;
                    if let Some(req) = authenticated_retry(&c.invite, &resp, c.credentials.as_ref())
                    {
                        c.invite = req.clone();
                        let peer = c.peer;
                        out.extend(self.start_client(call, peer, req, now));
                    } else {
                        c.phase = Phase::Ended;
                        out.push(UaOutput::Event {
                            call,
                            event: CallEvent::Failed {
                                status: code,
                                reason: resp.reason.clone(),
                                headers: resp.headers.clone(),
                            },
                        });
                    }
                } else if c.phase != Phase::Ended {
                    c.phase = Phase::Ended;
                    out.push(UaOutput::Event {
                        call,
                        event: CallEvent::Failed {
                            status: code,
                            reason: resp.reason.clone(),
                            headers: resp.headers.clone(),
                        },
                    });
                }
            }
            Method::Bye if resp.status >= 200 && c.phase == Phase::Terminating => {
                c.phase = Phase::Ended;
                out.push(UaOutput::Event {
                    call,
                    event: CallEvent::Ended { remote: false },
                });
            }
            Method::Refer if resp.status >= 200 => {
                let event = if resp.status < 300 {
                    CallEvent::ReferAccepted
                } else {
                    CallEvent::ReferFailed {
                        status: resp.status,
                    }
                };
                out.push(UaOutput::Event { call, event });
            }
            Method::Options | Method::Register if resp.status >= 200 => {
                let code = resp.status;
                if (code == 401 || code == 407) && c.auth_tries == 0 && c.credentials.is_some() {
                    c.auth_tries += 1;
                    if let Some(req) = authenticated_retry(&c.invite, &resp, c.credentials.as_ref())
                    {
                        c.invite = req.clone();
                        let peer = c.peer;
                        out.extend(self.start_client(call, peer, req, now));
                        return out;
                    }
                }
                c.phase = Phase::Ended;
                let event = if method == Method::Register && (200..300).contains(&code) {
                    let expires = resp
                        .headers
                        .get("Expires")
                        .and_then(|v| v.trim().parse().ok())
                        .or_else(|| {
                            resp.headers
                                .get_all("Contact")
                                .first()
                                .and_then(|c| msg::NameAddr::parse(c).ok())
                                .and_then(|na| na.param("expires").and_then(|e| e.parse().ok()))
                        })
                        .unwrap_or(0);
                    CallEvent::Registered { expires }
                } else {
                    CallEvent::Reply { status: code }
                };
                out.push(UaOutput::Event { call, event });
            }
            _ => {}
        }
        out
    }

    /// A datagram arrived from `from`.
    pub fn on_datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant) -> Vec<UaOutput> {
        // Keep-alive CRLFs (RFC 5626) are ignored.
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return Vec::new();
        }
        match msg::parse(data, Framing::Datagram) {
            Ok(Message::Response(r)) => self.on_wire_response(r, now),
            Ok(Message::Request(r)) => self.on_wire_request(r, from, now),
            Err(e) => match e.response() {
                Some(resp) => vec![UaOutput::Send {
                    to: from,
                    data: resp.to_bytes(),
                }],
                None => Vec::new(),
            },
        }
    }

    fn on_wire_response(&mut self, r: Response, now: Instant) -> Vec<UaOutput> {
        let Some(branch) = r.top_via().and_then(|v| v.branch().map(str::to_string)) else {
            return Vec::new();
        };
        let Some((_, method)) = r.cseq() else {
            return Vec::new();
        };
        let key = super::transaction::key(&branch, &method);
        if let Some((call, to, tx)) = self.clients.get_mut(&key) {
            let (call, to) = (*call, *to);
            let outs = tx.on_response(r, now);
            return self.tx_outputs(call, to, outs, now);
        }
        // A 2xx retransmission after the INVITE transaction ended: ACK it again.
        if method == Method::Invite && (200..300).contains(&r.status) {
            let call_id = r.headers.get("Call-ID").map(str::to_string);
            let found = call_id.and_then(|cid| self.by_call_id.get(&cid).copied());
            if let Some(id) = found {
                return self.on_response(id, r, now);
            }
        }
        Vec::new()
    }

    fn on_wire_request(&mut self, r: Request, from: SocketAddr, now: Instant) -> Vec<UaOutput> {
        let branch = r
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let key = super::transaction::key(&branch, &r.method);
        // Retransmissions and ACKs for non-2xx go to their transaction.
        if let Some((call, to, tx)) = self.servers.get_mut(&key) {
            let (call, to) = (call.unwrap_or(0), *to);
            let outs = tx.on_request(&r, now);
            return self.tx_outputs(call, to, outs, now);
        }
        if let Err((status, reason, extra)) = check_request(&r) {
            if r.method == Method::Ack {
                return Vec::new();
            }
            let mut resp = r.response(status, &reason, Some(&token()));
            if let Some((n, v)) = extra {
                resp.headers.push(n, v);
            }
            return vec![UaOutput::Send {
                to: from,
                data: resp.to_bytes(),
            }];
        }
        match r.method {
            Method::Ack => {
                // ACK for a 2xx: find the call by dialog and stop the 2xx retransmission.
                let found = self
                    .dialog_call(&r)
                    .and_then(|id| self.calls.get(&id).map(|c| (id, c.server_tx.clone())));
                // The ACK of a re-INVITE's 2xx has that re-INVITE's CSeq.
                let ack_cseq = r.cseq().map(|c| c.0);
                let reinvite = self
                    .servers
                    .iter()
                    .find(|(_, (cid, _, tx))| {
                        found.as_ref().is_some_and(|(id, _)| Some(*id) == *cid)
                            && tx.request().method == Method::Invite
                            && tx.request().cseq().map(|c| c.0) == ack_cseq
                    })
                    .map(|(k, _)| k.clone());
                let found = found.map(|(id, k)| (id, reinvite.or(k)));
                if let Some((id, Some(k))) = found
                    && let Some((_, to, tx)) = self.servers.get_mut(&k)
                {
                    let to = *to;
                    let outs = tx.on_request(&r, now);
                    return self.tx_outputs(id, to, outs, now);
                }
                Vec::new()
            }
            Method::Cancel => self.on_cancel(r, from, now),
            Method::Invite if r.to().and_then(|t| t.tag().map(str::to_string)).is_none() => {
                self.on_new_invite(r, key, from, now)
            }
            _ => self.on_in_dialog(r, key, from, now),
        }
    }

    fn on_new_invite(
        &mut self,
        r: Request,
        key: String,
        from: SocketAddr,
        now: Instant,
    ) -> Vec<UaOutput> {
        let event = CallEvent::Incoming {
            from: r.headers.get("From").unwrap_or("").to_string(),
            to: r.headers.get("To").unwrap_or("").to_string(),
            call_id: r.headers.get("Call-ID").unwrap_or("").to_string(),
            sdp: r.body.clone(),
        };
        let mut tx = ServerTransaction::new(
            r.clone(),
            self.reliable.contains_key(&from),
            self.cfg.timers,
        );
        let trying = tx.respond(r.response(100, "Trying", None), now);
        let mut call = Call::new(from, false, r, token());
        call.server_tx = Some(key.clone());
        let id = self.add_call(call);
        let mut out = self.tx_outputs(id, from, trying, now);
        self.servers.insert(key, (Some(id), from, tx));
        out.push(UaOutput::Event { call: id, event });
        out
    }

    fn on_cancel(&mut self, r: Request, from: SocketAddr, now: Instant) -> Vec<UaOutput> {
        let branch = r
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let invite_key = super::transaction::key(&branch, &Method::Invite);
        let mut out = Vec::new();
        let Some((call, _, _)) = self.servers.get(&invite_key) else {
            let resp = r.response(481, "Call/Transaction Does Not Exist", Some(&token()));
            return vec![UaOutput::Send {
                to: from,
                data: resp.to_bytes(),
            }];
        };
        let call = *call;
        let ok = r.response(200, "OK", None);
        out.push(UaOutput::Send {
            to: from,
            data: ok.to_bytes(),
        });
        if let Some(id) = call
            && let Some(c) = self.calls.get_mut(&id)
            && matches!(c.phase, Phase::Calling | Phase::Early)
        {
            let resp = c
                .invite
                .response(487, "Request Terminated", Some(&c.local_tag));
            c.phase = Phase::Ended;
            out.extend(self.server_respond(&invite_key, resp, now));
            out.push(UaOutput::Event {
                call: id,
                event: CallEvent::Cancelled,
            });
        }
        out
    }

    fn on_in_dialog(
        &mut self,
        r: Request,
        key: String,
        from: SocketAddr,
        now: Instant,
    ) -> Vec<UaOutput> {
        if r.method == Method::Register {
            return self.on_register(r, key, from, now);
        }
        let found = self.dialog_call(&r);
        let mut tx = ServerTransaction::new(
            r.clone(),
            self.reliable.contains_key(&from),
            self.cfg.timers,
        );
        let mut out = Vec::new();
        let (resp, event) = match (r.method.clone(), found) {
            (Method::Options, _) => {
                let mut resp = r.response(200, "OK", Some(&token()));
                resp.headers.push("Allow", ALLOWED);
                resp.headers.push("Accept", "application/sdp");
                (resp, None)
            }
            (_, None) => (
                r.response(481, "Call/Transaction Does Not Exist", Some(&token())),
                None,
            ),
            (Method::Bye, Some(id)) => {
                let ended = self.calls.get_mut(&id).map(|c| {
                    let was = c.phase;
                    c.phase = Phase::Ended;
                    was != Phase::Ended
                });
                (
                    r.response(200, "OK", None),
                    ended
                        .unwrap_or(false)
                        .then_some((id, CallEvent::Ended { remote: true })),
                )
            }
            (Method::Notify, Some(id)) => {
                // A transfer's progress arrives as a message/sipfrag status line.
                let status = String::from_utf8_lossy(&r.body)
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok());
                let event = match (
                    r.headers
                        .get("Event")
                        .map(|e| e.trim().to_ascii_lowercase()),
                    status,
                ) {
                    (Some(e), Some(status)) if e.starts_with("refer") => {
                        Some((id, CallEvent::ReferProgress { status }))
                    }
                    _ => None,
                };
                (r.response(200, "OK", None), event)
            }
            (Method::Info, Some(_)) => (r.response(200, "OK", None), None),
            (Method::Invite, Some(id)) => {
                // A re-INVITE: the transaction waits for the TU's answer.
                self.servers.insert(key.clone(), (Some(id), from, tx));
                if let Some(c) = self.calls.get_mut(&id) {
                    c.reoffer_tx = Some(key);
                }
                out.push(UaOutput::Event {
                    call: id,
                    event: CallEvent::Reoffer {
                        sdp: r.body.clone(),
                    },
                });
                return out;
            }
            (_, Some(_)) => (r.response(501, "Not Implemented", None), None),
        };
        let sent = tx.respond(resp, now);
        out.extend(self.tx_outputs(found.unwrap_or(0), from, sent, now));
        self.servers.insert(key, (found, from, tx));
        if let Some((call, event)) = event {
            out.push(UaOutput::Event { call, event });
        }
        out
    }

    /// REGISTER from an agent's phone (RFC 3261 §10.3): digest-checked when accounts are set;
    /// the binding is the address the request came from.
    fn on_register(
        &mut self,
        r: Request,
        key: String,
        from: SocketAddr,
        now: Instant,
    ) -> Vec<UaOutput> {
        let mut tx = ServerTransaction::new(
            r.clone(),
            self.reliable.contains_key(&from),
            self.cfg.timers,
        );
        let user = r.to().and_then(|t| t.uri.user.clone()).unwrap_or_default();
        let resp = if !self.accounts.is_empty() && !self.digest_ok(&r, &user) {
            let mut resp = r.response(401, "Unauthorized", Some(&token()));
            resp.headers.push(
                "WWW-Authenticate",
                format!(
                    "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5",
                    self.realm, self.nonce
                ),
            );
            resp
        } else {
            let expires = r
                .headers
                .get_all("Contact")
                .first()
                .and_then(|c| msg::NameAddr::parse(c).ok())
                .and_then(|na| na.param("expires").and_then(|e| e.parse::<u32>().ok()))
                .or_else(|| r.headers.get("Expires").and_then(|e| e.trim().parse().ok()))
                .unwrap_or(3600)
                .min(7200);
            if expires == 0 {
                self.bindings.remove(&user);
            } else {
                self.bindings.insert(
                    user,
                    (
                        from,
                        now + std::time::Duration::from_secs(u64::from(expires)),
                    ),
                );
            }
            let mut resp = r.response(200, "OK", Some(&token()));
            if let Some(c) = r.headers.get_all("Contact").first() {
                let base = c.split(";expires").next().unwrap_or(c);
                resp.headers
                    .push("Contact", format!("{base};expires={expires}"));
            }
            resp.headers.push("Expires", expires.to_string());
            resp
        };
        let sent = tx.respond(resp, now);
        let out = self.tx_outputs(0, from, sent, now);
        self.servers.insert(key, (None, from, tx));
        out
    }

    fn digest_ok(&self, r: &Request, user: &str) -> bool {
        let Some(password) = self.accounts.get(user) else {
            return false;
        };
        let Some(auth) = r.headers.get("Authorization") else {
            return false;
        };
        let Some(p) = challenge_params(auth) else {
            return false;
        };
        if p.get("username").map(String::as_str) != Some(user)
            || p.get("nonce") != Some(&self.nonce)
        {
            return false;
        }
        let (Some(uri), Some(response)) = (p.get("uri"), p.get("response")) else {
            return false;
        };
        let Ok(rsip_uri) = rsip::Uri::try_from(uri.as_str()) else {
            return false;
        };
        let qop =
            match (p.get("qop"), p.get("cnonce"), p.get("nc")) {
                (Some(q), Some(cn), Some(nc)) if q == "auth" => u8::from_str_radix(nc, 16)
                    .ok()
                    .map(|nc| rsip::headers::auth::AuthQop::Auth {
                        cnonce: cn.clone(),
                        nc,
                    }),
                _ => None,
            };
        let g = rsip::services::DigestGenerator {
            username: user,
            password,
            nonce: &self.nonce,
            uri: &rsip_uri,
            realm: &self.realm,
            method: &rsip::Method::Register,
            qop: qop.as_ref(),
            algorithm: rsip::headers::auth::Algorithm::Md5,
        };
        g.verify(response)
    }

    /// The call whose dialog this in-dialog request belongs to.
    fn dialog_call(&self, r: &Request) -> Option<CallId> {
        let id = *self.by_call_id.get(r.call_id()?)?;
        let c = self.calls.get(&id)?;
        c.dialog.as_ref().filter(|d| d.matches(r)).map(|_| id)
    }

    /// Number of calls not yet ended (for tests and metrics).
    pub fn active_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.phase != Phase::Ended)
            .count()
    }

    /// Forget ended calls whose transactions are gone.
    pub fn collect_garbage(&mut self) {
        let live: std::collections::HashSet<CallId> = self
            .clients
            .values()
            .map(|(c, _, _)| *c)
            .chain(self.servers.values().filter_map(|(c, _, _)| *c))
            .collect();
        self.calls
            .retain(|id, c| c.phase != Phase::Ended || live.contains(id));
        let calls = &self.calls;
        self.by_call_id.retain(|_, id| calls.contains_key(id));
    }
}

/// CANCEL for an INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number and top
/// Via (branch).
fn cancel_for(invite: &Request) -> Request {
    let mut h = Headers::default();
    if let Some(v) = invite.headers.get_all("Via").first() {
        h.push("Via", v.clone());
    }
    h.push("Max-Forwards", "70");
    for n in ["From", "To", "Call-ID"] {
        if let Some(v) = invite.headers.get(n) {
            h.push(n, v);
        }
    }
    h.push(
        "CSeq",
        format!("{} CANCEL", invite.cseq().map_or(1, |c| c.0)),
    );
    for r in invite.headers.get_all("Route") {
        h.push("Route", r);
    }
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers: h,
        body: Vec::new(),
    }
}

/// Parse `Digest realm="x", nonce="y", qop="auth"` into (key, value) pairs.
fn challenge_params(v: &str) -> Option<HashMap<String, String>> {
    let rest = v.trim().strip_prefix("Digest")?.trim();
    let mut out = HashMap::new();
    for part in msg::split_commas(rest) {
        let (k, val) = part.split_once('=')?;
        out.insert(
            k.trim().to_ascii_lowercase(),
            val.trim().trim_matches('"').to_string(),
        );
    }
    Some(out)
}

/// The INVITE again with credentials for a 401/407 challenge (RFC 3261 §22, RFC 2617 digest with
/// `rsip`'s generator): CSeq + 1, a new branch, an Authorization or Proxy-Authorization header.
fn authenticated_retry(
    invite: &Request,
    resp: &Response,
    cred: Option<&Credentials>,
) -> Option<Request> {
    let cred = cred?;
    let (challenge_header, answer_header) = if resp.status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let params = challenge_params(resp.headers.get(challenge_header)?)?;
    let realm = params.get("realm")?.clone();
    let nonce = params.get("nonce")?.clone();
    let algorithm = params.get("algorithm").cloned();
    if algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
    {
        return None;
    }
    let qop_auth = params
        .get("qop")
        .is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    let uri_text = invite.uri.to_string();
    let rsip_uri = rsip::Uri::try_from(uri_text.as_str()).ok()?;
    let method = match invite.method {
        Method::Invite => rsip::Method::Invite,
        Method::Register => rsip::Method::Register,
        Method::Options => rsip::Method::Options,
        _ => return None,
    };
    let cnonce = token();
    let qop = qop_auth.then(|| rsip::headers::auth::AuthQop::Auth {
        cnonce: cnonce.clone(),
        nc: 1,
    });
    let generator = rsip::services::DigestGenerator {
        username: &cred.username,
        password: &cred.password,
        nonce: &nonce,
        uri: &rsip_uri,
        realm: &realm,
        method: &method,
        qop: qop.as_ref(),
        algorithm: rsip::headers::auth::Algorithm::Md5,
    };
    let response = generator.compute();
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri_text}\", response=\"{response}\", algorithm=MD5",
        cred.username
    );
    if let Some(o) = params.get("opaque") {
        value.push_str(&format!(", opaque=\"{o}\""));
    }
    if qop_auth {
        value.push_str(&format!(", qop=auth, cnonce=\"{cnonce}\", nc=00000001"));
    }
    let mut req = invite.clone();
    let cseq = invite.cseq()?.0 + 1;
    req.headers.set("CSeq", format!("{cseq} {}", invite.method));
    let via = invite.headers.get_all("Via").first()?.clone();
    let new_via = match via.find(";branch=") {
        Some(i) => {
            let rest = &via[i + 8..];
            let end = rest.find(';').map_or(via.len(), |e| i + 8 + e);
            format!("{}z9hG4bK{}{}", &via[..i + 8], token(), &via[end..])
        }
        None => via,
    };
    req.headers.set("Via", new_via);
    req.headers.remove(answer_header);
    req.headers.push(answer_header, value);
    Some(req)
}
