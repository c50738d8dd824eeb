//! The dialer's tables in the [`Store`]: tenants, flows, campaigns, leads and their state in each
//! campaign, attempts, do-not-call entries, dial decisions and audit events (migration
//! `0002_dialer.sql`).
//!
//! Same rules as the call records ([`crate::store`]): one query text for SQLite and PostgreSQL
//! through sqlx's `Any` driver, times as microseconds since the Unix epoch. Two places differ by
//! engine, each for a reason given where it happens: lead claims (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL) and the lock that orders a dial against a concurrent opt-out.
//!
//! # Invariants
//!
//! - **Tenant scoping**: every query filters on `tenant`; only the global DNC list (tenant `*`)
//!   is read on behalf of every tenant.
//! - **Leases**: a node touches a lead's dial state only while it holds the lead's lease
//!   ([`Store::claim_leads`]); updates check `lease_owner`, so a node that lost its lease (it
//!   stalled past the lease and another node took over) cannot overwrite the new owner's work.
//! - **An attempt exists before its INVITE**: [`Store::begin_dial`] commits the attempt (and
//!   its `dialed` decision) before the INVITE can leave; a node killed at any point after that
//!   leaves an open attempt, which the next owner of the lead closes as `interrupted` and which
//!   then counts under the retry rules like any other attempt. So every INVITE has its attempt
//!   row; an `interrupted` attempt may or may not have reached the network.
//! - **An opt-out is never dialed after its commit**: the dial transaction checks the DNC tables
//!   after taking a lock that a DNC insert of the same number also takes (PostgreSQL: a
//!   transaction-scoped advisory lock on the number; SQLite: the database write lock, taken by
//!   the transaction's first statement), and it commits only after the INVITE left. So a DNC
//!   entry either commits before the check (and blocks the dial) or waits until the INVITE is
//!   out.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::dialer::pacing::AbandonLedger;
use crate::store::{Backend, Store, StoreError, from_micros};

mod admin;
pub use admin::{
    Activation, CampaignChange, DeletedCampaign, FlowInfo, FlowVersion, LeadInCampaign, LeadQuery,
    Tenant,
};

/// Days in the abandon-rate window (today, UTC, and the 29 days before).
pub const ABANDON_WINDOW_DAYS: i64 = 30;

/// The tenant every CLI command uses unless told otherwise.
pub const DEFAULT_TENANT: &str = "default";
/// The tenant of the global DNC list.
pub const GLOBAL: &str = "*";

/// Rows per multi-row INSERT (SQLite allows 32766 bound values; 12 columns × 500 stays far below).
const BATCH: usize = 500;

/// What kind of campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// The robot talks to every answered call.
    Robot,
    /// Every answered call goes to a human agent.
    Human,
    /// The robot first, agents on transfer.
    Blended,
}

impl CampaignKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignKind::Robot => "robot",
            CampaignKind::Human => "human",
            CampaignKind::Blended => "blended",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "robot" => Some(CampaignKind::Robot),
            "human" => Some(CampaignKind::Human),
            "blended" => Some(CampaignKind::Blended),
            _ => None,
        }
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Running,
    Paused,
    Stopped,
    Finished,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Stopped => "stopped",
            CampaignStatus::Finished => "finished",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(CampaignStatus::Draft),
            "running" => Some(CampaignStatus::Running),
            "paused" => Some(CampaignStatus::Paused),
            "stopped" => Some(CampaignStatus::Stopped),
            "finished" => Some(CampaignStatus::Finished),
            _ => None,
        }
    }

    /// Whether moving from `self` to `to` is allowed (start, pause, resume, stop, finish).
    pub fn can_become(self, to: CampaignStatus) -> bool {
        use CampaignStatus::*;
        matches!(
            (self, to),
            (Draft, Running)
                | (Paused, Running)
                | (Running, Paused)
                | (Draft | Running | Paused, Stopped)
                | (Running, Finished)
        )
    }
}

/// A campaign to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub id: String,
    pub kind: CampaignKind,
    pub flow: String,
    pub flow_version: u32,
    pub caller_id: Option<String>,
    pub max_concurrent: u32,
    /// The campaign's settings (`crate::dialer::campaign::CampaignSettings` as JSON).
    pub settings: serde_json::Value,
}

/// Checks a campaign's caller id, which becomes the user part of the INVITE's `From`: an E.164
/// number or a SIP user of letters, digits and `+ - . _` (1 to 64), so nothing else reaches the
/// SIP message.
pub fn check_caller_id(caller_id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&caller_id.len())
        && caller_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "caller id {caller_id:?}: an E.164 number or 1 to 64 letters, digits and + - . _"
        ))
    }
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub tenant: String,
    pub id: String,
    pub kind: CampaignKind,
    pub flow: String,
    pub flow_version: u32,
    pub status: CampaignStatus,
    pub caller_id: Option<String>,
    pub max_concurrent: u32,
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A lead to insert (already validated and normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    pub external_id: Option<String>,
    /// E.164.
    pub phone: String,
    pub name: Option<String>,
    /// Candidate IANA zones.
    pub timezones: Vec<String>,
    /// `column`, `number` or `default`.
    pub tz_source: String,
    pub debt_id: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The row in the import file.
    pub source_row: Option<u64>,
}

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lead {
    pub id: String,
    pub phone: String,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub timezones: Vec<String>,
    pub tz_source: String,
    pub debt_id: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub source: String,
    pub source_row: Option<u64>,
}

/// What [`Store::insert_leads`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InsertReport {
    pub inserted: u64,
    /// The new leads' ids by number.
    pub ids: std::collections::HashMap<String, String>,
    /// Leads not inserted because the tenant already has their number: (row, phone).
    pub duplicates: Vec<(Option<u64>, String)>,
}

/// A lead claimed for dialing, with its state in the campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimedLead {
    pub lead: Lead,
    pub attempts: u32,
    pub last_disposition: Option<String>,
    pub callback_at: Option<DateTime<Utc>>,
    /// The lease this node holds on the lead, until then.
    pub lease_until: DateTime<Utc>,
}

/// In what order a campaign dials its leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The order the leads were assigned (the file's order).
    #[default]
    Sequential,
    /// A random order fixed when the leads are assigned.
    Random,
    /// Least-attempted first: every lead gets its n-th try before any gets its (n+1)-th.
    Loop,
}

impl Order {
    fn sql(self) -> &'static str {
        match self {
            Order::Sequential | Order::Random => "seq",
            Order::Loop => "attempts, seq",
        }
    }

    /// The same order on a table aliased `cl`, for sorting a handful of rows found by key: the
    /// unary `+` keeps SQLite from walking `campaign_leads_seq` over the whole campaign to avoid
    /// that sort.
    fn sql_cl(self) -> &'static str {
        match self {
            Order::Sequential | Order::Random => "+cl.seq",
            Order::Loop => "+cl.attempts, +cl.seq",
        }
    }
}

/// One past attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub id: String,
    pub campaign: String,
    pub lead: String,
    pub phone: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `None` while in progress (or left open by a node that died).
    pub disposition: Option<String>,
    pub call_id: Option<String>,
}

/// An attempt about to be made.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    pub id: String,
    pub campaign: String,
    pub lead: String,
    pub debt_id: Option<String>,
    pub phone: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
    /// The rule engine's "ok" reason, stored with the `dialed` decision.
    pub rule: String,
    pub detail: String,
}

/// A do-not-call entry.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DncEntry {
    /// The tenant whose list it is on (`*`: the global list).
    pub tenant: String,
    /// E.164.
    pub phone: String,
    pub reason: String,
    /// Where it came from: `call`, `import:FILE`, `api`, `cli`…
    pub source: String,
    /// Who added it.
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    /// When it stops blocking (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A dial decision as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub campaign: String,
    pub lead: String,
    pub phone: String,
    /// `dialed`, `blocked`, `wait` or `stop`.
    pub verdict: String,
    pub rule: String,
    pub detail: String,
    pub until: Option<DateTime<Utc>>,
    pub node: String,
    pub attempt: Option<String>,
}

/// What to do with a lead after a verdict or an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadUpdate {
    /// `true`: done with this lead (final); `false`: ready again at `next_at`.
    pub done: bool,
    pub next_at: DateTime<Utc>,
    /// "rule: detail".
    pub reason: String,
    pub callback_at: Option<DateTime<Utc>>,
}

/// What a dialer node needs to know of a campaign at each look: index probes, not counts over
/// the whole campaign ([`Store::campaign_stats`] is the report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CampaignLoad {
    /// The campaign has leads at all.
    pub has_leads: bool,
    /// Some lead is ready (due now or later).
    pub has_ready: bool,
    /// Some ready lead is due now.
    pub has_due: bool,
    /// Leads leased now, by any node.
    pub leased: u64,
}

/// Lead counts of a campaign by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CampaignStats {
    pub leads: u64,
    pub ready: u64,
    pub due: u64,
    pub leased: u64,
    pub done: u64,
    pub attempts: u64,
    pub in_progress: u64,
    /// Attempts by disposition.
    pub dispositions: Vec<(String, u64)>,
    /// Live answers and abandons of the 30-day window ending at `now` (human and blended
    /// campaigns; see [`Store::abandon_window`]).
    pub abandons_30d: AbandonLedger,
    /// Abandoned over live answered in that window (0 with no live answer).
    pub abandon_rate_30d: f64,
}

/// The open dial transaction of [`Store::begin_dial`]: send the INVITE, then [`DialTx::commit`].
pub struct DialTx {
    tx: Transaction<'static, Any>,
    url: String,
}

/// What [`Store::begin_dial`] found.
pub enum DialStart {
    /// Go: the attempt is written; commit after the INVITE is sent.
    Dial(DialTx),
    /// The number is on a DNC list (nothing written; the caller records the decision).
    Blocked(DncEntry),
    /// This node no longer holds the lead's lease (nothing written).
    LeaseLost,
}

impl DialTx {
    /// Commits the attempt.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(|source| StoreError::Query {
            url: self.url,
            action: "committing a dial".into(),
            source,
        })
    }
}

/// Placeholders for generated statements, in bind order: `$1`, `$2`… on PostgreSQL, anonymous
/// `?` on SQLite — sqlx-sqlite maps each `$N` by asking SQLite for the parameter's name, a linear
/// scan per bind, which makes binding a 6000-parameter statement quadratic. Only for statements
/// whose placeholders each appear once, in bind order.
struct Placeholders {
    backend: Backend,
    n: usize,
}

impl Placeholders {
    fn new(backend: Backend) -> Self {
        Placeholders { backend, n: 0 }
    }

    fn next(&mut self) -> String {
        self.n += 1;
        match self.backend {
            Backend::Postgres => format!("${}", self.n),
            Backend::Sqlite => "?".to_string(),
        }
    }

    /// `(p, p, …)` of `k` placeholders.
    fn tuple(&mut self, k: usize) -> String {
        let items: Vec<String> = (0..k).map(|_| self.next()).collect();
        format!("({})", items.join(", "))
    }
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

const DAY_US: i64 = 86_400_000_000;

/// The first microsecond of the UTC day of `t`.
fn day_start_us(t: DateTime<Utc>) -> i64 {
    us(t).div_euclid(DAY_US) * DAY_US
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The advisory-lock key of a number on PostgreSQL: its digits (E.164 has at most 15).
fn number_lock_key(phone: &str) -> i64 {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    digits.parse::<i64>().unwrap_or_else(|_| {
        // Not a number we would dial; any stable key will do.
        phone
            .bytes()
            .fold(0i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(b)))
    })
}

impl Store {
    fn err(&self, action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        let action = action.into();
        move |e| self.query_error(action, e)
    }

    fn opt_time(
        &self,
        row: &AnyRow,
        column: &str,
        id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.get::<Option<i64>>(row, column, id)? {
            Some(v) => from_micros(v)
                .map(Some)
                .ok_or_else(|| self.bad_row(id, format!("{column} {v} out of range"))),
            None => Ok(None),
        }
    }

    // ----- tenants -------------------------------------------------------------------------

    /// Creates the tenant if it does not exist.
    pub async fn ensure_tenant(&self, id: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenants (id, name, created_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(name.to_string())
        .bind(us(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("creating tenant {id}")))?;
        Ok(())
    }

    // ----- flows ---------------------------------------------------------------------------

    /// Stores a flow's source as `version` (replacing nothing: a version is immutable; saving
    /// the same text again is a no-op, different text under an existing version is refused).
    pub async fn save_flow(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
        source: &str,
    ) -> Result<(), StoreError> {
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(source.as_bytes()));
        if let Some(existing) = self.flow_source(tenant, name, version).await? {
            let old = hex::encode(sha2::Sha256::digest(existing.as_bytes()));
            if old == sha {
                return Ok(());
            }
            return Err(StoreError::Refused {
                what: format!("flow {name} v{version}"),
                reason: "this flow version is already stored with different text; \
                         raise `version` in the flow file"
                    .into(),
            });
        }
        sqlx::query(
            "INSERT INTO flows (tenant, name, version, source, sha256, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .bind(source.to_string())
        .bind(sha)
        .bind(us(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("saving flow {name} v{version}")))?;
        // A flow's first version is its active one until another is activated.
        sqlx::query(
            "INSERT INTO flow_heads (tenant, name, version, activated_at_us, activated_by) \
             VALUES ($1, $2, $3, $4, 'first version') ON CONFLICT (tenant, name) DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .bind(us(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("saving flow {name} v{version}")))?;
        Ok(())
    }

    /// A stored flow version's source.
    pub async fn flow_source(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT source FROM flows WHERE tenant = $1 AND name = $2 AND version = $3",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err(format!("reading flow {name} v{version}")))?;
        row.map(|r| self.get(&r, "source", name)).transpose()
    }

    // ----- campaigns -----------------------------------------------------------------------

    /// Creates a campaign (status `draft`). Its flow version must be stored.
    pub async fn create_campaign(&self, tenant: &str, c: &NewCampaign) -> Result<(), StoreError> {
        if let Some(id) = &c.caller_id {
            check_caller_id(id).map_err(|reason| StoreError::Refused {
                what: format!("campaign {:?}", c.id.clone()),
                reason,
            })?;
        }
        if self.campaign(tenant, &c.id).await?.is_some() {
            return Err(StoreError::Refused {
                what: format!("campaign {:?}", c.id.clone()),
                reason: "a campaign with this name already exists".into(),
            });
        }
        if self
            .flow_source(tenant, &c.flow, c.flow_version)
            .await?
            .is_none()
        {
            return Err(StoreError::Refused {
                what: format!("campaign {:?}", c.id.clone()),
                reason: format!("flow {} v{} is not stored", c.flow, c.flow_version),
            });
        }
        let now = us(Utc::now());
        sqlx::query(
            "INSERT INTO campaigns (tenant, id, kind, flow, flow_version, status, caller_id, \
             max_concurrent, settings_json, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $9)",
        )
        .bind(tenant.to_string())
        .bind(c.id.clone())
        .bind(c.kind.as_str())
        .bind(c.flow.clone())
        .bind(i64::from(c.flow_version))
        .bind(c.caller_id.clone())
        .bind(i64::from(c.max_concurrent))
        .bind(c.settings.to_string())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("creating campaign {}", c.id)))?;
        Ok(())
    }

    fn campaign_from_row(&self, tenant: &str, row: &AnyRow) -> Result<Campaign, StoreError> {
        let id: String = self.get(row, "id", "campaign")?;
        let kind: String = self.get(row, "kind", &id)?;
        let status: String = self.get(row, "status", &id)?;
        let settings: String = self.get(row, "settings_json", &id)?;
        let flow_version: i64 = self.get(row, "flow_version", &id)?;
        let max_concurrent: i64 = self.get(row, "max_concurrent", &id)?;
        Ok(Campaign {
            tenant: tenant.to_string(),
            kind: CampaignKind::from_name(&kind)
                .ok_or_else(|| self.bad_row(&id, format!("unknown kind {kind:?}")))?,
            status: CampaignStatus::from_name(&status)
                .ok_or_else(|| self.bad_row(&id, format!("unknown status {status:?}")))?,
            flow: self.get(row, "flow", &id)?,
            flow_version: u32::try_from(flow_version)
                .map_err(|_| self.bad_row(&id, "flow_version out of range".into()))?,
            caller_id: self.get(row, "caller_id", &id)?,
            max_concurrent: u32::try_from(max_concurrent)
                .map_err(|_| self.bad_row(&id, "max_concurrent out of range".into()))?,
            settings: serde_json::from_str(&settings)
                .map_err(|e| self.bad_row(&id, format!("settings_json: {e}")))?,
            created_at: self.time(row, "created_at_us", &id)?,
            updated_at: self.time(row, "updated_at_us", &id)?,
            id,
        })
    }

    const CAMPAIGN_COLUMNS: &'static str = "id, kind, flow, flow_version, status, caller_id, \
        max_concurrent, settings_json, created_at_us, updated_at_us";

    /// One campaign.
    pub async fn campaign(&self, tenant: &str, id: &str) -> Result<Option<Campaign>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM campaigns WHERE tenant = $1 AND id = $2",
            Self::CAMPAIGN_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err(format!("reading campaign {id}")))?;
        row.map(|r| self.campaign_from_row(tenant, &r)).transpose()
    }

    /// A tenant's campaigns, by name; `status` filters.
    pub async fn list_campaigns(
        &self,
        tenant: &str,
        status: Option<CampaignStatus>,
    ) -> Result<Vec<Campaign>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM campaigns WHERE tenant = $1 AND ($2 IS NULL OR status = $2) ORDER BY id",
            Self::CAMPAIGN_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(status.map(CampaignStatus::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing campaigns"))?;
        rows.iter()
            .map(|r| self.campaign_from_row(tenant, r))
            .collect()
    }

    /// Every running campaign of every tenant (for the dialer's loop).
    pub async fn running_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT tenant, {} FROM campaigns WHERE status = 'running' ORDER BY tenant, id",
            Self::CAMPAIGN_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing running campaigns"))?;
        rows.iter()
            .map(|r| {
                let tenant: String = self.get(r, "tenant", "campaign")?;
                self.campaign_from_row(&tenant, r)
            })
            .collect()
    }

    /// Moves a campaign to `to` (start, pause, resume, stop, finish); refuses moves that make no
    /// sense (a stopped campaign does not start again). Returns the previous status.
    pub async fn set_campaign_status(
        &self,
        tenant: &str,
        id: &str,
        to: CampaignStatus,
        actor: &str,
    ) -> Result<CampaignStatus, StoreError> {
        let Some(c) = self.campaign(tenant, id).await? else {
            return Err(StoreError::Refused {
                what: format!("campaign {:?}", id.to_string()),
                reason: "no such campaign".into(),
            });
        };
        if c.status == to {
            return Ok(to);
        }
        if !c.status.can_become(to) {
            return Err(StoreError::Refused {
                what: format!("campaign {:?}", id.to_string()),
                reason: format!(
                    "a {} campaign cannot become {}",
                    c.status.as_str(),
                    to.as_str()
                ),
            });
        }
        let done = sqlx::query(
            "UPDATE campaigns SET status = $1, updated_at_us = $2 \
             WHERE tenant = $3 AND id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(us(Utc::now()))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(c.status.as_str())
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("changing campaign {id}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Refused {
                what: format!("campaign {:?}", id.to_string()),
                reason: "the campaign changed meanwhile; try again".into(),
            });
        }
        self.audit(
            tenant,
            actor,
            "campaign.status",
            id,
            serde_json::json!({"from": c.status.as_str(), "to": to.as_str()}),
        )
        .await?;
        Ok(c.status)
    }

    /// The campaign's [`CampaignLoad`] at `now`, from the partial and due indexes.
    pub async fn campaign_load(
        &self,
        tenant: &str,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<CampaignLoad, StoreError> {
        let flag = |cond: &str| {
            format!(
                "CAST(CASE WHEN EXISTS (SELECT 1 FROM campaign_leads \
                 WHERE tenant = $1 AND campaign = $2{cond}) THEN 1 ELSE 0 END AS BIGINT)"
            )
        };
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM campaign_leads WHERE tenant = $1 AND campaign = $2 \
             AND lease_owner IS NOT NULL AND lease_until_us > $3) AS leased, \
             {} AS has_leads, {} AS has_ready, {} AS has_due",
            flag(""),
            flag(" AND state = 'ready'"),
            flag(" AND state = 'ready' AND next_at_us <= $3"),
        );
        let row = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(campaign.to_string())
            .bind(us(now))
            .fetch_one(&self.pool)
            .await
            .map_err(self.err(format!("looking at campaign {campaign}")))?;
        let n = |c: &str| -> Result<i64, StoreError> { self.get(&row, c, campaign) };
        Ok(CampaignLoad {
            has_leads: n("has_leads")? != 0,
            has_ready: n("has_ready")? != 0,
            has_due: n("has_due")? != 0,
            leased: u64::try_from(n("leased")?).unwrap_or(0),
        })
    }

    /// Lead counts and attempt dispositions of a campaign at `now`.
    pub async fn campaign_stats(
        &self,
        tenant: &str,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<CampaignStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS leads, \
             COALESCE(SUM(CASE WHEN state = 'ready' THEN 1 ELSE 0 END), 0) AS ready, \
             COALESCE(SUM(CASE WHEN state = 'ready' AND next_at_us <= $3 THEN 1 ELSE 0 END), 0) AS due, \
             COALESCE(SUM(CASE WHEN lease_until_us > $3 THEN 1 ELSE 0 END), 0) AS leased, \
             COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0) AS done \
             FROM campaign_leads WHERE tenant = $1 AND campaign = $2",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(us(now))
        .fetch_one(&self.pool)
        .await
        .map_err(self.err(format!("counting leads of {campaign}")))?;
        let n = |c: &str| -> Result<u64, StoreError> {
            let v: i64 = self.get(&row, c, campaign)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        let mut stats = CampaignStats {
            leads: n("leads")?,
            ready: n("ready")?,
            due: n("due")?,
            leased: n("leased")?,
            done: n("done")?,
            ..Default::default()
        };
        let rows = sqlx::query(
            "SELECT COALESCE(disposition, 'in_progress') AS d, COUNT(*) AS n FROM attempts \
             WHERE tenant = $1 AND campaign = $2 GROUP BY COALESCE(disposition, 'in_progress') \
             ORDER BY d",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err(format!("counting attempts of {campaign}")))?;
        for r in rows {
            let d: String = self.get(&r, "d", campaign)?;
            let count: i64 = self.get(&r, "n", campaign)?;
            let count = u64::try_from(count).unwrap_or(0);
            stats.attempts += count;
            if d == "in_progress" {
                stats.in_progress = count;
            }
            stats.dispositions.push((d, count));
        }
        stats.abandons_30d = self.abandon_window(tenant, campaign, now).await?;
        stats.abandon_rate_30d = stats.abandons_30d.rate();
        Ok(stats)
    }

    // ----- abandon ledger (migration 0004) --------------------------------------------------

    /// Adds live answers and abandons of a campaign to the ledger's day of `at` (UTC), in one
    /// statement (nodes add concurrently; no read-then-write).
    pub async fn record_abandons(
        &self,
        tenant: &str,
        campaign: &str,
        at: DateTime<Utc>,
        counts: AbandonLedger,
    ) -> Result<(), StoreError> {
        if counts == AbandonLedger::default() {
            return Ok(());
        }
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO campaign_abandons (tenant, campaign, day_us, live_answered, abandoned, \
             updated_at_us) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, campaign, day_us) DO UPDATE SET \
             live_answered = campaign_abandons.live_answered + excluded.live_answered, \
             abandoned = campaign_abandons.abandoned + excluded.abandoned, \
             updated_at_us = excluded.updated_at_us",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(day_start_us(at))
        .bind(count(counts.live_answered))
        .bind(count(counts.abandoned))
        .bind(us(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("recording abandons of {campaign}")))?;
        Ok(())
    }

    /// The campaign's live answers and abandons over the [`ABANDON_WINDOW_DAYS`] UTC days
    /// ending with the day of `now` (the window the 3 % cap is measured over).
    pub async fn abandon_window(
        &self,
        tenant: &str,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<AbandonLedger, StoreError> {
        let since = day_start_us(now) - (ABANDON_WINDOW_DAYS - 1) * DAY_US;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(live_answered), 0) AS BIGINT) AS answered, \
             CAST(COALESCE(SUM(abandoned), 0) AS BIGINT) AS abandoned \
             FROM campaign_abandons WHERE tenant = $1 AND campaign = $2 AND day_us >= $3 \
             AND day_us <= $4",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(since)
        .bind(day_start_us(now))
        .fetch_one(&self.pool)
        .await
        .map_err(self.err(format!("reading the abandon ledger of {campaign}")))?;
        let n = |c: &str| -> Result<u64, StoreError> {
            let v: i64 = self.get(&row, c, campaign)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(AbandonLedger {
            live_answered: n("answered")?,
            abandoned: n("abandoned")?,
        })
    }

    // ----- leads ---------------------------------------------------------------------------

    /// Inserts leads for a tenant in batches of [`BATCH`], one statement each; a lead whose
    /// number the tenant already has (or that repeats a number earlier in `leads`) is not
    /// inserted and is reported (the earlier lead stays as it was). The unique index on
    /// `(tenant, phone)` decides (`ON CONFLICT DO NOTHING RETURNING`), so concurrent imports agree
    /// without a read-then-write.
    pub async fn insert_leads(
        &self,
        tenant: &str,
        source: &str,
        leads: &[NewLead],
    ) -> Result<InsertReport, StoreError> {
        const COLS: usize = 14;
        let mut report = InsertReport::default();
        let mut seen = std::collections::HashSet::new();
        for batch in leads.chunks(BATCH) {
            let fresh: Vec<&NewLead> = batch
                .iter()
                .filter(|l| {
                    if seen.insert(l.phone.clone()) {
                        true
                    } else {
                        report.duplicates.push((l.source_row, l.phone.clone()));
                        false
                    }
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let mut ph = Placeholders::new(self.backend());
            let values: Vec<String> = fresh.iter().map(|_| ph.tuple(COLS)).collect();
            let sql = format!(
                "INSERT INTO leads (tenant, id, phone, phone_enc, external_id, name, timezones, \
                 tz_source, debt_id, debt_id_enc, fields_json, source, source_row, created_at_us) \
                 VALUES {} \
                 ON CONFLICT (tenant, phone) DO NOTHING RETURNING phone, id",
                values.join(", ")
            );
            let now = us(Utc::now());
            let mut q = sqlx::query(&sql);
            for l in &fresh {
                q = q
                    .bind(tenant.to_string())
                    .bind(new_id())
                    .bind(self.phone_index(&l.phone))
                    .bind(self.seal("phone", &l.phone))
                    .bind(self.seal_opt("external_id", l.external_id.as_deref()))
                    .bind(self.seal_opt("name", l.name.as_deref()))
                    .bind(l.timezones.join(" "))
                    .bind(l.tz_source.clone())
                    .bind(l.debt_id.as_deref().map(|d| self.debt_index(d)))
                    .bind(self.seal_opt("debt_id", l.debt_id.as_deref()))
                    .bind(self.seal(
                        "fields",
                        &serde_json::Value::Object(l.fields.clone()).to_string(),
                    ))
                    .bind(source.to_string())
                    .bind(l.source_row.and_then(|r| i64::try_from(r).ok()))
                    .bind(now);
            }
            let rows = q
                .fetch_all(&self.pool)
                .await
                .map_err(self.err("importing leads"))?;
            // RETURNING gives the numbers' blind indexes: map them back to the numbers.
            let by_index: std::collections::HashMap<String, &str> = fresh
                .iter()
                .map(|l| (self.phone_index(&l.phone), l.phone.as_str()))
                .collect();
            let mut ids = std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                let index: String = self.get(r, "phone", "lead")?;
                let id: String = self.get(r, "id", "lead")?;
                let phone = by_index.get(&index).ok_or_else(|| {
                    self.bad_row(&id, "an inserted lead's number is unknown".into())
                })?;
                ids.insert(phone.to_string(), id);
            }
            for l in &fresh {
                if !ids.contains_key(&l.phone) {
                    report.duplicates.push((l.source_row, l.phone.clone()));
                }
            }
            report.inserted += ids.len() as u64;
            report.ids.extend(ids);
        }
        Ok(report)
    }

    fn lead_from_row(&self, row: &AnyRow) -> Result<Lead, StoreError> {
        let id: String = self.get(row, "id", "lead")?;
        let tz: String = self.get(row, "timezones", &id)?;
        let fields = self.open_col(row, "fields_json", "fields", &id)?;
        let fields = match serde_json::from_str(&fields) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(self.bad_row(&id, "fields_json is not an object".into())),
            Err(e) => return Err(self.bad_row(&id, format!("fields_json: {e}"))),
        };
        let source_row: Option<i64> = self.get(row, "source_row", &id)?;
        Ok(Lead {
            phone: self.open_col(row, "phone_enc", "phone", &id)?,
            external_id: self.open_opt_col(row, "external_id", "external_id", &id)?,
            name: self.open_opt_col(row, "name", "name", &id)?,
            timezones: tz.split_whitespace().map(str::to_string).collect(),
            tz_source: self.get(row, "tz_source", &id)?,
            debt_id: self.open_opt_col(row, "debt_id_enc", "debt_id", &id)?,
            fields,
            source: self.get(row, "source", &id)?,
            source_row: source_row.and_then(|r| u64::try_from(r).ok()),
            id,
        })
    }

    const LEAD_COLUMNS: &'static str = "l.id, l.phone_enc, l.external_id, l.name, l.timezones, \
        l.tz_source, l.debt_id_enc, l.fields_json, l.source, l.source_row";

    /// One lead.
    pub async fn lead(&self, tenant: &str, id: &str) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM leads l WHERE l.tenant = $1 AND l.id = $2",
            Self::LEAD_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err(format!("reading lead {id}")))?;
        row.map(|r| self.lead_from_row(&r)).transpose()
    }

    /// The tenant's lead with this number.
    pub async fn lead_by_phone(
        &self,
        tenant: &str,
        phone: &str,
    ) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM leads l WHERE l.tenant = $1 AND l.phone = $2",
            Self::LEAD_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(self.phone_index(phone))
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading a lead by number"))?;
        row.map(|r| self.lead_from_row(&r)).transpose()
    }

    /// A page of the tenant's leads in import order (`after`: the last id of the previous page
    /// is not used; pages go by `offset`).
    pub async fn list_leads(
        &self,
        tenant: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Lead>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM leads l WHERE l.tenant = $1 \
             ORDER BY l.created_at_us, l.source_row, l.id LIMIT $2 OFFSET $3",
            Self::LEAD_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing leads"))?;
        rows.iter().map(|r| self.lead_from_row(r)).collect()
    }

    /// Puts leads into a campaign (those already in it, and ids that are not the tenant's
    /// leads, are skipped), in `order`, [`BATCH`] per statement. Returns how many were added.
    /// `next_at` is when they become due.
    pub async fn assign_leads(
        &self,
        tenant: &str,
        campaign: &str,
        lead_ids: &[String],
        order: Order,
        next_at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let action = || format!("assigning leads to {campaign}");
        let mut added = 0u64;
        // One probe of `campaign_leads_seq`.
        let start: i64 = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(seq), 0) FROM campaign_leads WHERE tenant = $1 AND campaign = $2",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.query_error(action(), e))?;
        for (b, batch) in lead_ids.chunks(BATCH).enumerate() {
            // Placeholders in the order they are bound (SQLite gets anonymous `?`).
            let mut ph = Placeholders::new(self.backend());
            let (t, c, due) = (ph.next(), ph.next(), ph.next());
            let values: Vec<String> = batch.iter().map(|_| ph.tuple(2)).collect();
            let t2 = ph.next();
            let sql = format!(
                "INSERT INTO campaign_leads (tenant, campaign, lead, seq, state, next_at_us, \
                 attempts) SELECT {t}, {c}, v.column1, v.column2, 'ready', {due}, 0 \
                 FROM (VALUES {}) AS v \
                 WHERE EXISTS (SELECT 1 FROM leads WHERE tenant = {t2} AND id = v.column1) \
                 ON CONFLICT (tenant, campaign, lead) DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql)
                .bind(tenant.to_string())
                .bind(campaign.to_string())
                .bind(us(next_at));
            for (i, id) in batch.iter().enumerate() {
                let seq = match order {
                    Order::Random => i64::from(rand::random::<u32>()),
                    _ => start + (b * BATCH + i + 1) as i64,
                };
                q = q.bind(id.clone()).bind(seq);
            }
            added += q
                .bind(tenant.to_string())
                .execute(&self.pool)
                .await
                .map_err(|e| self.query_error(action(), e))?
                .rows_affected();
        }
        Ok(added)
    }

    // ----- claims and leases ---------------------------------------------------------------

    /// Claims up to `n` due leads of a running campaign for `node` until `lease_until`: leads
    /// that are ready, due at `now`, and not leased by anyone (or whose lease ran out). Atomic
    /// across nodes: on PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED`,
    /// so concurrent claimers skip each other's rows instead of waiting; on SQLite the single
    /// `UPDATE … RETURNING` statement runs under the database write lock.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_leads(
        &self,
        tenant: &str,
        campaign: &str,
        node: &str,
        order: Order,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        n: u32,
    ) -> Result<Vec<ClaimedLead>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // Leases that ran out go back to the pool first (normally none: an index range), so the
        // pick below only walks the claimable partial index, in the campaign's order. Not this
        // node's own: those are leads it is working on (a lease of ours runs out only when the
        // database was away long enough to stop the renewals; the call is still ours).
        sqlx::query(
            "UPDATE campaign_leads SET lease_owner = NULL, lease_until_us = NULL \
             WHERE tenant = $1 AND campaign = $2 AND lease_owner IS NOT NULL \
             AND lease_until_us <= $3 AND lease_owner <> $4",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(us(now))
        .bind(node.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("claiming leads of {campaign}"), e))?;
        // `+next_at_us`: not an index column here, so SQLite walks `campaign_leads_claimable`
        // in order instead of sorting the due index's range.
        let due = format!(
            "SELECT lead FROM campaign_leads WHERE tenant = $3 AND campaign = $4 \
             AND state = 'ready' AND lease_owner IS NULL AND +next_at_us <= $5 \
             ORDER BY {} LIMIT $6",
            order.sql()
        );
        let sql = match self.backend() {
            // The candidates are picked and locked once, in a CTE: concurrent claimers skip
            // each other's rows instead of queueing on them.
            Backend::Postgres => format!(
                "WITH picked AS ({due} FOR UPDATE SKIP LOCKED) \
                 UPDATE campaign_leads cl SET lease_owner = $1, lease_until_us = $2 FROM picked \
                 WHERE cl.tenant = $3 AND cl.campaign = $4 AND cl.lead = picked.lead \
                 RETURNING cl.lead"
            ),
            // One statement under the database write lock.
            Backend::Sqlite => format!(
                "UPDATE campaign_leads SET lease_owner = $1, lease_until_us = $2 \
                 WHERE tenant = $3 AND campaign = $4 AND lead IN ({due}) RETURNING lead"
            ),
        };
        let action = || format!("claiming leads of {campaign}");
        let ids: Vec<String> = sqlx::query_scalar(&sql)
            .bind(node.to_string())
            .bind(us(lease_until))
            .bind(tenant.to_string())
            .bind(campaign.to_string())
            .bind(us(now))
            .bind(i64::from(n))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(action(), e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Their details, in the campaign's order (RETURNING has none).
        let mut ph = Placeholders::new(self.backend());
        let (t, c, o) = (ph.next(), ph.next(), ph.next());
        let placeholders: Vec<String> = ids.iter().map(|_| ph.next()).collect();
        let sql = format!(
            "SELECT {}, cl.attempts, cl.last_disposition, cl.callback_at_us, cl.lease_until_us \
             FROM campaign_leads cl JOIN leads l ON l.tenant = cl.tenant AND l.id = cl.lead \
             WHERE cl.tenant = {t} AND cl.campaign = {c} AND cl.lease_owner = {o} \
             AND cl.lead IN ({}) ORDER BY {}",
            Self::LEAD_COLUMNS,
            placeholders.join(", "),
            order.sql_cl()
        );
        let mut q = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(campaign.to_string())
            .bind(node.to_string());
        for id in &ids {
            q = q.bind(id.clone());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(action(), e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let lead = self.lead_from_row(&row)?;
            let id = lead.id.clone();
            let attempts: i64 = self.get(&row, "attempts", &id)?;
            out.push(ClaimedLead {
                lead,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                last_disposition: self.get(&row, "last_disposition", &id)?,
                callback_at: self.opt_time(&row, "callback_at_us", &id)?,
                lease_until: self.time(&row, "lease_until_us", &id)?,
            });
        }
        Ok(out)
    }

    /// Extends every lease `node` holds to `lease` from now (a node renews while its calls run).
    pub async fn renew_leases(
        &self,
        node: &str,
        lease: chrono::Duration,
    ) -> Result<u64, StoreError> {
        // The new end is taken once a connection is at hand: a renewal that waited for the
        // database must not write an end that has already passed.
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(self.err("renewing leases"))?;
        let until = Utc::now() + lease;
        let r = sqlx::query(
            "UPDATE campaign_leads SET lease_until_us = $1 WHERE lease_owner = $2 AND state = 'ready'",
        )
        .bind(us(until))
        .bind(node.to_string())
        .execute(&mut *conn)
        .await
        .map_err(self.err("renewing leases"))?;
        Ok(r.rows_affected())
    }

    /// Gives back a lead this node leased but could not work on (an error before its attempt
    /// ended): due again at once for any node. Returns whether the lease was still this node's.
    pub async fn release_lead(
        &self,
        tenant: &str,
        campaign: &str,
        lead: &str,
        node: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE campaign_leads SET lease_owner = NULL, lease_until_us = NULL \
             WHERE tenant = $1 AND campaign = $2 AND lead = $3 AND lease_owner = $4",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .bind(node.to_string())
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("releasing lead {lead}")))?;
        Ok(r.rows_affected() > 0)
    }

    /// At a node's start: drops the leases a previous process with the same node id held (that
    /// process is gone) so its leads are due again at once, and closes its open attempts as
    /// `interrupted`. Returns (leases released, attempts closed).
    pub async fn recover_node(
        &self,
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.pool.begin().await.map_err(self.err("recovering"))?;
        let closed = sqlx::query(
            "UPDATE attempts SET disposition = 'interrupted', ended_at_us = $1 \
             WHERE node = $2 AND disposition IS NULL",
        )
        .bind(us(now))
        .bind(node.to_string())
        .execute(&mut *tx)
        .await
        .map_err(self.err("recovering"))?
        .rows_affected();
        let released = sqlx::query(
            "UPDATE campaign_leads SET lease_owner = NULL, lease_until_us = NULL \
             WHERE lease_owner = $1",
        )
        .bind(node.to_string())
        .execute(&mut *tx)
        .await
        .map_err(self.err("recovering"))?
        .rows_affected();
        tx.commit().await.map_err(self.err("recovering"))?;
        Ok((released, closed))
    }

    /// Closes a lead's attempts left open by a node that lost its lease (it died or stalled) as
    /// `interrupted`. Call only while holding the lead's lease.
    pub async fn close_interrupted(
        &self,
        tenant: &str,
        campaign: &str,
        lead: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE attempts SET disposition = 'interrupted', ended_at_us = $1 \
             WHERE tenant = $2 AND campaign = $3 AND lead = $4 AND disposition IS NULL",
        )
        .bind(us(now))
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .execute(&self.pool)
        .await
        .map_err(self.err("closing interrupted attempts"))?;
        if r.rows_affected() > 0 {
            sqlx::query(
                "UPDATE campaign_leads SET last_disposition = 'interrupted' \
                 WHERE tenant = $1 AND campaign = $2 AND lead = $3",
            )
            .bind(tenant.to_string())
            .bind(campaign.to_string())
            .bind(lead.to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err("closing interrupted attempts"))?;
        }
        Ok(r.rows_affected())
    }

    /// A lead's attempts in a campaign, oldest first.
    pub async fn lead_attempts(
        &self,
        tenant: &str,
        campaign: &str,
        lead: &str,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, campaign, lead, phone_enc, node, started_at_us, ended_at_us, disposition, call_id \
             FROM attempts WHERE tenant = $1 AND campaign = $2 AND lead = $3 \
             ORDER BY started_at_us, id",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading attempts"))?;
        rows.iter().map(|r| self.attempt_from_row(r)).collect()
    }

    /// Every attempt of a campaign, oldest first.
    pub async fn campaign_attempts(
        &self,
        tenant: &str,
        campaign: &str,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, campaign, lead, phone_enc, node, started_at_us, ended_at_us, disposition, call_id \
             FROM attempts WHERE tenant = $1 AND campaign = $2 ORDER BY started_at_us, id",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading attempts"))?;
        rows.iter().map(|r| self.attempt_from_row(r)).collect()
    }

    fn attempt_from_row(&self, r: &AnyRow) -> Result<AttemptRow, StoreError> {
        let id: String = self.get(r, "id", "attempt")?;
        Ok(AttemptRow {
            campaign: self.get(r, "campaign", &id)?,
            lead: self.get(r, "lead", &id)?,
            phone: self.open_col(r, "phone_enc", "phone", &id)?,
            node: self.get(r, "node", &id)?,
            started_at: self.time(r, "started_at_us", &id)?,
            ended_at: self.opt_time(r, "ended_at_us", &id)?,
            disposition: self.get(r, "disposition", &id)?,
            call_id: self.get(r, "call_id", &id)?,
            id,
        })
    }

    /// When the tenant's attempts on a debt started, since `since` (for the per-debt cap).
    pub async fn debt_attempts(
        &self,
        tenant: &str,
        debt_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT started_at_us FROM attempts WHERE tenant = $1 AND debt_id = $2 \
             AND started_at_us >= $3 ORDER BY started_at_us",
        )
        .bind(tenant.to_string())
        .bind(self.debt_index(debt_id))
        .bind(us(since))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading a debt's attempts"))?;
        Ok(rows.into_iter().filter_map(from_micros).collect())
    }

    /// Opens the dial of a claimed lead. First the attempt and its `dialed` decision are
    /// committed (the intent); then a second transaction takes the number's lock, checks the
    /// lease and the DNC lists (when either refuses, the intent is deleted and nothing remains),
    /// marks the attempt sent and counts it on the lead. That transaction stays open: send the
    /// INVITE, then commit (module docs).
    pub async fn begin_dial(&self, tenant: &str, a: &NewAttempt) -> Result<DialStart, StoreError> {
        let action = || format!("starting attempt {}", a.id);
        let qerr = |e| self.query_error(action(), e);
        // 1. The intent, committed before anything can reach the network: a node killed from
        //    here on leaves an open attempt (closed later as `interrupted`), never an INVITE
        //    without a record.
        let mut tx0 = self.pool.begin().await.map_err(qerr)?;
        sqlx::query(
            "INSERT INTO attempts (tenant, id, campaign, lead, debt_id, phone, phone_enc, node, \
             started_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(tenant.to_string())
        .bind(a.id.clone())
        .bind(a.campaign.clone())
        .bind(a.lead.clone())
        .bind(a.debt_id.as_deref().map(|d| self.debt_index(d)))
        .bind(self.phone_index(&a.phone))
        .bind(self.seal("phone", &a.phone))
        .bind(a.node.clone())
        .bind(us(a.started_at))
        .execute(&mut *tx0)
        .await
        .map_err(qerr)?;
        insert_decision(
            self,
            &mut tx0,
            tenant,
            &Decision {
                at: a.started_at,
                campaign: a.campaign.clone(),
                lead: a.lead.clone(),
                phone: a.phone.clone(),
                verdict: "dialed".into(),
                rule: a.rule.clone(),
                detail: a.detail.clone(),
                until: None,
                node: a.node.clone(),
                attempt: Some(a.id.clone()),
            },
        )
        .await
        .map_err(qerr)?;
        tx0.commit().await.map_err(qerr)?;

        // 2. Under the number's lock: the lease and the DNC lists, then (by the caller) the
        //    INVITE, then the commit.
        let mut tx = self.pool.begin().await.map_err(qerr)?;
        let mark_sent =
            sqlx::query("UPDATE attempts SET sent_at_us = $1 WHERE tenant = $2 AND id = $3")
                .bind(us(a.started_at))
                .bind(tenant.to_string())
                .bind(a.id.clone());
        if self.backend() == Backend::Postgres {
            // The number's lock first; a DNC insert takes it exclusively.
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(number_lock_key(&a.phone))
                .execute(&mut *tx)
                .await
                .map_err(qerr)?;
        }
        // On SQLite this write takes the database write lock, which a DNC insert needs too.
        mark_sent.execute(&mut *tx).await.map_err(qerr)?;
        let lease = sqlx::query(
            "SELECT lease_owner, lease_until_us FROM campaign_leads \
             WHERE tenant = $1 AND campaign = $2 AND lead = $3",
        )
        .bind(tenant.to_string())
        .bind(a.campaign.clone())
        .bind(a.lead.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(qerr)?;
        let held = match &lease {
            Some(r) => {
                let owner: Option<String> = self.get(r, "lease_owner", &a.lead)?;
                let until: Option<i64> = self.get(r, "lease_until_us", &a.lead)?;
                owner.as_deref() == Some(a.node.as_str())
                    && until.is_some_and(|u| u > us(a.started_at))
            }
            None => false,
        };
        let blocked = if held {
            self.dnc_in(&mut tx, tenant, &a.phone, a.started_at).await?
        } else {
            None
        };
        if !held || blocked.is_some() {
            // Not dialed after all: the intent goes.
            sqlx::query("DELETE FROM dial_decisions WHERE tenant = $1 AND attempt = $2")
                .bind(tenant.to_string())
                .bind(a.id.clone())
                .execute(&mut *tx)
                .await
                .map_err(qerr)?;
            sqlx::query("DELETE FROM attempts WHERE tenant = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(a.id.clone())
                .execute(&mut *tx)
                .await
                .map_err(qerr)?;
            tx.commit().await.map_err(qerr)?;
            return Ok(match blocked {
                Some(entry) => DialStart::Blocked(entry),
                None => DialStart::LeaseLost,
            });
        }
        sqlx::query(
            "UPDATE campaign_leads SET attempts = attempts + 1, reason = $1 \
             WHERE tenant = $2 AND campaign = $3 AND lead = $4",
        )
        .bind(format!("{}: {}", a.rule, a.detail))
        .bind(tenant.to_string())
        .bind(a.campaign.clone())
        .bind(a.lead.clone())
        .execute(&mut *tx)
        .await
        .map_err(qerr)?;
        Ok(DialStart::Dial(DialTx {
            tx,
            url: self.url().to_string(),
        }))
    }

    /// Records how an attempt ended and what happens to the lead next, releasing the lease.
    /// Returns `false` when the lease was no longer this node's (the attempt is still closed;
    /// the lead's state belongs to its new owner).
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_attempt(
        &self,
        tenant: &str,
        campaign: &str,
        lead: &str,
        attempt: &str,
        node: &str,
        disposition: &str,
        ended_at: DateTime<Utc>,
        call_id: Option<&str>,
        next: &LeadUpdate,
    ) -> Result<bool, StoreError> {
        let action = || format!("finishing attempt {attempt}");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.query_error(action(), e))?;
        sqlx::query(
            "UPDATE attempts SET disposition = $1, ended_at_us = $2, call_id = $3 \
             WHERE tenant = $4 AND id = $5 AND disposition IS NULL",
        )
        .bind(disposition.to_string())
        .bind(us(ended_at))
        .bind(call_id.map(str::to_string))
        .bind(tenant.to_string())
        .bind(attempt.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(action(), e))?;
        let held = sqlx::query(
            "UPDATE campaign_leads SET state = $1, next_at_us = $2, last_disposition = $3, \
             reason = $4, callback_at_us = $5, lease_owner = NULL, lease_until_us = NULL \
             WHERE tenant = $6 AND campaign = $7 AND lead = $8 AND lease_owner = $9",
        )
        .bind(if next.done { "done" } else { "ready" })
        .bind(us(next.next_at))
        .bind(disposition.to_string())
        .bind(next.reason.clone())
        .bind(next.callback_at.map(us))
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .bind(node.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(action(), e))?
        .rows_affected()
            > 0;
        tx.commit()
            .await
            .map_err(|e| self.query_error(action(), e))?;
        Ok(held)
    }

    /// Records a verdict that did not dial (`wait`, `stop` or `blocked`) and releases the lease.
    pub async fn defer_lead(
        &self,
        tenant: &str,
        decision: &Decision,
        next: &LeadUpdate,
    ) -> Result<bool, StoreError> {
        let action = || format!("deferring lead {}", decision.lead);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.query_error(action(), e))?;
        let held = sqlx::query(
            "UPDATE campaign_leads SET state = $1, next_at_us = $2, reason = $3, \
             lease_owner = NULL, lease_until_us = NULL \
             WHERE tenant = $4 AND campaign = $5 AND lead = $6 AND lease_owner = $7",
        )
        .bind(if next.done { "done" } else { "ready" })
        .bind(us(next.next_at))
        .bind(next.reason.clone())
        .bind(tenant.to_string())
        .bind(decision.campaign.clone())
        .bind(decision.lead.clone())
        .bind(decision.node.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(action(), e))?
        .rows_affected()
            > 0;
        if held {
            insert_decision(self, &mut tx, tenant, decision)
                .await
                .map_err(|e| self.query_error(action(), e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.query_error(action(), e))?;
        Ok(held)
    }

    // ----- DNC -----------------------------------------------------------------------------

    async fn dnc_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DncEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant, phone_enc, reason, source, added_by, added_at_us, expires_at_us \
             FROM dnc WHERE phone = $1 AND (tenant = $2 OR tenant = '*') \
             AND (expires_at_us IS NULL OR expires_at_us > $3) \
             ORDER BY CASE WHEN tenant = '*' THEN 1 ELSE 0 END LIMIT 1",
        )
        .bind(self.phone_index(phone))
        .bind(tenant.to_string())
        .bind(us(now))
        .fetch_optional(&mut **tx)
        .await
        .map_err(self.err("checking the DNC lists"))?;
        row.map(|r| self.dnc_from_row(&r)).transpose()
    }

    fn dnc_from_row(&self, r: &AnyRow) -> Result<DncEntry, StoreError> {
        let phone = self.open_col(r, "phone_enc", "phone", "dnc")?;
        Ok(DncEntry {
            tenant: self.get(r, "tenant", &phone)?,
            reason: self.get(r, "reason", &phone)?,
            source: self.get(r, "source", &phone)?,
            added_by: self.get(r, "added_by", &phone)?,
            added_at: self.time(r, "added_at_us", &phone)?,
            expires_at: self.opt_time(r, "expires_at_us", &phone)?,
            phone,
        })
    }

    /// The entry that blocks `phone` for `tenant` at `now` (its own list, then the global one).
    pub async fn dnc_check(
        &self,
        tenant: &str,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DncEntry>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("checking the DNC lists"))?;
        let found = self.dnc_in(&mut tx, tenant, phone, now).await?;
        let _ = tx.rollback().await;
        Ok(found)
    }

    /// Adds (or replaces) DNC entries, each under its number's lock (see the module docs: a dial
    /// in progress finishes sending first; any later dial sees the entry). `entry.tenant` is the
    /// list: a tenant's own, or `*`.
    pub async fn add_dnc(&self, entries: &[DncEntry]) -> Result<(), StoreError> {
        for batch in entries.chunks(BATCH) {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(self.err("adding DNC entries"))?;
            for e in batch {
                if self.backend() == Backend::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(number_lock_key(&e.phone))
                        .execute(&mut *tx)
                        .await
                        .map_err(self.err("adding DNC entries"))?;
                }
                sqlx::query(
                    "INSERT INTO dnc (tenant, phone, phone_enc, reason, source, added_by, \
                     added_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant, phone) DO UPDATE SET phone_enc = excluded.phone_enc, \
                     reason = excluded.reason, \
                     source = excluded.source, added_by = excluded.added_by, \
                     added_at_us = excluded.added_at_us, expires_at_us = excluded.expires_at_us",
                )
                .bind(e.tenant.clone())
                .bind(self.phone_index(&e.phone))
                .bind(self.seal("phone", &e.phone))
                .bind(e.reason.clone())
                .bind(e.source.clone())
                .bind(e.added_by.clone())
                .bind(us(e.added_at))
                .bind(e.expires_at.map(us))
                .execute(&mut *tx)
                .await
                .map_err(self.err("adding DNC entries"))?;
            }
            tx.commit().await.map_err(self.err("adding DNC entries"))?;
        }
        Ok(())
    }

    /// Removes a number from a list; returns whether it was there.
    pub async fn remove_dnc(&self, list: &str, phone: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM dnc WHERE tenant = $1 AND phone = $2")
            .bind(list.to_string())
            .bind(self.phone_index(phone))
            .execute(&self.pool)
            .await
            .map_err(self.err("removing a DNC entry"))?;
        Ok(r.rows_affected() > 0)
    }

    /// A list's entries (expired ones included until swept), by number.
    pub async fn list_dnc(&self, list: &str) -> Result<Vec<DncEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, phone_enc, reason, source, added_by, added_at_us, expires_at_us \
             FROM dnc WHERE tenant = $1",
        )
        .bind(list.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing DNC entries"))?;
        // By number: the stored order of blind indexes means nothing.
        let mut entries = rows
            .iter()
            .map(|r| self.dnc_from_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.phone.cmp(&b.phone));
        Ok(entries)
    }

    /// Every unexpired DNC entry of every list as (list, E.164, expiry in Unix seconds): what a
    /// dialer node loads into its in-memory index.
    pub async fn dnc_all(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, phone_enc, expires_at_us FROM dnc \
             WHERE expires_at_us IS NULL OR expires_at_us > $1",
        )
        .bind(us(now))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("loading the DNC lists"))?;
        rows.iter()
            .map(|r| {
                let phone = self.open_col(r, "phone_enc", "phone", "dnc")?;
                let expires: Option<i64> = self.get(r, "expires_at_us", &phone)?;
                Ok((
                    self.get(r, "tenant", &phone)?,
                    phone,
                    expires.map(|e| e.div_euclid(1_000_000)),
                ))
            })
            .collect()
    }

    /// Deletes entries that expired before `now` (they already stopped blocking at expiry);
    /// returns them, for the audit log.
    pub async fn sweep_dnc(&self, now: DateTime<Utc>) -> Result<Vec<DncEntry>, StoreError> {
        // One statement: a read-then-write transaction would fail on SQLite when another
        // writer is active (the lock upgrade is refused rather than waited for).
        let rows = sqlx::query(
            "DELETE FROM dnc WHERE expires_at_us IS NOT NULL AND expires_at_us <= $1 \
             RETURNING tenant, phone_enc, reason, source, added_by, added_at_us, expires_at_us",
        )
        .bind(us(now))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("sweeping DNC entries"))?;
        let expired: Vec<DncEntry> = rows
            .iter()
            .map(|r| self.dnc_from_row(r))
            .collect::<Result<_, _>>()?;
        Ok(expired)
    }

    // ----- audit ---------------------------------------------------------------------------

    /// Writes an audit event.
    pub async fn audit(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (tenant, id, at_us, actor, action, subject, detail_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.to_string())
        .bind(new_id())
        .bind(us(Utc::now()))
        .bind(actor.to_string())
        .bind(action.to_string())
        .bind(self.seal("audit_subject", subject))
        .bind(self.seal("audit_detail", &detail.to_string()))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("auditing {action}")))?;
        Ok(())
    }

    /// Every dial decision about a number, oldest first, up to `until` when given: the answer
    /// to "why was this number dialed (or not) at this time".
    pub async fn decisions_for_phone(
        &self,
        tenant: &str,
        phone: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Decision>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_us, campaign, lead, phone_enc, verdict, rule, detail, until_us, node, \
             attempt FROM dial_decisions WHERE tenant = $1 AND phone = $2 \
             AND ($3 IS NULL OR at_us <= $3) ORDER BY at_us, id",
        )
        .bind(tenant.to_string())
        .bind(self.phone_index(phone))
        .bind(until.map(us))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading dial decisions"))?;
        rows.iter()
            .map(|r| {
                Ok(Decision {
                    at: self.time(r, "at_us", phone)?,
                    campaign: self.get(r, "campaign", phone)?,
                    lead: self.get(r, "lead", phone)?,
                    phone: self.open_col(r, "phone_enc", "phone", phone)?,
                    verdict: self.get(r, "verdict", phone)?,
                    rule: self.get(r, "rule", phone)?,
                    detail: self.get(r, "detail", phone)?,
                    until: self.opt_time(r, "until_us", phone)?,
                    node: self.get(r, "node", phone)?,
                    attempt: self.get(r, "attempt", phone)?,
                })
            })
            .collect()
    }
}

async fn insert_decision(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    d: &Decision,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dial_decisions (tenant, id, campaign, lead, phone, phone_enc, at_us, verdict, \
         rule, detail, until_us, node, attempt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tenant.to_string())
    .bind(new_id())
    .bind(d.campaign.clone())
    .bind(d.lead.clone())
    .bind(store.phone_index(&d.phone))
    .bind(store.seal("phone", &d.phone))
    .bind(us(d.at))
    .bind(d.verdict.clone())
    .bind(d.rule.clone())
    .bind(d.detail.clone())
    .bind(d.until.map(us))
    .bind(d.node.clone())
    .bind(d.attempt.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_moves() {
        use CampaignStatus::*;
        assert!(Draft.can_become(Running));
        assert!(Running.can_become(Paused));
        assert!(Paused.can_become(Running));
        assert!(Running.can_become(Stopped));
        assert!(!Stopped.can_become(Running));
        assert!(!Finished.can_become(Running));
        assert!(!Draft.can_become(Paused));
    }

    #[test]
    fn lock_keys_are_the_digits() {
        assert_eq!(number_lock_key("+15551234567"), 15551234567);
        assert_eq!(number_lock_key("+442071234567"), 442071234567);
        assert_ne!(number_lock_key("abc"), number_lock_key("abd"));
    }
}
