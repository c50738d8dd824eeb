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
//! - `trunk.address`: where INVITEs go; `domain`: the Request-URI's host (default: the address);
//!   `cps`: calls per second on the trunk;
//! - `default_region`: how national numbers in lead files are read.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::dialer::db::Order;
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
    /// Calls per second (average) on this trunk.
    pub cps: f64,
    /// Calls that may start at once before the rate applies.
    pub burst: u32,
}

impl Default for Trunk {
    fn default() -> Self {
        Trunk {
            address: "127.0.0.1:5060".into(),
            domain: None,
            cps: 10.0,
            burst: 1,
        }
    }
}

impl Trunk {
    /// The trunk's socket address.
    pub fn socket_addr(&self) -> Result<SocketAddr, String> {
        self.address
            .parse()
            .map_err(|e| format!("trunk.address {:?}: {e} (expected host:port)", self.address))
    }

    /// The Request-URI for a number.
    pub fn uri(&self, e164: &str) -> String {
        format!(
            "sip:{e164}@{}",
            self.domain.as_deref().unwrap_or(&self.address)
        )
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

    /// Reads settings stored as JSON, and checks them.
    pub fn from_value(value: &serde_json::Value) -> Result<CampaignSettings, String> {
        let s: CampaignSettings =
            serde_json::from_value(value.clone()).map_err(|e| format!("campaign settings: {e}"))?;
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
        Ok(())
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
}
