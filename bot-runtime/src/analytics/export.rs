//! A report as tables (summary by group, funnel, agents) and those tables as CSV, XLSX (one
//! sheet each) or aligned text.
//!
//! Rates are fractions (0.25 = 25 %): plain in CSV, numbers with a percentage format in XLSX,
//! `25.0%` in text. Times are seconds. A rate whose denominator is zero is an empty cell.

use std::io::Write;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Report;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the XLSX file {path}: {source}")]
    Xlsx {
        path: String,
        #[source]
        source: XlsxError,
    },
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A fraction in [0, 1], shown as a percentage.
    Rate(Option<f64>),
    /// A duration in seconds.
    Seconds(Option<f64>),
    /// A score such as a sentiment in [-1, 1].
    Score(Option<f64>),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Rate(v) => v.map(|v| format!("{v:.4}")).unwrap_or_default(),
            Cell::Seconds(v) => v.map(|v| format!("{v:.1}")).unwrap_or_default(),
            Cell::Score(v) => v.map(|v| format!("{v:.3}")).unwrap_or_default(),
        }
    }

    fn text(&self) -> String {
        match self {
            Cell::Rate(v) => v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_default(),
            other => other.csv(),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Cell::Text(_))
    }
}

/// A table: a header row and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The sheet's name in an XLSX file.
    pub name: &'static str,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The table as CSV, a header line first.
    pub fn write_csv<W: Write>(&self, w: W) -> Result<(), ExportError> {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(&self.headers)?;
        for row in &self.rows {
            out.write_record(row.iter().map(Cell::csv))?;
        }
        out.flush()?;
        Ok(())
    }

    /// The table as aligned text (text left, numbers right).
    pub fn write_text<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::text).collect())
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                cells
                    .iter()
                    .filter_map(|r| r.get(i))
                    .chain(std::iter::once(&self.headers[i]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .all(|r| r.get(i).is_some_and(|c| !c.is_text()))
            })
            .collect();
        let line = |w: &mut W, row: &[String]| -> std::io::Result<()> {
            let mut parts = Vec::with_capacity(row.len());
            for (i, s) in row.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                parts.push(if numeric.get(i).copied().unwrap_or(false) {
                    format!("{s:>width$}")
                } else {
                    format!("{s:<width$}")
                });
            }
            writeln!(w, "{}", parts.join("  ").trim_end())
        };
        line(&mut w, &self.headers)?;
        for row in &cells {
            line(&mut w, row)?;
        }
        Ok(())
    }
}

fn secs(ms: Option<f64>) -> Cell {
    Cell::Seconds(ms.map(|ms| ms / 1000.0))
}

impl Report {
    /// One row per group, then the total; outcome (`outcome:NAME`, connects) and attempt
    /// disposition (`attempts:NAME`) columns after the fixed ones.
    pub fn summary_table(&self) -> Table {
        let outcomes = self.outcome_names();
        let dispositions = self.disposition_names();
        let mut headers: Vec<String> = [
            self.group_by.as_str(),
            "attempts",
            "connects",
            "connect_rate",
            "right_party_contacts",
            "right_party_rate",
            "conversions",
            "conversion_rate",
            "mean_handle_s",
            "mean_robot_s",
            "mean_agent_talk_s",
            "transfers",
            "transfer_rate",
            "abandons",
            "abandon_rate",
            "machines",
            "amd_rate",
            "mean_sentiment",
            "sentiment_calls",
        ]
        .map(String::from)
        .to_vec();
        headers.extend(outcomes.iter().map(|o| format!("outcome:{o}")));
        headers.extend(dispositions.iter().map(|d| format!("attempts:{d}")));
        let rows = self
            .rows
            .iter()
            .chain(std::iter::once(&self.total))
            .map(|g| {
                let mut row = vec![
                    Cell::Text(g.group.clone()),
                    Cell::Count(g.attempts),
                    Cell::Count(g.connects),
                    Cell::Rate(g.connect_rate()),
                    Cell::Count(g.right_party),
                    Cell::Rate(g.right_party_rate()),
                    Cell::Count(g.conversions),
                    Cell::Rate(g.conversion_rate()),
                    secs(g.mean_handle_ms()),
                    secs(g.mean_robot_ms()),
                    secs(g.mean_agent_ms()),
                    Cell::Count(g.transfers),
                    Cell::Rate(g.transfer_rate()),
                    Cell::Count(g.abandons),
                    Cell::Rate(g.abandon_rate()),
                    Cell::Count(g.machines),
                    Cell::Rate(g.amd_rate()),
                    Cell::Score(g.mean_sentiment()),
                    Cell::Count(g.sentiment_calls),
                ];
                row.extend(
                    outcomes
                        .iter()
                        .map(|o| Cell::Count(g.outcomes.get(o).copied().unwrap_or(0))),
                );
                row.extend(
                    dispositions
                        .iter()
                        .map(|d| Cell::Count(g.dispositions.get(d).copied().unwrap_or(0))),
                );
                row
            })
            .collect();
        Table {
            name: "Summary",
            headers,
            rows,
        }
    }

    /// Each flow's steps in path order: calls that reached the step (and their share of the
    /// flow's calls), calls that ended there (and their share of those that reached it).
    pub fn funnel_table(&self) -> Table {
        let headers = [
            "flow",
            "position",
            "step",
            "reached",
            "reach_rate",
            "ended_here",
            "drop_off_rate",
        ]
        .map(String::from)
        .to_vec();
        let mut rows = Vec::new();
        for f in &self.funnels {
            for (i, s) in f.steps.iter().enumerate() {
                rows.push(vec![
                    Cell::Text(f.flow.clone()),
                    Cell::Count(i as u64 + 1),
                    Cell::Text(s.step.clone()),
                    Cell::Count(s.reached),
                    Cell::Rate((f.calls > 0).then(|| s.reached as f64 / f.calls as f64)),
                    Cell::Count(s.ended_here),
                    Cell::Rate(s.drop_off_rate()),
                ]);
            }
        }
        Table {
            name: "Funnel",
            headers,
            rows,
        }
    }

    /// The robot and each agent side by side; the agents' saved dispositions as
    /// `disposition:NAME` columns.
    pub fn agents_table(&self) -> Table {
        let names = self.agent_disposition_names();
        let mut headers: Vec<String> = [
            "side",
            "agent",
            "calls",
            "handle_s",
            "mean_handle_s",
            "mean_wait_s",
            "conversions",
            "conversion_rate",
            "transfers",
        ]
        .map(String::from)
        .to_vec();
        headers.extend(names.iter().map(|d| format!("disposition:{d}")));
        let rows = self
            .agents
            .iter()
            .map(|a| {
                let mut row = vec![
                    Cell::Text(a.side.as_str().into()),
                    Cell::Text(a.agent.clone()),
                    Cell::Count(a.calls),
                    Cell::Seconds(Some(a.handle_ms as f64 / 1000.0)),
                    secs(a.mean_handle_ms()),
                    secs(a.mean_wait_ms()),
                    Cell::Count(a.conversions),
                    Cell::Rate(a.conversion_rate()),
                    Cell::Count(a.transfers),
                ];
                row.extend(
                    names
                        .iter()
                        .map(|d| Cell::Count(a.dispositions.get(d).copied().unwrap_or(0))),
                );
                row
            })
            .collect();
        Table {
            name: "Agents",
            headers,
            rows,
        }
    }

    /// The three tables.
    pub fn tables(&self) -> [Table; 3] {
        [
            self.summary_table(),
            self.funnel_table(),
            self.agents_table(),
        ]
    }

    /// The summary by group as CSV.
    pub fn to_csv<W: Write>(&self, w: W) -> Result<(), ExportError> {
        self.summary_table().write_csv(w)
    }

    /// The three tables as aligned text, each under a title line.
    pub fn write_text<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        writeln!(
            w,
            "Report by {} ({})",
            self.group_by.as_str(),
            self.timezone
        )?;
        for table in self.tables() {
            writeln!(w)?;
            writeln!(w, "{}", table.name)?;
            table.write_text(&mut w)?;
        }
        Ok(())
    }

    /// The report as an XLSX workbook at `path`: sheets `Summary`, `Funnel` and `Agents`, each
    /// with a bold header row and frozen panes (header row and first column); counts as
    /// numbers, rates as numbers formatted `0.0%`, times as seconds `0.0`.
    pub fn to_xlsx(&self, path: &Path) -> Result<(), ExportError> {
        let err = |source| ExportError::Xlsx {
            path: path.display().to_string(),
            source,
        };
        let mut book = Workbook::new();
        let header = Format::new().set_bold();
        let rate = Format::new().set_num_format("0.0%");
        let seconds = Format::new().set_num_format("0.0");
        let score = Format::new().set_num_format("0.000");
        for table in self.tables() {
            let sheet = book.add_worksheet();
            sheet.set_name(table.name).map_err(err)?;
            for (c, h) in table.headers.iter().enumerate() {
                let c = col(c);
                sheet
                    .write_string_with_format(0, c, h, &header)
                    .map_err(err)?;
                let width = (h.chars().count() + 2).clamp(10, 40);
                sheet.set_column_width(c, width as f64).map_err(err)?;
            }
            for (r, row) in table.rows.iter().enumerate() {
                let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
                for (c, cell) in row.iter().enumerate() {
                    let c = col(c);
                    match cell {
                        Cell::Text(s) => sheet.write_string(r, c, s).map(|_| ()),
                        Cell::Count(n) => sheet.write_number(r, c, *n as f64).map(|_| ()),
                        Cell::Rate(Some(v)) => {
                            sheet.write_number_with_format(r, c, *v, &rate).map(|_| ())
                        }
                        Cell::Seconds(Some(v)) => sheet
                            .write_number_with_format(r, c, *v, &seconds)
                            .map(|_| ()),
                        Cell::Score(Some(v)) => {
                            sheet.write_number_with_format(r, c, *v, &score).map(|_| ())
                        }
                        Cell::Rate(None) | Cell::Seconds(None) | Cell::Score(None) => Ok(()),
                    }
                    .map_err(err)?;
                }
            }
            sheet.set_freeze_panes(1, 1).map_err(err)?;
        }
        book.save(path).map_err(err)
    }
}

fn col(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}
