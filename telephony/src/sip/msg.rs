//! SIP messages (RFC 3261 §7, §20, §25): a tolerant, panic-free parser and a serialiser.
//!
//! Hand-written rather than `rsip`'s parser: measured on the RFC 4475 torture messages, `rsip`
//! 0.4 rejects valid messages a SIP endpoint must accept (folded and oddly spaced header lines,
//! extension methods such as `NEWMETHOD` or `RE%47IST%45R`, unusual URIs) and accepts ones it must
//! reject (a Content-Length larger than the datagram, unbalanced quotes in display names). The
//! parser here frames the message, unfolds and normalises headers (compact forms, case), and
//! validates the fields the transaction and dialog layers rely on; `rsip` is used for digest
//! authentication.

use std::fmt;

use super::ParseError;
use super::uri::Uri;

/// A SIP method; extension methods are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Notify,
    Subscribe,
    Info,
    Update,
    Prack,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.chars().all(is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 token characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Compact header forms (RFC 3261 §7.3.3 and extensions) and canonical spelling.
fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let full = match lower.as_str() {
        "i" | "call-id" => "Call-ID",
        "m" | "contact" => "Contact",
        "e" | "content-encoding" => "Content-Encoding",
        "l" | "content-length" => "Content-Length",
        "c" | "content-type" => "Content-Type",
        "f" | "from" => "From",
        "s" | "subject" => "Subject",
        "k" | "supported" => "Supported",
        "t" | "to" => "To",
        "v" | "via" => "Via",
        "o" | "event" => "Event",
        "r" | "refer-to" => "Refer-To",
        "b" | "referred-by" => "Referred-By",
        "u" | "allow-events" => "Allow-Events",
        "x" | "session-expires" => "Session-Expires",
        "cseq" => "CSeq",
        "max-forwards" => "Max-Forwards",
        "record-route" => "Record-Route",
        "route" => "Route",
        "www-authenticate" => "WWW-Authenticate",
        "proxy-authenticate" => "Proxy-Authenticate",
        "authorization" => "Authorization",
        "proxy-authorization" => "Proxy-Authorization",
        "expires" => "Expires",
        "allow" => "Allow",
        "accept" => "Accept",
        "user-agent" => "User-Agent",
        "server" => "Server",
        "reason" => "Reason",
        "subscription-state" => "Subscription-State",
        _ => {
            // Capitalise each dash-separated word.
            return lower
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
        }
    };
    full.to_string()
}

/// Header fields in order, names canonical, values with folding undone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split (quotes and `<>` respected).
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_commas(v))
            .collect()
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((canonical_name(name), value.into()));
    }

    /// Replace every value of `name` with one value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let v = value.into();
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i].1 = v;
                let keep = i;
                let mut idx = 0;
                self.0.retain(|(n, _)| {
                    let r = idx <= keep || !n.eq_ignore_ascii_case(name);
                    idx += 1;
                    r
                });
            }
            None => self.push(name, v),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// Split a header value on commas that are not inside quotes or angle brackets.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escape) = (false, false, false);
    for c in v.chars() {
        if escape {
            escape = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => {
                escape = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '<' if !quoted => {
                angle = true;
                cur.push(c);
            }
            '>' if !quoted => {
                angle = false;
                cur.push(c);
            }
            ',' if !quoted && !angle => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// The transport a message arrived on: framing rules differ (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram: Content-Length may be absent; extra octets are ignored.
    Datagram,
    /// A stream: Content-Length is required and says where the message ends.
    Stream,
}

/// Where the header section ends: the index of the first body byte.
pub fn header_end(data: &[u8]) -> Option<usize> {
    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(i + 4);
    }
    data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// The largest body accepted on a stream: what a UDP datagram could carry at most.
pub const MAX_STREAM_BODY: usize = 65_536;

/// On a stream (TCP), how many bytes the next message takes: `Ok(Some(n))` when `buf` holds a
/// whole message of `n` bytes (leading CRLF keep-alives included), `Ok(None)` when more bytes are
/// needed, `Err` when the stream cannot be framed (no or bad Content-Length, or a header section
/// over 64 KiB): the connection must be closed (RFC 3261 §18.3).
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok(if skip > 0 { Some(skip) } else { None });
    }
    let Some(end) = header_end(rest) else {
        return if rest.len() > 65_536 {
            Err("header section too long".into())
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&rest[..end]);
    let mut length = None;
    for line in head.split('\n') {
        if let Some((name, value)) = line.split_once(':') {
            let n = name.trim().to_ascii_lowercase();
            if n == "content-length" || n == "l" {
                let v = value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length `{}`", value.trim()))?;
                if length.is_some_and(|l| l != v) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(v);
            }
        }
    }
    let Some(len) = length else {
        return Err("no Content-Length on a stream".into());
    };
    // A body over the limit would have the connection buffer without bound (and a huge value
    // overflowed the sum below).
    if len > MAX_STREAM_BODY {
        return Err(format!(
            "Content-Length {len} over the {MAX_STREAM_BODY}-byte limit"
        ));
    }
    let total = skip + end + len;
    Ok((buf.len() >= total).then_some(total))
}

/// Parse one message. `Err` says whether to answer (a request with a status) or drop.
pub fn parse(data: &[u8], framing: Framing) -> Result<Message, ParseError> {
    let Some(end) = header_end(data) else {
        // A datagram without the blank line: headers only, no body.
        return parse_parts(data, &[], framing, false);
    };
    parse_parts(&data[..end], &data[end..], framing, true)
}

fn parse_parts(
    head: &[u8],
    rest: &[u8],
    framing: Framing,
    had_blank: bool,
) -> Result<Message, ParseError> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t']) {
            let n = lines.len();
            match lines.last_mut() {
                Some(last) if n > 1 => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                _ => return Err(ParseError::drop("the message starts with whitespace")),
            }
        } else if !line.is_empty() {
            lines.push(line.to_string());
        }
    }
    let Some(start) = lines.first() else {
        return Err(ParseError::drop("empty message"));
    };
    let mut headers = Headers::default();
    let mut header_error: Option<String> = None;
    for l in &lines[1..] {
        match l.split_once(':') {
            Some((name, value)) => {
                let name = name.trim_end();
                if name.is_empty() || !name.chars().all(is_token_char) {
                    header_error.get_or_insert(format!("bad header name `{name}`"));
                    continue;
                }
                headers.push(name, value.trim());
            }
            None => {
                header_error.get_or_insert(format!("a header line without `:`: `{l}`"));
            }
        }
    }
    let is_response = start.starts_with("SIP/") && !start.contains(" SIP/");
    // Body and Content-Length.
    let lengths: Vec<String> = headers
        .0
        .iter()
        .filter(|(n, _)| n == "Content-Length")
        .map(|(_, v)| v.trim().to_string())
        .collect();
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return Err(if is_response {
            ParseError::drop("conflicting Content-Length headers")
        } else {
            ParseError::reject(400, "Conflicting Content-Length headers", headers)
        });
    }
    let cl = match headers.get("Content-Length") {
        None => None,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Err(if is_response {
                    ParseError::drop(format!("bad Content-Length `{v}`"))
                } else {
                    ParseError::reject(400, format!("Bad Content-Length `{v}`"), headers)
                });
            }
        },
    };
    let body: Vec<u8> = match (cl, framing) {
        (Some(n), _) if n as usize > rest.len() || (n > 0 && !had_blank) => {
            return Err(if is_response {
                ParseError::drop("Content-Length larger than the message")
            } else {
                ParseError::reject(400, "Content-Length larger than the message", headers)
            });
        }
        (Some(n), _) => rest[..n as usize].to_vec(),
        (None, Framing::Datagram) => rest.to_vec(),
        (None, Framing::Stream) => {
            return Err(if is_response {
                ParseError::drop("no Content-Length on a stream")
            } else {
                ParseError::reject(
                    400,
                    "Content-Length required on a stream transport",
                    headers,
                )
            });
        }
    };
    if is_response {
        let mut it = start.splitn(3, ' ');
        let version = it.next().unwrap_or("");
        let code = it.next().unwrap_or("");
        let reason = it.next().unwrap_or("").to_string();
        if version != "SIP/2.0" {
            return Err(ParseError::drop(format!("unsupported version `{version}`")));
        }
        let status = match code.parse::<u16>() {
            Ok(s) if code.len() == 3 && (100..=699).contains(&s) => s,
            _ => return Err(ParseError::drop(format!("bad status code `{code}`"))),
        };
        if let Some(e) = header_error {
            return Err(ParseError::drop(e));
        }
        let resp = Response {
            status,
            reason,
            headers,
            body,
        };
        check_common(&resp.headers).map_err(ParseError::drop)?;
        return Ok(Message::Response(resp));
    }
    // Request line: exactly three parts separated by single spaces.
    let parts: Vec<&str> = start.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ParseError::reject(400, "Malformed Request-Line", headers));
    }
    let version = parts[2];
    if !version.starts_with("SIP/") {
        return Err(ParseError::reject(400, "Malformed Request-Line", headers));
    }
    if version != "SIP/2.0" {
        return Err(ParseError::reject(505, "Version Not Supported", headers));
    }
    let Some(method) = Method::parse(parts[0]) else {
        return Err(ParseError::reject(400, "Bad method", headers));
    };
    let uri = match Uri::parse(parts[1]) {
        Ok(u) => u,
        Err(e) => {
            return Err(ParseError::reject(
                400,
                format!("Bad Request-URI: {}", e.reason),
                headers,
            ));
        }
    };
    if !uri.headers.is_empty() {
        return Err(ParseError::reject(
            400,
            "Headers are not allowed in a Request-URI",
            headers,
        ));
    }
    if let Some(e) = header_error {
        return Err(ParseError::reject(400, e, headers));
    }
    if let Err(e) = check_common(&headers) {
        return Err(ParseError::reject(400, e, headers));
    }
    if let Some(cseq) = headers.get("CSeq") {
        match parse_cseq(cseq) {
            Some((_, m)) if m != method => {
                return Err(ParseError::reject(
                    400,
                    "CSeq method does not match the request",
                    headers,
                ));
            }
            _ => {}
        }
    }
    Ok(Message::Request(Request {
        method,
        uri,
        headers,
        body,
    }))
}

/// Checks that apply to requests and responses: the headers the stack reads must be well formed
/// when present.
fn check_common(h: &Headers) -> Result<(), String> {
    for v in h.get_all("Via") {
        Via::parse(&v)?;
    }
    for name in ["From", "To"] {
        if let Some(v) = h.get(name) {
            NameAddr::parse(v).map_err(|e| format!("bad {name}: {e}"))?;
        }
    }
    for v in h.get_all("Contact") {
        if v.trim() != "*" {
            NameAddr::parse(&v).map_err(|e| format!("bad Contact: {e}"))?;
        }
    }
    if let Some(v) = h.get("CSeq") {
        parse_cseq(v).ok_or_else(|| format!("bad CSeq `{v}`"))?;
    }
    if let Some(v) = h.get("Max-Forwards") {
        match v.trim().parse::<u32>() {
            Ok(n) if n <= 255 => {}
            _ => return Err(format!("bad Max-Forwards `{v}`")),
        }
    }
    if let Some(v) = h.get("Expires") {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("bad Expires `{v}`"))?;
    }
    Ok(())
}

/// `CSeq: 123 INVITE` → (123, INVITE); the number must be below 2^31.
pub fn parse_cseq(v: &str) -> Option<(u32, Method)> {
    let mut it = v.split_whitespace();
    let n = it.next()?.parse::<u32>().ok().filter(|n| *n < (1 << 31))?;
    let m = Method::parse(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some((n, m))
}

/// A Via header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(v: &str) -> Result<Via, String> {
        // "SIP / 2.0 / UDP host:port;params" with optional whitespace around the slashes.
        let mut rest = v.trim();
        let mut fields = Vec::new();
        for _ in 0..2 {
            let slash = rest.find('/').ok_or_else(|| format!("bad Via `{v}`"))?;
            fields.push(rest[..slash].trim().to_string());
            rest = rest[slash + 1..].trim_start();
        }
        let tend = rest
            .find(|c: char| c.is_whitespace())
            .ok_or_else(|| format!("bad Via `{v}`"))?;
        let transport = rest[..tend].to_ascii_uppercase();
        rest = rest[tend..].trim_start();
        if !fields[0].eq_ignore_ascii_case("SIP") || fields[1] != "2.0" {
            return Err(format!("bad Via protocol in `{v}`"));
        }
        if transport.is_empty() || !transport.chars().all(is_token_char) {
            return Err(format!("bad Via transport in `{v}`"));
        }
        let mut parts = rest.split(';');
        let sent_by = parts.next().unwrap_or("").trim();
        let (host, port) = match sent_by.rsplit_once(':') {
            Some((h, p)) if !sent_by.starts_with('[') || h.ends_with(']') => (
                h.trim().to_string(),
                Some(
                    p.trim()
                        .parse::<u16>()
                        .map_err(|_| format!("bad Via port in `{v}`"))?,
                ),
            ),
            _ => (sent_by.to_string(), None),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("bad Via host in `{v}`"));
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            let (k, val) = match p.split_once('=') {
                Some((k, val)) => (k.trim(), Some(val.trim().to_string())),
                None => (p, None),
            };
            if k.is_empty() || !k.chars().all(is_token_char) {
                return Err(format!("bad Via parameter in `{v}`"));
            }
            params.push((k.to_ascii_lowercase(), val));
        }
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Route, Refer-To).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(v: &str) -> Result<NameAddr, String> {
        let v = v.trim();
        let (display, uri_text, after) = if let Some(lt) = find_unquoted(v, '<') {
            let before = v[..lt].trim();
            let gt = v[lt..].find('>').ok_or("`<` without `>`")? + lt;
            let inner = &v[lt + 1..gt];
            if inner != inner.trim() {
                return Err("whitespace inside `<>`".into());
            }
            let display = if before.is_empty() {
                None
            } else if let Some(q) = before.strip_prefix('"') {
                let body = q
                    .strip_suffix('"')
                    .ok_or("unterminated quoted display name")?;
                if !quoted_ok(body) {
                    return Err("unterminated quoted display name".into());
                }
                Some(body.to_string())
            } else {
                if before.contains('"') {
                    return Err("unbalanced quotes in the display name".into());
                }
                if !before
                    .split_whitespace()
                    .all(|t| t.chars().all(is_token_char))
                {
                    return Err("an unquoted display name may hold only tokens".into());
                }
                Some(before.to_string())
            };
            (display, inner, &v[gt + 1..])
        } else {
            if v.contains('"') {
                return Err("unbalanced quotes".into());
            }
            // addr-spec: parameters after the first ';' belong to the header, and the URI may not
            // hold '?' or ',' (RFC 3261 §20.10).
            let (u, after) = match v.find(';') {
                Some(i) => (&v[..i], &v[i..]),
                None => (v, ""),
            };
            if u.contains('?') || u.contains(',') {
                return Err("a URI with `?` or `,` must be inside `<>`".into());
            }
            (None, u, after)
        };
        let uri = Uri::parse(uri_text.trim()).map_err(|e| e.reason)?;
        let mut params = Vec::new();
        let after = after.trim();
        if !after.is_empty() {
            let Some(list) = after.strip_prefix(';') else {
                return Err(format!("unexpected `{after}`"));
            };
            for p in list.split(';') {
                let p = p.trim();
                let (k, val) = match p.split_once('=') {
                    Some((k, val)) => (k.trim(), Some(val.trim().to_string())),
                    None => (p, None),
                };
                if k.is_empty() || !k.chars().all(is_token_char) {
                    return Err("empty or bad parameter".into());
                }
                params.push((k.to_ascii_lowercase(), val));
            }
        }
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escape) = (false, false);
    for (i, c) in s.char_indices() {
        if escape {
            escape = false;
            continue;
        }
        match c {
            '\\' if quoted => escape = true,
            '"' => quoted = !quoted,
            c if c == target && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The inside of a quoted string has every `"` escaped.
fn quoted_ok(body: &str) -> bool {
    let mut escape = false;
    for c in body.chars() {
        if escape {
            escape = false;
        } else if c == '\\' {
            escape = true;
        } else if c == '"' {
            return false;
        }
    }
    !escape
}

fn write_headers(f: &mut fmt::Formatter<'_>, h: &Headers, body: &[u8]) -> fmt::Result {
    for (n, v) in &h.0 {
        if n.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        write!(f, "{n}: {v}\r\n")?;
    }
    write!(f, "Content-Length: {}\r\n\r\n", body.len())
}

impl fmt::Display for Request {
    /// The header section; the body is appended by [`Request::to_bytes`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} SIP/2.0\r\n", self.method, self.uri)?;
        write_headers(f, &self.headers, &self.body)
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0 {} {}\r\n", self.status, self.reason)?;
        write_headers(f, &self.headers, &self.body)
    }
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.to_string().into_bytes();
        v.extend_from_slice(&self.body);
        v
    }

    pub fn cseq(&self) -> Option<(u32, Method)> {
        self.headers.get("CSeq").and_then(parse_cseq)
    }

    pub fn top_via(&self) -> Option<Via> {
        self.headers
            .get_all("Via")
            .first()
            .and_then(|v| Via::parse(v).ok())
    }

    pub fn from(&self) -> Option<NameAddr> {
        self.headers
            .get("From")
            .and_then(|v| NameAddr::parse(v).ok())
    }

    pub fn to(&self) -> Option<NameAddr> {
        self.headers.get("To").and_then(|v| NameAddr::parse(v).ok())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.headers.get("Call-ID")
    }

    /// A response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq copied; a
    /// To tag added when `to_tag` is given and the To has none.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        response_from_headers(&self.headers, status, reason, to_tag)
    }
}

/// Build a response from a request's headers (also used for requests that failed to parse).
pub fn response_from_headers(
    h: &Headers,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Response {
    let mut headers = Headers::default();
    for (n, v) in &h.0 {
        if n == "Via"
            || n == "From"
            || n == "Call-ID"
            || n == "CSeq"
            || n == "Record-Route" && (101..300).contains(&status)
        {
            headers.0.push((n.clone(), v.clone()));
        } else if n == "To" {
            let mut to = v.clone();
            if let Some(tag) = to_tag
                && NameAddr::parse(v)
                    .map(|na| na.tag().is_none())
                    .unwrap_or(false)
            {
                to.push_str(&format!(";tag={tag}"));
            }
            headers.0.push((n.clone(), to));
        }
    }
    Response {
        status,
        reason: reason.to_string(),
        headers,
        body: Vec::new(),
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.to_string().into_bytes();
        v.extend_from_slice(&self.body);
        v
    }

    pub fn cseq(&self) -> Option<(u32, Method)> {
        self.headers.get("CSeq").and_then(parse_cseq)
    }

    pub fn top_via(&self) -> Option<Via> {
        self.headers
            .get_all("Via")
            .first()
            .and_then(|v| Via::parse(v).ok())
    }

    pub fn to(&self) -> Option<NameAddr> {
        self.headers.get("To").and_then(|v| NameAddr::parse(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_stream() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nbody";
        assert_eq!(stream_frame_len(&m[..10]), Ok(None));
        assert_eq!(stream_frame_len(&m[..m.len() - 1]), Ok(None));
        assert_eq!(stream_frame_len(m), Ok(Some(m.len())));
        let mut two = b"\r\n\r\n".to_vec();
        two.extend_from_slice(m);
        two.extend_from_slice(m);
        assert_eq!(stream_frame_len(&two), Ok(Some(4 + m.len())));
        assert_eq!(stream_frame_len(b"\r\n"), Ok(Some(2)));
        assert!(stream_frame_len(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").is_err());
        assert!(
            stream_frame_len(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n").is_err()
        );
    }

    /// Found by fuzzing (`fuzz/seeds/sip_message/huge_content_length`): a Content-Length near
    /// `usize::MAX` overflowed the frame length; any body over the limit closes the connection
    /// instead of buffering without bound.
    #[test]
    fn refuses_a_huge_content_length_on_a_stream() {
        for cl in ["18446744073709551615", "18446744073709551500", "65537"] {
            let m = format!("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: {cl}\r\n\r\n");
            let e = stream_frame_len(m.as_bytes()).expect_err(cl);
            assert!(e.contains("limit"), "{e}");
        }
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 65536\r\n\r\n";
        assert_eq!(stream_frame_len(m), Ok(None));
    }
}
