//! Reports over robot and human calls (`bot_runtime::analytics`) as JSON, CSV or XLSX.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bot_runtime::analytics::{GroupBy, ReportQuery, parse_timezone};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{READERS, allowed, audit};
use crate::{Console, error};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Only this campaign.
    pub campaign: Option<String>,
    /// Only this flow.
    pub flow: Option<String>,
    /// Attempts started at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Attempts started before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// `hour`, `day` (default), `campaign`, `flow`, `agent` or `side`.
    pub by: Option<String>,
    /// IANA zone that hours and days are counted in (default UTC).
    pub tz: Option<String>,
    /// `json` (default), `csv` (the summary table) or `xlsx` (Summary, Funnel, Agents).
    pub format: Option<String>,
}

/// The tenant's report: per group (attempts, connects, right-party contacts, conversions,
/// handle, robot and agent time, transfers, abandons, machines, sentiment, outcomes), the
/// funnel of each flow, and the robot beside each agent.
#[utoipa::path(get, path = "/api/v1/reports", params(ReportParams), security(("token" = [])), responses(
    (status = 200, description = "the report (JSON, CSV or XLSX)"),
    (status = 400, description = "bad parameter"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn report(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read reports").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Query(p) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let mut q = ReportQuery::new(&t.tenant);
    q.campaign = p.campaign.clone();
    q.flow = p.flow.clone();
    q.from = p.from;
    q.to = p.to;
    if let Some(by) = &p.by {
        match GroupBy::from_name(by) {
            Some(g) => q.group_by = g,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("by {by:?}: hour, day, campaign, flow, agent or side"),
                );
            }
        }
    }
    if let Some(tz) = &p.tz {
        match parse_timezone(tz) {
            Ok(z) => q.timezone = z,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    }
    let format = p.format.as_deref().unwrap_or("json");
    if !["json", "csv", "xlsx"].contains(&format) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("format {format:?}: json, csv or xlsx"),
        );
    }
    let report = match c.0.store.report(&q).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let detail = json!({ "campaign": p.campaign, "by": q.group_by, "format": format });
    if let Err(r) = audit(&c, &t, "read_report", "reports", detail).await {
        return r;
    }
    match format {
        "csv" => {
            let mut out = Vec::new();
            if let Err(e) = report.to_csv(&mut out) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"report.csv\"",
                    ),
                ],
                out,
            )
                .into_response()
        }
        "xlsx" => {
            let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
                let dir = tempfile_dir()?;
                let path = dir.join("report.xlsx");
                report.to_xlsx(&path).map_err(|e| e.to_string())?;
                let bytes = std::fs::read(&path).map_err(|e| e.to_string());
                let _ = std::fs::remove_dir_all(&dir);
                bytes
            })
            .await;
            match bytes {
                Ok(Ok(bytes)) => (
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        ),
                        (
                            header::CONTENT_DISPOSITION,
                            "attachment; filename=\"report.xlsx\"",
                        ),
                    ],
                    bytes,
                )
                    .into_response(),
                Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        _ => Json(json!({ "report": report })).into_response(),
    }
}

/// A private directory for one export.
fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let mut name = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut name);
    let dir = std::env::temp_dir().join(format!("callbot-report-{}", hex::encode(name)));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
