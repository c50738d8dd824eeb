//! Dialogs (RFC 3261 §12): identifiers, route set, remote target and CSeq, and the in-dialog
//! requests built from them.

use super::msg::{Headers, Method, NameAddr, Request, Response};
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The local From/To value (with our tag).
    pub local: String,
    /// The remote party's From/To value (with its tag).
    pub remote: String,
    pub remote_target: Uri,
    /// Route set, in the order requests must carry it.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
}

impl Dialog {
    /// The dialog a UAC gets from a 2xx (or a 1xx with a To tag) to its INVITE.
    pub fn from_uac(invite: &Request, resp: &Response) -> Option<Dialog> {
        let to = resp.to()?;
        let remote_tag = to.tag()?.to_string();
        let from = invite.from()?;
        let local_tag = from.tag()?.to_string();
        let contact = resp
            .headers
            .get_all("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|na| na.uri)
            .unwrap_or_else(|| invite.uri.clone());
        let mut route_set = resp.headers.get_all("Record-Route");
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local_tag,
            remote_tag,
            local: invite.headers.get("From")?.to_string(),
            remote: resp.headers.get("To")?.to_string(),
            remote_target: contact,
            route_set,
            local_cseq: invite.cseq()?.0,
            remote_cseq: None,
        })
    }

    /// The dialog a UAS creates when it answers an INVITE with `local_tag`.
    pub fn from_uas(invite: &Request, local_tag: &str) -> Option<Dialog> {
        let from = invite.from()?;
        let contact = invite
            .headers
            .get_all("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|na| na.uri)?;
        let to = invite.headers.get("To")?;
        let local = if invite.to()?.tag().is_some() {
            to.to_string()
        } else {
            format!("{to};tag={local_tag}")
        };
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: from.tag()?.to_string(),
            local,
            remote: invite.headers.get("From")?.to_string(),
            remote_target: contact,
            route_set: invite.headers.get_all("Record-Route"),
            local_cseq: rand::random::<u32>() % 10_000 + 1,
            remote_cseq: invite.cseq().map(|c| c.0),
        })
    }

    /// Does this in-dialog request belong to the dialog?
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req
                .from()
                .and_then(|f| f.tag().map(|t| t == self.remote_tag))
                == Some(true)
            && req.to().and_then(|t| t.tag().map(|t| t == self.local_tag)) == Some(true)
    }

    /// A new in-dialog request (BYE, re-INVITE, REFER, INFO…): CSeq incremented, route set and
    /// remote target applied (loose routing).
    pub fn request(&mut self, method: Method, via: &str, contact: &str) -> Request {
        self.local_cseq += 1;
        self.request_with_cseq(method, self.local_cseq, via, contact)
    }

    /// The ACK for a 2xx (RFC 3261 §13.2.2.4): its own branch, the INVITE's CSeq number.
    pub fn ack(&self, invite_cseq: u32, via: &str, contact: &str) -> Request {
        self.request_with_cseq(Method::Ack, invite_cseq, via, contact)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32, via: &str, contact: &str) -> Request {
        let mut h = Headers::default();
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push("From", self.local.clone());
        h.push("To", self.remote.clone());
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{cseq} {method}"));
        h.push("Contact", contact);
        for r in &self.route_set {
            h.push("Route", r.clone());
        }
        Request {
            method,
            uri: self.remote_target.clone(),
            headers: h,
            body: Vec::new(),
        }
    }
}
