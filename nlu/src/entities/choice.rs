//! Picking one of the options the bot just offered: "the second one", "option three",
//! "the last one", or the option's own words said loosely ("debit card" for "Pay by debit card",
//! "tuesdy" mis-heard by ASR).

use serde::Serialize;

use crate::words::{ordinal_word, parse_cardinal, tokenize};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceMatch {
    pub index: usize,
    pub option: String,
    /// 0–1; 1 for an ordinal pick or an exact mention.
    pub score: f32,
}

/// Below this, the utterance is not taken as a pick (word-level fuzzy score).
const MIN_SCORE: f32 = 0.6;

const STOP: &[&str] = &[
    "the", "a", "an", "by", "to", "of", "for", "my", "i", "please", "one", "and", "or", "with",
    "in", "on", "it", "is", "like", "want", "i'd", "would", "let's", "go", "take", "pick",
    "choose",
];

fn content_words(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .map(|t| t.text)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// The best-matching option, or `None` when nothing matches well enough or two options tie.
pub fn match_choice<S: AsRef<str>>(text: &str, options: &[S]) -> Option<ChoiceMatch> {
    if options.is_empty() {
        return None;
    }
    let toks = tokenize(text);
    let pick = |i: usize| ChoiceMatch {
        index: i,
        option: options[i].as_ref().to_string(),
        score: 1.0,
    };
    // Ordinal picks: "the second one", "option 2", "number three", "the last one".
    for (k, t) in toks.iter().enumerate() {
        let w = t.text.as_str();
        if matches!(w, "last" | "latter") {
            return Some(pick(options.len() - 1));
        }
        if w == "former" {
            return Some(pick(0));
        }
        if let Some(o) = ordinal_word(w).filter(|o| (1..=options.len() as u64).contains(o)) {
            return Some(pick(o as usize - 1));
        }
        if matches!(w, "option" | "number" | "choice")
            && let Some((v, _)) = parse_cardinal(&toks[k + 1..])
            && v >= 1.0
            && (v as usize) <= options.len()
        {
            return Some(pick(v as usize - 1));
        }
    }
    let said = content_words(text);
    if said.is_empty() {
        return None;
    }
    let mut scored: Vec<(usize, f32)> = options
        .iter()
        .enumerate()
        .map(|(i, o)| (i, option_score(&said, &content_words(o.as_ref()))))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, score) = scored[0];
    let runner_up = scored.get(1).map_or(0.0, |s| s.1);
    (score >= MIN_SCORE && score - runner_up > 0.05).then(|| ChoiceMatch {
        index: best,
        option: options[best].as_ref().to_string(),
        score,
    })
}

/// Per option word, the best Jaro-Winkler similarity to any said word; the score averages the
/// mean (how much of the option was said) and the max (one distinctive word is often enough).
fn option_score(said: &[String], option: &[String]) -> f32 {
    if option.is_empty() {
        return 0.0;
    }
    let sims: Vec<f64> = option
        .iter()
        .map(|o| {
            said.iter()
                .map(|s| strsim::jaro_winkler(s, o))
                .filter(|s| *s >= 0.85)
                .fold(0.0, f64::max)
        })
        .collect();
    let mean = sims.iter().sum::<f64>() / sims.len() as f64;
    let max = sims.iter().copied().fold(0.0, f64::max);
    (0.5 * mean + 0.5 * max) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks() {
        let opts = ["Pay by debit card", "Bank transfer", "Talk to an agent"];
        let cases = [
            ("the second one", 1),
            ("option three", 2),
            ("number 1 please", 0),
            ("the last one", 2),
            ("debit card", 0),
            ("I'll do a bank transfer", 1),
            ("transfer", 1),
            ("let me talk to an agent", 2),
            ("agent please", 2),
            ("debit", 0),
            ("by card", 0),
        ];
        for (text, want) in cases {
            assert_eq!(
                match_choice(text, &opts).map(|m| m.index),
                Some(want),
                "{text}"
            );
        }
        let days = ["Monday", "Tuesday", "Wednesday"];
        assert_eq!(match_choice("tuesdy", &days).map(|m| m.index), Some(1));
        assert_eq!(
            match_choice("wensday works", &days).map(|m| m.index),
            Some(2)
        );
        assert_eq!(match_choice("hello there", &opts), None);
        assert_eq!(match_choice("", &opts), None);
    }
}
