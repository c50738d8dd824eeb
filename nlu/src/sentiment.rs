//! Sentiment of one caller turn with an escalation signal for angry or upset customers.
//!
//! A compact VADER-style lexicon scorer tuned to bank calls: word valences, negation in a
//! three-word window (flips and damps), intensifiers and dampeners, "but" shifting the weight to
//! what follows, and emphasis from exclamation marks and SHOUTED words. Escalation is raised by
//! phrases that mean "get me out of this robot" in anger (a manager, "stop harassing me",
//! threats of complaints or lawyers, swearing) or by a strongly negative score.

use serde::Serialize;

use crate::words::tokenize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    /// -1 (very negative) ..= 1 (very positive).
    pub score: f32,
    pub label: SentimentLabel,
    /// Hand the call to a human now.
    pub escalate: bool,
    /// The phrases that raised `escalate`, for the agent's screen and for tests.
    pub triggers: Vec<String>,
}

/// Scores at or below this escalate even without a trigger phrase.
const ESCALATE_SCORE: f32 = -0.6;
const LABEL_MARGIN: f32 = 0.05;
const TRIGGER_VALENCE: f32 = 1.5;

const LEXICON: &[(&str, f32)] = &[
    ("ridiculous", -2.5),
    ("unacceptable", -2.8),
    ("outrageous", -2.8),
    ("disgusting", -3.0),
    ("terrible", -2.5),
    ("awful", -2.5),
    ("horrible", -2.5),
    ("worst", -3.0),
    ("bad", -2.0),
    ("angry", -2.5),
    ("furious", -3.2),
    ("annoyed", -2.0),
    ("annoying", -2.0),
    ("upset", -2.0),
    ("frustrated", -2.2),
    ("frustrating", -2.2),
    ("mad", -2.2),
    ("pissed", -3.0),
    ("hate", -2.7),
    ("useless", -2.3),
    ("incompetent", -2.6),
    ("stupid", -2.4),
    ("idiot", -2.8),
    ("idiots", -2.8),
    ("scam", -2.6),
    ("fraud", -1.5),
    ("stealing", -2.5),
    ("robbery", -2.5),
    ("lie", -1.8),
    ("lied", -2.2),
    ("lying", -2.3),
    ("liars", -2.6),
    ("harass", -2.8),
    ("harassing", -2.9),
    ("harassment", -2.9),
    ("threaten", -2.3),
    ("threatening", -2.5),
    ("pathetic", -2.6),
    ("joke", -1.2),
    ("nonsense", -2.0),
    ("rubbish", -2.0),
    ("crap", -2.5),
    ("damn", -2.0),
    ("hell", -1.8),
    ("bloody", -1.8),
    ("shit", -2.8),
    ("bullshit", -3.0),
    ("fuck", -3.2),
    ("fucking", -3.2),
    ("wtf", -2.8),
    ("sucks", -2.3),
    ("disappointed", -2.0),
    ("disappointing", -2.0),
    ("unhappy", -2.0),
    ("sad", -1.6),
    ("worried", -1.4),
    ("worry", -1.0),
    ("problem", -1.0),
    ("problems", -1.2),
    ("wrong", -1.5),
    ("mistake", -1.4),
    ("error", -1.2),
    ("never", -0.5),
    ("again", 0.0),
    ("complaint", -1.8),
    ("complain", -1.7),
    ("sue", -2.2),
    ("lawyer", -1.8),
    ("attorney", -1.8),
    ("stop", -1.0),
    ("waste", -1.9),
    ("waiting", -0.6),
    ("rude", -2.3),
    ("ignored", -1.8),
    ("broke", -1.4),
    ("hardship", -1.3),
    ("difficult", -1.0),
    ("sick", -1.8),
    ("tired", -1.3),
    ("fed", -0.5),
    ("sorry", -0.3),
    ("unfortunately", -0.8),
    ("good", 1.9),
    ("great", 3.1),
    ("excellent", 3.2),
    ("perfect", 2.8),
    ("wonderful", 3.0),
    ("fantastic", 3.1),
    ("amazing", 3.0),
    ("awesome", 3.0),
    ("nice", 1.8),
    ("fine", 0.8),
    ("happy", 2.7),
    ("glad", 2.0),
    ("pleased", 2.0),
    ("thanks", 1.9),
    ("thank", 1.6),
    ("appreciate", 2.0),
    ("appreciated", 2.0),
    ("helpful", 2.0),
    ("love", 3.2),
    ("lovely", 2.8),
    ("brilliant", 2.8),
    ("easy", 1.5),
    ("quick", 0.8),
    ("sure", 0.6),
    ("ok", 0.3),
    ("okay", 0.3),
    ("yes", 0.4),
    ("welcome", 1.5),
    ("kind", 1.6),
    ("best", 2.8),
    ("cool", 1.3),
    ("polite", 1.5),
    ("satisfied", 2.0),
    ("resolved", 1.5),
    ("sorted", 1.2),
    ("cheers", 1.5),
];

const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "don't",
    "dont",
    "isn't",
    "isnt",
    "wasn't",
    "aren't",
    "can't",
    "cant",
    "won't",
    "wont",
    "didn't",
    "didnt",
    "doesn't",
    "haven't",
    "hasn't",
    "couldn't",
    "wouldn't",
    "shouldn't",
    "nothing",
    "hardly",
    "without",
    "nor",
    "cannot",
    "ain't",
];
const INTENSIFIERS: &[&str] = &[
    "very",
    "really",
    "so",
    "extremely",
    "totally",
    "absolutely",
    "completely",
    "incredibly",
    "too",
    "utterly",
    "fucking",
    "bloody",
    "seriously",
    "truly",
    "super",
    "damn",
    "beyond",
];
const DAMPENERS: &[&str] = &[
    "slightly", "somewhat", "bit", "little", "kinda", "sort", "barely", "fairly",
];

/// Phrases that always escalate, matched on lower-cased tokens. Each is a list of alternatives
/// per position; `*` matches any one word.
const TRIGGERS: &[&[&[&str]]] = &[
    &[
        &["manager", "supervisor"],
        &["now", "please", "immediately"],
    ],
    &[
        &["stop"],
        &[
            "calling",
            "harassing",
            "bothering",
            "ringing",
            "phoning",
            "hounding",
            "pestering",
        ],
    ],
    &[&["leave"], &["me", "us"], &["alone"]],
    &[&["harassing", "harassment", "harass"]],
    &[&[
        "ridiculous",
        "unacceptable",
        "outrageous",
        "disgusting",
        "pathetic",
        "insane",
    ]],
    &[&["fed"], &["up"]],
    &[&["sick"], &["of", "and"]],
    &[&["how"], &["dare"]],
    &[&[
        "sue",
        "lawyer",
        "lawyers",
        "attorney",
        "ombudsman",
        "regulator",
        "court",
    ]],
    &[
        &["file", "make", "lodge", "making", "filing"],
        &["a"],
        &["complaint"],
    ],
    &[&["report"], &["you", "this"]],
    &[&[
        "fuck", "fucking", "shit", "bullshit", "crap", "damn", "wtf", "bloody", "hell", "idiot",
        "idiots", "scam", "scammers", "furious", "pissed",
    ]],
    &[
        &["real", "actual", "human"],
        &["person", "being", "human"],
        &["now"],
    ],
    &[&["right"], &["now"], &["!"]],
];

const REQUEST_VERBS: &[&str] = &[
    "speak", "talk", "put", "get", "transfer", "connect", "want", "need", "demand", "give", "see",
];

fn matches_at(words: &[String], i: usize, pattern: &[&[&str]]) -> bool {
    pattern.iter().enumerate().all(|(k, alts)| {
        words
            .get(i + k)
            .is_some_and(|w| alts.iter().any(|a| *a == "*" || a == w))
    })
}

fn negated(words: &[String], i: usize) -> bool {
    words[i.saturating_sub(3)..i]
        .iter()
        .any(|w| NEGATORS.contains(&w.as_str()))
}

/// Sentiment and escalation for one utterance.
pub fn analyze_sentiment(text: &str) -> Sentiment {
    let toks = tokenize(text);
    let words: Vec<String> = toks.iter().map(|t| t.text.clone()).collect();
    let shouted: Vec<bool> = toks
        .iter()
        .map(|t| {
            let raw = &text[t.start..t.end];
            raw.len() > 1 && raw.chars().any(|c| c.is_alphabetic()) && raw == raw.to_uppercase()
        })
        .collect();
    let mostly_shouted = shouted.iter().filter(|s| **s).count() * 2 > words.len().max(1);
    let but_at = words.iter().position(|w| w == "but" || w == "however");

    let mut sum = 0.0f32;
    for (i, w) in words.iter().enumerate() {
        let Some(&(_, base)) = LEXICON.iter().find(|(lw, _)| lw == w) else {
            continue;
        };
        if base == 0.0 {
            continue;
        }
        let mut v = base;
        for prev in words[i.saturating_sub(2)..i].iter() {
            if INTENSIFIERS.contains(&prev.as_str()) {
                v += 0.3 * v.signum();
            } else if DAMPENERS.contains(&prev.as_str()) {
                v -= 0.3 * v.signum();
            }
        }
        if shouted[i] && !mostly_shouted {
            v += 0.7 * v.signum();
        }
        if negated(words.as_slice(), i) {
            v *= -0.74;
        }
        if let Some(b) = but_at {
            v *= if i < b { 0.5 } else { 1.5 };
        }
        sum += v;
    }
    let bangs = text.matches('!').count().min(3) as f32;
    let mut with_bang = words.clone();
    if bangs > 0.0 {
        with_bang.push("!".to_string());
    }
    let mut triggers = Vec::new();
    for i in 0..with_bang.len() {
        for p in TRIGGERS {
            // A negated single-word trigger ("not ridiculous") does not count.
            if matches_at(&with_bang, i, p) && !(p.len() == 1 && negated(&with_bang, i)) {
                let end = (i + p.len()).min(with_bang.len());
                triggers.push(with_bang[i..end].join(" "));
            }
        }
    }
    // Asking for someone above the robot: a request verb shortly before "manager".
    for (i, w) in words.iter().enumerate() {
        if matches!(w.as_str(), "manager" | "supervisor" | "boss" | "superior")
            && words[i.saturating_sub(5)..i]
                .iter()
                .any(|p| REQUEST_VERBS.contains(&p.as_str()))
        {
            triggers.push(w.clone());
        }
    }
    triggers.dedup();
    // An escalation phrase is itself a sign of anger, whatever the words around it.
    sum -= TRIGGER_VALENCE * triggers.len() as f32;
    if sum != 0.0 {
        sum += sum.signum() * (0.3 * bangs + if mostly_shouted { 0.8 } else { 0.0 });
    }
    let score = sum / (sum * sum + 15.0).sqrt();

    let escalate = !triggers.is_empty() || score <= ESCALATE_SCORE;
    let label = if score > LABEL_MARGIN {
        SentimentLabel::Positive
    } else if score < -LABEL_MARGIN {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    Sentiment {
        score,
        label,
        escalate,
        triggers,
    }
}
