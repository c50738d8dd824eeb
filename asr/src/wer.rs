//! Word error rate with an English text normaliser, for scoring recognisers against references.
//!
//! Both sides go through [`normalize`] so that spelling choices are not counted as errors:
//! case, punctuation, digits versus number words ("2" = "two", "21st" = "twenty first"),
//! contractions ("I'm" = "I am"), hyphens, a few abbreviations ("Mr." = "mister"), fillers
//! ("um"), and bracketed annotations ("(3 seconds of silence)", "[BLANK_AUDIO]", "<beep>"), which are
//! not spoken words. Numbers are always turned into words, never the other way round.

use std::ops::AddAssign;

use num2words::{Num2Err, Num2Words};

/// Normalises text for scoring: lowercase words separated by single spaces.
pub fn normalize(text: &str) -> String {
    normalized_words(text).join(" ")
}

/// [`normalize`], as a list of words.
pub fn normalized_words(text: &str) -> Vec<String> {
    let text = spell_currency(&strip_annotations(
        &text.to_lowercase().replace(['’', '‘', '`'], "'"),
    ));
    let chars: Vec<char> = text.chars().collect();
    let mut cleaned = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let digit_around =
            prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        let alpha_around =
            prev.is_some_and(char::is_alphabetic) && next.is_some_and(char::is_alphabetic);
        match c {
            c if c.is_alphanumeric() => cleaned.push(c),
            '\'' if alpha_around => cleaned.push(c),
            ',' if digit_around => {}
            '.' if digit_around => cleaned.push_str(" point "),
            '%' => cleaned.push_str(" percent "),
            '&' => cleaned.push_str(" and "),
            '@' => cleaned.push_str(" at "),
            _ => cleaned.push(' '),
        }
    }
    let mut words = Vec::new();
    for token in cleaned.split_whitespace() {
        for piece in split_digits_letters(token) {
            expand(&piece, &mut words);
        }
    }
    words
}

/// "$1,250.50" -> "1250 dollars 50 cents": a recogniser writes amounts with symbols, a reference
/// often in words, and the unit's position differs between the two.
fn spell_currency(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let (unit, minor) = match c {
            '$' => ("dollars", "cents"),
            '£' => ("pounds", "pence"),
            '€' => ("euros", "cents"),
            _ => {
                out.push(c);
                continue;
            }
        };
        if !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(' ');
            continue;
        }
        let mut whole = String::new();
        while let Some(&d) = chars.peek() {
            match d {
                '0'..='9' => whole.push(d),
                ',' => {}
                _ => break,
            }
            chars.next();
        }
        let mut cents = String::new();
        if chars.peek() == Some(&'.') {
            let mut ahead = chars.clone();
            ahead.next();
            let digits: String = ahead.take_while(char::is_ascii_digit).collect();
            if digits.len() == 2 {
                chars.nth(2);
                cents = digits;
            }
        }
        out.push_str(&format!(" {whole} {unit} "));
        if !cents.is_empty() && cents != "00" {
            out.push_str(&format!("{} {minor} ", cents.trim_start_matches('0')));
        }
    }
    out
}

/// Removes `(…)`, `[…]` and `<…>` spans: stage directions and non-speech tags, never spoken
/// words.
fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '<' => depth += 1,
            ')' | ']' | '>' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// "3d" -> ["3", "d"], "h323" -> ["h", "323"]; ordinals ("21st") stay whole.
fn split_digits_letters(token: &str) -> Vec<String> {
    if ordinal_value(token).is_some() {
        return vec![token.to_string()];
    }
    let mut pieces: Vec<String> = Vec::new();
    for c in token.chars() {
        match pieces.last_mut() {
            Some(last)
                if last
                    .chars()
                    .last()
                    .is_some_and(|p| p.is_ascii_digit() == c.is_ascii_digit()) =>
            {
                last.push(c)
            }
            _ => pieces.push(c.to_string()),
        }
    }
    pieces
}

fn ordinal_value(token: &str) -> Option<u64> {
    let split = token.find(|c: char| !c.is_ascii_digit())?;
    let (digits, suffix) = token.split_at(split);
    if digits.is_empty() || !matches!(suffix, "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse().ok()
}

fn expand(word: &str, out: &mut Vec<String>) {
    if let Some(n) = ordinal_value(word) {
        out.extend(number_words(Num2Words::new(n).ordinal().to_words(), n));
        return;
    }
    if word.chars().all(|c| c.is_ascii_digit()) {
        // Long or zero-led digit strings are read digit by digit (account and phone numbers).
        if (word.len() > 1 && word.starts_with('0')) || word.len() > 12 {
            out.extend(
                word.chars()
                    .filter_map(|c| c.to_digit(10))
                    .flat_map(|d| cardinal(u64::from(d))),
            );
        } else if let Ok(n) = word.parse::<u64>() {
            out.extend(cardinal(n));
        }
        return;
    }
    let expanded: &[&str] = match word {
        "can't" | "cannot" => &["can", "not"],
        "won't" => &["will", "not"],
        "shan't" => &["shall", "not"],
        "ain't" => &["is", "not"],
        "let's" => &["let", "us"],
        "mr" => &["mister"],
        "mrs" => &["missus"],
        "dr" => &["doctor"],
        "ok" => &["okay"],
        "alright" => &["all", "right"],
        "um" | "uh" | "umm" | "hmm" | "mm" | "er" | "erm" => &[],
        _ => {
            out.extend(expand_contraction(word));
            return;
        }
    };
    out.extend(expanded.iter().map(|s| s.to_string()));
}

fn expand_contraction(word: &str) -> Vec<String> {
    const SUFFIXES: [(&str, &str); 6] = [
        ("n't", "not"),
        ("'re", "are"),
        ("'ve", "have"),
        ("'ll", "will"),
        ("'m", "am"),
        ("'d", "would"),
    ];
    for (suffix, full) in SUFFIXES {
        if let Some(stem) = word.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return vec![stem.to_string(), full.to_string()];
        }
    }
    // "'s" is "is", "has" or a possessive; only the apostrophe is dropped, on both sides alike.
    vec![word.replace('\'', "")]
}

/// Number words for `n`, e.g. 2024 -> "two thousand twenty four".
pub fn cardinal(n: u64) -> Vec<String> {
    number_words(Num2Words::new(n).to_words(), n)
}

/// num2words' English split into the normaliser's words: hyphens become word breaks ("twenty-one"
/// -> "twenty one", as hyphens in text do) and the British "and" goes ("one thousand and five"
/// -> "one thousand five", the American reading). `Err` only for numbers beyond num2words'
/// range, which a `u64` never reaches; the digits are then kept as one word.
fn number_words(spelled: Result<String, Num2Err>, n: u64) -> Vec<String> {
    match spelled {
        Ok(words) => words
            .split([' ', '-'])
            .filter(|w| !w.is_empty() && *w != "and")
            .map(str::to_string)
            .collect(),
        Err(_) => vec![n.to_string()],
    }
}

/// Word-level edit counts of a hypothesis against a reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrors {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    pub reference_words: usize,
}

impl WordErrors {
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Errors per reference word. With an empty reference: 0 if the hypothesis is empty too,
    /// else 1.
    pub fn wer(&self) -> f64 {
        match (self.reference_words, self.errors()) {
            (0, 0) => 0.0,
            (0, _) => 1.0,
            (n, e) => e as f64 / n as f64,
        }
    }
}

impl AddAssign for WordErrors {
    fn add_assign(&mut self, o: Self) {
        self.substitutions += o.substitutions;
        self.deletions += o.deletions;
        self.insertions += o.insertions;
        self.reference_words += o.reference_words;
    }
}

impl std::iter::Sum for WordErrors {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        let mut total = Self::default();
        for e in iter {
            total += e;
        }
        total
    }
}

/// Normalises both texts and counts word errors.
pub fn word_errors(reference: &str, hypothesis: &str) -> WordErrors {
    align(&normalized_words(reference), &normalized_words(hypothesis))
}

/// Minimum edit alignment of already-normalised word lists (Levenshtein; ties prefer
/// substitutions, as the usual scorers do).
pub fn align<S: AsRef<str>>(reference: &[S], hypothesis: &[S]) -> WordErrors {
    let (n, m) = (reference.len(), hypothesis.len());
    // cost[j] with (substitutions, deletions, insertions) for the current row.
    let mut prev: Vec<(usize, usize, usize)> = (0..=m).map(|j| (0, 0, j)).collect();
    for i in 1..=n {
        let mut row = Vec::with_capacity(m + 1);
        row.push((0, i, 0));
        for j in 1..=m {
            let total = |c: &(usize, usize, usize)| c.0 + c.1 + c.2;
            let same = reference[i - 1].as_ref() == hypothesis[j - 1].as_ref();
            let diag = prev[j - 1];
            let sub = if same {
                diag
            } else {
                (diag.0 + 1, diag.1, diag.2)
            };
            let del = (prev[j].0, prev[j].1 + 1, prev[j].2);
            let ins = (row[j - 1].0, row[j - 1].1, row[j - 1].2 + 1);
            let mut best = sub;
            for cand in [del, ins] {
                if total(&cand) < total(&best) {
                    best = cand;
                }
            }
            row.push(best);
        }
        prev = row;
    }
    let (substitutions, deletions, insertions) = prev[m];
    WordErrors {
        substitutions,
        deletions,
        insertions,
        reference_words: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_punctuation() {
        assert_eq!(
            normalize("Hello, World!  How are you?"),
            "hello world how are you"
        );
        assert_eq!(
            normalize("Call-Forward on No Answer."),
            "call forward on no answer"
        );
        assert_eq!(
            normalize("“Quoted” — dash… ellipsis"),
            "quoted dash ellipsis"
        );
    }

    #[test]
    fn numbers_become_words() {
        assert_eq!(normalize("press 1"), "press one");
        assert_eq!(normalize("Press 0 for help"), "press zero for help");
        assert_eq!(normalize("4 or 6"), "four or six");
        assert_eq!(normalize("2024"), "two thousand twenty four");
        assert_eq!(
            normalize("1,250,000"),
            "one million two hundred fifty thousand"
        );
        assert_eq!(normalize("3.5"), "three point five");
        assert_eq!(normalize("115"), "one hundred fifteen");
        assert_eq!(normalize("007"), "zero zero seven");
        assert_eq!(normalize("3D audio"), "three d audio");
        assert_eq!(normalize("twenty-one"), normalize("21"));
        assert_eq!(normalize("50%"), "fifty percent");
    }

    #[test]
    fn currency_symbols_become_units() {
        assert_eq!(
            normalize("I can pay $200."),
            "i can pay two hundred dollars"
        );
        assert_eq!(normalize("$1,200"), "one thousand two hundred dollars");
        assert_eq!(normalize("$12.05 now"), "twelve dollars five cents now");
        assert_eq!(normalize("$250.00"), "two hundred fifty dollars");
        assert_eq!(normalize("£5.99"), "five pounds ninety nine pence");
        assert_eq!(normalize("€20"), "twenty euros");
        assert_eq!(normalize("costs $ a lot"), "costs a lot");
    }

    #[test]
    fn ordinals() {
        assert_eq!(normalize("1st"), "first");
        assert_eq!(normalize("the 2nd and 3rd"), "the second and third");
        assert_eq!(normalize("21st"), "twenty first");
        assert_eq!(normalize("12th"), "twelfth");
        assert_eq!(normalize("40th"), "fortieth");
        assert_eq!(normalize("100th"), "one hundredth");
        assert_eq!(normalize("1001st"), "one thousand first");
        assert_eq!(normalize("the twenty-first"), normalize("the 21st"));
    }

    #[test]
    fn contractions_and_abbreviations() {
        assert_eq!(normalize("I'm sorry"), "i am sorry");
        assert_eq!(normalize("We’re here"), "we are here");
        assert_eq!(normalize("can't"), normalize("cannot"));
        assert_eq!(normalize("won't"), "will not");
        assert_eq!(normalize("don't"), "do not");
        assert_eq!(normalize("you'll"), "you will");
        assert_eq!(normalize("party's extension"), "partys extension");
        assert_eq!(normalize("Mr. John Dashwood"), "mister john dashwood");
        assert_eq!(normalize("OK"), "okay");
        assert_eq!(normalize("um, yes"), "yes");
        assert_eq!(normalize("'quoted'"), "quoted");
    }

    #[test]
    fn annotations_are_not_words() {
        assert_eq!(normalize("(10 seconds of silence)"), "");
        assert_eq!(normalize("dollar [$]"), "dollar");
        assert_eq!(normalize("[BLANK_AUDIO]"), "");
        assert_eq!(normalize("<beep> hello"), "hello");
        assert_eq!(normalize("IAX (note: does not say \"2\")"), "iax");
    }

    #[test]
    fn word_error_counts() {
        let e = word_errors("the cat sat on the mat", "the cat sat on mat");
        assert_eq!((e.deletions, e.insertions, e.substitutions), (1, 0, 0));
        assert_eq!(e.reference_words, 6);
        let e = word_errors("press one", "Press 1.");
        assert_eq!(e.errors(), 0);
        let e = word_errors("a b c", "a x c d");
        assert_eq!((e.substitutions, e.insertions, e.deletions), (1, 1, 0));
        assert!((e.wer() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(word_errors("", "").wer(), 0.0);
        assert_eq!(word_errors("", "hello").wer(), 1.0);
        assert_eq!(word_errors("hello there", "").deletions, 2);
        let total: WordErrors = [word_errors("a b", "a"), word_errors("c d", "c d e")]
            .into_iter()
            .sum();
        assert_eq!((total.errors(), total.reference_words), (2, 4));
    }
}
