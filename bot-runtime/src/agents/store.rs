//! What the store keeps about agents: their accounts (console login, skills, SIP phone), the
//! queues of each tenant, and what an agent recorded about a call they took (disposition, notes,
//! a callback), one row per call and agent.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::queue::{QueueConfig, QueueEngine};
use crate::store::{Store, StoreError, from_micros};

/// An agent's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAccount {
    pub id: String,
    pub name: String,
    /// Argon2id PHC string of the console password (never the password).
    pub password_hash: String,
    /// skill → level (1..=10).
    pub skills: BTreeMap<String, u8>,
    /// `agent` or `supervisor`.
    pub role: String,
    /// The SIP user the agent's phone registers as, and its digest password.
    pub sip_user: Option<String>,
    pub sip_password: Option<String>,
    pub disabled: bool,
}

impl Store {
    /// Creates or replaces an agent's account. Refused: an empty id or name, a role other than
    /// `agent`/`supervisor`, a skill level outside 1..=10, a SIP user without a password, or a
    /// SIP user another agent already has.
    pub async fn save_agent(&self, tenant: &str, a: &AgentAccount) -> Result<(), StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("agent {:?}", a.id),
            reason,
        };
        if a.id.trim().is_empty() || a.name.trim().is_empty() {
            return Err(refuse("an agent needs an id and a name".into()));
        }
        if a.role != "agent" && a.role != "supervisor" {
            return Err(refuse(format!(
                "unknown role {:?} (agent or supervisor)",
                a.role
            )));
        }
        if let Some((skill, level)) = a.skills.iter().find(|(_, l)| !(1..=10).contains(*l)) {
            return Err(refuse(format!(
                "skill {skill:?} has level {level}; levels are 1 to 10"
            )));
        }
        if a.sip_user.is_some() && a.sip_password.as_deref().is_none_or(str::is_empty) {
            return Err(refuse("a SIP phone needs a password".into()));
        }
        if let Some(user) = &a.sip_user
            && let Some((t, other)) = self.agent_by_sip_user(user).await?
            && (t != tenant || other.id != a.id)
        {
            return Err(refuse(format!(
                "SIP user {user:?} belongs to another agent"
            )));
        }
        let skills =
            serde_json::to_string(&a.skills).map_err(|e| refuse(format!("skills: {e}")))?;
        sqlx::query(
            "INSERT INTO agents (tenant, id, name, password_hash, skills_json, role, sip_user, \
             sip_password, disabled, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, \
             password_hash = excluded.password_hash, skills_json = excluded.skills_json, \
             role = excluded.role, sip_user = excluded.sip_user, \
             sip_password = excluded.sip_password, disabled = excluded.disabled",
        )
        .bind(tenant.to_string())
        .bind(a.id.clone())
        .bind(a.name.clone())
        .bind(a.password_hash.clone())
        .bind(skills)
        .bind(a.role.clone())
        .bind(a.sip_user.clone())
        .bind(self.seal_opt("sip_password", a.sip_password.as_deref()))
        .bind(i64::from(a.disabled))
        .bind(Utc::now().timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("saving agent {}", a.id), e))?;
        Ok(())
    }

    fn agent_from_row(&self, r: &AnyRow) -> Result<AgentAccount, StoreError> {
        let id: String = self.get(r, "id", "")?;
        let skills: String = self.get(r, "skills_json", &id)?;
        let disabled: i64 = self.get(r, "disabled", &id)?;
        Ok(AgentAccount {
            name: self.get(r, "name", &id)?,
            password_hash: self.get(r, "password_hash", &id)?,
            skills: serde_json::from_str(&skills).map_err(|e| StoreError::Refused {
                what: format!("agent {id:?}"),
                reason: format!("stored skills do not read back: {e}"),
            })?,
            role: self.get(r, "role", &id)?,
            sip_user: self.get(r, "sip_user", &id)?,
            sip_password: self.open_opt_col(r, "sip_password", "sip_password", &id)?,
            disabled: disabled != 0,
            id,
        })
    }

    /// An agent's account.
    pub async fn agent(&self, tenant: &str, id: &str) -> Result<Option<AgentAccount>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_AGENT} WHERE tenant = $1 AND id = $2"))
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.query_error(format!("reading agent {id}"), e))?;
        row.map(|r| self.agent_from_row(&r)).transpose()
    }

    /// A tenant's agents, by id.
    pub async fn agents(&self, tenant: &str) -> Result<Vec<AgentAccount>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_AGENT} WHERE tenant = $1 ORDER BY id"))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error("listing agents".into(), e))?;
        rows.iter().map(|r| self.agent_from_row(r)).collect()
    }

    /// The tenant and account of the agent whose phone registers as `user`.
    pub async fn agent_by_sip_user(
        &self,
        user: &str,
    ) -> Result<Option<(String, AgentAccount)>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_AGENT} WHERE sip_user = $1"))
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.query_error(format!("finding SIP user {user}"), e))?;
        row.map(|r| {
            let tenant: String = self.get(&r, "tenant", "")?;
            Ok((tenant, self.agent_from_row(&r)?))
        })
        .transpose()
    }

    /// The registrar's accounts: SIP user → password of every enabled agent with a phone.
    pub async fn sip_accounts(&self) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT sip_user, sip_password FROM agents WHERE sip_user IS NOT NULL AND disabled = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error("reading SIP accounts".into(), e))?;
        let mut out = HashMap::new();
        for r in &rows {
            let user: String = self.get(r, "sip_user", "")?;
            let password = self.open_opt_col(r, "sip_password", "sip_password", &user)?;
            out.insert(user, password.unwrap_or_default());
        }
        Ok(out)
    }

    /// Creates or replaces a queue; the tenant's queues must stay valid together (an overflow
    /// names an existing queue, timeouts are not zero…, as [`QueueEngine::new`] checks).
    pub async fn save_queue(&self, tenant: &str, q: &QueueConfig) -> Result<(), StoreError> {
        let mut all: Vec<QueueConfig> = self
            .queues(tenant)
            .await?
            .into_iter()
            .filter(|x| x.name != q.name)
            .collect();
        all.push(q.clone());
        QueueEngine::new(all).map_err(|e| StoreError::Refused {
            what: format!("queue {:?}", q.name),
            reason: e.to_string(),
        })?;
        let json = serde_json::to_string(q).map_err(|e| StoreError::Refused {
            what: format!("queue {:?}", q.name),
            reason: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO queues (tenant, name, config_json, updated_at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, name) DO UPDATE SET config_json = excluded.config_json, \
             updated_at_us = excluded.updated_at_us",
        )
        .bind(tenant.to_string())
        .bind(q.name.clone())
        .bind(json)
        .bind(Utc::now().timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("saving queue {}", q.name), e))?;
        Ok(())
    }

    /// A tenant's queues, by name.
    pub async fn queues(&self, tenant: &str) -> Result<Vec<QueueConfig>, StoreError> {
        let rows =
            sqlx::query("SELECT name, config_json FROM queues WHERE tenant = $1 ORDER BY name")
                .bind(tenant.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error("listing queues".into(), e))?;
        rows.iter()
            .map(|r| {
                let name: String = self.get(r, "name", "")?;
                let json: String = self.get(r, "config_json", &name)?;
                serde_json::from_str(&json).map_err(|e| StoreError::Refused {
                    what: format!("queue {name:?}"),
                    reason: format!("stored configuration does not read back: {e}"),
                })
            })
            .collect()
    }
}

/// Dispositions an agent can choose (the console's form offers these).
pub const AGENT_DISPOSITIONS: &[&str] = &[
    "resolved",
    "promise_to_pay",
    "payment_plan",
    "dispute_opened",
    "callback",
    "wrong_party",
    "refused",
    "escalated",
    "other",
];

/// What an agent recorded about a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDisposition {
    pub call_id: String,
    pub agent_id: String,
    pub disposition: String,
    pub notes: String,
    /// When to call the customer back (the `callback` disposition).
    pub callback_at: Option<DateTime<Utc>>,
    pub saved_at: DateTime<Utc>,
}

const SELECT_AGENT: &str = "SELECT tenant, id, name, password_hash, skills_json, role, sip_user, \
     sip_password, disabled FROM agents";

impl Store {
    /// Saves (or replaces) an agent's disposition of a call. Refused: an unknown disposition,
    /// `callback` without a time, or notes over 4,000 characters.
    pub async fn save_disposition(
        &self,
        tenant: &str,
        d: &AgentDisposition,
    ) -> Result<(), StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("disposition of call {}", d.call_id),
            reason,
        };
        if !AGENT_DISPOSITIONS.contains(&d.disposition.as_str()) {
            return Err(refuse(format!(
                "unknown disposition {:?} (one of: {})",
                d.disposition,
                AGENT_DISPOSITIONS.join(", ")
            )));
        }
        if d.disposition == "callback" && d.callback_at.is_none() {
            return Err(refuse("a callback needs a time".into()));
        }
        if d.notes.chars().count() > 4000 {
            return Err(refuse("notes are limited to 4,000 characters".into()));
        }
        if d.notes.contains('\0') {
            return Err(refuse("notes contain a NUL character".into()));
        }
        sqlx::query(
            "INSERT INTO agent_dispositions (tenant, call_id, agent_id, disposition, notes, \
             callback_at_us, saved_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (call_id, agent_id) DO UPDATE SET disposition = excluded.disposition, \
             notes = excluded.notes, callback_at_us = excluded.callback_at_us, \
             saved_at_us = excluded.saved_at_us",
        )
        .bind(tenant.to_string())
        .bind(d.call_id.clone())
        .bind(d.agent_id.clone())
        .bind(d.disposition.clone())
        .bind(self.seal("notes", &d.notes))
        .bind(d.callback_at.map(|t| t.timestamp_micros()))
        .bind(d.saved_at.timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            self.query_error(format!("saving the disposition of call {}", d.call_id), e)
        })?;
        Ok(())
    }

    /// The agents' dispositions of a call, oldest first.
    pub async fn dispositions(
        &self,
        tenant: &str,
        call_id: &str,
    ) -> Result<Vec<AgentDisposition>, StoreError> {
        let rows = sqlx::query(
            "SELECT call_id, agent_id, disposition, notes, callback_at_us, saved_at_us \
             FROM agent_dispositions WHERE tenant = $1 AND call_id = $2 ORDER BY saved_at_us",
        )
        .bind(tenant.to_string())
        .bind(call_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("reading the dispositions of call {call_id}"), e))?;
        rows.iter()
            .map(|r| {
                let callback: Option<i64> = self.get(r, "callback_at_us", call_id)?;
                let saved: i64 = self.get(r, "saved_at_us", call_id)?;
                let time = |us: i64| {
                    from_micros(us).ok_or_else(|| StoreError::Refused {
                        what: format!("disposition of call {call_id}"),
                        reason: format!("stored time {us} is out of range"),
                    })
                };
                Ok(AgentDisposition {
                    call_id: self.get(r, "call_id", call_id)?,
                    agent_id: self.get(r, "agent_id", call_id)?,
                    disposition: self.get(r, "disposition", call_id)?,
                    notes: self.open_col(r, "notes", "notes", call_id)?,
                    callback_at: callback.map(time).transpose()?,
                    saved_at: time(saved)?,
                })
            })
            .collect()
    }
}

/// An agent's own figures since a moment (the console's "today").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentDayStats {
    /// Calls the agent was connected to.
    pub calls: u64,
    /// Their total and mean talk time.
    pub talk_ms: u64,
    pub mean_talk_ms: u64,
    /// Mean wait of those calls in the queue before the agent took them.
    pub mean_wait_ms: u64,
    /// disposition → count, of the dispositions the agent saved.
    pub dispositions: BTreeMap<String, u64>,
}

impl Store {
    /// What `agent` did since `since`: connected calls (from the calls' agent legs) and the
    /// dispositions they saved.
    pub async fn agent_stats(
        &self,
        tenant: &str,
        agent: &str,
        since: DateTime<Utc>,
    ) -> Result<AgentDayStats, StoreError> {
        let since_us = since.timestamp_micros();
        let legs = sqlx::query(
            "SELECT started_at_us, ended_at_us, wait_ms FROM call_legs \
             WHERE kind = 'agent' AND agent_id = $1 AND started_at_us >= $2",
        )
        .bind(agent.to_string())
        .bind(since_us)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("reading agent {agent}'s calls"), e))?;
        let mut stats = AgentDayStats::default();
        let mut wait_total = 0u64;
        for r in &legs {
            let start: i64 = self.get(r, "started_at_us", agent)?;
            let end: i64 = self.get(r, "ended_at_us", agent)?;
            let wait: Option<i64> = self.get(r, "wait_ms", agent)?;
            stats.calls += 1;
            stats.talk_ms += u64::try_from((end - start) / 1000).unwrap_or(0);
            wait_total += wait.and_then(|w| u64::try_from(w).ok()).unwrap_or(0);
        }
        stats.mean_talk_ms = stats.talk_ms.checked_div(stats.calls).unwrap_or(0);
        stats.mean_wait_ms = wait_total.checked_div(stats.calls).unwrap_or(0);
        let rows = sqlx::query(
            "SELECT disposition, COUNT(*) AS n FROM agent_dispositions \
             WHERE tenant = $1 AND agent_id = $2 AND saved_at_us >= $3 GROUP BY disposition",
        )
        .bind(tenant.to_string())
        .bind(agent.to_string())
        .bind(since_us)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("reading agent {agent}'s dispositions"), e))?;
        for r in &rows {
            let d: String = self.get(r, "disposition", agent)?;
            let n: i64 = self.get(r, "n", agent)?;
            stats.dispositions.insert(d, u64::try_from(n).unwrap_or(0));
        }
        Ok(stats)
    }

    /// Schedules a campaign lead to be called back at `at` (an agent's `callback`
    /// disposition): the lead becomes dialable again, and the dialer's rules hold it until
    /// then and inside the calling window. Returns `false` while the lead is leased (its
    /// attempt is still being closed: try again shortly) and `Refused` when the campaign has
    /// no such lead.
    pub async fn schedule_callback(
        &self,
        tenant: &str,
        campaign: &str,
        lead: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let action = || format!("scheduling a callback for lead {lead}");
        let updated = sqlx::query(
            "UPDATE campaign_leads SET state = 'ready', next_at_us = $1, callback_at_us = $1, \
             reason = $2 WHERE tenant = $3 AND campaign = $4 AND lead = $5 \
             AND lease_owner IS NULL",
        )
        .bind(at.timestamp_micros())
        .bind(format!(
            "an agent scheduled a callback for {}",
            at.format("%Y-%m-%d %H:%M UTC")
        ))
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(action(), e))?
        .rows_affected();
        if updated > 0 {
            return Ok(true);
        }
        let exists = sqlx::query(
            "SELECT 1 AS one FROM campaign_leads WHERE tenant = $1 AND campaign = $2 AND lead = $3",
        )
        .bind(tenant.to_string())
        .bind(campaign.to_string())
        .bind(lead.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(action(), e))?;
        match exists {
            Some(_) => Ok(false),
            None => Err(StoreError::Refused {
                what: format!("callback for lead {lead:?}"),
                reason: format!("campaign {campaign:?} has no such lead"),
            }),
        }
    }
}
