//! Lead files into the store: [`import_leads`] streams a CSV through [`LeadReader`] (parsing and
//! per-row validation off the async threads), inserts the good rows in batches, and reports every
//! refused row by its row number — bad in the file, or a number the tenant already has — while
//! every good row is kept. Optionally the imported leads that match a segmentation [`Filter`]
//! are assigned to a campaign.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::dialer::db::{NewLead, Order};
use crate::dialer::leads::{self, ImportError, ImportOptions, Lead, LeadReader, Report, TzSource};
use crate::store::{Store, StoreError};

/// Leads per store batch.
const CHUNK: usize = 2_000;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    /// The file itself is unusable (empty, no phone column, unreadable); rows read before an I/O
    /// error mid-file are kept.
    #[error(transparent)]
    File(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// The file's rows and row errors.
    pub file: Report,
    /// Leads written.
    pub inserted: u64,
    /// Rows refused because the tenant already has the number: (row, phone).
    pub already_known: Vec<(Option<u64>, String)>,
    /// Leads assigned to the campaign (when one was given), new or already known.
    pub assigned: u64,
}

/// One condition of a segmentation filter: `field OP value` with OP one of `=`, `!=`, `<`,
/// `<=`, `>`, `>=` (numeric when both sides are numbers, else text) or `~` (contains, case
/// insensitive). Fields are the lead file's columns plus `phone`, `name`, `debt_id`, `timezone`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

/// All conditions must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter(pub Vec<Condition>);

impl Condition {
    /// Parses `field OP value`.
    pub fn parse(s: &str) -> Result<Condition, String> {
        // Longest operators first.
        for (tok, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("~", Op::Contains),
        ] {
            if let Some(i) = s.find(tok) {
                let field = s[..i].trim();
                let value = s[i + tok.len()..].trim();
                if field.is_empty() {
                    return Err(format!("filter {s:?}: no field before {tok:?}"));
                }
                return Ok(Condition {
                    field: field.to_ascii_lowercase(),
                    op,
                    value: value.to_string(),
                });
            }
        }
        Err(format!(
            "filter {s:?}: expected FIELD OP VALUE with OP one of = != < <= > >= ~"
        ))
    }

    fn holds(&self, lead: &Lead) -> bool {
        let have: Option<String> = match self.field.as_str() {
            "phone" => Some(lead.phone.e164.clone()),
            "name" => lead.name.clone(),
            "debt_id" => lead.debt_id.clone(),
            "timezone" => lead.timezones.first().map(|z| z.name().to_string()),
            f => lead
                .fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f))
                .map(|(_, v)| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
        };
        let Some(have) = have else {
            return self.op == Op::Ne;
        };
        let nums = (
            have.trim().parse::<f64>().ok(),
            self.value.parse::<f64>().ok(),
        );
        let ord = match nums {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(have.as_str().cmp(self.value.as_str())),
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => ord == Some(Equal),
            Op::Ne => ord != Some(Equal),
            Op::Lt => ord == Some(Less),
            Op::Le => matches!(ord, Some(Less | Equal)),
            Op::Gt => ord == Some(Greater),
            Op::Ge => matches!(ord, Some(Greater | Equal)),
            Op::Contains => have.to_lowercase().contains(&self.value.to_lowercase()),
        }
    }
}

impl Filter {
    pub fn parse(conditions: &[String]) -> Result<Filter, String> {
        conditions
            .iter()
            .map(|c| Condition::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map(Filter)
    }

    pub fn matches(&self, lead: &Lead) -> bool {
        self.0.iter().all(|c| c.holds(lead))
    }
}

impl From<&Lead> for NewLead {
    /// A validated row of a lead file, as the store takes it.
    fn from(lead: &Lead) -> NewLead {
        NewLead {
            external_id: lead.external_id.clone(),
            phone: lead.phone.e164.clone(),
            name: lead.name.clone(),
            timezones: lead
                .timezones
                .iter()
                .map(|z| z.name().to_string())
                .collect(),
            tz_source: match lead.timezone_source {
                TzSource::Column => "column",
                TzSource::Number => "number",
                TzSource::Default => "default",
            }
            .into(),
            debt_id: lead.debt_id.clone(),
            fields: lead.fields.clone(),
            source_row: Some(lead.row),
        }
    }
}

/// Where imported leads go besides the tenant's list.
#[derive(Debug, Clone)]
pub struct Assign {
    pub campaign: String,
    pub filter: Filter,
    pub order: Order,
    pub due: DateTime<Utc>,
}

/// Imports a lead file for `tenant` (see the module docs). `source` names the file in the
/// leads' provenance.
pub async fn import_leads<R: Read + Send + 'static>(
    store: &Store,
    tenant: &str,
    source: &str,
    input: R,
    opts: ImportOptions,
    assign: Option<Assign>,
) -> Result<ImportSummary, ImportFailed> {
    let (tx, mut rx) = mpsc::channel::<Vec<Lead>>(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<Report, ImportError> {
        let reader = LeadReader::new(input, opts)?;
        let mut chunk = Vec::with_capacity(CHUNK);
        let report = leads::import(reader, |lead| {
            chunk.push(lead);
            if chunk.len() >= CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                // The receiver only goes away when the store failed; the error is theirs.
                let _ = tx.blocking_send(full);
            }
        });
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        report
    });
    let mut summary = ImportSummary::default();
    let mut store_error = None;
    while let Some(chunk) = rx.recv().await {
        let new: Vec<NewLead> = chunk.iter().map(NewLead::from).collect();
        let report = match store.insert_leads(tenant, source, &new).await {
            Ok(r) => r,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        summary.inserted += report.inserted;
        if let Some(a) = &assign {
            // New leads by their fresh ids; leads the tenant already had are assigned too.
            let mut ids = Vec::new();
            for lead in chunk.iter().filter(|l| a.filter.matches(l)) {
                match report.ids.get(&lead.phone.e164) {
                    Some(id) => ids.push(id.clone()),
                    None => {
                        if let Some(stored) = store.lead_by_phone(tenant, &lead.phone.e164).await? {
                            ids.push(stored.id);
                        }
                    }
                }
            }
            summary.assigned += store
                .assign_leads(tenant, &a.campaign, &ids, a.order, a.due)
                .await?;
        }
        summary.already_known.extend(report.duplicates);
    }
    drop(rx);
    let file = reader
        .await
        .map_err(|e| ImportFailed::Other(format!("the reader thread failed: {e}")))?;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    summary.file = file?;
    Ok(summary)
}
