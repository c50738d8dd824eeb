//! Whisper (whisper.cpp through whisper-rs) for short telephony utterances.
//!
//! Whisper always encodes a 30 s window; most of the cost of a 3 s utterance is the encoder
//! chewing on silence. `audio_ctx` shrinks that window, but cut to the utterance it makes
//! tiny.en lose track of where speech ends: it repeats itself until the token limit (measured
//! here: WER on 8 kHz IVR prompts 6.3% -> 57%). So a cut pass here is guarded:
//! - the window keeps a floor ([`WindowPolicy::floor`]) and a margin of trailing silence;
//! - the cut pass is greedy at temperature 0 with a token cap proportional to the duration;
//! - its result is rejected when empty, at the cap, repetitive or low-confidence
//!   ([`Rejection`]), and the utterance is then decoded again with the full window and
//!   whisper.cpp's own temperature fallback.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::AsrError;

/// Whisper's input rate.
pub const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// Encoder positions in a full 30 s window (one per 20 ms).
pub const FULL_AUDIO_CTX: u32 = 1500;
const SAMPLES_PER_POSITION: usize = 320;

/// How the encoder window is cut to the utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPolicy {
    /// Smallest window, in encoder positions (20 ms each).
    pub floor: u32,
    /// Trailing positions added after the utterance, so the model sees it end.
    pub margin: u32,
}

impl Default for WindowPolicy {
    fn default() -> Self {
        // floor 512 = 10.24 s; margin 256 = 5.12 s of silence after the speech. DESIGN.md's
        // measurements: +64 looped badly on ~3 s prompts, +256 mostly fixed it, and 512
        // positions cost ~0.3 s on 2 threads; the guard handles what remains.
        Self {
            floor: 512,
            margin: 256,
        }
    }
}

/// When a cut-window result is not trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardPolicy {
    /// Token cap of the cut pass: `base + per_second × duration`.
    pub max_tokens_base: u32,
    pub max_tokens_per_second: f32,
    /// Mean log-probability of the text tokens below which the result is retried.
    pub min_avg_logprob: f32,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        // Fast English speech is ~3.5 words/s, ~4.5 tokens/s; twice that is a runaway decoder.
        // -1.0 is Whisper's own log-probability threshold for its temperature fallback.
        Self {
            max_tokens_base: 12,
            max_tokens_per_second: 8.0,
            min_avg_logprob: -1.0,
        }
    }
}

/// Settings fixed for the life of a [`Transcriber`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TranscriberOptions {
    /// CPU threads per transcription (1 or 2 on a small box; more calls in parallel scale better
    /// than more threads per call).
    pub threads: usize,
    pub window: WindowPolicy,
    pub guard: GuardPolicy,
    /// whisper.cpp's flash attention (same results, faster on CPU).
    pub flash_attention: bool,
}

impl Default for TranscriberOptions {
    fn default() -> Self {
        Self {
            threads: 2,
            window: WindowPolicy::default(),
            guard: GuardPolicy::default(),
            flash_attention: true,
        }
    }
}

/// Per-utterance settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscribeOptions {
    /// Words the flow expects (names, products, "yes", "no"): biases Whisper towards them.
    pub prompt: Option<String>,
    /// Decode with the full 30 s window only (slower, the reference behaviour).
    pub full_window: bool,
    /// Do not retry a rejected cut-window pass with the full window (4–5× slower): return its
    /// result with [`Transcript::rejected`] set. For speculative decodes whose caller can
    /// retry later, when it knows the answer is needed.
    pub no_fallback: bool,
}

/// Why a cut-window pass was thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No text although there was audio.
    Empty,
    /// The decoder ran into the token cap.
    TokenLimit,
    /// A word or phrase repeats back to back.
    Repetition,
    /// The model was unsure of its own words.
    LowConfidence,
}

/// One decoding pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Encoder positions used (1500 = full window).
    pub audio_ctx: u32,
    pub elapsed: Duration,
    pub tokens: usize,
    pub avg_logprob: f32,
    pub rejected: Option<Rejection>,
}

/// Where the time went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// Length of the audio given (before any trimming).
    pub audio: Duration,
    /// VAD trimming, when used.
    pub vad: Duration,
    /// Everything, including the passes.
    pub total: Duration,
    pub passes: Vec<Pass>,
}

impl Timings {
    /// Processing time over audio time.
    pub fn real_time_factor(&self) -> f32 {
        if self.audio.is_zero() {
            return 0.0;
        }
        self.total.as_secs_f32() / self.audio.as_secs_f32()
    }

    /// Whether the cut window was rejected and the full window used.
    pub fn fell_back(&self) -> bool {
        self.passes.iter().any(|p| p.rejected.is_some())
    }
}

/// A piece of the transcript with its time span in the transcribed audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// What was said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// The text, trimmed; empty when nothing was said.
    pub text: String,
    pub segments: Vec<Segment>,
    pub timings: Timings,
}

impl Transcript {
    /// Why the result was rejected, when it was returned anyway
    /// ([`TranscribeOptions::no_fallback`]).
    pub fn rejected(&self) -> Option<Rejection> {
        match self.timings.passes.last() {
            Some(p) if p.audio_ctx < FULL_AUDIO_CTX => p.rejected,
            _ => None,
        }
    }
}

/// Whisper loaded once; each call gets its own decoding state, so one `Transcriber` can serve
/// several calls from several threads (`Send + Sync`). Finished states are kept for reuse:
/// making one allocates its caches and plans its graphs (up to tens of milliseconds).
pub struct Transcriber {
    ctx: WhisperContext,
    options: TranscriberOptions,
    idle_states: Mutex<Vec<WhisperState>>,
}

/// Idle decoding states kept; more concurrent calls than this create and drop their own.
const MAX_IDLE_STATES: usize = 4;

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

struct Decoded {
    segments: Vec<Segment>,
    tokens: usize,
    avg_logprob: f32,
}

impl Decoded {
    fn text(&self) -> String {
        let joined: Vec<&str> = self.segments.iter().map(|s| s.text.trim()).collect();
        joined.join(" ").trim().to_string()
    }
}

impl Transcriber {
    /// Loads a whisper.cpp ggml model.
    pub fn new(ggml_path: &Path, options: TranscriberOptions) -> Result<Self, AsrError> {
        let err = |message: String| AsrError::WhisperModel {
            path: ggml_path.to_path_buf(),
            message,
        };
        if !ggml_path.is_file() {
            return Err(err("file not found".into()));
        }
        if options.threads == 0 {
            return Err(AsrError::InvalidInput("threads must be at least 1".into()));
        }
        // Route whisper.cpp's console chatter into `tracing` instead of stderr.
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false).flash_attn(options.flash_attention);
        let path = ggml_path
            .to_str()
            .ok_or_else(|| err("path is not valid UTF-8".into()))?;
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            ctx,
            options,
            idle_states: Mutex::new(Vec::new()),
        })
    }

    pub fn options(&self) -> &TranscriberOptions {
        &self.options
    }

    /// The encoder window for `samples` of 16 kHz audio, or `None` for the full window.
    pub fn window_for(&self, samples: usize) -> Option<u32> {
        let positions = samples.div_ceil(SAMPLES_PER_POSITION) as u32;
        let w = self.options.window;
        let ctx = (positions + w.margin).max(w.floor).div_ceil(32) * 32;
        // Near the full window the saving is small and the cut could drop audio.
        (ctx < FULL_AUDIO_CTX * 9 / 10).then_some(ctx)
    }

    /// Transcribes mono 16 kHz audio (samples in [-1, 1]).
    pub fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcript, AsrError> {
        let started = Instant::now();
        if let Some(i) = audio.iter().position(|s| !s.is_finite()) {
            return Err(AsrError::InvalidInput(format!(
                "audio sample {i} is not a finite number"
            )));
        }
        let audio_duration =
            Duration::from_secs_f64(audio.len() as f64 / f64::from(WHISPER_SAMPLE_RATE));
        if audio.is_empty() {
            return Ok(Transcript::default());
        }
        // whisper.cpp skips input under 100 ms; pad short clips with silence to one second.
        let padded;
        let audio = if audio.len() < WHISPER_SAMPLE_RATE as usize {
            let mut p = audio.to_vec();
            p.resize(WHISPER_SAMPLE_RATE as usize, 0.0);
            padded = p;
            &padded[..]
        } else {
            audio
        };
        let prompt = match options.prompt.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => {
                // Whisper saw prompts as continuing text, hence the leading space.
                let clean: String = p.chars().filter(|&c| c != '\0').collect();
                self.ctx
                    .tokenize(&format!(" {clean}"), 224)
                    .map_err(AsrError::Whisper)?
            }
            _ => Vec::new(),
        };

        let seconds = audio_duration.as_secs_f32();
        let g = self.options.guard;
        let cap = g.max_tokens_base + (g.max_tokens_per_second * seconds).ceil() as u32;
        let mut passes = Vec::with_capacity(2);
        let window = if options.full_window {
            None
        } else {
            self.window_for(audio.len())
        };
        if let Some(ctx) = window {
            let t = Instant::now();
            let decoded = self.decode(audio, Some(ctx), &prompt, Some(cap))?;
            let rejected = self.check(&decoded, cap);
            passes.push(Pass {
                audio_ctx: ctx,
                elapsed: t.elapsed(),
                tokens: decoded.tokens,
                avg_logprob: decoded.avg_logprob,
                rejected,
            });
            match rejected {
                None => return Ok(finish(decoded, passes, audio_duration, started)),
                Some(_) if options.no_fallback => {
                    return Ok(finish(decoded, passes, audio_duration, started));
                }
                Some(why) => {
                    tracing::debug!(?why, ctx, "cut window rejected, using the full window")
                }
            }
        }
        let t = Instant::now();
        let decoded = self.decode(audio, None, &prompt, None)?;
        passes.push(Pass {
            audio_ctx: FULL_AUDIO_CTX,
            elapsed: t.elapsed(),
            tokens: decoded.tokens,
            avg_logprob: decoded.avg_logprob,
            rejected: None,
        });
        Ok(finish(decoded, passes, audio_duration, started))
    }

    fn check(&self, d: &Decoded, cap: u32) -> Option<Rejection> {
        let text = d.text();
        if text.is_empty() {
            return Some(Rejection::Empty);
        }
        if d.tokens >= cap as usize {
            return Some(Rejection::TokenLimit);
        }
        if has_repetition(&text) {
            return Some(Rejection::Repetition);
        }
        if d.avg_logprob < self.options.guard.min_avg_logprob {
            return Some(Rejection::LowConfidence);
        }
        None
    }

    fn decode(
        &self,
        audio: &[f32],
        audio_ctx: Option<u32>,
        prompt: &[i32],
        max_tokens: Option<u32>,
    ) -> Result<Decoded, AsrError> {
        let idle = self.idle_states.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut state = match idle {
            Some(state) => state,
            None => self.ctx.create_state()?,
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 5 });
        params.set_n_threads(self.options.threads as i32);
        params.set_language(Some("en"));
        params.set_translate(false);
        // Each utterance stands alone: earlier text as context is how loops spread.
        params.set_no_context(true);
        params.set_single_segment(true);
        params.set_no_timestamps(true);
        params.set_suppress_blank(true);
        // No "[music]", "(laughs)", "♪": only words.
        params.set_suppress_nst(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        if let Some(ctx) = audio_ctx {
            params.set_audio_ctx(ctx as i32);
            // A failing cut pass goes to the full window, a better remedy than sampling hotter.
            params.set_temperature_inc(0.0);
        }
        if let Some(cap) = max_tokens {
            params.set_max_tokens(cap as i32);
        }
        state.full(params, audio)?;
        let eot = self.ctx.token_eot();
        let mut segments = Vec::new();
        let (mut tokens, mut logprob_sum) = (0usize, 0.0f64);
        for segment in state.as_iter() {
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i)
                    && token.token_id() < eot
                {
                    tokens += 1;
                    logprob_sum += f64::from(token.token_data().plog);
                }
            }
            segments.push(Segment {
                start_ms: u64::try_from(segment.start_timestamp()).unwrap_or(0) * 10,
                end_ms: u64::try_from(segment.end_timestamp()).unwrap_or(0) * 10,
                text: segment.to_str_lossy()?.trim().to_string(),
            });
        }
        if let Ok(mut idle) = self.idle_states.lock()
            && idle.len() < MAX_IDLE_STATES
        {
            idle.push(state);
        }
        let avg_logprob = if tokens == 0 {
            0.0
        } else {
            (logprob_sum / tokens as f64) as f32
        };
        Ok(Decoded {
            segments,
            tokens,
            avg_logprob,
        })
    }
}

fn finish(decoded: Decoded, passes: Vec<Pass>, audio: Duration, started: Instant) -> Transcript {
    Transcript {
        text: decoded.text(),
        segments: decoded.segments,
        timings: Timings {
            audio,
            vad: Duration::ZERO,
            total: started.elapsed(),
            passes,
        },
    }
}

/// A transcript's words, lower-cased with punctuation dropped: "No, no!" is `["no", "no"]`.
pub fn transcript_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Back-to-back repetition: one word four times, two words three times, a phrase of 3–8 words
/// twice, or (in longer output) fewer than a third of the words distinct. "five five",
/// "no no no" and "thank you thank you" are fine; "press 4 for the previous message press 4
/// for the previous message" is the decoder looping.
pub fn has_repetition(text: &str) -> bool {
    let words = transcript_words(text);
    for n in 1..=8usize {
        let needed = match n {
            1 => 4,
            2 => 3,
            _ => 2,
        };
        if words.len() < n * needed {
            break;
        }
        for start in 0..=words.len() - n * needed {
            let first = &words[start..start + n];
            let repeats = (1..needed).all(|k| &words[start + k * n..start + (k + 1) * n] == first);
            if repeats {
                return true;
            }
        }
    }
    if words.len() >= 12 {
        let distinct: std::collections::HashSet<&String> = words.iter().collect();
        if distinct.len() * 3 < words.len() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_detector() {
        assert!(!has_repetition("Five five."));
        assert!(!has_repetition("No, no, no."));
        assert!(!has_repetition(
            "Press 1 to accept this call, or 2 to reject it."
        ));
        assert!(!has_repetition(
            "ask not what your country can do for you, ask what you can do for your country"
        ));
        assert!(has_repetition("No no no no."));
        assert!(!has_repetition("Thank you, thank you."));
        assert!(has_repetition("Press one. Press one. Press one."));
        assert!(has_repetition(
            "Press 4 for the previous message. Press 4 for the previous message."
        ));
        assert!(has_repetition(
            "Please hold the line please hold the line please hold the line"
        ));
        assert!(has_repetition(
            "the the call the call the the call call the the call the"
        ));
    }
}
