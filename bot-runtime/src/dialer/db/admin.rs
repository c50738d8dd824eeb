//! What the admin API reads and changes beyond the dialer's own needs: a tenant's flows with
//! their versions and the active one, activation, and a lead's history across campaigns.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AttemptRow, Lead, us};
use crate::store::{Store, StoreError};

/// One stored version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowVersion {
    pub version: u32,
    /// SHA-256 of the YAML source, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// A flow: its versions, oldest first, and the active one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowInfo {
    pub name: String,
    /// The version new calls of the flow's campaigns run (`None`: none activated).
    pub active: Option<u32>,
    pub activated_at: Option<DateTime<Utc>>,
    pub activated_by: Option<String>,
    pub versions: Vec<FlowVersion>,
}

/// What [`Store::activate_flow`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activation {
    pub flow: String,
    pub version: u32,
    /// The version active before (`None`: none was).
    pub previous: Option<u32>,
    /// The campaigns (draft, running or paused) moved to this version.
    pub campaigns: Vec<String>,
}

/// A lead's state in one campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadInCampaign {
    pub campaign: String,
    /// `ready` or `done`.
    pub state: String,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    pub last_disposition: Option<String>,
    pub callback_at: Option<DateTime<Utc>>,
    /// The rule engine's last verdict, `rule: detail`.
    pub reason: Option<String>,
}

/// A lead search: by number (through the blind index), by campaign, or a page of all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadQuery {
    /// E.164.
    pub phone: Option<String>,
    pub campaign: Option<String>,
    /// `ready` or `done` (with `campaign`).
    pub state: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

impl Store {
    /// The tenant's flows, by name, each with its versions and the active one.
    pub async fn list_flows(&self, tenant: &str) -> Result<Vec<FlowInfo>, StoreError> {
        self.flows_where(tenant, None).await
    }

    /// One flow with its versions (`None`: the tenant has no flow of this name).
    pub async fn flow_info(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<FlowInfo>, StoreError> {
        Ok(self
            .flows_where(tenant, Some(name))
            .await?
            .into_iter()
            .next())
    }

    async fn flows_where(
        &self,
        tenant: &str,
        name: Option<&str>,
    ) -> Result<Vec<FlowInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name, f.version, f.sha256, f.created_at_us, h.version AS active, \
             h.activated_at_us, h.activated_by \
             FROM flows f LEFT JOIN flow_heads h ON h.tenant = f.tenant AND h.name = f.name \
             WHERE f.tenant = $1 AND ($2 IS NULL OR f.name = $2) ORDER BY f.name, f.version",
        )
        .bind(tenant.to_string())
        .bind(name.map(str::to_string))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing flows"))?;
        let mut out: Vec<FlowInfo> = Vec::new();
        for r in &rows {
            let name: String = self.get(r, "name", "flow")?;
            let version: i64 = self.get(r, "version", &name)?;
            let version = u32::try_from(version)
                .map_err(|_| self.bad_row(&name, format!("version {version} out of range")))?;
            let v = FlowVersion {
                version,
                sha256: self.get(r, "sha256", &name)?,
                created_at: self.time(r, "created_at_us", &name)?,
            };
            if out.last().is_none_or(|f| f.name != name) {
                let active: Option<i64> = self.get(r, "active", &name)?;
                out.push(FlowInfo {
                    active: active.and_then(|a| u32::try_from(a).ok()),
                    activated_at: self.opt_time(r, "activated_at_us", &name)?,
                    activated_by: self.get(r, "activated_by", &name)?,
                    name,
                    versions: Vec::new(),
                });
            }
            if let Some(f) = out.last_mut() {
                f.versions.push(v);
            }
        }
        Ok(out)
    }

    /// Makes a stored version the flow's active one and moves the tenant's campaigns on the
    /// flow that are not over (draft, running, paused) to it, in one transaction, with an audit
    /// event. `None`: the version is not stored.
    pub async fn activate_flow(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
        actor: &str,
    ) -> Result<Option<Activation>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("activating a flow"))?;
        let stored = sqlx::query(
            "SELECT 1 AS one FROM flows WHERE tenant = $1 AND name = $2 AND version = $3",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.err("activating a flow"))?;
        if stored.is_none() {
            return Ok(None);
        }
        let previous: Option<i64> =
            sqlx::query_scalar("SELECT version FROM flow_heads WHERE tenant = $1 AND name = $2")
                .bind(tenant.to_string())
                .bind(name.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err("activating a flow"))?;
        let now = us(Utc::now());
        sqlx::query(
            "INSERT INTO flow_heads (tenant, name, version, activated_at_us, activated_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, name) DO UPDATE SET \
             version = excluded.version, activated_at_us = excluded.activated_at_us, \
             activated_by = excluded.activated_by",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .bind(now)
        .bind(actor.to_string())
        .execute(&mut *tx)
        .await
        .map_err(self.err("activating a flow"))?;
        let moved: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM campaigns WHERE tenant = $1 AND flow = $2 AND flow_version <> $3 \
             AND status IN ('draft', 'running', 'paused') ORDER BY id",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err("activating a flow"))?;
        sqlx::query(
            "UPDATE campaigns SET flow_version = $3, updated_at_us = $4 WHERE tenant = $1 \
             AND flow = $2 AND flow_version <> $3 AND status IN ('draft', 'running', 'paused')",
        )
        .bind(tenant.to_string())
        .bind(name.to_string())
        .bind(i64::from(version))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(self.err("activating a flow"))?;
        tx.commit().await.map_err(self.err("activating a flow"))?;
        let activation = Activation {
            flow: name.to_string(),
            version,
            previous: previous.and_then(|p| u32::try_from(p).ok()),
            campaigns: moved,
        };
        self.audit(
            tenant,
            actor,
            "flow.activate",
            name,
            serde_json::json!({
                "version": version,
                "previous": activation.previous,
                "campaigns": activation.campaigns,
            }),
        )
        .await?;
        Ok(Some(activation))
    }

    /// Leads of the tenant matching `q`, in import order (by number: at most one).
    pub async fn search_leads(&self, tenant: &str, q: &LeadQuery) -> Result<Vec<Lead>, StoreError> {
        let limit = i64::from(q.limit.max(1));
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {} FROM leads l WHERE l.tenant = $1 AND ($2 IS NULL OR l.phone = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM campaign_leads cl WHERE cl.tenant = l.tenant \
             AND cl.lead = l.id AND cl.campaign = $3 AND ($4 IS NULL OR cl.state = $4))) \
             ORDER BY l.created_at_us, l.source_row, l.id LIMIT $5 OFFSET $6",
            Self::LEAD_COLUMNS
        ))
        .bind(tenant.to_string())
        .bind(q.phone.as_deref().map(|p| self.phone_index(p)))
        .bind(q.campaign.clone())
        .bind(q.state.clone())
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("searching leads"))?;
        rows.iter().map(|r| self.lead_from_row(r)).collect()
    }

    /// A lead's state in each campaign it was given to.
    pub async fn lead_campaigns(
        &self,
        tenant: &str,
        lead: &str,
    ) -> Result<Vec<LeadInCampaign>, StoreError> {
        let rows = sqlx::query(
            "SELECT campaign, state, attempts, next_at_us, last_disposition, callback_at_us, \
             reason FROM campaign_leads WHERE tenant = $1 AND lead = $2 ORDER BY campaign",
        )
        .bind(tenant.to_string())
        .bind(lead.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading a lead's campaigns"))?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = self.get(r, "attempts", lead)?;
                Ok(LeadInCampaign {
                    campaign: self.get(r, "campaign", lead)?,
                    state: self.get(r, "state", lead)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    next_at: self.time(r, "next_at_us", lead)?,
                    last_disposition: self.get(r, "last_disposition", lead)?,
                    callback_at: self.opt_time(r, "callback_at_us", lead)?,
                    reason: self.get(r, "reason", lead)?,
                })
            })
            .collect()
    }

    /// Every attempt on a lead, in any campaign, oldest first.
    pub async fn lead_all_attempts(
        &self,
        tenant: &str,
        lead: &str,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, campaign, lead, phone_enc, node, started_at_us, ended_at_us, disposition, \
             call_id FROM attempts WHERE tenant = $1 AND lead = $2 ORDER BY started_at_us, id",
        )
        .bind(tenant.to_string())
        .bind(lead.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading a lead's attempts"))?;
        rows.iter().map(|r| self.attempt_from_row(r)).collect()
    }
}

/// A change to a campaign's configuration (`PATCH /api/v1/campaigns/{id}`); `None` leaves a
/// field as it is. The settings are whole (the API merges a patch into the stored ones and
/// validates the result before it gets here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignChange {
    /// A stored flow version to run from the next call on.
    pub flow: Option<(String, u32)>,
    /// `Some(None)` clears the caller id.
    pub caller_id: Option<Option<String>>,
    pub max_concurrent: Option<u32>,
    pub settings: Option<serde_json::Value>,
}

/// What [`Store::delete_campaign`] removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeletedCampaign {
    pub campaign: String,
    /// Leads taken off the campaign (the leads themselves stay: they are the tenant's customers).
    pub leads_unassigned: u64,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Changes a campaign's flow, caller id, concurrency or settings, in one statement guarded
    /// by the campaign's last change (a concurrent change is refused, not lost), with an audit
    /// event listing what changed. A running campaign takes the change on the dialer's next
    /// pass. Refused: a stopped or finished campaign, a flow version that is not stored.
    /// `None`: no such campaign in the tenant.
    pub async fn update_campaign(
        &self,
        tenant: &str,
        id: &str,
        change: &CampaignChange,
        actor: &str,
    ) -> Result<Option<super::Campaign>, StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("campaign {id:?}"),
            reason,
        };
        let Some(before) = self.campaign(tenant, id).await? else {
            return Ok(None);
        };
        if matches!(
            before.status,
            super::CampaignStatus::Stopped | super::CampaignStatus::Finished
        ) {
            return Err(refuse(format!(
                "a {} campaign cannot be changed",
                before.status.as_str()
            )));
        }
        if let Some(Some(caller_id)) = &change.caller_id {
            super::check_caller_id(caller_id).map_err(refuse)?;
        }
        if let Some((flow, version)) = &change.flow
            && self.flow_source(tenant, flow, *version).await?.is_none()
        {
            return Err(refuse(format!("flow {flow} v{version} is not stored")));
        }
        let (flow, flow_version) = change
            .flow
            .clone()
            .unwrap_or_else(|| (before.flow.clone(), before.flow_version));
        let caller_id = change
            .caller_id
            .clone()
            .unwrap_or_else(|| before.caller_id.clone());
        let max_concurrent = change.max_concurrent.unwrap_or(before.max_concurrent);
        let settings = change
            .settings
            .clone()
            .unwrap_or_else(|| before.settings.clone());
        let mut changed = serde_json::Map::new();
        if (flow.as_str(), flow_version) != (before.flow.as_str(), before.flow_version) {
            changed.insert(
                "flow".into(),
                serde_json::json!({ "from": format!("{} v{}", before.flow, before.flow_version),
                    "to": format!("{flow} v{flow_version}") }),
            );
        }
        if caller_id != before.caller_id {
            changed.insert(
                "caller_id".into(),
                serde_json::json!({ "from": before.caller_id, "to": caller_id }),
            );
        }
        if max_concurrent != before.max_concurrent {
            changed.insert(
                "max_concurrent".into(),
                serde_json::json!({ "from": before.max_concurrent, "to": max_concurrent }),
            );
        }
        if settings != before.settings {
            changed.insert(
                "settings".into(),
                serde_json::json!({ "from": before.settings, "to": settings }),
            );
        }
        if changed.is_empty() {
            return Ok(Some(before));
        }
        let done = sqlx::query(
            "UPDATE campaigns SET flow = $1, flow_version = $2, caller_id = $3, \
             max_concurrent = $4, settings_json = $5, updated_at_us = $6 \
             WHERE tenant = $7 AND id = $8 AND updated_at_us = $9 AND status = $10",
        )
        .bind(flow)
        .bind(i64::from(flow_version))
        .bind(caller_id)
        .bind(i64::from(max_concurrent))
        .bind(settings.to_string())
        .bind(us(Utc::now()).max(us(before.updated_at) + 1))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(us(before.updated_at))
        .bind(before.status.as_str())
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("changing campaign {id}")))?;
        if done.rows_affected() == 0 {
            return Err(refuse(
                "the campaign changed meanwhile; read it again and retry".into(),
            ));
        }
        self.audit(
            tenant,
            actor,
            "campaign.update",
            id,
            serde_json::Value::Object(changed),
        )
        .await?;
        self.campaign(tenant, id).await
    }

    /// Deletes a campaign that never dialed: its lead assignments and the campaign go, the
    /// leads stay. A campaign with attempts or dial decisions is refused (they are records the
    /// bank keeps; stop it instead), and so is a running one. `None`: no such campaign.
    pub async fn delete_campaign(
        &self,
        tenant: &str,
        id: &str,
        actor: &str,
    ) -> Result<Option<DeletedCampaign>, StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("campaign {id:?}"),
            reason,
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("deleting a campaign"))?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE tenant = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err("deleting a campaign"))?;
        let Some(status) = status else {
            return Ok(None);
        };
        if status == "running" {
            return Err(refuse(
                "a running campaign cannot be deleted; pause or stop it first".into(),
            ));
        }
        let attempts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE tenant = $1 AND campaign = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(self.err("deleting a campaign"))?;
        let decisions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dial_decisions WHERE tenant = $1 AND campaign = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(self.err("deleting a campaign"))?;
        if attempts > 0 || decisions > 0 {
            return Err(refuse(format!(
                "it has {attempts} attempt(s) and {decisions} dial decision(s), kept as records; \
                 stop it instead"
            )));
        }
        let unassigned =
            sqlx::query("DELETE FROM campaign_leads WHERE tenant = $1 AND campaign = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(self.err("deleting a campaign"))?
                .rows_affected();
        for sql in [
            "DELETE FROM campaign_abandons WHERE tenant = $1 AND campaign = $2",
            "DELETE FROM campaigns WHERE tenant = $1 AND id = $2",
        ] {
            sqlx::query(sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(self.err("deleting a campaign"))?;
        }
        tx.commit().await.map_err(self.err("deleting a campaign"))?;
        self.audit(
            tenant,
            actor,
            "campaign.delete",
            id,
            serde_json::json!({ "status": status, "leads_unassigned": unassigned }),
        )
        .await?;
        Ok(Some(DeletedCampaign {
            campaign: id.to_string(),
            leads_unassigned: unassigned,
        }))
    }

    /// Every tenant, by id (not `*`, the platform's and the global lists' own).
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.tenants_where(None).await
    }

    /// One tenant.
    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.tenants_where(Some(id)).await?.into_iter().next())
    }

    async fn tenants_where(&self, id: Option<&str>) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at_us FROM tenants WHERE ($1 IS NULL OR id = $1) \
             AND id <> '*' ORDER BY id",
        )
        .bind(id.map(str::to_string))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing tenants"))?;
        rows.iter()
            .map(|r| {
                let id: String = self.get(r, "id", "tenant")?;
                Ok(Tenant {
                    name: self.get(r, "name", &id)?,
                    created_at: self.time(r, "created_at_us", &id)?,
                    id,
                })
            })
            .collect()
    }

    /// Creates a tenant. Refused: an id that is taken, empty, longer than 64 characters, or
    /// not made of lowercase letters, digits and `-` (it appears in URLs, logs and file names);
    /// `*` is the global DNC list's.
    pub async fn create_tenant(
        &self,
        id: &str,
        name: &str,
        actor: &str,
    ) -> Result<Tenant, StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("tenant {id:?}"),
            reason,
        };
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-');
        if !valid {
            return Err(refuse(
                "an id is 1 to 64 lowercase letters, digits and '-', not starting with '-'".into(),
            ));
        }
        if name.trim().is_empty() {
            return Err(refuse("the name is empty".into()));
        }
        let now = Utc::now();
        let done = sqlx::query(
            "INSERT INTO tenants (id, name, created_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(name.trim().to_string())
        .bind(us(now))
        .execute(&self.pool)
        .await
        .map_err(self.err(format!("creating tenant {id}")))?;
        if done.rows_affected() == 0 {
            return Err(refuse("a tenant with this id exists".into()));
        }
        self.audit(
            id,
            actor,
            "tenant.create",
            id,
            serde_json::json!({ "name": name.trim() }),
        )
        .await?;
        self.tenant(id)
            .await?
            .ok_or_else(|| refuse("the tenant vanished".into()))
    }
}
