//! SIP and other URIs (RFC 3261 §19.1), parsed leniently where the RFC 4475 torture tests say a
//! receiver must accept, strictly where they say it must reject.

use std::fmt;

use super::ParseError;

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// Lower-cased scheme: `sip`, `sips`, `tel` or anything else (kept opaque).
    pub scheme: String,
    /// The user part, still %-escaped (`None` when absent).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// `?name=value` header components (never allowed in a Request-URI).
    pub headers: Vec<(String, String)>,
    raw: String,
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// Decode `%XX` escapes (invalid escapes are kept as they are).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Uri {
    /// A plain `sip:user@host:port` URI.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        let mut raw = String::from("sip:");
        if let Some(u) = user {
            raw.push_str(u);
            raw.push('@');
        }
        raw.push_str(host);
        if let Some(p) = port {
            raw.push_str(&format!(":{p}"));
        }
        Uri {
            scheme: "sip".into(),
            user: user.map(str::to_string),
            password: None,
            host: host.to_string(),
            port,
            params: Vec::new(),
            headers: Vec::new(),
            raw,
        }
    }

    /// Parse a URI. No whitespace and no angle brackets are allowed inside.
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let bad = |why: &str| ParseError::bad(format!("bad URI `{s}`: {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        {
            return Err(bad("whitespace, quotes or angle brackets inside a URI"));
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(bad("no scheme"));
        };
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(bad("bad scheme"));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            // Opaque absolute URI (tel:, mailto:, unknown schemes): syntax only.
            if rest.is_empty() {
                return Err(bad("empty after the scheme"));
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: String::new(),
                port: None,
                params: Vec::new(),
                headers: Vec::new(),
                raw: s.to_string(),
            });
        }
        // userinfo: everything up to the LAST '@' (the user part may contain ';', '?' and escaped
        // '@'); header components ('?') can only follow the host part.
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostpart, hdrs) = match hostpart.split_once('?') {
            Some((m, h)) => (m, Some(h)),
            None => (hostpart, None),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                if u.is_empty() {
                    return Err(bad("empty user part"));
                }
                match u.split_once(':') {
                    Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
                    None => (Some(u.to_string()), None),
                }
            }
        };
        let mut parts = hostpart.split(';');
        let hostport = parts.next().unwrap_or("");
        let (host, port) = split_hostport(hostport).ok_or_else(|| bad("bad host or port"))?;
        let mut params = Vec::new();
        for p in parts {
            if p.is_empty() {
                return Err(bad("empty parameter"));
            }
            match p.split_once('=') {
                Some((k, v)) => params.push((k.to_ascii_lowercase(), Some(v.to_string()))),
                None => params.push((p.to_ascii_lowercase(), None)),
            }
        }
        let mut headers = Vec::new();
        if let Some(h) = hdrs {
            for kv in h.split('&') {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| bad("bad header component"))?;
                headers.push((unescape(k), unescape(v)));
            }
        }
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
            raw: s.to_string(),
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The user part with escapes decoded.
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }

    pub fn is_sip(&self) -> bool {
        self.scheme == "sip" || self.scheme == "sips"
    }
}

fn split_hostport(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c) || is_unreserved(c))
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let u =
            Uri::parse("sip:alice:pw@Example.COM:5070;transport=udp;lr?subject=hi").expect("ok");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some("udp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers, vec![("subject".to_string(), "hi".to_string())]);
    }

    #[test]
    fn user_part_may_hold_semicolons_and_escapes() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").expect("ok");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").expect("ok");
        assert_eq!(u.user_unescaped().as_deref(), Some("sips:user@example.com"));
        let u = Uri::parse("sip:[2001:db8::10]:5070").expect("ok");
        assert_eq!(u.host, "[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
    }

    #[test]
    fn rejects_what_must_be_rejected() {
        for bad in [
            "",
            "sip:",
            "sip:user@",
            "<sip:a@b>",
            "sip:a@b; lr",
            "sip:a@b:99999",
            "sip:a@b;;x",
            "1sip:a@b",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
    }
}
