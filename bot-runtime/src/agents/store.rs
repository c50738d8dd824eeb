//! What the store keeps about agents: what an agent recorded about a call they took (disposition,
//! notes, a callback), one row per call and agent.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{Store, StoreError, from_micros};

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
        .bind(d.notes.clone())
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
                    notes: self.get(r, "notes", call_id)?,
                    callback_at: callback.map(time).transpose()?,
                    saved_at: time(saved)?,
                })
            })
            .collect()
    }
}
