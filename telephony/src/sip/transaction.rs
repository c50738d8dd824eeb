//! RFC 3261 §17 transactions (with the RFC 6026 "Accepted" states) as sans-IO state machines:
//! messages and the current time go in, messages to send and events for the transaction user
//! come out, and `next_deadline` says when to call `on_timer` next. Timers A–K (and L, M) use T1,
//! T2 and T4; on a reliable transport the retransmission and wait timers are zero.

use std::time::{Duration, Instant};

use super::msg::{Headers, Method, Request, Response};

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What a transaction asks of its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    SendRequest(Request),
    SendResponse(Response),
    /// A response for the transaction user (client transactions).
    Response(Response),
    /// No final response in time (Timer B/F), or no ACK for a final response (Timer H).
    Timeout,
    /// The ACK for a 3xx–6xx arrived (server INVITE).
    Acked,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Calling,
    Trying,
    Proceeding,
    Accepted,
    Completed,
    Terminated,
}

/// A client transaction (INVITE or non-INVITE).
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    request: Request,
    invite: bool,
    reliable: bool,
    cfg: TimerConfig,
    state: ClientState,
    /// Retransmission timer (A or E): when, and the current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timeout timer (B or F).
    timeout: Option<Instant>,
    /// Wait timer (D, K or M) ending in Terminated.
    wait: Option<Instant>,
    ack: Option<Request>,
}

impl ClientTransaction {
    /// Start: the request is sent at once.
    pub fn new(
        request: Request,
        reliable: bool,
        cfg: TimerConfig,
        now: Instant,
    ) -> (Self, Vec<TxOutput>) {
        let invite = request.method == Method::Invite;
        let tx = Self {
            retransmit: (!reliable).then_some((now + cfg.t1, cfg.t1)),
            timeout: Some(now + cfg.t1 * 64),
            wait: None,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            invite,
            reliable,
            cfg,
            ack: None,
            request: request.clone(),
        };
        (tx, vec![TxOutput::SendRequest(request)])
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.0), self.timeout, self.wait]
            .into_iter()
            .flatten()
            .min()
    }

    fn wait_for(&self, unreliable: Duration) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            unreliable
        }
    }

    pub fn on_response(&mut self, resp: Response, now: Instant) -> Vec<TxOutput> {
        let mut out = Vec::new();
        let code = resp.status;
        use ClientState::*;
        match (self.state, self.invite) {
            (Calling | Proceeding, true) if code < 200 => {
                self.state = Proceeding;
                self.retransmit = None;
                self.timeout = None;
                out.push(TxOutput::Response(resp));
            }
            (Calling | Proceeding, true) if code < 300 => {
                self.state = Accepted;
                self.retransmit = None;
                self.timeout = None;
                self.wait = Some(now + self.cfg.t1 * 64);
                out.push(TxOutput::Response(resp));
            }
            (Accepted, true) if (200..300).contains(&code) => out.push(TxOutput::Response(resp)),
            (Calling | Proceeding, true) => {
                let ack = ack_for_non_2xx(&self.request, &resp);
                out.push(TxOutput::SendRequest(ack.clone()));
                self.ack = Some(ack);
                self.state = Completed;
                self.retransmit = None;
                self.timeout = None;
                let d = self.wait_for(Duration::from_secs(32));
                self.wait = Some(now + d);
                out.push(TxOutput::Response(resp));
                if d.is_zero() {
                    self.state = Terminated;
                    out.push(TxOutput::Terminated);
                }
            }
            (Completed, true) if code >= 300 => {
                if let Some(ack) = &self.ack {
                    out.push(TxOutput::SendRequest(ack.clone()));
                }
            }
            (Trying | Proceeding, false) if code < 200 => {
                self.state = Proceeding;
                out.push(TxOutput::Response(resp));
            }
            (Trying | Proceeding, false) => {
                self.state = Completed;
                self.retransmit = None;
                self.timeout = None;
                let k = self.wait_for(self.cfg.t4);
                self.wait = Some(now + k);
                out.push(TxOutput::Response(resp));
                if k.is_zero() {
                    self.state = Terminated;
                    out.push(TxOutput::Terminated);
                }
            }
            _ => {}
        }
        out
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<TxOutput> {
        let mut out = Vec::new();
        if self.state == ClientState::Terminated {
            return out;
        }
        if self.wait.is_some_and(|w| now >= w) {
            self.wait = None;
            self.state = ClientState::Terminated;
            out.push(TxOutput::Terminated);
            return out;
        }
        if self.timeout.is_some_and(|t| now >= t) {
            self.timeout = None;
            self.retransmit = None;
            self.state = ClientState::Terminated;
            out.push(TxOutput::Timeout);
            out.push(TxOutput::Terminated);
            return out;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            out.push(TxOutput::SendRequest(self.request.clone()));
            let next = if self.invite {
                interval * 2
            } else if self.state == ClientState::Proceeding {
                self.cfg.t2
            } else {
                (interval * 2).min(self.cfg.t2)
            };
            self.retransmit = Some((now + next, next));
        }
        out
    }
}

/// The ACK for a 3xx–6xx response (RFC 3261 §17.1.1.3): same Request-URI, top Via, From, Call-ID
/// and CSeq number; the To of the response; Route headers of the request.
pub fn ack_for_non_2xx(req: &Request, resp: &Response) -> Request {
    let mut h = Headers::default();
    if let Some(via) = req.headers.get_all("Via").first() {
        h.push("Via", via.clone());
    }
    for name in ["Max-Forwards", "From"] {
        if let Some(v) = req.headers.get(name) {
            h.push(name, v);
        }
    }
    if let Some(to) = resp.headers.get("To") {
        h.push("To", to);
    }
    if let Some(v) = req.headers.get("Call-ID") {
        h.push("Call-ID", v);
    }
    if let Some((n, _)) = req.cseq() {
        h.push("CSeq", format!("{n} ACK"));
    }
    for r in req.headers.get_all("Route") {
        h.push("Route", r);
    }
    Request {
        method: Method::Ack,
        uri: req.uri.clone(),
        headers: h,
        body: Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Trying,
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// A server transaction (INVITE or non-INVITE).
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    request: Request,
    invite: bool,
    reliable: bool,
    cfg: TimerConfig,
    state: ServerState,
    last_response: Option<Response>,
    /// Retransmission of the final response (Timer G for 3xx–6xx; the 2xx retransmission of
    /// RFC 3261 §13.3.1.4 in Accepted).
    retransmit: Option<(Instant, Duration)>,
    /// Timer H (no ACK) or the 2xx give-up time.
    timeout: Option<Instant>,
    /// Timer I, J or L.
    wait: Option<Instant>,
}

impl ServerTransaction {
    pub fn new(request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let invite = request.method == Method::Invite;
        Self {
            request,
            invite,
            reliable,
            cfg,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            retransmit: None,
            timeout: None,
            wait: None,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.0), self.timeout, self.wait]
            .into_iter()
            .flatten()
            .min()
    }

    /// The transaction user responds.
    pub fn respond(&mut self, resp: Response, now: Instant) -> Vec<TxOutput> {
        use ServerState::*;
        let mut out = Vec::new();
        let code = resp.status;
        match (self.state, self.invite) {
            (Proceeding, true) if code < 200 => {}
            (Proceeding, true) if code < 300 => {
                // RFC 6026: Accepted; the 2xx is retransmitted until the ACK arrives.
                self.state = Accepted;
                if !self.reliable {
                    self.retransmit = Some((now + self.cfg.t1, self.cfg.t1));
                }
                self.timeout = Some(now + self.cfg.t1 * 64);
            }
            (Proceeding, true) => {
                self.state = Completed;
                if !self.reliable {
                    self.retransmit = Some((now + self.cfg.t1, self.cfg.t1));
                }
                self.timeout = Some(now + self.cfg.t1 * 64);
            }
            (Trying | Proceeding, false) if code < 200 => self.state = Proceeding,
            (Trying | Proceeding, false) => {
                self.state = Completed;
                let j = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t1 * 64
                };
                self.wait = Some(now + j);
            }
            _ => return out,
        }
        self.last_response = Some(resp.clone());
        out.push(TxOutput::SendResponse(resp));
        if self.state == Completed && !self.invite && self.wait == Some(now) {
            self.state = Terminated;
            out.push(TxOutput::Terminated);
        }
        out
    }

    /// A retransmission of the request arrived (or, for INVITE, its ACK).
    pub fn on_request(&mut self, req: &Request, now: Instant) -> Vec<TxOutput> {
        use ServerState::*;
        let mut out = Vec::new();
        if req.method == Method::Ack {
            match self.state {
                Completed => {
                    self.state = Confirmed;
                    self.retransmit = None;
                    self.timeout = None;
                    let i = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.cfg.t4
                    };
                    self.wait = Some(now + i);
                    out.push(TxOutput::Acked);
                    if i.is_zero() {
                        self.state = Terminated;
                        out.push(TxOutput::Terminated);
                    }
                }
                Accepted => {
                    // The ACK for our 2xx: stop retransmitting; absorb stray retransmissions
                    // for Timer L.
                    self.retransmit = None;
                    self.timeout = None;
                    self.wait = Some(now + self.cfg.t1 * 64);
                    out.push(TxOutput::Acked);
                }
                _ => {}
            }
            return out;
        }
        match self.state {
            Proceeding | Completed => {
                if let Some(r) = &self.last_response {
                    out.push(TxOutput::SendResponse(r.clone()));
                }
            }
            _ => {}
        }
        out
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<TxOutput> {
        use ServerState::*;
        let mut out = Vec::new();
        if self.state == Terminated {
            return out;
        }
        if self.wait.is_some_and(|w| now >= w) {
            self.wait = None;
            self.state = Terminated;
            out.push(TxOutput::Terminated);
            return out;
        }
        if self.timeout.is_some_and(|t| now >= t) {
            self.timeout = None;
            self.retransmit = None;
            self.state = Terminated;
            out.push(TxOutput::Timeout);
            out.push(TxOutput::Terminated);
            return out;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            if let Some(r) = &self.last_response {
                out.push(TxOutput::SendResponse(r.clone()));
            }
            let next = (interval * 2).min(self.cfg.t2);
            self.retransmit = Some((now + next, next));
        }
        out
    }
}

/// The key that matches a message to its transaction (RFC 3261 §17.1.3, §17.2.3): the top Via
/// branch and the method (ACK and CANCEL are matched separately by the caller).
pub fn key(branch: &str, method: &Method) -> String {
    let m = if *method == Method::Ack {
        "INVITE"
    } else {
        method.as_str()
    };
    format!("{branch}|{m}")
}
