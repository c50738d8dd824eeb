//! Who may use the admin API: bearer tokens with a role, per tenant (only their SHA-256 is
//! stored), and reading back the audit trail (`audit_events`, written by [`Store::audit`]).

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, from_micros};

/// The admin API's roles, from most to least powerful: `admin` (everything in the tenant),
/// `supervisor` (operations: campaigns, DNC additions, agents), `auditor` (read-only, the audit
/// log included), `agent` (nothing in the admin API; the console only); and `platform`, the
/// deployment's operator, outside every tenant: it creates tenants, keeps the global DNC list
/// and the retention policy, and reads no tenant's data. A `platform` token belongs to the
/// tenant `*` ([`PLATFORM_TENANT`]) and no other token does.
pub const API_ROLES: &[&str] = &["admin", "supervisor", "auditor", "agent", "platform"];

/// The tenant of `platform` tokens (the same `*` as the global DNC list's).
pub const PLATFORM_TENANT: &str = crate::dialer::db::GLOBAL;

/// A token's record (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn time(us: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    from_micros(us).ok_or_else(|| StoreError::Refused {
        what: what.to_string(),
        reason: format!("stored time {us} is out of range"),
    })
}

impl Store {
    /// Creates a token for `tenant` with `role`; returns its record and the token, which is
    /// shown once and never stored. Refused: an unknown role or an empty name.
    pub async fn create_api_token(
        &self,
        tenant: &str,
        name: &str,
        role: &str,
    ) -> Result<(ApiToken, String), StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("API token {name:?}"),
            reason,
        };
        if !API_ROLES.contains(&role) {
            return Err(refuse(format!(
                "unknown role {role:?} (one of: {})",
                API_ROLES.join(", ")
            )));
        }
        if name.trim().is_empty() {
            return Err(refuse("a token needs a name".into()));
        }
        if (role == "platform") != (tenant == PLATFORM_TENANT) {
            return Err(refuse(format!(
                "the role platform goes with the tenant {PLATFORM_TENANT:?}, and only it \
                 (asked: role {role} in tenant {tenant:?})"
            )));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("cb_{}", hex::encode(bytes));
        let mut id = [0u8; 6];
        rand::rng().fill_bytes(&mut id);
        let record = ApiToken {
            tenant: tenant.to_string(),
            id: hex::encode(id),
            name: name.to_string(),
            role: role.to_string(),
            // What the store keeps: microseconds.
            created_at: from_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (tenant, id, name, role, token_sha256, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.tenant.clone())
        .bind(record.id.clone())
        .bind(record.name.clone())
        .bind(record.role.clone())
        .bind(sha256_hex(&token))
        .bind(record.created_at.timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("creating API token {name}"), e))?;
        Ok((record, token))
    }

    /// The live (not revoked) token whose value is `token`.
    pub async fn api_token(&self, token: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_TOKEN} WHERE token_sha256 = $1 AND revoked_at_us IS NULL"
        ))
        .bind(sha256_hex(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error("checking an API token".into(), e))?;
        row.map(|r| self.token_from_row(&r)).transpose()
    }

    /// A tenant's tokens, revoked ones included.
    pub async fn api_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_TOKEN} WHERE tenant = $1 ORDER BY created_at_us"
        ))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error("listing API tokens".into(), e))?;
        rows.iter().map(|r| self.token_from_row(r)).collect()
    }

    /// Revokes a token; `false` if the tenant has no live token with that id.
    pub async fn revoke_api_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = $1 WHERE tenant = $2 AND id = $3 \
             AND revoked_at_us IS NULL",
        )
        .bind(Utc::now().timestamp_micros())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("revoking API token {id}"), e))?;
        Ok(r.rows_affected() > 0)
    }

    fn token_from_row(&self, r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
        let id: String = self.get(r, "id", "api token")?;
        let created: i64 = self.get(r, "created_at_us", &id)?;
        let revoked: Option<i64> = self.get(r, "revoked_at_us", &id)?;
        Ok(ApiToken {
            tenant: self.get(r, "tenant", &id)?,
            name: self.get(r, "name", &id)?,
            role: self.get(r, "role", &id)?,
            created_at: time(created, "API token")?,
            revoked_at: revoked.map(|t| time(t, "API token")).transpose()?,
            id,
        })
    }

    /// Whether call `id` is the tenant's: dialed by one of its attempts, or, for the `default`
    /// tenant, a call of no campaign (calls carry no tenant column of their own).
    pub async fn call_is_tenants(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM calls c WHERE c.id = $1 AND (EXISTS (SELECT 1 FROM attempts a \
             WHERE a.call_id = c.id AND a.tenant = $2) OR (c.campaign IS NULL AND $2 = 'default'))",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("checking call {id}"), e))?;
        Ok(row.is_some())
    }

    /// A tenant's audit events, newest first, at most `limit`, before `before` when given.
    pub async fn audit_events(
        &self,
        tenant: &str,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_us, actor, action, subject, detail_json FROM audit_events \
             WHERE tenant = $1 AND at_us < $2 ORDER BY at_us DESC LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(before.map_or(i64::MAX, |b| b.timestamp_micros()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error("reading the audit log".into(), e))?;
        rows.iter()
            .map(|r| {
                let id: String = self.get(r, "id", "audit event")?;
                let at: i64 = self.get(r, "at_us", &id)?;
                let detail = self.open_col(r, "detail_json", "audit_detail", &id)?;
                Ok(AuditEvent {
                    at: time(at, "audit event")?,
                    actor: self.get(r, "actor", &id)?,
                    action: self.get(r, "action", &id)?,
                    subject: self.open_col(r, "subject", "audit_subject", &id)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    id,
                })
            })
            .collect()
    }
}

const SELECT_TOKEN: &str =
    "SELECT tenant, id, name, role, created_at_us, revoked_at_us FROM api_tokens";
