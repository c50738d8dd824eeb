//! [`Store::report`]: one streamed query over the tenant's attempts and their calls, folded by
//! the [`Aggregator`]. The same SQL text runs on SQLite and PostgreSQL (`crate::store`).

use sqlx::Executor as _;
use sqlx::any::AnyRow;

use super::{AgentFacts, Aggregator, CallFacts, ConnectFacts, Report, ReportQuery};
use crate::store::{Store, StoreError};

/// One row per attempt. Sums of BIGINT columns are cast back to BIGINT (PostgreSQL's SUM of a
/// BIGINT is NUMERIC, which the `Any` driver cannot read); the per-call figures are correlated
/// subqueries on primary-key prefixes (`call_legs`, `call_turns`: `(call_id, seq)`;
/// `agent_dispositions`: `(call_id, agent_id)`).
const SELECT: &str = "SELECT a.id AS attempt_id, a.campaign, a.started_at_us AS attempt_at_us, \
    a.disposition AS attempt_disposition, \
    COALESCE(NULLIF(c.flow, ''), k.flow, '') AS flow_name, \
    c.id AS call_id, c.answered_at_us, c.ended_at_us, c.outcome, c.amd, c.path_json, \
    (SELECT COUNT(*) FROM call_legs l WHERE l.call_id = c.id) AS legs, \
    (SELECT CAST(COALESCE(SUM(l.ended_at_us - l.started_at_us), 0) AS BIGINT) FROM call_legs l \
     WHERE l.call_id = c.id AND l.kind = 'robot') AS robot_us, \
    (SELECT CAST(COALESCE(SUM(l.ended_at_us - l.started_at_us), 0) AS BIGINT) FROM call_legs l \
     WHERE l.call_id = c.id AND l.kind = 'agent') AS agent_us, \
    (SELECT CAST(COALESCE(SUM(l.wait_ms), 0) AS BIGINT) FROM call_legs l \
     WHERE l.call_id = c.id AND l.kind = 'agent') AS agent_wait_ms, \
    (SELECT l.agent_id FROM call_legs l WHERE l.call_id = c.id AND l.kind = 'agent' \
     ORDER BY l.seq DESC LIMIT 1) AS agent_id, \
    (SELECT d.disposition FROM agent_dispositions d WHERE d.tenant = a.tenant \
     AND d.call_id = c.id ORDER BY d.saved_at_us DESC LIMIT 1) AS agent_disposition, \
    (SELECT SUM(t.sentiment) FROM call_turns t WHERE t.call_id = c.id \
     AND t.speaker = 'customer' AND t.sentiment IS NOT NULL) AS sentiment_sum, \
    (SELECT COUNT(t.sentiment) FROM call_turns t WHERE t.call_id = c.id \
     AND t.speaker = 'customer') AS sentiment_n \
    FROM attempts a \
    LEFT JOIN calls c ON c.id = a.call_id \
    LEFT JOIN campaigns k ON k.tenant = a.tenant AND k.id = a.campaign \
    WHERE a.tenant = $1";

/// A bind parameter.
enum Param {
    Text(String),
    Int(i64),
}

impl Store {
    /// The report `q` asks for (see [`crate::analytics`] for what each figure means). Rows are
    /// streamed, not collected: memory grows with the number of groups, flow steps and agents,
    /// not with the number of calls.
    pub async fn report(&self, q: &ReportQuery) -> Result<Report, StoreError> {
        let mut sql = String::from(SELECT);
        let mut params = vec![Param::Text(q.tenant.clone())];
        let mut condition = |clause: &str, value: Param| {
            params.push(value);
            sql.push_str(&format!(" AND {clause} ${}", params.len()));
        };
        if let Some(from) = q.from {
            condition("a.started_at_us >=", Param::Int(from.timestamp_micros()));
        }
        if let Some(to) = q.to {
            condition("a.started_at_us <", Param::Int(to.timestamp_micros()));
        }
        if let Some(campaign) = &q.campaign {
            condition("a.campaign =", Param::Text(campaign.clone()));
        }
        if let Some(flow) = &q.flow {
            condition(
                "COALESCE(NULLIF(c.flow, ''), k.flow, '') =",
                Param::Text(flow.clone()),
            );
        }
        let mut query = sqlx::query(&sql);
        for p in params {
            query = match p {
                Param::Text(s) => query.bind(s),
                Param::Int(i) => query.bind(i),
            };
        }
        let action = || format!("reporting on tenant {}", q.tenant);
        let mut agg = Aggregator::new(q.group_by, q.timezone, q.options.clone());
        let mut rows = self.pool.fetch(query);
        // `rows` is a `dyn Stream`: its `poll_next` is callable without naming the trait.
        while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
            let row = row.map_err(|e| self.query_error(action(), e))?;
            agg.add(&self.facts(&row)?);
        }
        Ok(agg.finish())
    }

    fn facts(&self, row: &AnyRow) -> Result<CallFacts, StoreError> {
        let attempt: String = self.get(row, "attempt_id", "")?;
        let id = attempt.as_str();
        let call_id: Option<String> = self.get(row, "call_id", id)?;
        let answered: Option<i64> = match &call_id {
            Some(_) => self.get(row, "answered_at_us", id)?,
            None => None,
        };
        let connect = match answered {
            None => None,
            Some(answered) => {
                let ended: i64 = self.get(row, "ended_at_us", id)?;
                let path_json: String = self.get(row, "path_json", id)?;
                let path: Vec<String> = serde_json::from_str(&path_json)
                    .map_err(|e| self.bad_row(id, format!("path_json of its call: {e}")))?;
                let ms = |us: i64| u64::try_from(us / 1000).unwrap_or(0);
                let legs: i64 = self.get(row, "legs", id)?;
                let robot_us: i64 = self.get(row, "robot_us", id)?;
                let agent = match self.get::<Option<String>>(row, "agent_id", id)? {
                    Some(agent) => Some(AgentFacts {
                        agent,
                        talk_ms: ms(self.get(row, "agent_us", id)?),
                        wait_ms: u64::try_from(self.get::<i64>(row, "agent_wait_ms", id)?)
                            .unwrap_or(0),
                    }),
                    None => None,
                };
                let sentiment_n: i64 = self.get(row, "sentiment_n", id)?;
                let sentiment = match sentiment_n {
                    0 => None,
                    n => self
                        .get::<Option<f64>>(row, "sentiment_sum", id)?
                        .map(|s| s / n as f64),
                };
                Some(ConnectFacts {
                    handle_ms: ms(ended - answered),
                    amd: self.get(row, "amd", id)?,
                    outcome: self.get(row, "outcome", id)?,
                    path,
                    robot_ms: (legs > 0).then(|| ms(robot_us)),
                    agent,
                    agent_disposition: self.get(row, "agent_disposition", id)?,
                    sentiment,
                })
            }
        };
        Ok(CallFacts {
            attempt_started_at: self.time(row, "attempt_at_us", id)?,
            campaign: self.get(row, "campaign", id)?,
            flow: self.get(row, "flow_name", id)?,
            disposition: self.get(row, "attempt_disposition", id)?,
            connect,
        })
    }
}
