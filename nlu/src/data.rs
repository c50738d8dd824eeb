//! Labelled utterance sets: CSV files (`text,category`, texts may span lines), the CLINC150 JSON
//! layout, and deterministic stratified splits so evaluations are repeatable.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::NluError;

/// One labelled utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub intent: String,
}

/// Reads a CSV with a header holding `text` and `category` (or `intent`/`label`) columns.
/// Any bad row fails the load with its row number (1 = the first data row, as a spreadsheet shows
/// it below the header) so nothing is silently dropped.
pub fn load_labelled_csv(path: &Path) -> Result<Vec<Example>, NluError> {
    let data_err = |message: String| NluError::Data {
        path: path.to_path_buf(),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| data_err(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| data_err(e.to_string()))?.clone();
    let col = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let text_col = col(&["text", "utterance", "sentence"]).ok_or_else(|| {
        data_err(format!(
            "no `text` column in header {:?}",
            headers.iter().collect::<Vec<_>>()
        ))
    })?;
    let label_col = col(&["category", "intent", "label"]).ok_or_else(|| {
        data_err(format!(
            "no `category` column in header {:?}",
            headers.iter().collect::<Vec<_>>()
        ))
    })?;
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let bad = |message: String| NluError::BadRow {
            path: path.to_path_buf(),
            row,
            message,
        };
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let text = rec.get(text_col).unwrap_or("").trim();
        let intent = rec.get(label_col).unwrap_or("").trim();
        if text.is_empty() {
            return Err(bad("empty text".into()));
        }
        if intent.is_empty() {
            return Err(bad("empty category".into()));
        }
        out.push(Example {
            text: text.to_string(),
            intent: intent.to_string(),
        });
    }
    if out.is_empty() {
        return Err(data_err("no rows".into()));
    }
    Ok(out)
}

/// CLINC150 as shipped in `train_val.json`; out-of-scope examples carry the intent `oos`.
#[derive(Debug, Clone)]
pub struct Clinc150 {
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub oos_train: Vec<Example>,
    pub oos_val: Vec<Example>,
}

pub fn load_clinc150(path: &Path) -> Result<Clinc150, NluError> {
    let data_err = |message: String| NluError::Data {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| data_err(e.to_string()))?;
    let json: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|e| data_err(e.to_string()))?;
    let take = |k: &str| -> Result<Vec<Example>, NluError> {
        let rows = json
            .get(k)
            .ok_or_else(|| data_err(format!("missing key `{k}`")))?;
        Ok(rows
            .iter()
            .map(|(t, l)| Example {
                text: t.clone(),
                intent: l.clone(),
            })
            .collect())
    };
    Ok(Clinc150 {
        train: take("train")?,
        val: take("val")?,
        oos_train: take("oos_train")?,
        oos_val: take("oos_val")?,
    })
}

/// SplitMix64: a tiny fixed generator, so splits never change with a dependency's version.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Stratified split into parts of the given fractions (the last part takes the remainder of each
/// intent). Order inside each part follows the input order.
pub fn stratified_split(rows: &[Example], fractions: &[f64], seed: u64) -> Vec<Vec<Example>> {
    let mut by_intent: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_intent.entry(r.intent.as_str()).or_default().push(i);
    }
    let mut part_of = vec![0usize; rows.len()];
    let mut rng = SplitMix(seed);
    for idx in by_intent.values_mut() {
        rng.shuffle(idx);
        let n = idx.len() as f64;
        let mut start = 0usize;
        for (p, f) in fractions.iter().enumerate() {
            let end = if p + 1 == fractions.len() {
                idx.len()
            } else {
                (start + (f * n).round() as usize).min(idx.len())
            };
            for &i in &idx[start..end] {
                part_of[i] = p;
            }
            start = end;
        }
    }
    let mut parts = vec![Vec::new(); fractions.len()];
    for (i, r) in rows.iter().enumerate() {
        parts[part_of[i]].push(r.clone());
    }
    parts
}

/// `shots` examples per intent, chosen with `seed` (all of an intent's examples when it has fewer).
pub fn sample_shots(rows: &[Example], shots: usize, seed: u64) -> Vec<Example> {
    let mut by_intent: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_intent.entry(r.intent.as_str()).or_default().push(i);
    }
    let mut rng = SplitMix(seed);
    let mut keep: Vec<usize> = Vec::new();
    for idx in by_intent.values_mut() {
        rng.shuffle(idx);
        keep.extend(idx.iter().take(shots));
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| rows[i].clone()).collect()
}

/// Train, validation and test parts of one data set.
pub type Split = (Vec<Example>, Vec<Example>, Vec<Example>);

/// The fixed Banking77 protocol used by the tests, the bench and the README: a stratified
/// 75/10/15 train/validation/test split of `banking77/train.csv` with seed 77. Options are tuned
/// on validation only; reported figures train on train+validation and score the test part.
pub fn banking77_split(path: &Path) -> Result<Split, NluError> {
    let rows = load_labelled_csv(path)?;
    let mut parts = stratified_split(&rows, &[0.75, 0.10, 0.15], 77).into_iter();
    let (train, val, test) = (parts.next(), parts.next(), parts.next());
    Ok((
        train.unwrap_or_default(),
        val.unwrap_or_default(),
        test.unwrap_or_default(),
    ))
}

/// Accuracy and macro-F1 (over the gold intents) of predictions against gold labels.
pub fn accuracy_and_macro_f1(gold: &[&str], predicted: &[&str]) -> (f64, f64) {
    let n = gold.len().max(1) as f64;
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count() as f64;
    let mut labels: Vec<&str> = gold.to_vec();
    labels.sort_unstable();
    labels.dedup();
    let f1s: Vec<f64> = labels
        .iter()
        .map(|l| {
            let tp = gold
                .iter()
                .zip(predicted)
                .filter(|(g, p)| *g == l && *p == l)
                .count() as f64;
            let fp = gold
                .iter()
                .zip(predicted)
                .filter(|(g, p)| *g != l && *p == l)
                .count() as f64;
            let fneg = gold
                .iter()
                .zip(predicted)
                .filter(|(g, p)| *g == l && *p != l)
                .count() as f64;
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fneg)
            }
        })
        .collect();
    (
        correct / n,
        f1s.iter().sum::<f64>() / labels.len().max(1) as f64,
    )
}
