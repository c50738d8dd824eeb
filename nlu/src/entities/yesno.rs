//! Yes/no answers: "yeah sure", "absolutely", "I guess so" are yes; "not really", "no way",
//! "nope", "absolutely not", "I don't think so" are no; "I'm not sure", "maybe" are neither.

use serde::Serialize;

use crate::words::tokenize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum YesNo {
    Yes,
    No,
}

/// Phrases checked before single words, longest first, so that "not really" is not read as
/// "really" and "absolutely not" is not read as "absolutely".
const NO_PHRASES: &[&str] = &[
    "i don't think so",
    "i do not think so",
    "don't think so",
    "absolutely not",
    "definitely not",
    "certainly not",
    "of course not",
    "not really",
    "not at all",
    "no way",
    "no thanks",
    "no thank you",
    "not now",
    "not interested",
    "i'm not",
    "i am not",
    "i don't",
    "i do not",
    "i can't",
    "i cannot",
    "it's not",
    "it isn't",
    "that's wrong",
    "that's not right",
    "that is not right",
    "not right",
    "not correct",
    "not me",
    "i didn't",
    "i did not",
    "wrong",
    "i won't",
    "i will not",
    "not today",
    "never",
    "negative",
    "rather not",
    "i'd rather not",
];
const YES_PHRASES: &[&str] = &[
    "i guess so",
    "i think so",
    "i suppose so",
    "i believe so",
    "of course",
    "sure thing",
    "why not",
    "go ahead",
    "that's right",
    "that is right",
    "that's correct",
    "that is correct",
    "sounds good",
    "that's fine",
    "that works",
    "yes please",
    "all right",
    "i do",
    "i am",
    "i can",
    "i will",
    "it is",
    "that's me",
    "speaking",
    "you bet",
    "please do",
    "fine by me",
    "okay",
    "ok",
    "alright",
];
const NO_WORDS: &[&str] = &["no", "nope", "nah", "nay", "incorrect", "noo"];
const YES_WORDS: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "yea",
    "ya",
    "sure",
    "absolutely",
    "definitely",
    "certainly",
    "correct",
    "affirmative",
    "indeed",
    "exactly",
    "uh-huh",
    "totally",
];
/// Words that answer a question only when they lead the reply: "right, go on" and "fine" are a
/// yes, "call me right now" and "I'm fine with paying later" say nothing about the question.
const LEADING_YES_WORDS: &[&str] = &["right", "fine"];
const UNSURE: &[&str] = &[
    "not sure",
    "i'm not sure",
    "maybe",
    "perhaps",
    "i don't know",
    "dunno",
    "not certain",
    "possibly",
    "might",
];

fn contains_phrase(words: &[String], phrase: &str) -> Option<usize> {
    let p: Vec<&str> = phrase.split(' ').collect();
    words
        .windows(p.len())
        .position(|w| w.iter().zip(&p).all(|(a, b)| a == b))
}

/// The polarity of an answer to a yes/no question, or `None` when it has none or is unsure.
pub fn extract_yes_no(text: &str) -> Option<YesNo> {
    let words: Vec<String> = tokenize(text).into_iter().map(|t| t.text).collect();
    if words.is_empty() {
        return None;
    }
    if UNSURE.iter().any(|p| contains_phrase(&words, p).is_some()) {
        return None;
    }
    // The earliest phrase wins: "no, yes that's right" is a correction, but callers more often
    // lead with their answer ("yes, but not today" is a yes).
    let mut best: Option<(usize, usize, YesNo)> = None;
    let mut consider = |pos: Option<usize>, len: usize, v: YesNo| {
        if let Some(p) = pos
            && best.is_none_or(|(bp, bl, _)| p < bp || (p == bp && len > bl))
        {
            best = Some((p, len, v));
        }
    };
    for p in NO_PHRASES {
        consider(contains_phrase(&words, p), p.split(' ').count(), YesNo::No);
    }
    for p in YES_PHRASES {
        consider(contains_phrase(&words, p), p.split(' ').count(), YesNo::Yes);
    }
    for w in NO_WORDS {
        consider(contains_phrase(&words, w), 1, YesNo::No);
    }
    for w in YES_WORDS {
        consider(contains_phrase(&words, w), 1, YesNo::Yes);
    }
    for w in LEADING_YES_WORDS {
        consider(contains_phrase(&words[..1], w), 1, YesNo::Yes);
    }
    best.map(|b| b.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrasings() {
        let yes = [
            "yes",
            "yeah sure",
            "Absolutely!",
            "I guess so",
            "yep",
            "sure, go ahead",
            "of course",
            "that's right",
            "yes please",
            "uh yeah that's me",
            "definitely",
            "okay",
            "sounds good",
            "yeah I can do that",
            "correct",
            "why not",
            "I think so",
            "Yes, but not today",
            "sure thing",
            "alright then",
            "right, go on",
            "fine",
        ];
        let no = [
            "no",
            "nope",
            "not really",
            "no way",
            "absolutely not",
            "I don't think so",
            "nah",
            "no thanks",
            "not at all",
            "definitely not",
            "no, that's wrong",
            "I'm not interested",
            "of course not",
            "that's not right",
            "never",
            "I'd rather not",
            "not today",
        ];
        let neither = [
            "I'm not sure",
            "maybe",
            "what?",
            "who is this",
            "I don't know",
            "",
            "my card was stolen, I want to talk to someone right now",
            "what are your opening hours, fine print aside",
        ];
        for t in yes {
            assert_eq!(extract_yes_no(t), Some(YesNo::Yes), "{t}");
        }
        for t in no {
            assert_eq!(extract_yes_no(t), Some(YesNo::No), "{t}");
        }
        for t in neither {
            assert_eq!(extract_yes_no(t), None, "{t}");
        }
    }
}
