//! Sparse lexical features (TF-IDF over word uni/bigrams and character 3–5-grams) that sit beside
//! the sentence embedding in the linear head: they catch the exact wording an intent is said
//! with ("top up", "PIN", "disposable card"), which a frozen embedding blurs.

use std::collections::HashMap;

use crate::words::tokenize;

/// A sparse row: (feature index, value), indices ascending, unit length.
pub type SparseRow = Vec<(u32, f32)>;

#[derive(Debug, Clone)]
pub struct TfIdf {
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    is_char: Vec<bool>,
}

fn terms(text: &str) -> Vec<String> {
    let words: Vec<String> = tokenize(text).into_iter().map(|t| t.text).collect();
    let mut out: Vec<String> = words.iter().map(|w| format!("w:{w}")).collect();
    out.extend(words.windows(2).map(|p| format!("b:{} {}", p[0], p[1])));
    for w in &words {
        let padded: Vec<char> = format!(" {w} ").chars().collect();
        for n in 3..=5 {
            out.extend(
                padded
                    .windows(n)
                    .map(|g| format!("c:{}", g.iter().collect::<String>())),
            );
        }
    }
    out
}

impl TfIdf {
    /// Keeps terms seen in at least `min_df` texts, the `max_features` most frequent of them.
    pub fn fit<S: AsRef<str>>(texts: &[S], min_df: usize, max_features: usize) -> Self {
        let mut df: HashMap<String, u32> = HashMap::new();
        for t in texts {
            let mut ts = terms(t.as_ref());
            ts.sort();
            ts.dedup();
            for term in ts {
                *df.entry(term).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, u32)> = df
            .into_iter()
            .filter(|(_, c)| *c as usize >= min_df)
            .collect();
        // Deterministic order: frequency, then the term itself.
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(max_features);
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, c)| ((1.0 + n) / (1.0 + *c as f32)).ln() + 1.0)
            .collect();
        let is_char = kept.iter().map(|(t, _)| t.starts_with("c:")).collect();
        let vocab = kept
            .into_iter()
            .enumerate()
            .map(|(i, (t, _))| (t, i as u32))
            .collect();
        Self {
            vocab,
            idf,
            is_char,
        }
    }

    pub fn dim(&self) -> usize {
        self.idf.len()
    }

    /// Sublinear TF times IDF; word and character groups are each scaled to length 1/√2.
    pub fn transform(&self, text: &str) -> SparseRow {
        let mut counts: HashMap<u32, f32> = HashMap::new();
        for term in terms(text) {
            if let Some(&i) = self.vocab.get(&term) {
                *counts.entry(i).or_default() += 1.0;
            }
        }
        let mut row: Vec<(u32, f32, bool)> = counts
            .into_iter()
            .map(|(i, c)| {
                (
                    i,
                    (1.0 + c.ln()) * self.idf[i as usize],
                    self.is_char[i as usize],
                )
            })
            .collect();
        row.sort_by_key(|r| r.0);
        for group in [false, true] {
            let norm = row
                .iter()
                .filter(|r| r.2 == group)
                .map(|r| r.1 * r.1)
                .sum::<f32>()
                .sqrt();
            if norm > 0.0 {
                for r in row.iter_mut().filter(|r| r.2 == group) {
                    r.1 /= norm * std::f32::consts::SQRT_2;
                }
            }
        }
        row.into_iter().map(|(i, v, _)| (i, v)).collect()
    }
}
