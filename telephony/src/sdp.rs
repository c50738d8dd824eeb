//! SDP (RFC 4566) parsing and serialisation, and the RFC 3264 offer/answer model for one G.711
//! audio stream with RFC 4733 telephone-events.
//!
//! The parser is tolerant of what real user agents send: CRLF or bare LF line ends, blank lines,
//! missing `o=`/`s=`/`t=` lines, unknown line types and unknown attributes (all kept and written
//! back), multiple `m=` lines, session- and media-level `c=`, and malformed values of known
//! attributes (`a=rtpmap:31 LPC` has no clock rate: it is kept as an unparsed attribute). What it
//! cannot make sense of (a line that is not `<letter>=<value>`, a bad `o=`, `c=` or `m=` line, a
//! missing `v=0`) is an [`SdpError`] carrying the 1-based line number; it never panics.
//!
//! Serialisation writes CRLF line ends and the RFC 4566 line order (`v o s i u e p c b t r z k a`,
//! then each media `m i c b k a`); lines of the same type keep their order.
//!
//! Offer/answer is deliberately small: the answerer accepts the first audio `m=` line with a port
//! and an `RTP/AVP`, `RTP/AVPF`, `RTP/SAVP` or `RTP/SAVPF` profile, picks the first payload type in the *offerer's* order
//! that it supports (PCMU or PCMA, static PT 0/8 understood without `a=rtpmap`), keeps the
//! offerer's payload type numbers, adds `telephone-event` when offered, and rejects every other
//! `m=` line with port 0. Hold offers are answered per RFC 3264 §6.1 (sendonly → recvonly,
//! inactive → inactive) and the old RFC 2543 `c=IN IP4 0.0.0.0` hold is understood as sendonly.
//! SRTP with SDES keys (RFC 4568, [`crate::srtp`]): an `RTP/SAVP` offer, or an `RTP/AVP` one with
//! `a=crypto` lines ("best effort"), is answered in the offered profile with the first crypto line
//! whose suite we speak and our own key under its tag; [`SrtpPolicy::Require`] offers `RTP/SAVP`
//! and refuses plain offers. The agreed keys come back in [`Negotiated::srtp`].
//! Limits: no DTLS-SRTP/ICE/RTCP-mux here (WebRTC has its own stack), one audio stream, no FQDNs
//! in `c=` (they are an error for negotiation, not for parsing).

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

use crate::srtp::{CryptoAttr, CryptoError, MasterKey, SrtpKeys, SrtpPolicy, SrtpSuite};

/// A parse error with the 1-based line number where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("SDP line {line}: {kind}")]
pub struct SdpError {
    /// 1-based line number in the input (0 when the input has no lines at all).
    pub line: usize,
    /// What was wrong.
    pub kind: SdpErrorKind,
}

/// What made an SDP body unparseable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpErrorKind {
    /// The body has no lines.
    #[error("empty SDP body")]
    Empty,
    /// The first line is not `v=`.
    #[error("first line must be v=0")]
    MissingVersion,
    /// `v=` has a value other than 0, or appears twice.
    #[error("unsupported or repeated v= line")]
    BadVersion,
    /// The line is not `<letter>=<value>`.
    #[error("line is not <type>=<value>")]
    MalformedLine,
    /// `o=` does not have six fields or its version is not a number; or it is repeated.
    #[error("malformed or repeated o= line")]
    BadOrigin,
    /// `s=` is repeated at session level.
    #[error("repeated s= line")]
    BadSessionName,
    /// `c=` does not have three fields.
    #[error("malformed c= line")]
    BadConnection,
    /// `m=` does not have media, port and proto, or the port is not a number.
    #[error("malformed m= line")]
    BadMedia,
}

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses an attribute name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The same stream seen from the other side (sendonly ↔ recvonly).
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What an answerer that wants `local` may answer to an offer of `self` (RFC 3264 §6.1).
    pub fn answer_to(self, local: Direction) -> Self {
        let theirs = self.reversed();
        Direction::from_flags(
            theirs.sends() && local.sends(),
            theirs.receives() && local.receives(),
        )
    }
}

/// `c=` connection data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Connection address as written (may carry `/ttl` for multicast, or be a host name).
    pub address: String,
}

impl Connection {
    /// A unicast `IN IP4`/`IN IP6` connection for `addr`.
    pub fn new(addr: IpAddr) -> Self {
        Connection {
            net_type: "IN".into(),
            addr_type: if addr.is_ipv4() { "IP4" } else { "IP6" }.into(),
            address: addr.to_string(),
        }
    }

    /// The address as an IP literal (the part before any `/`), if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or("");
        host.parse().ok()
    }

    /// Whether this is the old-style (RFC 2543) hold address `0.0.0.0` (or `::`).
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// `o=` origin line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id, a numeric string kept as written.
    pub session_id: String,
    /// Session version; bumped by one for every changed re-offer or answer.
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Unicast address of the originating host.
    pub address: String,
}

impl Origin {
    /// An origin for a local session.
    pub fn new(username: &str, session_id: u64, session_version: u64, addr: IpAddr) -> Self {
        let c = Connection::new(addr);
        Origin {
            username: username.into(),
            session_id: session_id.to_string(),
            session_version,
            net_type: c.net_type,
            addr_type: c.addr_type,
            address: c.address,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type, 0–127.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, when given.
    pub channels: Option<u16>,
}

impl RtpMap {
    fn parse(value: &str) -> Option<Self> {
        let mut it = value.split_whitespace();
        let pt: u8 = it.next()?.parse().ok()?;
        let spec = it.next()?;
        if pt > 127 || it.next().is_some() {
            return None;
        }
        let mut parts = spec.split('/');
        let encoding = parts.next()?.to_string();
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        if encoding.is_empty() || parts.next().is_some() {
            return None;
        }
        Some(RtpMap {
            payload_type: pt,
            encoding,
            clock_rate,
            channels,
        })
    }
}

/// One `a=` line. Known attributes are parsed; anything else (including known attributes with
/// values that do not parse) is kept verbatim as [`Attribute::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:`.
    RtpMap(RtpMap),
    /// `a=fmtp:<format> <parameters>`.
    Fmtp {
        /// The format (payload type) it applies to, as written.
        format: String,
        /// The format-specific parameters, e.g. `0-16`.
        params: String,
    },
    /// `a=ptime:<ms>`.
    Ptime(u32),
    /// `a=maxptime:<ms>`.
    MaxPtime(u32),
    /// `a=sendrecv` / `sendonly` / `recvonly` / `inactive`.
    Direction(Direction),
    /// Any other attribute: `a=<name>` (value `None`) or `a=<name>:<value>`.
    Other {
        /// Attribute name.
        name: String,
        /// Attribute value, if the line had a `:`.
        value: Option<String>,
    },
}

impl Attribute {
    fn parse(text: &str) -> Self {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        let parsed = match (name, value) {
            ("rtpmap", Some(v)) => RtpMap::parse(v).map(Attribute::RtpMap),
            ("fmtp", Some(v)) => v.trim_start().split_once([' ', '\t']).and_then(|(f, p)| {
                let params = p.trim_start();
                (!f.is_empty() && !params.is_empty()).then(|| Attribute::Fmtp {
                    format: f.to_string(),
                    params: params.to_string(),
                })
            }),
            ("ptime", Some(v)) => v.trim().parse().ok().map(Attribute::Ptime),
            ("maxptime", Some(v)) => v.trim().parse().ok().map(Attribute::MaxPtime),
            (n, None) => Direction::from_name(n).map(Attribute::Direction),
            _ => None,
        };
        parsed.unwrap_or_else(|| Attribute::Other {
            name: name.to_string(),
            value: value.map(str::to_string),
        })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    m.payload_type, m.encoding, m.clock_rate
                )?;
                if let Some(c) = m.channels {
                    write!(f, "/{c}")?;
                }
                Ok(())
            }
            Attribute::Fmtp { format, params } => write!(f, "fmtp:{format} {params}"),
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::MaxPtime(p) => write!(f, "maxptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
        }
    }
}

/// A line kept verbatim (`i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`, `k=`, unknown types, and
/// extra `c=` lines of a media section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// One `m=` media description and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type: `audio`, `video`, `image`, `application`, ...
    pub media: String,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// Number of ports (`<port>/<count>`), when given.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Formats (payload type numbers for RTP), in preference order.
    pub formats: Vec<String>,
    /// Media-level `c=` (overrides the session's).
    pub connection: Option<Connection>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
    /// Other lines kept verbatim.
    pub other: Vec<RawLine>,
}

impl Media {
    /// The `a=rtpmap` for payload type `pt`, if any.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == pt => Some(m),
            _ => None,
        })
    }

    /// Encoding name and clock rate for payload type `pt`: from `a=rtpmap`, else from the RFC 3551
    /// static payload type table.
    pub fn encoding_of(&self, pt: u8) -> Option<(&str, u32)> {
        if let Some(m) = self.rtpmap(pt) {
            return Some((m.encoding.as_str(), m.clock_rate));
        }
        static_payload(pt)
    }

    /// The `a=fmtp` parameters for `format`.
    pub fn fmtp(&self, format: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp { format: f, params } if f == format => Some(params.as_str()),
            _ => None,
        })
    }

    /// `a=ptime`, if present.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// `a=maxptime`, if present.
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(p) => Some(*p),
            _ => None,
        })
    }

    /// The media-level direction attribute, if present (the last one wins).
    pub fn own_direction(&self) -> Option<Direction> {
        self.attributes.iter().rev().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// Payload type numbers of the format list (non-numeric formats skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// Whether this is an RTP audio stream (plain or SRTP) that is not disabled.
    pub fn is_active_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
            && self.port != 0
            && ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
                .iter()
                .any(|p| self.proto.eq_ignore_ascii_case(p))
    }

    /// Whether the transport is secure RTP (`RTP/SAVP`, `RTP/SAVPF`).
    pub fn is_savp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// The `a=crypto` lines (RFC 4568), in order, each parsed or with why it is unusable.
    pub fn crypto(&self) -> impl Iterator<Item = Result<CryptoAttr, CryptoError>> + '_ {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Other {
                name,
                value: Some(v),
            } if name == "crypto" => Some(CryptoAttr::parse(v)),
            _ => None,
        })
    }
}

/// RFC 3551 static audio payload types this crate knows by number.
fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        3 => Some(("GSM", 8000)),
        4 => Some(("G723", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        13 => Some(("CN", 8000)),
        18 => Some(("G729", 8000)),
        _ => None,
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=`; `None` if the body had none (tolerated).
    pub origin: Option<Origin>,
    /// `s=`; `None` if the body had none (tolerated).
    pub session_name: Option<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Session-level lines kept verbatim (`t=`, `b=`, `i=`, unknown ...).
    pub other: Vec<RawLine>,
    /// Media descriptions in order.
    pub media: Vec<Media>,
}

impl Sdp {
    /// Parses an SDP body (UTF-8 text, CRLF or LF line ends).
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        parse(text)
    }

    /// Parses an SDP body from bytes; invalid UTF-8 is replaced (SDP text fields may use other
    /// charsets) rather than rejected.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Sdp, SdpError> {
        parse(&String::from_utf8_lossy(bytes))
    }

    /// The session-level direction attribute, if any.
    pub fn session_direction(&self) -> Option<Direction> {
        self.attributes.iter().rev().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// Effective direction of media `index`: its own attribute, else the session's, else
    /// sendrecv. Old-style hold (`c=0.0.0.0`) turns a sending direction into sendonly-from-them,
    /// i.e. the address says "do not send to me".
    pub fn direction_of(&self, index: usize) -> Direction {
        let Some(m) = self.media.get(index) else {
            return Direction::Inactive;
        };
        let d = m
            .own_direction()
            .or(self.session_direction())
            .unwrap_or(Direction::SendRecv);
        if self.connection_of(index).is_some_and(Connection::is_hold) {
            Direction::from_flags(d.sends(), false)
        } else {
            d
        }
    }

    /// Effective connection of media `index`: its own `c=`, else the session's.
    pub fn connection_of(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// Index of the first active RTP audio stream.
    pub fn first_audio(&self) -> Option<usize> {
        self.media.iter().position(Media::is_active_audio)
    }
}

fn parse(text: &str) -> Result<Sdp, SdpError> {
    let mut sdp = Sdp {
        origin: None,
        session_name: None,
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
        media: Vec::new(),
    };
    let mut seen_version = false;
    let mut last_line = 0;
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        last_line = lineno;
        let err = |kind| SdpError { line: lineno, kind };
        let bytes = line.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
            return Err(err(if seen_version {
                SdpErrorKind::MalformedLine
            } else {
                SdpErrorKind::MissingVersion
            }));
        }
        let kind = char::from(bytes[0]);
        let value = &line[2..];
        if !seen_version {
            if kind != 'v' {
                return Err(err(SdpErrorKind::MissingVersion));
            }
            if value.trim() != "0" {
                return Err(err(SdpErrorKind::BadVersion));
            }
            seen_version = true;
            continue;
        }
        let in_media = !sdp.media.is_empty();
        match kind {
            'v' => return Err(err(SdpErrorKind::BadVersion)),
            'o' if !in_media => {
                if sdp.origin.is_some() {
                    return Err(err(SdpErrorKind::BadOrigin));
                }
                sdp.origin = Some(parse_origin(value).ok_or(err(SdpErrorKind::BadOrigin))?);
            }
            's' if !in_media => {
                if sdp.session_name.is_some() {
                    return Err(err(SdpErrorKind::BadSessionName));
                }
                sdp.session_name = Some(value.to_string());
            }
            'c' => {
                let c = parse_connection(value).ok_or(err(SdpErrorKind::BadConnection))?;
                let slot = match sdp.media.last_mut() {
                    Some(m) => (&mut m.connection, &mut m.other),
                    None => (&mut sdp.connection, &mut sdp.other),
                };
                match slot {
                    (conn @ None, _) => *conn = Some(c),
                    // RFC 4566 allows several c= per media (layered multicast): keep the first as
                    // the connection and the rest verbatim.
                    (Some(_), other) => other.push(RawLine {
                        kind: 'c',
                        value: value.to_string(),
                    }),
                }
            }
            'm' => sdp
                .media
                .push(parse_media(value).ok_or(err(SdpErrorKind::BadMedia))?),
            'a' => {
                let a = Attribute::parse(value);
                match sdp.media.last_mut() {
                    Some(m) => m.attributes.push(a),
                    None => sdp.attributes.push(a),
                }
            }
            _ => {
                let l = RawLine {
                    kind,
                    value: value.to_string(),
                };
                match sdp.media.last_mut() {
                    Some(m) => m.other.push(l),
                    None => sdp.other.push(l),
                }
            }
        }
    }
    if !seen_version {
        return Err(SdpError {
            line: last_line,
            kind: SdpErrorKind::Empty,
        });
    }
    Ok(sdp)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = f.as_slice() else {
        return None;
    };
    Some(Origin {
        username: username.to_string(),
        session_id: session_id.to_string(),
        session_version: version.parse().ok()?,
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_connection(value: &str) -> Option<Connection> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [net_type, addr_type, address] = f.as_slice() else {
        return None;
    };
    Some(Connection {
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_media(value: &str) -> Option<Media> {
    let mut it = value.split_whitespace();
    let media = it.next()?.to_string();
    let port_spec = it.next()?;
    let proto = it.next()?.to_string();
    let (port, port_count) = match port_spec.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_spec.parse().ok()?, None),
    };
    Some(Media {
        media,
        port,
        port_count,
        proto,
        formats: it.map(str::to_string).collect(),
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

/// RFC 4566 §5 order of the verbatim line types (`c` sits at 5, `a` after all of them).
fn line_rank(kind: char) -> u8 {
    match kind {
        'i' => 1,
        'u' => 2,
        'e' => 3,
        'p' => 4,
        'c' => 5,
        'b' => 6,
        't' => 7,
        'r' => 8,
        'z' => 9,
        'k' => 10,
        _ => 11,
    }
}

fn write_lines(
    f: &mut fmt::Formatter<'_>,
    connection: Option<&Connection>,
    other: &[RawLine],
    attributes: &[Attribute],
) -> fmt::Result {
    let mut sorted: Vec<&RawLine> = other.iter().collect();
    sorted.sort_by_key(|l| line_rank(l.kind));
    let mut wrote_c = connection.is_none();
    for l in sorted {
        if !wrote_c && line_rank(l.kind) >= 5 {
            if let Some(c) = connection {
                write!(f, "c={c}\r\n")?;
            }
            wrote_c = true;
        }
        write!(f, "{}={}\r\n", l.kind, l.value)?;
    }
    if !wrote_c && let Some(c) = connection {
        write!(f, "c={c}\r\n")?;
    }
    for a in attributes {
        write!(f, "a={a}\r\n")?;
    }
    Ok(())
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        if let Some(o) = &self.origin {
            write!(f, "o={o}\r\n")?;
        }
        if let Some(s) = &self.session_name {
            write!(f, "s={s}\r\n")?;
        }
        write_lines(f, self.connection.as_ref(), &self.other, &self.attributes)?;
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            write_lines(f, m.connection.as_ref(), &m.other, &m.attributes)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Offer / answer
// ---------------------------------------------------------------------------------------------

/// The audio codecs this crate can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// RFC 3551 static payload type.
    pub fn static_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name used in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec for an encoding name (case-insensitive) and clock rate.
    pub fn from_encoding(name: &str, clock_rate: u32) -> Option<Codec> {
        if clock_rate != 8000 {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

/// What the local side can do for audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address RTP is received on (written in `c=` and `o=`).
    pub addr: IpAddr,
    /// RTP port.
    pub port: u16,
    /// Supported codecs, most preferred first (used for offers; answers follow the offerer).
    pub codecs: Vec<Codec>,
    /// Payload type for RFC 4733 telephone-event in our offers (`None`: no DTMF events).
    pub telephone_event: Option<u8>,
    /// Packetisation time we want to receive, ms.
    pub ptime: u32,
    /// Direction we want.
    pub direction: Direction,
    /// When to use SRTP (SDES).
    pub srtp: SrtpPolicy,
    /// Our SRTP key material for this media stream (used only if SRTP is agreed).
    pub srtp_key: MasterKey,
}

impl LocalMedia {
    /// PCMU + PCMA, telephone-event 101, ptime 20, sendrecv; SRTP when the peer offers it, with a
    /// fresh random key.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        LocalMedia {
            addr,
            port,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(101),
            ptime: 20,
            direction: Direction::SendRecv,
            srtp: SrtpPolicy::Accept,
            srtp_key: MasterKey::random(),
        }
    }
}

/// Events 0–16: DTMF digits 0-9, *, #, A-D and flash.
const TELEPHONE_EVENT_FMTP: &str = "0-16";

/// The outcome of a negotiation: what to send where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Remote RTP address (`0.0.0.0` for an old-style hold).
    pub remote_addr: IpAddr,
    /// Remote RTP port.
    pub remote_port: u16,
    /// Agreed codec.
    pub codec: Codec,
    /// Payload type to use for it (the offerer's number).
    pub payload_type: u8,
    /// Payload type for telephone-event, if both sides have it.
    pub telephone_event: Option<u8>,
    /// Packetisation time to send with, ms.
    pub ptime: u32,
    /// Local direction: whether we send and/or receive.
    pub direction: Direction,
    /// SRTP keys when the media is secure RTP (SDES); `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// Why an offer could not be answered or an answer not understood (answer with SIP 488).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NegotiationError {
    /// No offered payload type is a codec we support.
    #[error("no common codec")]
    NoCommonCodec,
    /// No usable RTP audio stream in the SDP.
    #[error("no active RTP audio stream")]
    NoAudioStream,
    /// The audio stream has no `c=` or it is not an IP literal.
    #[error("no usable connection address")]
    NoConnectionAddress,
    /// The answer does not match the offer (m-line count, a codec we did not offer, or SRTP
    /// keys missing or for a suite we did not offer).
    #[error("answer does not match the offer")]
    AnswerMismatch,
    /// SRTP was offered but no crypto line has a suite (and parameters) we support.
    #[error("no SRTP crypto suite in common")]
    NoCommonCrypto,
    /// Our policy requires SRTP and the offer is plain RTP.
    #[error("SRTP is required and the offer has no crypto")]
    SrtpRequired,
}

impl NegotiationError {
    /// The SIP status code to reject the offer with.
    pub fn sip_status(&self) -> u16 {
        488
    }
}

fn base_sdp(origin: &Origin, addr: IpAddr) -> Sdp {
    Sdp {
        origin: Some(origin.clone()),
        session_name: Some("callbot".into()),
        connection: Some(Connection::new(addr)),
        attributes: Vec::new(),
        other: vec![RawLine {
            kind: 't',
            value: "0 0".into(),
        }],
        media: Vec::new(),
    }
}

fn audio_media(
    port: u16,
    proto: &str,
    codecs: &[(Codec, u8)],
    te: Option<u8>,
    ptime: u32,
    direction: Direction,
) -> Media {
    let mut formats: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|&(c, pt)| {
            Attribute::RtpMap(RtpMap {
                payload_type: pt,
                encoding: c.encoding_name().into(),
                clock_rate: 8000,
                channels: None,
            })
        })
        .collect();
    if let Some(te) = te {
        formats.push(te.to_string());
        attributes.push(Attribute::RtpMap(RtpMap {
            payload_type: te,
            encoding: "telephone-event".into(),
            clock_rate: 8000,
            channels: None,
        }));
        attributes.push(Attribute::Fmtp {
            format: te.to_string(),
            params: TELEPHONE_EVENT_FMTP.into(),
        });
    }
    attributes.push(Attribute::Ptime(ptime));
    attributes.push(Attribute::Direction(direction));
    Media {
        media: "audio".into(),
        port,
        port_count: None,
        proto: proto.into(),
        formats,
        connection: None,
        attributes,
        other: Vec::new(),
    }
}

/// Builds an offer with one audio stream: `local.codecs` at their static payload types, then
/// telephone-event (fmtp 0-16), ptime and direction.
///
/// With [`SrtpPolicy::Require`] the stream is `RTP/SAVP` with one `a=crypto` line per suite of
/// [`SrtpSuite::OFFERED`] (tags 1, 2, ...), each with our key for that suite.
pub fn make_offer(local: &LocalMedia, origin: &Origin) -> Sdp {
    let mut sdp = base_sdp(origin, local.addr);
    let codecs: Vec<(Codec, u8)> = local.codecs.iter().map(|&c| (c, c.static_pt())).collect();
    let secure = local.srtp == SrtpPolicy::Require;
    let mut m = audio_media(
        local.port,
        if secure { "RTP/SAVP" } else { "RTP/AVP" },
        &codecs,
        local.telephone_event,
        local.ptime,
        local.direction,
    );
    if secure {
        for (tag, suite) in (1..).zip(SrtpSuite::OFFERED) {
            m.attributes.push(crypto_attribute(&CryptoAttr {
                tag,
                suite,
                key: local.srtp_key.for_suite(suite).to_vec(),
            }));
        }
    }
    sdp.media.push(m);
    sdp
}

fn crypto_attribute(c: &CryptoAttr) -> Attribute {
    Attribute::Other {
        name: "crypto".into(),
        value: Some(c.to_string()),
    }
}

/// The SRTP part of answering an offered stream: the first usable crypto line (RFC 4568 §7.1.1)
/// and our line for it, or `None` for plain RTP.
fn answer_crypto(m: &Media, local: &LocalMedia) -> Result<Option<CryptoAttr>, NegotiationError> {
    let offered: Vec<Result<CryptoAttr, CryptoError>> = m.crypto().collect();
    if offered.is_empty() {
        if m.is_savp() {
            return Err(NegotiationError::NoCommonCrypto);
        }
        if local.srtp == SrtpPolicy::Require {
            return Err(NegotiationError::SrtpRequired);
        }
        return Ok(None);
    }
    match offered.into_iter().find_map(Result::ok) {
        Some(theirs) => Ok(Some(theirs)),
        // Plain RTP with crypto lines is "best effort" SRTP: with none usable, plain RTP it is.
        None if !m.is_savp() && local.srtp != SrtpPolicy::Require => Ok(None),
        None => Err(NegotiationError::NoCommonCrypto),
    }
}

/// The telephone-event payload type of a media description (8 kHz).
fn telephone_event_pt(m: &Media) -> Option<u8> {
    m.payload_types().find(|&pt| {
        m.rtpmap(pt).is_some_and(|r| {
            r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000
        })
    })
}

fn remote_ip(sdp: &Sdp, index: usize) -> Result<IpAddr, NegotiationError> {
    sdp.connection_of(index)
        .and_then(Connection::ip)
        .ok_or(NegotiationError::NoConnectionAddress)
}

/// Answers `offer` (RFC 3264 §6): accepts the first active audio stream with the first offered
/// codec that `local` supports, keeping the offerer's payload numbers; rejects the other streams
/// with port 0. Returns the answer and what was agreed.
pub fn answer(
    offer: &Sdp,
    local: &LocalMedia,
    origin: &Origin,
) -> Result<(Sdp, Negotiated), NegotiationError> {
    let idx = offer.first_audio().ok_or(NegotiationError::NoAudioStream)?;
    let m = &offer.media[idx];
    let (codec, pt) = m
        .payload_types()
        .find_map(|pt| {
            let (enc, rate) = m.encoding_of(pt)?;
            let c = Codec::from_encoding(enc, rate)?;
            local.codecs.contains(&c).then_some((c, pt))
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let remote_addr = remote_ip(offer, idx)?;
    let theirs = answer_crypto(m, local)?;
    let te = local.telephone_event.and(telephone_event_pt(m));
    let direction = offer.direction_of(idx).answer_to(local.direction);
    let mut sdp = base_sdp(origin, local.addr);
    let mut srtp = None;
    for (i, om) in offer.media.iter().enumerate() {
        if i == idx {
            let mut am = audio_media(
                local.port,
                &om.proto,
                &[(codec, pt)],
                te,
                local.ptime,
                direction,
            );
            if let Some(theirs) = &theirs {
                let ours = CryptoAttr {
                    tag: theirs.tag,
                    suite: theirs.suite,
                    key: local.srtp_key.for_suite(theirs.suite).to_vec(),
                };
                am.attributes.push(crypto_attribute(&ours));
                srtp = Some(SrtpKeys {
                    suite: theirs.suite,
                    local: ours.key,
                    remote: theirs.key.clone(),
                });
            }
            sdp.media.push(am);
        } else {
            sdp.media.push(Media {
                media: om.media.clone(),
                port: 0,
                port_count: None,
                proto: om.proto.clone(),
                formats: om.formats.clone(),
                connection: None,
                attributes: Vec::new(),
                other: Vec::new(),
            });
        }
    }
    let negotiated = Negotiated {
        remote_addr,
        remote_port: m.port,
        codec,
        payload_type: pt,
        telephone_event: te,
        ptime: m.ptime().unwrap_or(local.ptime),
        direction,
        srtp,
    };
    Ok((sdp, negotiated))
}

/// For the offerer (UAC): what `answer` agreed to for our `offer`.
pub fn negotiated_from_answer(offer: &Sdp, answer: &Sdp) -> Result<Negotiated, NegotiationError> {
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::AnswerMismatch);
    }
    let idx = answer
        .media
        .iter()
        .zip(&offer.media)
        .position(|(a, o)| a.is_active_audio() && o.is_active_audio())
        .ok_or(NegotiationError::NoAudioStream)?;
    let (am, om) = (&answer.media[idx], &offer.media[idx]);
    let offered = |c: Codec| {
        om.payload_types().any(|pt| {
            om.encoding_of(pt)
                .and_then(|(e, r)| Codec::from_encoding(e, r))
                == Some(c)
        })
    };
    let mut supported_seen = false;
    let (codec, pt) = am
        .payload_types()
        .find_map(|pt| {
            let (e, r) = am.encoding_of(pt)?;
            let c = Codec::from_encoding(e, r)?;
            supported_seen = true;
            offered(c).then_some((c, pt))
        })
        .ok_or(if supported_seen {
            NegotiationError::AnswerMismatch
        } else {
            NegotiationError::NoCommonCodec
        })?;
    let te = telephone_event_pt(am).filter(|_| telephone_event_pt(om).is_some());
    let srtp = answered_crypto(om, am)?;
    Ok(Negotiated {
        remote_addr: remote_ip(answer, idx)?,
        remote_port: am.port,
        codec,
        payload_type: pt,
        telephone_event: te,
        ptime: am.ptime().or(om.ptime()).unwrap_or(20),
        direction: answer.direction_of(idx).reversed(),
        srtp,
    })
}

/// For the offerer: the SRTP keys of an answer. An answer to crypto lines must accept exactly one
/// of them, by tag and suite, with a key of its own; an answer to a plain offer has none.
fn answered_crypto(om: &Media, am: &Media) -> Result<Option<SrtpKeys>, NegotiationError> {
    let ours: Vec<CryptoAttr> = om.crypto().filter_map(Result::ok).collect();
    let mut theirs = am.crypto();
    let Some(answered) = theirs.next() else {
        // Best-effort SRTP (crypto lines in RTP/AVP) may be answered with plain RTP.
        return if om.is_savp() || am.is_savp() {
            Err(NegotiationError::AnswerMismatch)
        } else {
            Ok(None)
        };
    };
    let answered = answered.map_err(|_| NegotiationError::AnswerMismatch)?;
    if theirs.next().is_some() {
        return Err(NegotiationError::AnswerMismatch);
    }
    let offered = ours
        .into_iter()
        .find(|o| o.tag == answered.tag && o.suite == answered.suite)
        .ok_or(NegotiationError::AnswerMismatch)?;
    Ok(Some(SrtpKeys {
        suite: answered.suite,
        local: offered.key,
        remote: answered.key,
    }))
}

/// The local side of one SDP session across offers, answers and re-offers: keeps the `o=` line
/// and bumps its version by one whenever a body it produces differs from the previous one.
#[derive(Debug, Clone)]
pub struct SdpSession {
    origin: Origin,
    local: LocalMedia,
    last: Option<Sdp>,
}

impl SdpSession {
    /// A session whose `o=` starts at `session_id` / version `session_id` (the usual practice).
    pub fn new(local: LocalMedia, session_id: u64) -> Self {
        SdpSession {
            origin: Origin::new("callbot", session_id, session_id, local.addr),
            local,
            last: None,
        }
    }

    /// The local media capabilities.
    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    /// The current `o=` line values.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    fn stamp(&mut self, mut sdp: Sdp) -> Sdp {
        if let Some(last) = &self.last {
            let mut probe = last.clone();
            probe.origin = sdp.origin.clone();
            if probe != sdp {
                self.origin.session_version = self.origin.session_version.saturating_add(1);
            }
        }
        sdp.origin = Some(self.origin.clone());
        self.last = Some(sdp.clone());
        sdp
    }

    /// An offer (initial, or a re-offer) with the current local direction.
    pub fn offer(&mut self) -> Sdp {
        let sdp = make_offer(&self.local, &self.origin);
        self.stamp(sdp)
    }

    /// A re-offer putting the remote party on hold (`a=sendonly`).
    pub fn hold_offer(&mut self) -> Sdp {
        self.local.direction = Direction::SendOnly;
        self.offer()
    }

    /// A re-offer taking the call off hold (`a=sendrecv`).
    pub fn resume_offer(&mut self) -> Sdp {
        self.local.direction = Direction::SendRecv;
        self.offer()
    }

    /// Answers an offer or re-offer from the remote side; see [`answer`].
    pub fn answer(&mut self, offer: &Sdp) -> Result<(Sdp, Negotiated), NegotiationError> {
        let (sdp, n) = answer(offer, &self.local, &self.origin)?;
        Ok((self.stamp(sdp), n))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Modelled on an Asterisk (chan_pjsip) offer (written for this test, not a capture).
    const ASTERISK: &str = "v=0\r\n\
o=- 1681826458 1681826458 IN IP4 192.0.2.10\r\n\
s=Asterisk\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 10036 RTP/AVP 8 0 3 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:3 GSM/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

    /// Modelled on a FreeSWITCH 1.10 offer with opus, G722 and RTCP attributes (not a capture).
    const FREESWITCH: &str = "v=0\r\n\
o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7\r\n\
s=FreeSWITCH\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 24580 RTP/AVP 102 9 0 8 103 101\r\n\
a=rtpmap:102 opus/48000/2\r\n\
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:103 telephone-event/48000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:24581 IN IP4 198.51.100.7\r\n";

    /// Modelled on a baresip offer: LF only, media-level c=, b=, a video line (not a capture).
    const BARESIP: &str = "v=0\n\
o=- 1262377431 2431891244 IN IP4 10.99.0.1\n\
s=-\n\
t=0 0\n\
m=audio 11958 RTP/AVP 0 8 101\n\
c=IN IP4 10.99.0.1\n\
b=AS:64\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=sendrecv\n\
a=label:1\n\
a=ssrc:1413251004 cname:sip:a@127.0.0.1\n\
a=rtcp-rsize\n\
m=video 12420 RTP/AVP 96\n\
c=IN IP4 10.99.0.1\n\
a=rtpmap:96 H264/90000\n\
a=fmtp:96 packetization-mode=0;profile-level-id=42002a\n\
a=sendrecv\n";

    /// SIPp uac_pcap.xml offer with its [keywords] filled in.
    fn sipp_offer() -> String {
        let xml = std::fs::read_to_string(shared_data().join("sipp/scenarios/uac_pcap.xml"))
            .expect("uac_pcap.xml");
        let start = xml.find("v=0").expect("sdp in scenario");
        let end = start + xml[start..].find("]]>").expect("cdata end");
        xml[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\r\n")
            .replace("[local_ip_type]", "4")
            .replace("[local_ip]", "127.0.0.1")
            .replace("[media_ip_type]", "4")
            .replace("[media_ip]", "127.0.0.1")
            .replace("[auto_media_port]", "6000")
            .replace("[media_port]", "6000")
    }

    /// `shared/data` beside the repository (CI clones the repo next to a copy of shared/).
    fn shared_data() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
    }

    fn rfc4475_dir() -> std::path::PathBuf {
        shared_data().join("sip/rfc4475/dat")
    }

    fn local() -> LocalMedia {
        LocalMedia::new(ip("203.0.113.5"), 40000)
    }

    fn origin() -> Origin {
        Origin::new("callbot", 42, 42, ip("203.0.113.5"))
    }

    #[test]
    fn parses_asterisk_offer() {
        let s = Sdp::parse(ASTERISK).unwrap();
        assert_eq!(s.origin.as_ref().unwrap().session_version, 1681826458);
        assert_eq!(s.session_name.as_deref(), Some("Asterisk"));
        assert_eq!(s.media.len(), 1);
        let m = &s.media[0];
        assert_eq!(m.port, 10036);
        assert_eq!(m.formats, ["8", "0", "3", "101"]);
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.maxptime(), Some(150));
        assert_eq!(m.fmtp("101"), Some("0-16"));
        assert_eq!(s.direction_of(0), Direction::SendRecv);
        assert_eq!(s.connection_of(0).unwrap().ip(), Some(ip("192.0.2.10")));
        // Offerer prefers PCMA: the answer must follow that order and keep PT 8.
        let (ans, n) = answer(&s, &local(), &origin()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!((n.remote_addr, n.remote_port), (ip("192.0.2.10"), 10036));
        assert_eq!(ans.media[0].formats, ["8", "101"]);
        assert_eq!(ans.media[0].port, 40000);
        // What we produce must parse back to the same thing and read back the same agreement.
        let reparsed = Sdp::parse(&ans.to_string()).unwrap();
        assert_eq!(reparsed, ans);
        let back = negotiated_from_answer(&s, &reparsed).unwrap();
        assert_eq!((back.codec, back.payload_type), (Codec::Pcma, 8));
        assert_eq!(back.remote_addr, ip("203.0.113.5"));
    }

    #[test]
    fn parses_freeswitch_offer_and_skips_unsupported_codecs() {
        let s = Sdp::parse(FREESWITCH).unwrap();
        let m = &s.media[0];
        assert_eq!(m.rtpmap(102).unwrap().channels, Some(2));
        assert!(m.fmtp("102").unwrap().starts_with("useinbandfec=1;"));
        assert!(m.attributes.contains(&Attribute::Other {
            name: "rtcp".into(),
            value: Some("24581 IN IP4 198.51.100.7".into())
        }));
        let (_, n) = answer(&s, &local(), &origin()).unwrap();
        // opus and G722 are skipped; PCMU is the first supported in the offerer's order.
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        // The 48 kHz telephone-event is not ours; the 8 kHz one is.
        assert_eq!(n.telephone_event, Some(101));
        // Unknown attributes survive a round trip.
        assert!(
            s.to_string()
                .contains("a=rtcp:24581 IN IP4 198.51.100.7\r\n")
        );
    }

    #[test]
    fn parses_baresip_offer_rejects_video() {
        let s = Sdp::parse(BARESIP).unwrap();
        assert_eq!(s.connection, None);
        assert_eq!(s.media.len(), 2);
        assert_eq!(
            s.media[0].other,
            [RawLine {
                kind: 'b',
                value: "AS:64".into()
            }]
        );
        let (ans, n) = answer(&s, &local(), &origin()).unwrap();
        assert_eq!(n.remote_addr, ip("10.99.0.1"));
        assert_eq!(n.ptime, 20);
        assert_eq!(ans.media.len(), 2);
        assert_eq!(ans.media[1].port, 0, "video must be rejected with port 0");
        assert_eq!(ans.media[1].formats, ["96"]);
        assert!(ans.to_string().contains("m=video 0 RTP/AVP 96\r\n"));
        // Serialisation puts c= before b= (RFC 4566 order) even though baresip wrote it first.
        let text = s.to_string();
        let c = text.find("c=IN IP4 10.99.0.1").unwrap();
        let b = text.find("b=AS:64").unwrap();
        assert!(c < b);
        // CRLF line ends everywhere, even though baresip sent LF.
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
        assert_eq!(text.matches("\r\n").count(), BARESIP.lines().count());
    }

    #[test]
    fn parses_sipp_uac_pcap_offer() {
        let text = sipp_offer();
        let s = Sdp::parse(&text).unwrap();
        assert_eq!(s.origin.as_ref().unwrap().session_version, 2353687637);
        assert_eq!(s.media[0].fmtp("101"), Some("0-11,16"));
        let (_, n) = answer(&s, &local(), &origin()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
        assert_eq!((n.remote_addr, n.remote_port), (ip("127.0.0.1"), 6000));
        assert_eq!(n.telephone_event, Some(101));
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let s = Sdp::parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 18 8\r\n").unwrap();
        let (_, n) = answer(&s, &local(), &origin()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
        assert_eq!(n.telephone_event, None);
        let only_g729 = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 18\r\n";
        assert_eq!(
            answer(&Sdp::parse(only_g729).unwrap(), &local(), &origin()).unwrap_err(),
            NegotiationError::NoCommonCodec
        );
    }

    #[test]
    fn dynamic_payload_number_for_pcmu_is_honoured() {
        let s = "v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 96 97\r\na=rtpmap:96 pcmu/8000\r\na=rtpmap:97 telephone-event/8000\r\n";
        let (ans, n) = answer(&Sdp::parse(s).unwrap(), &local(), &origin()).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.telephone_event),
            (Codec::Pcmu, 96, Some(97))
        );
        assert!(ans.to_string().contains("a=rtpmap:96 PCMU/8000"));
    }

    #[test]
    fn hold_offers_are_answered_per_rfc3264() {
        let base = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        for (attr, want) in [
            ("a=sendonly\r\n", Direction::RecvOnly),
            ("a=inactive\r\n", Direction::Inactive),
            ("a=recvonly\r\n", Direction::SendOnly),
            ("a=sendrecv\r\n", Direction::SendRecv),
            ("", Direction::SendRecv),
        ] {
            let offer = Sdp::parse(&format!("{base}{attr}")).unwrap();
            let (ans, n) = answer(&offer, &local(), &origin()).unwrap();
            assert_eq!(n.direction, want, "{attr}");
            assert_eq!(ans.media[0].own_direction(), Some(want));
        }
        // Session-level direction is inherited by media without their own.
        let sess = "v=0\r\nc=IN IP4 192.0.2.1\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n";
        let s = Sdp::parse(sess).unwrap();
        assert_eq!(s.direction_of(0), Direction::SendOnly);
        assert_eq!(
            answer(&s, &local(), &origin()).unwrap().1.direction,
            Direction::RecvOnly
        );
        // Old-style hold.
        let old = Sdp::parse(&base.replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0")).unwrap();
        assert!(old.connection.as_ref().unwrap().is_hold());
        let (_, n) = answer(&old, &local(), &origin()).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert_eq!(n.remote_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn session_hold_resume_bumps_version() {
        let mut sess = SdpSession::new(local(), 1000);
        let o1 = sess.offer();
        assert_eq!(o1.origin.as_ref().unwrap().session_version, 1000);
        assert_eq!(o1.media[0].formats, ["0", "8", "101"]);
        assert_eq!(o1.media[0].fmtp("101"), Some("0-16"));
        assert_eq!(o1.media[0].ptime(), Some(20));
        // Same offer again (e.g. session refresh): version unchanged.
        assert_eq!(sess.offer().origin.unwrap().session_version, 1000);
        let hold = sess.hold_offer();
        assert_eq!(hold.origin.as_ref().unwrap().session_version, 1001);
        assert_eq!(hold.direction_of(0), Direction::SendOnly);
        assert_eq!(hold.origin.as_ref().unwrap().session_id, "1000");
        let resume = sess.resume_offer();
        assert_eq!(resume.origin.as_ref().unwrap().session_version, 1002);
        assert_eq!(resume.direction_of(0), Direction::SendRecv);
        // The remote answers our hold with recvonly: we send, they do not.
        let remote = SdpSession::new(LocalMedia::new(ip("192.0.2.99"), 7000), 5)
            .answer(&hold)
            .unwrap()
            .0;
        assert_eq!(remote.direction_of(0), Direction::RecvOnly);
        let n = negotiated_from_answer(&hold, &remote).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        assert_eq!((n.remote_addr, n.remote_port), (ip("192.0.2.99"), 7000));
    }

    #[test]
    fn negotiated_from_answer_checks_the_answer() {
        let offer = make_offer(&local(), &origin());
        let bad = Sdp::parse(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n",
        )
        .unwrap();
        assert_eq!(
            negotiated_from_answer(&offer, &bad),
            Err(NegotiationError::AnswerMismatch)
        );
        let rejected = Sdp::parse("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\n").unwrap();
        assert_eq!(
            negotiated_from_answer(&offer, &rejected),
            Err(NegotiationError::NoAudioStream)
        );
        let g729 = Sdp::parse("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 18\r\n").unwrap();
        assert_eq!(
            negotiated_from_answer(&offer, &g729),
            Err(NegotiationError::NoCommonCodec)
        );
        let no_c = Sdp::parse("v=0\r\nm=audio 5004 RTP/AVP 8\r\na=ptime:30\r\n").unwrap();
        assert_eq!(
            negotiated_from_answer(&offer, &no_c),
            Err(NegotiationError::NoConnectionAddress)
        );
        let ok =
            Sdp::parse("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 8\r\na=ptime:30\r\n")
                .unwrap();
        let n = negotiated_from_answer(&offer, &ok).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.ptime, n.telephone_event),
            (Codec::Pcma, 8, 30, None)
        );
    }

    #[test]
    fn non_audio_only_offer_is_rejected() {
        let s = Sdp::parse(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 5004 udptl t38\r\nm=audio 0 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert_eq!(
            answer(&s, &local(), &origin()).unwrap_err(),
            NegotiationError::NoAudioStream
        );
        assert_eq!(NegotiationError::NoAudioStream.sip_status(), 488);
        // SRTP without a crypto line cannot be keyed.
        let s = Sdp::parse(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 5004 udptl t38\r\nm=audio 5006 RTP/SAVP 0\r\n",
        )
        .unwrap();
        assert_eq!(
            answer(&s, &local(), &origin()).unwrap_err(),
            NegotiationError::NoCommonCrypto
        );
        assert_eq!(NegotiationError::NoCommonCrypto.sip_status(), 488);
    }

    /// A baresip-style SDES offer (written for this test, not a capture): two suites we speak
    /// after one we do not, and a line with an MKI.
    fn srtp_offer(proto: &str) -> Sdp {
        Sdp::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 5004 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=crypto:1 AEAD_AES_256_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n\
             a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
             a=crypto:4 AES_256_CM_HMAC_SHA1_80 inline:{}\r\na=sendrecv\r\n",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdA=="
        ))
        .unwrap()
    }

    #[test]
    fn an_sdes_offer_is_answered_with_the_first_usable_suite_and_our_own_key() {
        for proto in ["RTP/SAVP", "RTP/AVP"] {
            let offer = srtp_offer(proto);
            let l = local();
            let (ans, n) = answer(&offer, &l, &origin()).unwrap();
            let keys = n.srtp.clone().expect("SRTP agreed");
            assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_80, "{proto}");
            assert_eq!(keys.remote.len(), 30);
            assert_eq!(keys.local, l.srtp_key.for_suite(keys.suite));
            let m = &ans.media[0];
            assert_eq!(m.proto, proto, "the answer keeps the offered profile");
            let lines: Vec<CryptoAttr> = m.crypto().map(Result::unwrap).collect();
            assert_eq!(lines.len(), 1);
            assert_eq!((lines[0].tag, lines[0].suite), (3, keys.suite));
            assert_eq!(lines[0].key, keys.local);
            assert_ne!(keys.local, keys.remote);
            // The offerer sees the same keys the other way round.
            let back = negotiated_from_answer(&offer, &ans).unwrap();
            let theirs = back.srtp.expect("keys");
            assert_eq!((theirs.local, theirs.remote), (keys.remote, keys.local));
        }
    }

    #[test]
    fn srtp_policies_decide_what_is_offered_and_what_is_refused() {
        let mut l = local();
        // Accept (the default): plain offers, plain answers to plain offers.
        let plain = make_offer(&l, &origin());
        assert_eq!(plain.media[0].proto, "RTP/AVP");
        assert_eq!(plain.media[0].crypto().count(), 0);
        let (_, n) = answer(&plain, &l, &origin()).unwrap();
        assert_eq!(n.srtp, None);
        // Require: SAVP with one line per suite, and plain offers refused.
        l.srtp = SrtpPolicy::Require;
        let secure = make_offer(&l, &origin());
        assert_eq!(secure.media[0].proto, "RTP/SAVP");
        let lines: Vec<CryptoAttr> = secure.media[0].crypto().map(Result::unwrap).collect();
        assert_eq!(
            lines.iter().map(|c| (c.tag, c.suite)).collect::<Vec<_>>(),
            (1..).zip(SrtpSuite::OFFERED).collect::<Vec<_>>()
        );
        assert_eq!(
            answer(&plain, &l, &origin()).unwrap_err(),
            NegotiationError::SrtpRequired
        );
        // Best effort with nothing usable is plain RTP under Accept and refused under Require.
        let unusable = Sdp::parse(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAA\r\n",
        )
        .unwrap();
        assert_eq!(answer(&unusable, &local(), &origin()).unwrap().1.srtp, None);
        assert_eq!(
            answer(&unusable, &l, &origin()).unwrap_err(),
            NegotiationError::NoCommonCrypto
        );
        // Our SAVP offer answered by a peer that also requires it.
        let peer = LocalMedia {
            srtp: SrtpPolicy::Require,
            ..LocalMedia::new(ip("192.0.2.9"), 5004)
        };
        let (ans, n) = answer(&secure, &peer, &origin()).unwrap();
        let ours = negotiated_from_answer(&secure, &ans).unwrap().srtp.unwrap();
        let theirs = n.srtp.unwrap();
        assert_eq!(ours.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!((ours.local, ours.remote), (theirs.remote, theirs.local));
    }

    #[test]
    fn an_answer_must_key_what_was_offered() {
        let mut l = local();
        l.srtp = SrtpPolicy::Require;
        let offer = make_offer(&l, &origin());
        let key30 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        for (crypto, why) in [
            ("", "no crypto line in an SAVP answer"),
            (
                "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n",
                "a tag we did not offer",
            ),
            (
                "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:KEY\r\n",
                "a suite other than the tag's",
            ),
            (
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\na=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:KEY\r\n",
                "two lines",
            ),
            (
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n",
                "a bad key",
            ),
        ] {
            let ans = Sdp::parse(&format!(
                "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/SAVP 0\r\n{}",
                crypto.replace("KEY", key30)
            ))
            .unwrap();
            assert_eq!(
                negotiated_from_answer(&offer, &ans).unwrap_err(),
                NegotiationError::AnswerMismatch,
                "{why}"
            );
        }
    }

    #[test]
    fn errors_carry_line_numbers() {
        let cases: &[(&str, usize, SdpErrorKind)] = &[
            ("", 0, SdpErrorKind::Empty),
            ("\r\n\r\n", 0, SdpErrorKind::Empty),
            (
                "o=- 1 1 IN IP4 1.2.3.4\r\n",
                1,
                SdpErrorKind::MissingVersion,
            ),
            ("v=1\r\n", 1, SdpErrorKind::BadVersion),
            ("v=0\r\ntesting=123\r\n", 2, SdpErrorKind::MalformedLine),
            ("v=0\r\no=a b\r\n", 2, SdpErrorKind::BadOrigin),
            (
                "v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n",
                2,
                SdpErrorKind::BadOrigin,
            ),
            ("v=0\ns=a\ns=b\n", 3, SdpErrorKind::BadSessionName),
            ("v=0\ns=-\nc=IN IP4\n", 3, SdpErrorKind::BadConnection),
            (
                "v=0\ns=-\n\nm=audio 70000 RTP/AVP 0\n",
                4,
                SdpErrorKind::BadMedia,
            ),
            ("v=0\ns=-\nm=audio\n", 3, SdpErrorKind::BadMedia),
            ("v=0\nv=0\n", 2, SdpErrorKind::BadVersion),
        ];
        for (text, line, kind) in cases {
            let e = Sdp::parse(text).unwrap_err();
            assert_eq!((e.line, &e.kind), (*line, kind), "{text:?}");
        }
        assert_eq!(
            Sdp::parse("v=0\ns=-\nc=IN IP4\n").unwrap_err().to_string(),
            "SDP line 3: malformed c= line"
        );
    }

    #[test]
    fn rfc4475_bodies_parse_or_error() {
        let mut parsed = 0;
        let mut failed = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(rfc4475_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path).unwrap();
            // Body = after the first blank line (CRLF CRLF, or LF LF).
            let Some(pos) = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4)
                .or_else(|| bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
            else {
                continue;
            };
            let body = &bytes[pos..];
            if !body.windows(3).any(|w| w == b"v=0") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            match Sdp::parse_bytes(body) {
                Ok(s) => {
                    parsed += 1;
                    // Whatever parsed must serialise and parse to the same text again.
                    let t = s.to_string();
                    assert_eq!(Sdp::parse(&t).unwrap().to_string(), t, "{name}");
                    if let Some(i) = s.first_audio() {
                        assert_eq!(s.media[i].port, 49217, "{name}");
                    }
                }
                Err(e) => failed.push((name, e)),
            }
        }
        // sdp01: the 3.3.15 body; audio 0/12 + video with the malformed `a=rtpmap:31 LPC`.
        let sdp01 = std::fs::read(rfc4475_dir().join("sdp01.dat")).unwrap();
        let body = &sdp01[sdp01.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        let s = Sdp::parse_bytes(body).unwrap();
        assert_eq!(s.media.len(), 2);
        assert_eq!(
            s.media[1].attributes,
            [Attribute::Other {
                name: "rtpmap".into(),
                value: Some("31 LPC".into())
            }]
        );
        let (ans, n) = answer(&s, &local(), &origin()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        assert_eq!(ans.media[1].port, 0);
        // mismatch02 lacks s= and t=: tolerated.
        let mm = std::fs::read(rfc4475_dir().join("mismatch02.dat")).unwrap();
        let s = Sdp::parse_bytes(&mm[mm.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..])
            .unwrap();
        assert_eq!(s.session_name, None);
        // Every SDP body parses except test.dat's (`testing=123`, line 2) and dblreq.dat's, whose
        // message starts with a blank line, so what follows the first blank line is the request
        // itself (line 2, after a blank line, is not v=0; its real body is checked below).
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["dblreq.dat", "test.dat"], "{failed:?}");
        assert!(parsed >= 18, "parsed {parsed}");
        assert_eq!(
            (failed[0].1.line, &failed[0].1.kind),
            (2, &SdpErrorKind::MissingVersion)
        );
        let t = &failed[1];
        assert_eq!((t.1.line, &t.1.kind), (2, &SdpErrorKind::MalformedLine));
    }

    #[test]
    fn dblreq_body_with_space_before_equals_is_a_line_error() {
        let bytes = std::fs::read(rfc4475_dir().join("dblreq.dat")).unwrap();
        let start = bytes.windows(3).position(|w| w == b"v=0").unwrap();
        let e = Sdp::parse_bytes(&bytes[start..]).unwrap_err();
        assert_eq!((e.line, e.kind), (7, SdpErrorKind::MalformedLine));
    }

    fn arb_line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]=[ -~]{0,40}",
            "a=(rtpmap|fmtp|ptime|maxptime|sendonly|inactive):[ -~]{0,30}",
            "m=(audio|video) [0-9]{1,6}(/[0-9])? RTP/AVP( [0-9]{1,3}){0,4}",
            "c=IN IP[46] [0-9.:a-f/]{0,20}",
            "o=[ -~]{0,40}",
            "[ -~\t\r]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_lines_never_panic(lines in prop::collection::vec(arb_line(), 0..20)) {
            let text = format!("v=0\r\n{}", lines.join("\r\n"));
            if let Ok(s) = Sdp::parse(&text) {
                let t = s.to_string();
                let again = Sdp::parse(&t).unwrap();
                prop_assert_eq!(again.to_string(), t);
                let _ = answer(&s, &local(), &origin());
                let _ = negotiated_from_answer(&make_offer(&local(), &origin()), &s);
            }
        }

        #[test]
        fn mutated_real_sdp_never_panics(
            which in 0usize..3,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
        ) {
            let mut bytes = [ASTERISK, FREESWITCH, BARESIP][which].as_bytes().to_vec();
            for (idx, byte, op) in edits {
                let i = idx.index(bytes.len().max(1));
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i.min(bytes.len()), byte),
                    _ if i < bytes.len() => { bytes.remove(i); }
                    _ => {}
                }
            }
            match Sdp::parse_bytes(&bytes) {
                Ok(s) => {
                    let t = s.to_string();
                    prop_assert_eq!(Sdp::parse(&t).unwrap().to_string(), t);
                    let _ = answer(&s, &local(), &origin());
                }
                Err(e) => prop_assert!(e.line <= bytes.split(|&b| b == b'\n').count()),
            }
        }
    }
}
