//! Call-progress classification for one outbound call attempt, as a sans-IO state machine.
//!
//! Inputs ([`Event`]) are the SIP responses to the INVITE (status, reason phrase and an optional
//! `Reason:` header cause), the early-media tone events of [`crate::tones`], timer ticks, and a
//! local hang-up. The output is one [`Outcome`]: a typed [`Disposition`] the dialer acts on, the
//! rule that picked it (`reason`, a short static string for logs and reports) and what the UA
//! must do next ([`Action`]). Time is milliseconds on the caller's clock; nothing here reads a
//! clock or touches a socket.
//!
//! Answering-machine detection is a later stage: a 2xx is [`Disposition::Answered`] whatever
//! answered. The only refinement after answer is fax: a CNG/CED tone within
//! [`ProgressConfig::fax_after_answer_ms`] of the 2xx turns the outcome into
//! [`Disposition::Fax`] (a second, final [`Outcome`] with [`Action::HangUp`]).
//!
//! # Mapping
//!
//! Rules are tried top to bottom; the first that matches decides.
//!
//! | input | disposition | reason |
//! |---|---|---|
//! | 2xx | Answered | `2xx answered` |
//! | fax CNG/CED in early media | Fax | `fax tone in early media` |
//! | SIT intercept / vacant code in early media | InvalidNumber | `SIT intercept`, `SIT vacant code` |
//! | SIT no circuit, ineffective other, reserved, unclassified | Unreachable | `SIT no circuit`, `SIT other` |
//! | SIT reorder | NetworkError | `SIT reorder` |
//! | busy tone in early media | Busy | `busy tone in early media` |
//! | congestion (reorder) tone in early media | NetworkError | `congestion tone in early media` |
//! | final response with `Reason: Q.850;cause=N` | by cause: 1,2,3,5,22,28 InvalidNumber; 17 Busy; 18,19 NoAnswer; 4,20,23,27 Unreachable; 21,55,57,87 Rejected; 34–47,58,65,70,79,88,111,127 NetworkError; 102 NoAnswer after ringing else NetworkError; others fall through | `Q.850 ...` |
//! | 486, 600 | Busy | `486 busy here`, `600 busy everywhere` |
//! | 404, 410, 484, 485, 604 | InvalidNumber | `404 not found`, ... |
//! | 403, 603, 607, 608 | Rejected | `403 forbidden`, `603 decline`, ... |
//! | 488, 606 | NetworkError | `488/606 media not acceptable` |
//! | 487 | Cancelled if we hung up, else NetworkError | `487 without local cancel` |
//! | other final after a SIT / busy tone heard without deciding early | as the tone above | |
//! | 408, 480 after ringing (180, or ringback heard) | NoAnswer | `408 after ringing`, `480 after ringing` |
//! | reason phrase keywords (busy; not found, unallocated, vacant, not in service; absent, unreachable, switched/powered off; no answer) | Busy / InvalidNumber / Unreachable / NoAnswer | `phrase: ...` |
//! | 480 or 503 after an announcement (speech in early media) | Unreachable | `480 after announcement`, ... |
//! | 480 without ringing | Unreachable | `480 without ringing` |
//! | 408 without ringing, 503, other 4xx/5xx | NetworkError | `408 before ringing`, `503 service unavailable`, `other 4xx`, `other 5xx` |
//! | 3xx (redirects are not followed) | Unreachable | `3xx redirect not followed` |
//! | other 6xx | Rejected | `other 6xx` |
//! | nothing received within `no_response_ms` (or `ring_timeout_ms`, if shorter) | NetworkError | `no response to INVITE` |
//! | `ring_timeout_ms` reached after ringing or 18x | NoAnswer | `ring timeout` |
//! | `ring_timeout_ms` reached with only an announcement | Unreachable | `announcement until timeout` |
//! | `ring_timeout_ms` reached after only 100 Trying | NetworkError | `only 100 Trying until timeout` |
//! | local hang-up before a final response | Cancelled | `local hang-up` |
//!
//! Once decided, later inputs are ignored (a 487 after our CANCEL, or a 2xx racing the CANCEL,
//! which the INVITE client transaction must ACK and BYE on its own), except the fax refinement.

use std::fmt;

use crate::tones::{SitClass, Tone};

/// What happened to the call attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Answered (by a person or a machine: AMD is a later stage).
    Answered,
    /// The callee is busy.
    Busy,
    /// It rang and nobody answered.
    NoAnswer,
    /// The number does not exist, changed, or is incomplete.
    InvalidNumber,
    /// The callee cannot be reached now (switched off, out of coverage, no route).
    Unreachable,
    /// The callee or the network refused the call.
    Rejected,
    /// A fax machine.
    Fax,
    /// Our network/carrier failed: no response, server errors, congestion.
    NetworkError,
    /// We hung up first.
    Cancelled,
}

impl Disposition {
    /// Lower-case name for logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::InvalidNumber => "invalid_number",
            Disposition::Unreachable => "unreachable",
            Disposition::Rejected => "rejected",
            Disposition::Fax => "fax",
            Disposition::NetworkError => "network_error",
            Disposition::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user agent must do after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing: a final response already ended the INVITE transaction.
    None,
    /// Answered: go on with the call (AMD, the bot).
    Proceed,
    /// End the pending INVITE with CANCEL (a provisional response has been received).
    Cancel,
    /// Stop the INVITE transaction without CANCEL: nothing was received, so there is nothing to
    /// cancel (RFC 3261 §9.1).
    Abandon,
    /// The call is up but useless (fax): send BYE.
    HangUp,
}

/// A decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The classification.
    pub disposition: Disposition,
    /// The rule that picked it.
    pub reason: &'static str,
    /// What the UA must do now.
    pub action: Action,
    /// When it was decided.
    pub at_ms: u64,
    /// The SIP status that decided it, if one did.
    pub status: Option<u16>,
}

/// One value of a `Reason:` header (RFC 3326), e.g. `Q.850;cause=17;text="User busy"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonHeader {
    /// Protocol token: `Q.850`, `SIP`, ...
    pub protocol: String,
    /// The `cause` parameter.
    pub cause: Option<u16>,
    /// The `text` parameter, unquoted.
    pub text: Option<String>,
}

impl ReasonHeader {
    /// Parses a `Reason:` header value; with several comma-separated values, the Q.850 one is
    /// returned if present, else the first. `None` for an empty or unusable value.
    pub fn parse(value: &str) -> Option<ReasonHeader> {
        let all: Vec<ReasonHeader> = split_outside_quotes(value, ',')
            .into_iter()
            .filter_map(Self::parse_one)
            .collect();
        let q850 = all
            .iter()
            .position(|r| r.protocol.eq_ignore_ascii_case("Q.850"));
        all.into_iter().nth(q850.unwrap_or(0))
    }

    fn parse_one(value: &str) -> Option<ReasonHeader> {
        let mut parts = split_outside_quotes(value, ';').into_iter();
        let protocol = parts.next()?.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
        if protocol.is_empty() || !protocol.chars().all(token) {
            return None;
        }
        let mut r = ReasonHeader {
            protocol: protocol.to_string(),
            cause: None,
            text: None,
        };
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("cause") {
                r.cause = v.parse().ok();
            } else if k.eq_ignore_ascii_case("text") {
                let v = v.strip_prefix('"').unwrap_or(v);
                r.text = Some(v.strip_suffix('"').unwrap_or(v).to_string());
            }
        }
        Some(r)
    }

    /// The Q.850 cause, if this is a Q.850 reason.
    pub fn q850_cause(&self) -> Option<u16> {
        self.cause
            .filter(|_| self.protocol.eq_ignore_ascii_case("Q.850"))
    }
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A SIP response to the INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub phrase: String,
    /// Parsed `Reason:` header, if the response had one.
    pub reason: Option<ReasonHeader>,
}

/// An input to [`CallProgress::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A response to the INVITE.
    Response(Response),
    /// A tone event from the early media (or, after answer, the call audio).
    Tone(Tone),
    /// Time passed: check the timers.
    Tick,
    /// The dialer hung up (campaign stopped, operator abort).
    LocalHangup,
}

impl Event {
    /// A response without a `Reason:` header.
    pub fn response(status: u16, phrase: &str) -> Event {
        Event::Response(Response {
            status,
            phrase: phrase.into(),
            reason: None,
        })
    }

    /// A response with a `Reason:` header value (parsed with [`ReasonHeader::parse`]).
    pub fn response_with_reason(status: u16, phrase: &str, reason: &str) -> Event {
        Event::Response(Response {
            status,
            phrase: phrase.into(),
            reason: ReasonHeader::parse(reason),
        })
    }
}

/// Timers and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressConfig {
    /// No response at all within this long (from the INVITE) is a network error. Default 32 s
    /// (RFC 3261 Timer B).
    pub no_response_ms: u64,
    /// Give up after this long from the INVITE without a final response. Default 30 s.
    pub ring_timeout_ms: u64,
    /// Decide on SIT, busy, congestion and fax tones in early media without waiting for the final
    /// response (and CANCEL). Default true.
    pub decide_on_early_media: bool,
    /// A fax tone this soon after the 2xx turns Answered into Fax. Default 10 s.
    pub fax_after_answer_ms: u64,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            no_response_ms: 32_000,
            ring_timeout_ms: 30_000,
            decide_on_early_media: true,
            fax_after_answer_ms: 10_000,
        }
    }
}

/// Where the attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// INVITE sent, nothing back.
    Calling,
    /// 100 Trying or another provisional without ringing.
    Proceeding,
    /// Ringing (180, or ringback heard in early media).
    Ringing,
    /// 2xx received.
    Answered,
    /// Decided, call not up.
    Ended,
}

/// The classifier for one outbound call attempt.
#[derive(Debug, Clone)]
pub struct CallProgress {
    cfg: ProgressConfig,
    start_ms: u64,
    got_response: bool,
    got_18x: bool,
    ringing: bool,
    announcement: bool,
    sit: Option<SitClass>,
    busy_tone: bool,
    congestion_tone: bool,
    local_hangup: bool,
    answered_at: Option<u64>,
    outcome: Option<Outcome>,
    refined: bool,
}

fn sit_disposition(c: SitClass) -> (Disposition, &'static str) {
    match c {
        SitClass::Intercept => (Disposition::InvalidNumber, "SIT intercept"),
        SitClass::VacantCode => (Disposition::InvalidNumber, "SIT vacant code"),
        SitClass::NoCircuit => (Disposition::Unreachable, "SIT no circuit"),
        SitClass::Reorder => (Disposition::NetworkError, "SIT reorder"),
        SitClass::IneffectiveOther | SitClass::Reserved | SitClass::Unclassified => {
            (Disposition::Unreachable, "SIT other")
        }
    }
}

fn q850_disposition(cause: u16, ringing: bool) -> Option<(Disposition, &'static str)> {
    use Disposition::*;
    Some(match cause {
        1 => (InvalidNumber, "Q.850 1 unallocated number"),
        2 | 3 => (InvalidNumber, "Q.850 2/3 no route"),
        5 => (InvalidNumber, "Q.850 5 misdialled trunk prefix"),
        22 => (InvalidNumber, "Q.850 22 number changed"),
        28 => (InvalidNumber, "Q.850 28 invalid number format"),
        17 => (Busy, "Q.850 17 user busy"),
        18 => (NoAnswer, "Q.850 18 no user responding"),
        19 => (NoAnswer, "Q.850 19 no answer from user"),
        4 => (Unreachable, "Q.850 4 special information tone"),
        20 => (Unreachable, "Q.850 20 subscriber absent"),
        23 => (Unreachable, "Q.850 23 redirected"),
        27 => (Unreachable, "Q.850 27 destination out of order"),
        21 => (Rejected, "Q.850 21 call rejected"),
        55 | 57 | 87 => (Rejected, "Q.850 barred"),
        34..=47 | 58 | 65 | 70 | 79 | 88 | 111 | 127 => (NetworkError, "Q.850 network failure"),
        102 if ringing => (NoAnswer, "Q.850 102 timer expiry after ringing"),
        102 => (NetworkError, "Q.850 102 timer expiry"),
        _ => return None,
    })
}

fn phrase_disposition(phrase: &str) -> Option<(Disposition, &'static str)> {
    let p = phrase.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| p.contains(w));
    if has(&["busy"]) {
        Some((Disposition::Busy, "phrase: busy"))
    } else if has(&[
        "not found",
        "unallocated",
        "unassigned",
        "vacant",
        "not in service",
        "no such",
        "does not exist",
        "invalid number",
    ]) {
        Some((Disposition::InvalidNumber, "phrase: number does not exist"))
    } else if has(&[
        "absent",
        "unreachable",
        "not reachable",
        "switched off",
        "powered off",
        "out of coverage",
    ]) {
        Some((Disposition::Unreachable, "phrase: subscriber unreachable"))
    } else if has(&["no answer", "not answering"]) {
        Some((Disposition::NoAnswer, "phrase: no answer"))
    } else {
        None
    }
}

impl CallProgress {
    /// A classifier for an INVITE sent at `invite_sent_ms`.
    pub fn new(cfg: ProgressConfig, invite_sent_ms: u64) -> Self {
        CallProgress {
            cfg,
            start_ms: invite_sent_ms,
            got_response: false,
            got_18x: false,
            ringing: false,
            announcement: false,
            sit: None,
            busy_tone: false,
            congestion_tone: false,
            local_hangup: false,
            answered_at: None,
            outcome: None,
            refined: false,
        }
    }

    /// The decision so far (the latest one, after a fax refinement).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Where the attempt is.
    pub fn phase(&self) -> Phase {
        match (&self.outcome, self.answered_at) {
            (_, Some(_)) => Phase::Answered,
            (Some(_), None) => Phase::Ended,
            (None, None) if self.ringing => Phase::Ringing,
            (None, None) if self.got_response => Phase::Proceeding,
            (None, None) => Phase::Calling,
        }
    }

    /// When [`Event::Tick`] next needs to be delivered, if a timer is running.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.outcome.is_some() {
            return None;
        }
        let ring = self.start_ms + self.cfg.ring_timeout_ms;
        if self.got_response {
            Some(ring)
        } else {
            Some(ring.min(self.start_ms + self.cfg.no_response_ms))
        }
    }

    /// Feeds one input at `now_ms`; returns the outcome if this input decided (or refined) it.
    pub fn handle(&mut self, now_ms: u64, event: &Event) -> Option<Outcome> {
        if let Some(o) = self.outcome {
            return self.after_decision(now_ms, o, event);
        }
        let decided = match event {
            Event::Response(r) => self.on_response(r),
            Event::Tone(t) => self.on_tone(*t),
            Event::Tick => self.on_tick(now_ms),
            Event::LocalHangup => {
                self.local_hangup = true;
                Some((Disposition::Cancelled, "local hang-up", self.stop_action()))
            }
        };
        let (disposition, reason, action) = decided?;
        let status = match event {
            Event::Response(r) => Some(r.status),
            _ => None,
        };
        if disposition == Disposition::Answered {
            self.answered_at = Some(now_ms);
        }
        let o = Outcome {
            disposition,
            reason,
            action,
            at_ms: now_ms,
            status,
        };
        self.outcome = Some(o);
        Some(o)
    }

    fn after_decision(&mut self, now_ms: u64, o: Outcome, event: &Event) -> Option<Outcome> {
        let answered_at = self.answered_at?;
        let is_fax = matches!(event, Event::Tone(Tone::FaxCng | Tone::FaxCed));
        if o.disposition != Disposition::Answered
            || self.refined
            || !is_fax
            || now_ms > answered_at + self.cfg.fax_after_answer_ms
        {
            return None;
        }
        self.refined = true;
        let o = Outcome {
            disposition: Disposition::Fax,
            reason: "fax tone after answer",
            action: Action::HangUp,
            at_ms: now_ms,
            status: None,
        };
        self.outcome = Some(o);
        Some(o)
    }

    /// CANCEL needs a provisional response first; without any response there is nothing to cancel.
    fn stop_action(&self) -> Action {
        if self.got_response {
            Action::Cancel
        } else {
            Action::Abandon
        }
    }

    fn on_response(&mut self, r: &Response) -> Option<(Disposition, &'static str, Action)> {
        match r.status {
            100..=199 => {
                self.got_response = true;
                if r.status != 100 {
                    self.got_18x = true;
                }
                if r.status == 180 {
                    self.ringing = true;
                }
                None
            }
            200..=299 => {
                self.got_response = true;
                Some((Disposition::Answered, "2xx answered", Action::Proceed))
            }
            300..=699 => {
                self.got_response = true;
                let (d, why) = self.classify_final(r);
                Some((d, why, Action::None))
            }
            // Not a valid status code: ignore it (the SIP parser should not deliver it).
            _ => None,
        }
    }

    fn classify_final(&self, r: &Response) -> (Disposition, &'static str) {
        use Disposition::*;
        if let Some(d) = r
            .reason
            .as_ref()
            .and_then(ReasonHeader::q850_cause)
            .and_then(|c| q850_disposition(c, self.ringing))
        {
            return d;
        }
        match r.status {
            486 => return (Busy, "486 busy here"),
            600 => return (Busy, "600 busy everywhere"),
            404 => return (InvalidNumber, "404 not found"),
            410 => return (InvalidNumber, "410 gone"),
            484 => return (InvalidNumber, "484 address incomplete"),
            485 => return (InvalidNumber, "485 ambiguous"),
            604 => return (InvalidNumber, "604 does not exist anywhere"),
            403 => return (Rejected, "403 forbidden"),
            603 => return (Rejected, "603 decline"),
            607 => return (Rejected, "607 unwanted"),
            608 => return (Rejected, "608 rejected"),
            488 | 606 => return (NetworkError, "488/606 media not acceptable"),
            487 if self.local_hangup => return (Cancelled, "487 after local cancel"),
            487 => return (NetworkError, "487 without local cancel"),
            _ => {}
        }
        if let Some(c) = self.sit {
            return sit_disposition(c);
        }
        if self.busy_tone {
            return (Busy, "busy tone in early media");
        }
        if self.congestion_tone {
            return (NetworkError, "congestion tone in early media");
        }
        match r.status {
            408 if self.ringing => return (NoAnswer, "408 after ringing"),
            480 if self.ringing => return (NoAnswer, "480 after ringing"),
            _ => {}
        }
        if let Some(d) = phrase_disposition(&r.phrase) {
            return d;
        }
        match r.status {
            480 if self.announcement => (Unreachable, "480 after announcement"),
            503 if self.announcement => (Unreachable, "503 after announcement"),
            480 => (Unreachable, "480 without ringing"),
            408 => (NetworkError, "408 before ringing"),
            503 => (NetworkError, "503 service unavailable"),
            300..=399 => (Unreachable, "3xx redirect not followed"),
            400..=499 => (NetworkError, "other 4xx"),
            500..=599 => (NetworkError, "other 5xx"),
            _ => (Rejected, "other 6xx"),
        }
    }

    fn on_tone(&mut self, tone: Tone) -> Option<(Disposition, &'static str, Action)> {
        let early = self.cfg.decide_on_early_media;
        let stop = self.stop_action();
        match tone {
            Tone::Ringback => {
                self.ringing = true;
                None
            }
            Tone::Speech => {
                self.announcement = true;
                None
            }
            Tone::Sit(c) => {
                self.sit = Some(c);
                early.then(|| {
                    let (d, why) = sit_disposition(c);
                    (d, why, stop)
                })
            }
            Tone::Busy => {
                self.busy_tone = true;
                early.then_some((Disposition::Busy, "busy tone in early media", stop))
            }
            Tone::Congestion => {
                self.congestion_tone = true;
                early.then_some((
                    Disposition::NetworkError,
                    "congestion tone in early media",
                    stop,
                ))
            }
            Tone::FaxCng | Tone::FaxCed => {
                early.then_some((Disposition::Fax, "fax tone in early media", stop))
            }
        }
    }

    fn on_tick(&mut self, now: u64) -> Option<(Disposition, &'static str, Action)> {
        let elapsed = now.saturating_sub(self.start_ms);
        if !self.got_response && elapsed >= self.cfg.no_response_ms.min(self.cfg.ring_timeout_ms) {
            return Some((
                Disposition::NetworkError,
                "no response to INVITE",
                Action::Abandon,
            ));
        }
        if elapsed < self.cfg.ring_timeout_ms {
            return None;
        }
        Some(if self.ringing || (self.got_18x && !self.announcement) {
            (Disposition::NoAnswer, "ring timeout", Action::Cancel)
        } else if self.announcement {
            (
                Disposition::Unreachable,
                "announcement until timeout",
                Action::Cancel,
            )
        } else {
            (
                Disposition::NetworkError,
                "only 100 Trying until timeout",
                Action::Cancel,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reason_header_parsing() {
        let r = ReasonHeader::parse("Q.850;cause=17;text=\"User busy\"").unwrap();
        assert_eq!(
            (r.q850_cause(), r.text.as_deref()),
            (Some(17), Some("User busy"))
        );
        // Several values: the Q.850 one wins; commas and semicolons inside quotes are text.
        let r = ReasonHeader::parse("SIP;cause=480;text=\"a, b; c\", Q.850 ; cause = 20").unwrap();
        assert_eq!((r.protocol.as_str(), r.cause), ("Q.850", Some(20)));
        let r = ReasonHeader::parse("SIP;cause=200;text=\"Call completed elsewhere\"").unwrap();
        assert_eq!((r.cause, r.q850_cause()), (Some(200), None));
        assert_eq!(ReasonHeader::parse(""), None);
        assert_eq!(ReasonHeader::parse("Q.850;cause=abc").unwrap().cause, None);
        assert!(ReasonHeader::parse(";;,\"").is_none());
    }

    #[test]
    fn deadlines_follow_the_state() {
        let mut p = CallProgress::new(
            ProgressConfig {
                no_response_ms: 8000,
                ..ProgressConfig::default()
            },
            1000,
        );
        assert_eq!(p.next_deadline(), Some(9000));
        assert_eq!(p.handle(8999, &Event::Tick), None);
        p.handle(1100, &Event::response(100, "Trying"));
        assert_eq!(p.phase(), Phase::Proceeding);
        assert_eq!(p.next_deadline(), Some(31_000));
        p.handle(2000, &Event::response(180, "Ringing"));
        assert_eq!(p.phase(), Phase::Ringing);
        let o = p.handle(31_000, &Event::Tick).unwrap();
        assert_eq!(
            (o.disposition, o.action),
            (Disposition::NoAnswer, Action::Cancel)
        );
        assert_eq!(p.next_deadline(), None);
        assert_eq!(p.phase(), Phase::Ended);
    }
}
