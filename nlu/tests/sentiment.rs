//! Sentiment and escalation over many phrasings a bank's callers use.

use nlu::{SentimentLabel, analyze_sentiment};

#[test]
fn angry_callers_escalate() {
    let angry = [
        "this is ridiculous",
        "This is absolutely RIDICULOUS!",
        "I want to speak to a manager right now",
        "put me through to your supervisor",
        "get me a manager",
        "stop harassing me",
        "Stop calling me!",
        "leave me alone",
        "I'm sick and tired of these calls",
        "I am fed up with your bank",
        "I'll report you to the ombudsman",
        "I'm going to sue you",
        "I want to make a complaint",
        "this is bullshit",
        "what the hell is wrong with you people",
        "you people are useless and incompetent",
        "how dare you call me at work",
        "this is completely unacceptable",
        "I am absolutely furious",
        "I hate this stupid robot",
        "I want a real person now",
        "I'm so angry with you, this is the worst service ever",
    ];
    for t in angry {
        let s = analyze_sentiment(t);
        assert!(s.escalate, "should escalate: {t:?} -> {s:?}");
        assert_eq!(s.label, SentimentLabel::Negative, "{t:?} -> {s:?}");
    }
}

#[test]
fn calm_callers_do_not_escalate() {
    let calm = [
        ("yes I can pay next Friday", None),
        (
            "thank you so much, that's very helpful",
            Some(SentimentLabel::Positive),
        ),
        ("great, thanks", Some(SentimentLabel::Positive)),
        ("I already paid that last week", None),
        ("can you call me back tomorrow afternoon", None),
        ("what is my balance", Some(SentimentLabel::Neutral)),
        ("that's not bad at all", Some(SentimentLabel::Positive)),
        ("I'm not angry, just confused", None),
        ("it's not a problem", None),
        ("okay, sounds good", Some(SentimentLabel::Positive)),
        ("I appreciate your help", Some(SentimentLabel::Positive)),
        ("my card ending 4217", Some(SentimentLabel::Neutral)),
        ("sorry, I missed that", None),
    ];
    for (t, label) in calm {
        let s = analyze_sentiment(t);
        assert!(!s.escalate, "should not escalate: {t:?} -> {s:?}");
        if let Some(l) = label {
            assert_eq!(s.label, l, "{t:?} -> {s:?}");
        }
    }
}

#[test]
fn negation_and_intensity() {
    let good = analyze_sentiment("this is good").score;
    let very_good = analyze_sentiment("this is very good").score;
    let not_good = analyze_sentiment("this is not good").score;
    assert!(very_good > good && good > 0.0, "{good} {very_good}");
    assert!(not_good < 0.0, "{not_good}");
    let bad = analyze_sentiment("the service was bad").score;
    let not_bad = analyze_sentiment("the service was not bad").score;
    assert!(not_bad > bad, "{bad} {not_bad}");
    let mixed = analyze_sentiment("the app is great but the fees are terrible").score;
    assert!(mixed < 0.0, "what follows 'but' weighs more: {mixed}");
    let shout = analyze_sentiment("this is bad!!!").score;
    assert!(shout < bad, "{shout} {bad}");
}
