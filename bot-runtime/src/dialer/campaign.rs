//! A campaign's settings, stored as JSON in `campaigns.settings_json` and given by operations as
//! a JSON document: its dial rules, lead order, pacing, trunk and answering-machine detection.
//! Every field has a default; unknown fields are refused.
//!
//! ```json
//! {
//!   "rules": { "max_attempts": 6 },
//!   "order": "sequential",
//!   "pacing": { "mode": "robot", "max_concurrent": 20 },
//!   "trunk": { "address": "127.0.0.1:5060", "domain": "trunk.bank.local", "cps": 10 },
//!   "amd": true,
//!   "default_region": "US"
//! }
//! ```
//! - `rules`: [`DialRules`] (calling windows, retries per disposition, caps);
//! - `order`: `sequential` | `random` | `loop`;
//! - `pacing`: default capacity-paced robot dialing at the campaign's `max_concurrent`;
//! - `trunk.address`: where INVITEs go; `domain`: the Request-URI's host (default: the address;
//!   over TLS, the name the trunk's certificate is checked for); `transport`: `udp` (default),
//!   `tcp` or `tls` (SIP over TLS: needs the node's `--sip-tls-*` certificate and CAs);
//!   `cps`: calls per second on the trunk; `trip_after` (10) calls in a row failing with
//!   `network_error` (503s, timeouts) stop dialing on the trunk but for one probe call every
//!   `probe_secs` (30) until a call reaches the far end ([`crate::dialer::trunk`]; the first
//!   campaign to dial a trunk sets these for it on a node);
//! - `default_region`: how national numbers in lead files are read;
//! - `queue`: human campaigns only, and required there: the agent queue every answered call goes
//!   to (see [`crate::dialer::human`]). Human campaigns pace progressive 1:1 unless `pacing`
//!   says otherwise (`preview`, `progressive`, `predictive`; not `robot`); blended campaigns
//!   are paced by capacity like robot campaigns, and their flows name the queues they transfer
//!   to. [`CampaignSettings::check_kind`] checks this against the campaign's kind.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::dialer::db::{CampaignKind, Order};
use crate::dialer::pacing::PacingMode;
use crate::dialer::rules::DialRules;

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    pub rules: DialRules,
    pub order: Order,
    /// `None`: capacity-paced robot dialing at the campaign's `max_concurrent`.
    pub pacing: Option<PacingMode>,
    pub trunk: Trunk,
    /// Run answering-machine detection on answered calls.
    pub amd: bool,
    /// ISO 3166 region for national numbers in lead files.
    pub default_region: String,
    /// Human campaigns: the agent queue answered calls go to.
    pub queue: Option<String>,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            rules: DialRules::default(),
            order: Order::Sequential,
            pacing: None,
            trunk: Trunk::default(),
            amd: true,
            default_region: "US".into(),
            queue: None,
        }
    }
}

/// Where calls go out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trunk {
    /// `host:port` the INVITEs are sent to.
    pub address: String,
    /// The Request-URI's host (default: `address`).
    pub domain: Option<String>,
    /// The transport INVITEs go over.
    pub transport: TrunkTransport,
    /// Calls per second (average) on this trunk.
    pub cps: f64,
    /// Calls that may start at once before the rate applies.
    pub burst: u32,
    /// Calls in a row ending in `network_error` (503s, timeouts) that mark the trunk down
    /// ([`crate::dialer::trunk`]).
    pub trip_after: u32,
    /// While down, one probe call every this many seconds.
    pub probe_secs: u64,
}

impl Default for Trunk {
    fn default() -> Self {
        Trunk {
            address: "127.0.0.1:5060".into(),
            domain: None,
            transport: TrunkTransport::Udp,
            cps: 10.0,
            burst: 1,
            trip_after: 10,
            probe_secs: 30,
        }
    }
}

/// A trunk's SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransport {
    Udp,
    Tcp,
    Tls,
}

impl Trunk {
    /// The trunk's socket address.
    pub fn socket_addr(&self) -> Result<SocketAddr, String> {
        self.address
            .parse()
            .map_err(|e| format!("trunk.address {:?}: {e} (expected host:port)", self.address))
    }

    /// The Request-URI for a number (with a `transport` parameter unless over UDP).
    pub fn uri(&self, e164: &str) -> String {
        let host = self.domain.as_deref().unwrap_or(&self.address);
        match self.transport {
            TrunkTransport::Udp => format!("sip:{e164}@{host}"),
            TrunkTransport::Tcp => format!("sip:{e164}@{host};transport=tcp"),
            TrunkTransport::Tls => format!("sip:{e164}@{host};transport=tls"),
        }
    }
}

impl CampaignSettings {
    /// Parses settings from JSON text (empty text: the defaults); errors give the line and
    /// column or name the field.
    pub fn parse(text: &str) -> Result<CampaignSettings, String> {
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(text).map_err(|e| {
                format!(
                    "campaign settings, line {}, column {}: {e}",
                    e.line(),
                    e.column()
                )
            })?
        };
        Self::from_value(&value)
    }

    /// Reads settings stored as JSON, and checks them. An error names the field's path
    /// (`rules.max_attempts: invalid type…`).
    pub fn from_value(value: &serde_json::Value) -> Result<CampaignSettings, String> {
        let s: CampaignSettings = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            match e.path().to_string().as_str() {
                "." => format!("campaign settings: {}", e.inner()),
                path => format!("campaign settings: {path}: {}", e.inner()),
            }
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.rules.validate()?;
        self.trunk.socket_addr()?;
        if !(self.trunk.cps.is_finite() && self.trunk.cps > 0.0) {
            return Err(format!(
                "trunk.cps must be a positive number, not {}",
                self.trunk.cps
            ));
        }
        if self.trunk.trip_after == 0 {
            return Err("trunk.trip_after must be at least 1".into());
        }
        if !(1..=3600).contains(&self.trunk.probe_secs) {
            return Err(format!(
                "trunk.probe_secs must be between 1 and 3600, not {}",
                self.trunk.probe_secs
            ));
        }
        if self
            .default_region
            .parse::<phonenumber::country::Id>()
            .is_err()
        {
            return Err(format!(
                "default_region {:?} is not an ISO 3166 region code (e.g. US, GB)",
                self.default_region
            ));
        }
        if let Some(PacingMode::Robot { max_concurrent: 0 }) = self.pacing {
            return Err("pacing.max_concurrent must be at least 1".into());
        }
        match self.pacing {
            Some(PacingMode::Progressive { ratio }) if !(ratio.is_finite() && ratio > 0.0) => {
                return Err(format!(
                    "pacing.ratio must be a positive number, not {ratio}"
                ));
            }
            Some(PacingMode::Predictive {
                max_ratio,
                target_abandon,
            }) if !(max_ratio.is_finite()
                && max_ratio >= 1.0
                && target_abandon.is_finite()
                && (0.0..=0.03).contains(&target_abandon)) =>
            {
                return Err(format!(
                    "pacing: max_ratio must be at least 1 and target_abandon between 0 and 0.03 \
                     (the 3 % cap), not {max_ratio} and {target_abandon}"
                ));
            }
            _ => {}
        }
        if let Some(q) = &self.queue
            && q.trim().is_empty()
        {
            return Err("queue must name an agent queue (it is empty)".into());
        }
        Ok(())
    }

    /// Checks the settings against the campaign's kind: a human campaign names its agent
    /// `queue` and is not paced as a robot campaign; robot and blended campaigns name no queue
    /// (a blended campaign's flow names the queues it transfers to).
    pub fn check_kind(&self, kind: CampaignKind) -> Result<(), String> {
        match kind {
            CampaignKind::Human => {
                if self.queue.is_none() {
                    return Err(
                        "a human campaign needs `queue`: the agent queue its answered \
                                calls go to (e.g. \"queue\": \"collections\")"
                            .into(),
                    );
                }
                if let Some(PacingMode::Robot { .. }) = self.pacing {
                    return Err(
                        "a human campaign cannot be paced as `robot`: use `progressive` \
                                (the default), `predictive` or `preview`"
                            .into(),
                    );
                }
            }
            CampaignKind::Robot | CampaignKind::Blended => {
                if let Some(q) = &self.queue {
                    return Err(format!(
                        "`queue` ({q:?}) is for human campaigns; a {} campaign's flow names \
                         the queues it transfers to",
                        kind.as_str()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The pacing the live dialer applies to a campaign of `kind`: human campaigns
    /// progressive 1:1 by default; robot and blended campaigns by capacity (`None`: the
    /// campaign's `max_concurrent`).
    pub fn pacing_for(&self, kind: CampaignKind) -> Option<PacingMode> {
        match kind {
            CampaignKind::Human => Some(self.pacing.unwrap_or_else(PacingMode::progressive)),
            CampaignKind::Robot | CampaignKind::Blended => match self.pacing {
                Some(p @ PacingMode::Robot { .. }) => Some(p),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let s = CampaignSettings::parse("").expect("defaults");
        assert_eq!(s, CampaignSettings::default());
        let s = CampaignSettings::parse(
            r#"{"order": "loop", "trunk": {"address": "127.0.0.1:5080", "cps": 2.5},
                "pacing": {"mode": "robot", "max_concurrent": 4}}"#,
        )
        .expect("settings");
        assert_eq!(s.order, Order::Loop);
        assert_eq!(
            s.trunk.uri("+15551234567"),
            "sip:+15551234567@127.0.0.1:5080"
        );
        let s = CampaignSettings::parse(
            r#"{"trunk": {"address": "127.0.0.1:5061", "domain": "sbc.bank.local", "transport": "tls"}}"#,
        )
        .expect("settings");
        assert_eq!(
            s.trunk.uri("+15551234567"),
            "sip:+15551234567@sbc.bank.local;transport=tls"
        );
        let e = CampaignSettings::parse(r#"{"trunk": {"transport": "sctp"}}"#)
            .expect_err("bad transport");
        assert!(e.contains("trunk.transport"), "{e}");
        assert!(e.contains("tls"), "{e}");
        let e = CampaignSettings::parse(r#"{"trunk": {"address": "nowhere"}}"#)
            .expect_err("bad address");
        assert!(e.contains("trunk.address"), "{e}");
        let e = CampaignSettings::parse(r#"{"ordr": "loop"}"#).expect_err("unknown field");
        assert!(e.contains("ordr"), "{e}");
        let e = CampaignSettings::parse(r#"{"default_region": "XX"}"#).expect_err("region");
        assert!(e.contains("default_region"), "{e}");
        let e = CampaignSettings::parse("{\n  \"order\": }").expect_err("syntax");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn kinds_and_queues() {
        let human = CampaignSettings::parse(r#"{"queue": "collections"}"#).expect("settings");
        assert_eq!(human.queue.as_deref(), Some("collections"));
        human
            .check_kind(CampaignKind::Human)
            .expect("a human campaign");
        assert_eq!(
            human.pacing_for(CampaignKind::Human),
            Some(PacingMode::progressive())
        );
        let e = human
            .check_kind(CampaignKind::Robot)
            .expect_err("a robot campaign names no queue");
        assert!(e.contains("queue") && e.contains("robot"), "{e}");
        let e = CampaignSettings::default()
            .check_kind(CampaignKind::Human)
            .expect_err("a human campaign needs a queue");
        assert!(e.contains("needs `queue`"), "{e}");
        let robot_paced = CampaignSettings::parse(
            r#"{"queue": "q", "pacing": {"mode": "robot", "max_concurrent": 3}}"#,
        )
        .expect("settings");
        let e = robot_paced
            .check_kind(CampaignKind::Human)
            .expect_err("a human campaign is not robot-paced");
        assert!(e.contains("robot"), "{e}");
        let e = CampaignSettings::parse(r#"{"queue": " "}"#).expect_err("empty queue");
        assert!(e.contains("queue"), "{e}");
        let e = CampaignSettings::parse(
            r#"{"queue": "q", "pacing": {"mode": "predictive", "max_ratio": 3, "target_abandon": 0.05}}"#,
        )
        .expect_err("above the 3 % cap");
        assert!(e.contains("target_abandon"), "{e}");
        let predictive = CampaignSettings::parse(
            r#"{"queue": "q", "pacing": {"mode": "predictive", "max_ratio": 3, "target_abandon": 0.03}}"#,
        )
        .expect("settings");
        assert_eq!(
            predictive.pacing_for(CampaignKind::Human),
            Some(PacingMode::predictive())
        );
        // Blended and robot campaigns: capacity, at the campaign's max_concurrent or the
        // robot pacing's.
        assert_eq!(
            CampaignSettings::default().pacing_for(CampaignKind::Blended),
            None
        );
        assert_eq!(
            robot_paced.pacing_for(CampaignKind::Robot),
            Some(PacingMode::Robot { max_concurrent: 3 })
        );
    }
}
