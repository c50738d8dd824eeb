//! Call-progress classification: a table over SIP response sequences, tone events and timers,
//! and end-to-end runs of synthesised early media through the tone detector into the classifier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use telephony::progress::{Action, CallProgress, Disposition, Event, Phase, ProgressConfig};
use telephony::tones::{SitClass, Tone, ToneDetector};

fn r(status: u16, phrase: &str) -> Event {
    Event::response(status, phrase)
}

fn rr(status: u16, phrase: &str, reason: &str) -> Event {
    Event::response_with_reason(status, phrase, reason)
}

fn t(tone: Tone) -> Event {
    Event::Tone(tone)
}

struct Case {
    name: &'static str,
    cfg: ProgressConfig,
    steps: Vec<(u64, Event)>,
    want: (Disposition, &'static str, Action),
    /// When the (last) decision was made.
    at_ms: u64,
}

fn case(
    name: &'static str,
    steps: Vec<(u64, Event)>,
    want: (Disposition, &'static str, Action),
    at_ms: u64,
) -> Case {
    Case {
        name,
        cfg: ProgressConfig::default(),
        steps,
        want,
        at_ms,
    }
}

fn table() -> Vec<Case> {
    use Action::{Abandon, Cancel, HangUp, Proceed};
    use Disposition::*;
    let none = Action::None;
    let early_off = ProgressConfig {
        decide_on_early_media: false,
        ..ProgressConfig::default()
    };
    let mut cases = vec![
        case(
            "answered after ringing",
            vec![
                (10, r(100, "Trying")),
                (500, r(180, "Ringing")),
                (8000, r(200, "OK")),
            ],
            (Answered, "2xx answered", Proceed),
            8000,
        ),
        case(
            "answered after early media",
            vec![
                (10, r(100, "Trying")),
                (400, r(183, "Session Progress")),
                (5000, r(200, "OK")),
            ],
            (Answered, "2xx answered", Proceed),
            5000,
        ),
        case(
            "486",
            vec![
                (10, r(100, "Trying")),
                (500, r(180, "Ringing")),
                (900, r(486, "Busy Here")),
            ],
            (Busy, "486 busy here", none),
            900,
        ),
        case(
            "600",
            vec![(300, r(600, "Busy Everywhere"))],
            (Busy, "600 busy everywhere", none),
            300,
        ),
        case(
            "408 after ringing",
            vec![
                (500, r(180, "Ringing")),
                (32_000, r(408, "Request Timeout")),
            ],
            (NoAnswer, "408 after ringing", none),
            32_000,
        ),
        case(
            "408 before any provisional",
            vec![(20_000, r(408, "Request Timeout"))],
            (NetworkError, "408 before ringing", none),
            20_000,
        ),
        case(
            "408 after 100 only",
            vec![(10, r(100, "Trying")), (20_000, r(408, "Request Timeout"))],
            (NetworkError, "408 before ringing", none),
            20_000,
        ),
        case(
            "480 after ringing",
            vec![
                (500, r(180, "Ringing")),
                (25_000, r(480, "Temporarily Unavailable")),
            ],
            (NoAnswer, "480 after ringing", none),
            25_000,
        ),
        case(
            "480 after ringback heard in 183 media",
            vec![
                (500, r(183, "Session Progress")),
                (2600, t(Tone::Ringback)),
                (25_000, r(480, "Temporarily Unavailable")),
            ],
            (NoAnswer, "480 after ringing", none),
            25_000,
        ),
        case(
            "480 straight away (subscriber absent)",
            vec![
                (10, r(100, "Trying")),
                (1500, r(480, "Temporarily Unavailable")),
            ],
            (Unreachable, "480 without ringing", none),
            1500,
        ),
        case(
            "480 after 'powered off' announcement",
            vec![
                (400, r(183, "Session Progress")),
                (900, t(Tone::Speech)),
                (6000, r(480, "Temporarily Unavailable")),
            ],
            (Unreachable, "480 after announcement", none),
            6000,
        ),
        case(
            "503 after announcement",
            vec![
                (400, r(183, "Session Progress")),
                (900, t(Tone::Speech)),
                (6000, r(503, "Service Unavailable")),
            ],
            (Unreachable, "503 after announcement", none),
            6000,
        ),
        case(
            "503 plain",
            vec![(10, r(100, "Trying")), (200, r(503, "Service Unavailable"))],
            (NetworkError, "503 service unavailable", none),
            200,
        ),
        case(
            "404",
            vec![(200, r(404, "Not Found"))],
            (InvalidNumber, "404 not found", none),
            200,
        ),
        case(
            "410",
            vec![(200, r(410, "Gone"))],
            (InvalidNumber, "410 gone", none),
            200,
        ),
        case(
            "484",
            vec![(200, r(484, "Address Incomplete"))],
            (InvalidNumber, "484 address incomplete", none),
            200,
        ),
        case(
            "604",
            vec![(200, r(604, "Does Not Exist Anywhere"))],
            (InvalidNumber, "604 does not exist anywhere", none),
            200,
        ),
        case(
            "603",
            vec![(500, r(180, "Ringing")), (3000, r(603, "Decline"))],
            (Rejected, "603 decline", none),
            3000,
        ),
        case(
            "403",
            vec![(200, r(403, "Forbidden"))],
            (Rejected, "403 forbidden", none),
            200,
        ),
        case(
            "607",
            vec![(200, r(607, "Unwanted"))],
            (Rejected, "607 unwanted", none),
            200,
        ),
        case(
            "500",
            vec![(200, r(500, "Server Internal Error"))],
            (NetworkError, "other 5xx", none),
            200,
        ),
        case(
            "488",
            vec![(200, r(488, "Not Acceptable Here"))],
            (NetworkError, "488/606 media not acceptable", none),
            200,
        ),
        case(
            "302",
            vec![(200, r(302, "Moved Temporarily"))],
            (Unreachable, "3xx redirect not followed", none),
            200,
        ),
        case(
            "other 4xx",
            vec![(200, r(420, "Bad Extension"))],
            (NetworkError, "other 4xx", none),
            200,
        ),
        case(
            "487 without our cancel",
            vec![
                (500, r(180, "Ringing")),
                (900, r(487, "Request Terminated")),
            ],
            (NetworkError, "487 without local cancel", none),
            900,
        ),
        // Reason header causes take precedence.
        case(
            "480 with Q.850 20 even after ringing",
            vec![
                (500, r(180, "Ringing")),
                (
                    900,
                    rr(
                        480,
                        "Temporarily Unavailable",
                        "Q.850;cause=20;text=\"subscriber absent\"",
                    ),
                ),
            ],
            (Unreachable, "Q.850 20 subscriber absent", none),
            900,
        ),
        case(
            "480 with Q.850 18 without ringing",
            vec![(900, rr(480, "Temporarily Unavailable", "Q.850;cause=18"))],
            (NoAnswer, "Q.850 18 no user responding", none),
            900,
        ),
        case(
            "503 with Q.850 34",
            vec![(
                900,
                rr(
                    503,
                    "Service Unavailable",
                    "Q.850;cause=34;text=\"no circuit\"",
                ),
            )],
            (NetworkError, "Q.850 network failure", none),
            900,
        ),
        case(
            "404 with Q.850 1",
            vec![(900, rr(404, "Not Found", "Q.850;cause=1"))],
            (InvalidNumber, "Q.850 1 unallocated number", none),
            900,
        ),
        case(
            "486 with Q.850 17 (and a SIP reason first)",
            vec![(900, rr(486, "Busy Here", "SIP;cause=486, Q.850;cause=17"))],
            (Busy, "Q.850 17 user busy", none),
            900,
        ),
        case(
            "603 with Q.850 21",
            vec![(900, rr(603, "Decline", "Q.850;cause=21"))],
            (Rejected, "Q.850 21 call rejected", none),
            900,
        ),
        case(
            "Q.850 16 falls back to the status",
            vec![(900, rr(486, "Busy Here", "Q.850;cause=16"))],
            (Busy, "486 busy here", none),
            900,
        ),
        // Reason phrases of generic codes.
        case(
            "500 'Subscriber Absent'",
            vec![(200, r(500, "Subscriber Absent"))],
            (Unreachable, "phrase: subscriber unreachable", none),
            200,
        ),
        case(
            "480 'Number Not In Service'",
            vec![(200, r(480, "Number Not In Service"))],
            (InvalidNumber, "phrase: number does not exist", none),
            200,
        ),
        case(
            "503 'User Busy'",
            vec![(200, r(503, "User Busy"))],
            (Busy, "phrase: busy", none),
            200,
        ),
        case(
            "408 'No Answer'",
            vec![(200, r(100, "Trying")), (20_000, r(408, "No Answer"))],
            (NoAnswer, "phrase: no answer", none),
            20_000,
        ),
        // Early-media tones decide without waiting.
        case(
            "SIT vacant code",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::VacantCode))),
            ],
            (InvalidNumber, "SIT vacant code", Cancel),
            1500,
        ),
        case(
            "SIT intercept",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::Intercept))),
            ],
            (InvalidNumber, "SIT intercept", Cancel),
            1500,
        ),
        case(
            "SIT no circuit",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::NoCircuit))),
            ],
            (Unreachable, "SIT no circuit", Cancel),
            1500,
        ),
        case(
            "SIT reorder",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::Reorder))),
            ],
            (NetworkError, "SIT reorder", Cancel),
            1500,
        ),
        case(
            "ITU SIT",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::Unclassified))),
            ],
            (Unreachable, "SIT other", Cancel),
            1500,
        ),
        case(
            "busy tone",
            vec![(400, r(183, "Session Progress")), (2000, t(Tone::Busy))],
            (Busy, "busy tone in early media", Cancel),
            2000,
        ),
        case(
            "congestion tone",
            vec![
                (400, r(183, "Session Progress")),
                (2000, t(Tone::Congestion)),
            ],
            (NetworkError, "congestion tone in early media", Cancel),
            2000,
        ),
        case(
            "fax answer tone in early media",
            vec![(400, r(183, "Session Progress")), (2000, t(Tone::FaxCed))],
            (Fax, "fax tone in early media", Cancel),
            2000,
        ),
        case(
            "SIT wins over a 200 racing the CANCEL",
            vec![
                (400, r(183, "Session Progress")),
                (1500, t(Tone::Sit(SitClass::VacantCode))),
                (1600, r(200, "OK")),
            ],
            (InvalidNumber, "SIT vacant code", Cancel),
            1500,
        ),
        // Speech and ringback alone decide nothing.
        case(
            "speech then answer",
            vec![
                (400, r(183, "Session Progress")),
                (900, t(Tone::Speech)),
                (2600, t(Tone::Ringback)),
                (7000, r(200, "OK")),
            ],
            (Answered, "2xx answered", Proceed),
            7000,
        ),
        // Fax after answer.
        case(
            "fax CNG after answer",
            vec![
                (500, r(180, "Ringing")),
                (4000, r(200, "OK")),
                (4500, t(Tone::Speech)),
                (6000, t(Tone::FaxCng)),
            ],
            (Fax, "fax tone after answer", HangUp),
            6000,
        ),
        case(
            "fax tone long after answer is not a fax",
            vec![
                (500, r(180, "Ringing")),
                (4000, r(200, "OK")),
                (20_000, t(Tone::FaxCng)),
            ],
            (Answered, "2xx answered", Proceed),
            4000,
        ),
        // Timers.
        case(
            "ring timeout",
            vec![
                (10, r(100, "Trying")),
                (500, r(180, "Ringing")),
                (29_999, Event::Tick),
                (30_000, Event::Tick),
            ],
            (NoAnswer, "ring timeout", Cancel),
            30_000,
        ),
        case(
            "ring timeout after 181/182",
            vec![
                (10, r(100, "Trying")),
                (500, r(181, "Call Is Being Forwarded")),
                (900, r(182, "Queued")),
                (30_000, Event::Tick),
            ],
            (NoAnswer, "ring timeout", Cancel),
            30_000,
        ),
        case(
            "ring timeout with ringback in 183",
            vec![
                (500, r(183, "Session Progress")),
                (2600, t(Tone::Ringback)),
                (3000, t(Tone::Speech)),
                (30_000, Event::Tick),
            ],
            (NoAnswer, "ring timeout", Cancel),
            30_000,
        ),
        case(
            "announcement until timeout",
            vec![
                (500, r(183, "Session Progress")),
                (1000, t(Tone::Speech)),
                (30_000, Event::Tick),
            ],
            (Unreachable, "announcement until timeout", Cancel),
            30_000,
        ),
        case(
            "no response at all",
            vec![
                (10_000, Event::Tick),
                (29_999, Event::Tick),
                (30_000, Event::Tick),
            ],
            (NetworkError, "no response to INVITE", Abandon),
            30_000,
        ),
        case(
            "only 100 Trying",
            vec![(10, r(100, "Trying")), (30_000, Event::Tick)],
            (NetworkError, "only 100 Trying until timeout", Cancel),
            30_000,
        ),
        // Local hang-up.
        case(
            "hang-up while ringing, then 487",
            vec![
                (500, r(180, "Ringing")),
                (5000, Event::LocalHangup),
                (5100, r(487, "Request Terminated")),
            ],
            (Cancelled, "local hang-up", Cancel),
            5000,
        ),
        case(
            "hang-up before any response",
            vec![(50, Event::LocalHangup)],
            (Cancelled, "local hang-up", Abandon),
            50,
        ),
        case(
            "hang-up after answer changes nothing",
            vec![(500, r(200, "OK")), (5000, Event::LocalHangup)],
            (Answered, "2xx answered", Proceed),
            500,
        ),
        case(
            "invalid status codes are ignored",
            vec![
                (100, r(99, "?")),
                (200, r(700, "?")),
                (300, r(180, "Ringing")),
                (30_000, Event::Tick),
            ],
            (NoAnswer, "ring timeout", Cancel),
            30_000,
        ),
    ];
    // With early decisions off, tones are remembered and used for the final response.
    cases.push(Case {
        name: "SIT remembered until 503",
        cfg: early_off,
        steps: vec![
            (400, r(183, "Session Progress")),
            (1500, t(Tone::Sit(SitClass::Intercept))),
            (6000, r(503, "Service Unavailable")),
        ],
        want: (InvalidNumber, "SIT intercept", none),
        at_ms: 6000,
    });
    cases.push(Case {
        name: "busy tone remembered until 480",
        cfg: early_off,
        steps: vec![
            (400, r(183, "Session Progress")),
            (2000, t(Tone::Busy)),
            (6000, r(480, "Temporarily Unavailable")),
        ],
        want: (Busy, "busy tone in early media", none),
        at_ms: 6000,
    });
    cases.push(Case {
        name: "specific code beats a remembered SIT",
        cfg: early_off,
        steps: vec![
            (400, r(183, "Session Progress")),
            (1500, t(Tone::Sit(SitClass::NoCircuit))),
            (6000, r(404, "Not Found")),
        ],
        want: (InvalidNumber, "404 not found", none),
        at_ms: 6000,
    });
    cases.push(Case {
        name: "no response with a short timer",
        cfg: ProgressConfig {
            no_response_ms: 8000,
            ..ProgressConfig::default()
        },
        steps: vec![(7999, Event::Tick), (8000, Event::Tick)],
        want: (NetworkError, "no response to INVITE", Action::Abandon),
        at_ms: 8000,
    });
    cases
}

#[test]
fn classification_table() {
    let cases = table();
    assert!(cases.len() >= 50);
    for c in cases {
        let mut p = CallProgress::new(c.cfg, 0);
        let mut last = None;
        for (now, ev) in &c.steps {
            if let Some(o) = p.handle(*now, ev) {
                last = Some(o);
            }
        }
        let o = last.unwrap_or_else(|| panic!("{}: no decision", c.name));
        assert_eq!(Some(&o), p.outcome(), "{}", c.name);
        assert_eq!((o.disposition, o.reason, o.action), c.want, "{}", c.name);
        assert_eq!(o.at_ms, c.at_ms, "{}", c.name);
        if let (Some(status), Action::None) = (o.status, o.action) {
            assert!(status >= 300, "{}", c.name);
        }
    }
}

#[test]
fn nothing_is_decided_early_without_cause() {
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    for (now, ev) in [
        (10, r(100, "Trying")),
        (500, r(183, "Session Progress")),
        (900, t(Tone::Speech)),
        (2600, t(Tone::Ringback)),
        (10_000, Event::Tick),
    ] {
        assert_eq!(p.handle(now, &ev), None);
    }
    assert_eq!(p.phase(), Phase::Ringing);
    assert_eq!(p.outcome(), None);
}

// ---------------------------------------------------------------------------------------------
// Synthesised early media through tones.rs into progress.rs.
// ---------------------------------------------------------------------------------------------

/// Builds 8 kHz PCM: tone segments at a level in dBm0, plus low white noise.
struct Audio {
    pcm: Vec<f32>,
    seed: u32,
}

impl Audio {
    fn new() -> Self {
        Audio {
            pcm: Vec::new(),
            seed: 0x1234_5678,
        }
    }

    fn tone(mut self, freqs: &[f32], ms: usize, dbm0: f32) -> Self {
        let amp = (2.0 * 0.241 * 10f32.powf(dbm0 / 10.0)).sqrt();
        let n0 = self.pcm.len();
        for i in 0..ms * 8 {
            let t = (n0 + i) as f32 / 8000.0;
            let v: f32 = freqs
                .iter()
                .map(|f| amp * (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            self.pcm.push(v);
        }
        self
    }

    fn silence(self, ms: usize) -> Self {
        self.tone(&[], ms, 0.0)
    }

    fn wav(mut self, path: &std::path::Path) -> Self {
        let mut r = hound::WavReader::open(path).unwrap();
        assert_eq!(r.spec().sample_rate, 8000);
        self.pcm
            .extend(r.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0));
        self
    }

    fn pcm(mut self) -> Vec<i16> {
        // -50 dBm0 uniform noise.
        let a = (3.0 * 0.241 * 10f32.powf(-5.0)).sqrt();
        let samples = std::mem::take(&mut self.pcm);
        samples
            .into_iter()
            .map(|v| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 17;
                self.seed ^= self.seed << 5;
                let noise = (self.seed as f32 / u32::MAX as f32 * 2.0 - 1.0) * a;
                ((v + noise) * 32767.0).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }
}

/// Plays `pcm` as 20 ms RTP frames starting at `media_at`, feeding tone events to `p`; returns
/// the tones seen and the first decision.
fn play(
    p: &mut CallProgress,
    media_at: u64,
    pcm: &[i16],
) -> (Vec<Tone>, Option<telephony::progress::Outcome>) {
    let mut det = ToneDetector::new();
    let (mut seen, mut decisions) = (Vec::new(), Vec::new());
    let n = pcm.len().div_ceil(160);
    for (i, frame) in pcm.chunks(160).enumerate() {
        let now = media_at + i as u64 * 20;
        let mut events = det.push(now, frame);
        if i + 1 == n {
            events.extend(det.finish());
        }
        if p.next_deadline().is_some_and(|d| now >= d) {
            decisions.extend(p.handle(now, &Event::Tick));
        }
        for e in events {
            seen.push(e.tone);
            decisions.extend(p.handle(e.at_ms, &Event::Tone(e.tone)));
        }
    }
    let decided = decisions.first().copied();
    (seen, decided)
}

fn prompt(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/speech/asterisk-prompts-8k/wav")
        .join(name)
}

#[test]
fn ringback_then_sit_is_an_invalid_number() {
    // 183 with media: one North American ring cycle, then a vacant-code SIT and the announcement.
    let pcm = Audio::new()
        .silence(200)
        .tone(&[440.0, 480.0], 2000, -19.0)
        .silence(4000)
        .tone(&[985.2], 380, -24.0)
        .tone(&[1370.6], 274, -24.0)
        .tone(&[1776.7], 380, -24.0)
        .silence(100)
        .wav(&prompt("ss-noservice.wav"))
        .pcm();
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    assert_eq!(p.handle(20, &r(100, "Trying")), None);
    assert_eq!(p.handle(300, &r(183, "Session Progress")), None);
    let (seen, decided) = play(&mut p, 320, &pcm);
    assert_eq!(seen[0], Tone::Ringback, "{seen:?}");
    let o = decided.expect("decided");
    assert_eq!(o.disposition, Disposition::InvalidNumber);
    assert_eq!((o.reason, o.action), ("SIT vacant code", Action::Cancel));
    // SIT ends at 320 + 200 + 2000 + 4000 + 1034 ms; decided within 100 ms of that.
    let sit_end = 320 + 6200 + 1034;
    assert!(o.at_ms >= sit_end && o.at_ms <= sit_end + 100, "{o:?}");
    assert!(seen.contains(&Tone::Sit(SitClass::VacantCode)));
    assert_eq!(p.phase(), Phase::Ended);
}

#[test]
fn european_ringback_then_busy() {
    let mut a = Audio::new().tone(&[425.0], 1000, -20.0).silence(4000);
    for _ in 0..4 {
        a = a.tone(&[425.0], 500, -20.0).silence(500);
    }
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    p.handle(300, &r(183, "Session Progress"));
    let (seen, decided) = play(&mut p, 300, &a.pcm());
    assert_eq!(seen.first(), Some(&Tone::Ringback), "{seen:?}");
    let o = decided.expect("decided");
    assert_eq!(
        (o.disposition, o.reason),
        (Disposition::Busy, "busy tone in early media")
    );
    // The second busy burst ends 300 + 5000 + 1500 ms in.
    assert!(o.at_ms >= 6800 && o.at_ms <= 6900, "{o:?}");
}

#[test]
fn ringing_until_timeout_is_no_answer() {
    let mut a = Audio::new();
    for _ in 0..6 {
        a = a.tone(&[440.0, 480.0], 2000, -19.0).silence(4000);
    }
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    p.handle(300, &r(183, "Session Progress"));
    let (seen, decided) = play(&mut p, 300, &a.pcm());
    assert!(
        seen.iter().filter(|t| **t == Tone::Ringback).count() >= 4,
        "{seen:?}"
    );
    assert!(seen.iter().all(|t| *t == Tone::Ringback), "{seen:?}");
    let o = decided.expect("decided");
    assert_eq!(
        (o.disposition, o.reason),
        (Disposition::NoAnswer, "ring timeout")
    );
    assert_eq!(o.at_ms, 30_000);
}

#[test]
fn announcement_without_ringing_then_480_is_unreachable() {
    // A "not available" style announcement (a real prompt) as early media, then 480.
    let pcm = Audio::new()
        .silence(300)
        .wav(&prompt("vm-isunavail.wav"))
        .silence(300)
        .pcm();
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    p.handle(200, &r(183, "Session Progress"));
    let (seen, decided) = play(&mut p, 200, &pcm);
    assert_eq!(decided, None);
    assert!(
        seen.contains(&Tone::Speech) && seen.iter().all(|t| *t == Tone::Speech),
        "{seen:?}"
    );
    let o = p.handle(6000, &r(480, "Temporarily Unavailable")).unwrap();
    assert_eq!(
        (o.disposition, o.reason),
        (Disposition::Unreachable, "480 after announcement")
    );
}

#[test]
fn fax_answering_is_refined_after_answer() {
    let pcm = Audio::new()
        .silence(500)
        .tone(&[2100.0], 3000, -15.0)
        .silence(200)
        .pcm();
    let mut p = CallProgress::new(ProgressConfig::default(), 0);
    p.handle(500, &r(180, "Ringing"));
    let o = p.handle(4000, &r(200, "OK")).unwrap();
    assert_eq!(o.disposition, Disposition::Answered);
    let (seen, decided) = play(&mut p, 4020, &pcm);
    assert_eq!(seen, [Tone::FaxCed]);
    let o = decided.expect("refined");
    assert_eq!(
        (o.disposition, o.action),
        (Disposition::Fax, Action::HangUp)
    );
    assert_eq!(p.outcome().map(|o| o.disposition), Some(Disposition::Fax));
}
