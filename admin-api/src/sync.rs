//! Keeps this node in line with the store, so that a change made through any node's API reaches
//! every node: the desk's queues (limits, skills required), and the console sessions of each
//! logged-in account (closed when the account is disabled or deleted, or its password or role
//! changed; new skills requalify the agent on the desk at once).
//!
//! The node that serves the change applies it in the request ([`Console::sync_account`] from
//! the agents' endpoint, `Desk::set_queue` from the queues'); the others within one
//! [`Console::spawn_sync`] interval ([`Console::sync`]).

use std::time::Duration;

use bot_runtime::store::StoreError;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::Console;

/// What one [`Console::sync`] pass changed on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Queues whose stored configuration the desk took (new or changed since the last pass).
    pub queues_changed: Vec<String>,
    /// Console sessions closed.
    pub sessions_closed: usize,
    /// Logged-in agents whose skills changed.
    pub skills_changed: Vec<String>,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self == &SyncReport::default()
    }
}

impl Console {
    /// One pass: the desk's tenant's queues as stored, then every account with a session here.
    ///
    /// # Errors
    /// The store failing; what was applied before stays applied.
    pub async fn sync(&self) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        let tenant = self.0.cfg.default_tenant.clone();
        for q in self.0.store.queues(&tenant).await? {
            let known = self
                .0
                .applied_queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&q.name)
                == Some(&q);
            if known {
                continue;
            }
            let name = q.name.clone();
            match self.0.desk.set_queue(q.clone()).await {
                Ok(()) => report.queues_changed.push(name.clone()),
                Err(e) => {
                    warn!(queue = %name, error = %e, "the stored queue is refused by this node's desk")
                }
            }
            // Refused or taken, this configuration is not tried again until it changes.
            self.note_queue(q);
        }
        for (tenant, agent) in self.0.sessions.accounts() {
            let r = self.sync_account(&tenant, &agent).await?;
            report.sessions_closed += r.closed;
            if r.new_skills.is_some() {
                report.skills_changed.push(agent);
            }
        }
        Ok(report)
    }

    /// Brings one account's sessions and desk state in line with the store: closed sessions
    /// (and the desk logout) for an account deleted, disabled, or with another password or
    /// role; new skills for the others. Logged off this node's desk whenever the account may no
    /// longer work, with or without a session here.
    ///
    /// # Errors
    /// The store failing (nothing changed).
    pub async fn sync_account(
        &self,
        tenant: &str,
        agent: &str,
    ) -> Result<crate::auth::Reconciled, StoreError> {
        let account = self.0.store.agent(tenant, agent).await?;
        let r = self.0.sessions.reconcile(tenant, agent, account.as_ref());
        if tenant != self.0.cfg.default_tenant {
            return Ok(r);
        }
        let gone = account.as_ref().is_none_or(|a| a.disabled);
        if r.closed > 0 || gone {
            // Not logged in on this desk is fine: there is nothing to take off.
            if self.0.desk.logout(agent).await.is_ok() {
                info!(tenant, agent, "account changed: logged off the desk");
            }
        } else if let Some(skills) = &r.new_skills {
            match self.0.desk.set_skills(agent, skills.clone()).await {
                Ok(()) => info!(
                    tenant,
                    agent,
                    ?skills,
                    "account changed: new skills on the desk"
                ),
                Err(e) => debug!(tenant, agent, error = %e, "new skills: not on this desk"),
            }
        }
        if r.closed > 0 {
            info!(
                tenant,
                agent,
                sessions = r.closed,
                "account changed: sessions closed"
            );
        }
        Ok(r)
    }

    /// Remembers a queue configuration the desk was given (so the next pass skips it).
    pub(crate) fn note_queue(&self, q: bot_runtime::agents::queue::QueueConfig) {
        self.0
            .applied_queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(q.name.clone(), q);
    }

    /// Runs [`Console::sync`] every `every` until the task is aborted; a failing store is logged
    /// and tried again at the next tick.
    pub fn spawn_sync(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let console = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match console.sync().await {
                    Ok(r) if !r.is_empty() => info!(?r, "synced with the store"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "sync with the store failed; trying again"),
                }
            }
        })
    }
}
