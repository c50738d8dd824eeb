//! SIP: messages, transactions, dialogs and the user agent.

pub mod dialog;
pub mod keepalive;
pub mod msg;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod uri;

pub use msg::{Framing, Headers, Message, Method, NameAddr, Request, Response, Via, parse};
pub use uri::Uri;

/// Why a message could not be accepted, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// For a request that can be answered: the status to answer with (400, 505…). `None`: drop.
    pub status: Option<u16>,
    pub reason: String,
    /// The headers that were read, to build the error response from.
    pub headers: Headers,
}

impl ParseError {
    pub(crate) fn bad(reason: impl Into<String>) -> Self {
        Self {
            status: None,
            reason: reason.into(),
            headers: Headers::default(),
        }
    }
    pub(crate) fn drop(reason: impl Into<String>) -> Self {
        Self::bad(reason)
    }
    pub(crate) fn reject(status: u16, reason: impl Into<String>, headers: Headers) -> Self {
        Self {
            status: Some(status),
            reason: reason.into(),
            headers,
        }
    }

    /// The error response to send, when the request carried enough to address one (a Via, From,
    /// To, Call-ID and CSeq); otherwise the message is dropped.
    pub fn response(&self) -> Option<Response> {
        let status = self.status?;
        let h = &self.headers;
        for n in ["Via", "From", "To", "Call-ID", "CSeq"] {
            h.get(n)?;
        }
        let reason = match status {
            505 => "Version Not Supported".to_string(),
            501 => "Not Implemented".to_string(),
            _ => format!("Bad Request ({})", self.reason.replace(['\r', '\n'], " ")),
        };
        Some(msg::response_from_headers(h, status, &reason, None))
    }
}

/// Extensions (option tags) this user agent supports.
pub const SUPPORTED: &[&str] = &["replaces", "norefersub"];

/// Methods this user agent implements (the `Allow` header).
pub const ALLOWED: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO, REGISTER";

/// An error answer: status, reason phrase, and a header to add (e.g. `Allow` with a 501).
pub type Rejection = (u16, String, Option<(&'static str, String)>);

/// Application-layer checks a UAS makes on a request that parsed (RFC 3261 §8.2): the error
/// status, its reason and any header to add, or `Ok` to process the request.
pub fn check_request(req: &Request) -> Result<(), Rejection> {
    let h = &req.headers;
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if h.get(name).is_none() {
            return Err((400, format!("Missing {name}"), None));
        }
    }
    for name in [
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Type",
    ] {
        if h.0.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err((400, format!("More than one {name}"), None));
        }
    }
    if let Method::Other(_) = req.method {
        return Err((
            501,
            "Not Implemented".into(),
            Some(("Allow", ALLOWED.to_string())),
        ));
    }
    if !matches!(req.uri.scheme.as_str(), "sip" | "sips" | "tel") {
        return Err((416, "Unsupported URI Scheme".into(), None));
    }
    let unsupported: Vec<String> = h
        .get_all("Require")
        .into_iter()
        .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if !unsupported.is_empty() && !matches!(req.method, Method::Ack | Method::Cancel) {
        return Err((
            420,
            "Bad Extension".into(),
            Some(("Unsupported", unsupported.join(", "))),
        ));
    }
    if !req.body.is_empty() {
        let ct = h.get("Content-Type").unwrap_or("").to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or("").trim().to_string();
        let ok = match req.method {
            Method::Invite | Method::Ack | Method::Update | Method::Prack => {
                media == "application/sdp" || media.starts_with("multipart/")
            }
            _ => true,
        };
        let encoding_ok = h
            .get("Content-Encoding")
            .is_none_or(|e| e.trim().eq_ignore_ascii_case("identity"));
        if !ok || !encoding_ok {
            return Err((
                415,
                "Unsupported Media Type".into(),
                Some(("Accept", "application/sdp".into())),
            ));
        }
    }
    if req.method == Method::Invite {
        let accept = h.get_all("Accept");
        if !accept.is_empty()
            && !accept.iter().any(|a| {
                let m = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                m == "application/sdp" || m == "application/*" || m == "*/*"
            })
        {
            return Err((406, "Not Acceptable".into(), None));
        }
    }
    Ok(())
}
