//! Words that only answering machines (voicemail greetings, network announcements) say in the
//! first seconds of a call.

/// Machine phrases, written in [`normalize`]d form (lower case, apostrophes dropped, other
/// punctuation as spaces). A phrase matches on whole words.
pub const MACHINE_CUES: &[&str] = &[
    "leave a message",
    "leave me a message",
    "leave your message",
    "leave a brief message",
    "leave a short message",
    "leave a detailed message",
    "leave your name",
    "leave your number",
    "leave us a message",
    "after the tone",
    "after the beep",
    "at the tone",
    "at the beep",
    "after the signal",
    "voicemail",
    "voice mail",
    "mailbox",
    "mail box",
    "not available",
    "unavailable",
    "not in service",
    "cant take your call",
    "cannot take your call",
    "cant take the call",
    "cant come to the phone",
    "cannot come to the phone",
    "unable to take your call",
    "unable to answer",
    "you have reached",
    "youve reached",
    "you reached",
    "nobody is available",
    "no one is available",
    "get back to you",
    "return your call",
    "call you back",
    "away from my desk",
    "away from the phone",
    "record your message",
    "press pound",
    "the person you are calling",
    "the person you are trying",
    "the person at extension",
    "the number you have dialed",
    "cannot be completed",
    "missed your call",
    "please try again later",
    "please try your call again",
];

/// Lower case, apostrophes removed ("can't" → "cant"), every other non-alphanumeric character a
/// space, runs of spaces collapsed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_string()
}

/// The first machine phrase found in `transcript`, if any.
pub fn machine_cue(transcript: &str) -> Option<&'static str> {
    let text = format!(" {} ", normalize(transcript));
    MACHINE_CUES
        .iter()
        .find(|cue| text.contains(&format!(" {cue} ")))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_match_on_whole_words_whatever_the_punctuation() {
        assert_eq!(
            normalize("  Hi! You've reached—Sam's phone. "),
            "hi youve reached sams phone"
        );
        assert_eq!(
            machine_cue("Please leave your message after the tone."),
            Some("leave your message")
        );
        assert_eq!(
            machine_cue("Sorry, I can't take your call"),
            Some("cant take your call")
        );
        assert_eq!(machine_cue("is unavailable"), Some("unavailable"));
        assert_eq!(machine_cue("Hello?"), None);
        assert_eq!(machine_cue("Hello, this is Sam speaking."), None);
        // Whole words only.
        assert_eq!(machine_cue("the mailboxes"), None);
    }

    #[test]
    fn every_cue_is_written_normalised() {
        for cue in MACHINE_CUES {
            assert_eq!(&normalize(cue), cue);
        }
    }
}
