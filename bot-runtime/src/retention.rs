//! Retention: recordings and transcripts are deleted once they are older than the deployment's
//! policy (`callbot retention set`), by [`Store::apply_retention`], which dialer nodes run every
//! hour and `callbot retention apply` runs on demand.
//!
//! A call's age is counted from its end. Purging a recording deletes its file and clears the
//! call's recording columns; purging a transcript replaces every line's text, and the values the
//! flow collected, with empty ones. What reports count stays: the turns themselves with their
//! timing, intents and sentiment, the flow path, the outcome and the dispositions. Each purge is
//! stamped on the call (`recording_purged_at_us`, `transcript_purged_at_us`), and each run that
//! purged anything is written to the audit log. The work goes in batches, each committed, so a
//! run that is interrupted is finished by the next one; a recording's file is deleted before its
//! columns are cleared, so a file is never left behind by a cleared row.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::store::{Store, StoreError};

/// Rows handled per batch.
const BATCH: i64 = 200;

/// How long recordings and transcripts are kept, in days (`None`: until deleted by hand).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    pub recordings_days: Option<u32>,
    pub transcripts_days: Option<u32>,
}

/// What one [`Store::apply_retention`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Calls whose recording was purged.
    pub recordings: u64,
    /// Bytes of recording files deleted.
    pub recording_bytes: u64,
    /// Recordings whose file was already gone.
    pub missing_files: u64,
    /// Calls whose transcript was purged.
    pub transcripts: u64,
}

impl Store {
    /// The deployment's retention policy (none set: everything is kept).
    pub async fn retention_policy(&self) -> Result<RetentionPolicy, StoreError> {
        let row = sqlx::query(
            "SELECT recordings_days, transcripts_days FROM retention_policy WHERE id = 'global'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error("reading the retention policy".into(), e))?;
        let Some(row) = row else {
            return Ok(RetentionPolicy::default());
        };
        let days = |col: &str| -> Result<Option<u32>, StoreError> {
            let v: Option<i64> = self.get(&row, col, "retention_policy")?;
            Ok(v.and_then(|d| u32::try_from(d).ok()))
        };
        Ok(RetentionPolicy {
            recordings_days: days("recordings_days")?,
            transcripts_days: days("transcripts_days")?,
        })
    }

    /// Sets the policy (audited, as `actor`). Refused: a period of 0 days or over 100 years.
    pub async fn set_retention_policy(
        &self,
        policy: &RetentionPolicy,
        actor: &str,
    ) -> Result<(), StoreError> {
        for (what, days) in [
            ("recordings", policy.recordings_days),
            ("transcripts", policy.transcripts_days),
        ] {
            if let Some(d) = days
                && !(1..=36_500).contains(&d)
            {
                return Err(StoreError::Refused {
                    what: format!("retention of {what}"),
                    reason: format!("{d} days: a period is 1 to 36500 days (or none)"),
                });
            }
        }
        sqlx::query(
            "INSERT INTO retention_policy (id, recordings_days, transcripts_days, updated_at_us, \
             updated_by) VALUES ('global', $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             recordings_days = excluded.recordings_days, \
             transcripts_days = excluded.transcripts_days, \
             updated_at_us = excluded.updated_at_us, updated_by = excluded.updated_by",
        )
        .bind(policy.recordings_days.map(i64::from))
        .bind(policy.transcripts_days.map(i64::from))
        .bind(Utc::now().timestamp_micros())
        .bind(actor.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error("setting the retention policy".into(), e))?;
        self.audit(
            crate::dialer::db::DEFAULT_TENANT,
            actor,
            "retention.set",
            "retention policy",
            serde_json::to_value(policy).unwrap_or_default(),
        )
        .await
    }

    /// Purges what the policy says is too old at `now` (see the module docs).
    pub async fn apply_retention(
        &self,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<RetentionReport, StoreError> {
        let policy = self.retention_policy().await?;
        let mut report = RetentionReport::default();
        let cutoff = |days: u32| (now - Duration::days(i64::from(days))).timestamp_micros();
        if let Some(days) = policy.recordings_days {
            self.purge_recordings(cutoff(days), now, &mut report)
                .await?;
        }
        if let Some(days) = policy.transcripts_days {
            self.purge_transcripts(cutoff(days), now, &mut report)
                .await?;
        }
        if report != RetentionReport::default() {
            self.audit(
                crate::dialer::db::DEFAULT_TENANT,
                actor,
                "retention.apply",
                "recordings and transcripts",
                serde_json::json!({ "policy": policy, "report": report }),
            )
            .await?;
        }
        Ok(report)
    }

    async fn purge_recordings(
        &self,
        cutoff_us: i64,
        now: DateTime<Utc>,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        let action = || "purging recordings".to_string();
        loop {
            let rows = sqlx::query(
                "SELECT id, recording_path FROM calls \
                 WHERE recording_path IS NOT NULL AND ended_at_us < $1 LIMIT $2",
            )
            .bind(cutoff_us)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(action(), e))?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                let id: String = self.get(row, "id", "call")?;
                let path: String = self.get(row, "recording_path", &id)?;
                let bytes = std::fs::metadata(&path).map(|m| m.len());
                match std::fs::remove_file(&path) {
                    Ok(()) => report.recording_bytes += bytes.unwrap_or(0),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        report.missing_files += 1;
                    }
                    Err(e) => {
                        return Err(StoreError::Refused {
                            what: format!("recording of call {id}"),
                            reason: format!("cannot delete {path}: {e}"),
                        });
                    }
                }
                sqlx::query(
                    "UPDATE calls SET recording_path = NULL, recording_sha256 = NULL, \
                     recording_duration_ms = NULL, recording_bytes = NULL, \
                     recording_purged_at_us = $1 WHERE id = $2",
                )
                .bind(now.timestamp_micros())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| self.query_error(action(), e))?;
                report.recordings += 1;
            }
        }
    }

    async fn purge_transcripts(
        &self,
        cutoff_us: i64,
        now: DateTime<Utc>,
        report: &mut RetentionReport,
    ) -> Result<(), StoreError> {
        let action = || "purging transcripts".to_string();
        loop {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM calls WHERE transcript_purged_at_us IS NULL AND ended_at_us < $1 \
                 LIMIT $2",
            )
            .bind(cutoff_us)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(action(), e))?;
            if ids.is_empty() {
                return Ok(());
            }
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(|e| self.query_error(action(), e))?;
            for id in ids {
                sqlx::query("UPDATE call_turns SET text = $1 WHERE call_id = $2")
                    .bind(self.seal("turn", ""))
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.query_error(action(), e))?;
                sqlx::query(
                    "UPDATE calls SET slots_json = $1, transcript_purged_at_us = $2 WHERE id = $3",
                )
                .bind(self.seal("slots", "{}"))
                .bind(now.timestamp_micros())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.query_error(action(), e))?;
                report.transcripts += 1;
            }
            tx.commit()
                .await
                .map_err(|e| self.query_error(action(), e))?;
        }
    }
}
