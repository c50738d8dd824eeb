//! A Piper voice driven through our own ONNX Runtime session.
//!
//! Why not piper-rs: piper-rs 0.2 pins `ort = "=2.0.0-rc.12"`, which Cargo cannot resolve beside
//! the workspace's ort rc.15 (both ort-sys crates declare `links = "onnxruntime"`), and its
//! phonemes drop clause punctuation, so commas made no pauses. The graph itself is simple — inputs
//! `input` (phoneme ids), `input_lengths`, `scales` (noise, length, noise_w) and one audio output —
//! so driving it directly costs ~100 lines and shares the process's one ONNX Runtime.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::audio::{Audio, OutputRate};
use crate::phonemes::{self, Clause};
use crate::{TtsError, normalize};

/// Synthesis parameters; defaults come from the voice's `.onnx.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthesisParams {
    /// Variation of the voice (0.667 for Piper voices).
    pub noise_scale: f32,
    /// Speaking time multiplier: > 1 is slower.
    pub length_scale: f32,
    /// Variation of phoneme durations.
    pub noise_w: f32,
    /// Silence after each sentence, in seconds (Piper's default is 0.2).
    pub sentence_pause: f32,
}

/// How a voice is loaded and how it streams.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceOptions {
    /// ONNX Runtime intra-op threads (inference of one utterance uses this many cores).
    pub intra_threads: usize,
    /// Overrides the voice config's parameters.
    pub params: Option<SynthesisParams>,
    /// In streams, send the first clause of a long first sentence on its own so that audio starts
    /// sooner (see [`Voice::synthesize_stream`]).
    pub fast_first_chunk: bool,
}

impl Default for VoiceOptions {
    /// One intra-op thread: on the 2-core reference machine it gave the first audio of a 12-word
    /// sentence in 144 ms against 266 ms with two (tts bench), and a call server gains more from
    /// running calls side by side than from splitting one utterance across cores.
    fn default() -> Self {
        VoiceOptions {
            intra_threads: 1,
            params: None,
            fast_first_chunk: true,
        }
    }
}

#[derive(Deserialize)]
struct RawConfig {
    audio: RawAudio,
    espeak: RawEspeak,
    inference: RawInference,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
}
#[derive(Deserialize)]
struct RawAudio {
    sample_rate: u32,
}
#[derive(Deserialize)]
struct RawEspeak {
    voice: String,
}
#[derive(Deserialize)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// A loaded Piper voice. `Send + Sync`: inference is serialised by an internal lock, so share one
/// `Voice` (behind an `Arc`) per process rather than loading several.
pub struct Voice {
    session: Mutex<Session>,
    id: String,
    espeak_voice: String,
    sample_rate: u32,
    params: SynthesisParams,
    id_map: HashMap<char, Vec<i64>>,
    has_speaker_input: bool,
    options: VoiceOptions,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("id", &self.id)
            .field("sample_rate", &self.sample_rate)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A unit of synthesis: clauses rendered by one inference, then an optional pause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub clauses: Vec<Clause>,
    pub pause_after: bool,
}

/// Longest first chunk, in words, that a stream sends before splitting (see [`plan_chunks`]).
const FIRST_CHUNK_WORDS: usize = 6;

/// Words a phrase can naturally start with: a soft split goes before one of them.
const PHRASE_STARTS: &[&str] = &[
    "a", "about", "and", "as", "at", "because", "before", "but", "by", "for", "from", "if", "in",
    "is", "of", "on", "or", "our", "so", "that", "the", "this", "to", "until", "was", "we", "when",
    "which", "will", "with", "you", "your",
];

/// Splits normalised text into inference chunks, one per sentence. With `fast_first`, a first
/// sentence of more than [`FIRST_CHUNK_WORDS`] words goes out in two chunks so that first audio
/// waits for a few words instead of the whole sentence (inference time grows with length): its
/// first clause when that is short (the comma's pause hides the seam), else its first three to six
/// words, cut before a word that starts a phrase ("to", "your", "the"…) — a seam without a pause,
/// the price of the first audio in under 200 ms.
pub(crate) fn plan_chunks(text: &str, fast_first: bool) -> Vec<Chunk> {
    let count = |c: &Clause| c.text.split_whitespace().count();
    let mut chunks = Vec::new();
    for (i, mut sentence) in phonemes::split_sentences(text).into_iter().enumerate() {
        let total: usize = sentence.iter().map(count).sum();
        if i > 0 || !fast_first || total <= FIRST_CHUNK_WORDS || sentence.is_empty() {
            chunks.push(Chunk {
                clauses: sentence,
                pause_after: true,
            });
            continue;
        }
        let first = sentence.remove(0);
        let head = if count(&first) > FIRST_CHUNK_WORDS {
            let (head, tail) = soft_split(&first);
            sentence.insert(0, tail);
            head
        } else {
            first
        };
        let rest_is_empty = sentence.is_empty();
        chunks.push(Chunk {
            clauses: vec![head],
            pause_after: rest_is_empty,
        });
        if !rest_is_empty {
            chunks.push(Chunk {
                clauses: sentence,
                pause_after: true,
            });
        }
    }
    chunks
}

/// Cuts a long clause before the first phrase-starting word among words 4 to 7 (after the
/// fifth word if there is none). The head has no punctuation; the tail keeps the clause's.
fn soft_split(clause: &Clause) -> (Clause, Clause) {
    let words: Vec<&str> = clause.text.split_whitespace().collect();
    let at = (3..=FIRST_CHUNK_WORDS)
        .find(|&i| {
            words
                .get(i)
                .is_some_and(|w| PHRASE_STARTS.contains(&w.to_lowercase().as_str()))
        })
        .unwrap_or(5)
        .min(words.len().saturating_sub(1));
    (
        Clause {
            text: words[..at].join(" "),
            punct: None,
        },
        Clause {
            text: words[at..].join(" "),
            punct: clause.punct,
        },
    )
}

impl Voice {
    /// Loads `onnx` with its Piper `config` (`.onnx.json`); `espeak_data_dir` is the
    /// `espeak-ng-data` folder (see [`crate::install_espeak_ng_data`]).
    ///
    /// `env` is the process's ONNX Runtime environment (`callbot_models::onnxruntime_environment`
    /// in the binary and tests). espeak-ng is
    /// process-global: every voice of a process must use the same data folder, and the first
    /// `Voice` should be loaded at start-up, before other threads run (it may set an environment
    /// variable, see `phonemes::set_data_env`).
    pub fn load(
        env: &Environment,
        onnx: &Path,
        config: &Path,
        espeak_data_dir: &Path,
    ) -> Result<Voice, TtsError> {
        Voice::load_with(env, onnx, config, espeak_data_dir, VoiceOptions::default())
    }

    /// [`Voice::load`] with explicit threads, parameters and streaming behaviour.
    pub fn load_with(
        env: &Environment,
        onnx: &Path,
        config: &Path,
        espeak_data_dir: &Path,
        options: VoiceOptions,
    ) -> Result<Voice, TtsError> {
        if !onnx.is_file() {
            return Err(TtsError::ModelMissing(onnx.to_path_buf()));
        }
        let config_text = std::fs::read_to_string(config).map_err(|e| TtsError::io(config, e))?;
        let raw: RawConfig = serde_json::from_str(&config_text).map_err(|e| TtsError::Config {
            path: config.to_path_buf(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        let mut id_map = HashMap::new();
        for (key, ids) in raw.phoneme_id_map {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    id_map.insert(c, ids);
                }
                _ => {
                    return Err(TtsError::Config {
                        path: config.to_path_buf(),
                        message: format!("phoneme_id_map key {key:?} is not one character"),
                    });
                }
            }
        }
        for required in ['^', '$', '_'] {
            if !id_map.contains_key(&required) {
                return Err(TtsError::Config {
                    path: config.to_path_buf(),
                    message: format!("phoneme_id_map lacks {required:?}"),
                });
            }
        }
        phonemes::use_espeak_data(espeak_data_dir)?;
        let params = options.params.unwrap_or(SynthesisParams {
            noise_scale: raw.inference.noise_scale,
            length_scale: raw.inference.length_scale,
            noise_w: raw.inference.noise_w,
            sentence_pause: 0.2,
        });
        let ort_err = |e: &dyn std::fmt::Display| TtsError::Onnx {
            path: onnx.to_path_buf(),
            message: e.to_string(),
        };
        let session = Session::builder(env)
            .map_err(|e| ort_err(&e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| ort_err(&e))?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(|e| ort_err(&e))?
            .commit_from_file(onnx)
            .map_err(|e| ort_err(&e))?;
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input", "input_lengths", "scales"] {
            if !input_names.contains(&required) {
                return Err(TtsError::Onnx {
                    path: onnx.to_path_buf(),
                    message: format!("graph has no `{required}` input (inputs: {input_names:?})"),
                });
            }
        }
        let has_speaker_input = input_names.contains(&"sid") && raw.num_speakers > 1;
        // The voice id for cache keys: file name plus a digest of the graph size and config, so a
        // replaced model never serves another voice's cached audio.
        let size = std::fs::metadata(onnx)
            .map_err(|e| TtsError::io(onnx, e))?
            .len();
        let mut h = Sha256::new();
        h.update(size.to_le_bytes());
        h.update(config_text.as_bytes());
        let stem = onnx
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let id = format!("{stem}-{}", &hex::encode(h.finalize())[..16]);
        let voice = Voice {
            session: Mutex::new(session),
            id,
            espeak_voice: raw.espeak.voice,
            sample_rate: raw.audio.sample_rate,
            params,
            id_map,
            has_speaker_input,
            options,
        };
        // ONNX Runtime allocates and plans on the first run; pay that here, not on the first call.
        voice.render_chunk(&[Clause {
            text: "Hello.".into(),
            punct: Some('.'),
        }])?;
        Ok(voice)
    }

    /// Identifies the model and config (for cache keys).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn params(&self) -> SynthesisParams {
        self.params
    }

    /// Speaks `text` (normalised first, see [`crate::normalize`]) at the voice's native rate.
    pub fn synthesize(&self, text: &str) -> Result<Audio, TtsError> {
        self.synthesize_normalized(&normalize(text))
    }

    /// Like [`Voice::synthesize`], at `rate`.
    pub fn synthesize_at(&self, text: &str, rate: OutputRate) -> Result<Audio, TtsError> {
        let audio = self.synthesize(text)?;
        audio.resample(rate.resolve(self.sample_rate))
    }

    /// Text that is already normalised, native rate.
    pub(crate) fn synthesize_normalized(&self, normalized: &str) -> Result<Audio, TtsError> {
        let mut out = Audio {
            samples: Vec::new(),
            sample_rate: self.sample_rate,
        };
        for chunk in plan_chunks(normalized, false) {
            out.append(&self.render(&chunk)?)?;
        }
        Ok(out)
    }

    /// Streams `text` chunk by chunk: each item is the audio of one sentence (the first sentence's
    /// first clause alone when it is long, see [`VoiceOptions::fast_first_chunk`]), at `rate`,
    /// including the pause after it. Rendering is lazy: the first item is ready after the first
    /// chunk's inference, before later sentences are rendered.
    pub fn synthesize_stream(&self, text: &str, rate: OutputRate) -> SpeechStream<'_> {
        SpeechStream {
            voice: self,
            chunks: plan_chunks(&normalize(text), self.options.fast_first_chunk).into_iter(),
            rate: rate.resolve(self.sample_rate),
        }
    }

    fn render(&self, chunk: &Chunk) -> Result<Audio, TtsError> {
        let mut audio = self.render_chunk(&chunk.clauses)?;
        if chunk.pause_after && !audio.samples.is_empty() {
            let pause = Audio::silence(f64::from(self.params.sentence_pause), self.sample_rate);
            audio.append(&pause)?;
        }
        Ok(audio)
    }

    /// One inference over the phonemes of `clauses`.
    fn render_chunk(&self, clauses: &[Clause]) -> Result<Audio, TtsError> {
        let mut phonemes = String::new();
        for clause in clauses {
            phonemes.push_str(&phonemes::clause_phonemes(clause, &self.espeak_voice)?);
        }
        let (ids, skipped) = phonemes::phoneme_ids(phonemes.trim_end(), &self.id_map);
        if skipped > 0 {
            tracing::debug!(skipped, %phonemes, "phonemes missing from the voice's map");
        }
        let speakable = phonemes
            .chars()
            .any(|c| !c.is_whitespace() && !matches!(c, '.' | ',' | '!' | '?' | ';' | ':'));
        if !speakable {
            // Nothing speakable (e.g. only symbols): no inference, no sound.
            return Ok(Audio {
                samples: Vec::new(),
                sample_rate: self.sample_rate,
            });
        }
        let n = ids.len();
        let p = self.params;
        let onnx_err = |e: ort::Error| TtsError::Inference(e.to_string());
        let input = Tensor::from_array(([1usize, n], ids)).map_err(onnx_err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(onnx_err)?;
        let scales = Tensor::from_array(([3usize], vec![p.noise_scale, p.length_scale, p.noise_w]))
            .map_err(onnx_err)?;
        let mut session = self.session.lock().map_err(|_| TtsError::Poisoned)?;
        let outputs = if self.has_speaker_input {
            let sid = Tensor::from_array(([1usize], vec![0i64])).map_err(onnx_err)?;
            session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid
            ])
        } else {
            session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales
            ])
        }
        .map_err(onnx_err)?;
        let (_, samples) = outputs[0].try_extract_tensor::<f32>().map_err(onnx_err)?;
        Ok(Audio {
            samples: samples.iter().map(|s| s.clamp(-1.0, 1.0)).collect(),
            sample_rate: self.sample_rate,
        })
    }
}

/// Audio of a text, chunk by chunk; see [`Voice::synthesize_stream`].
pub struct SpeechStream<'v> {
    voice: &'v Voice,
    chunks: std::vec::IntoIter<Chunk>,
    rate: u32,
}

impl Iterator for SpeechStream<'_> {
    type Item = Result<Audio, TtsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = self.chunks.next()?;
        Some(
            self.voice
                .render(&chunk)
                .and_then(|audio| audio.resample(self.rate)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .map(|c| {
                c.clauses
                    .iter()
                    .map(|cl| {
                        format!(
                            "{}{}",
                            cl.text,
                            cl.punct.map(String::from).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn sentences_are_chunks_without_fast_first() {
        let chunks = plan_chunks(
            "Hello, this is your bank calling today. Is now a good time?",
            false,
        );
        assert_eq!(
            texts(&chunks),
            [
                "Hello, this is your bank calling today.",
                "Is now a good time?"
            ]
        );
        assert!(chunks.iter().all(|c| c.pause_after));
    }

    #[test]
    fn long_first_sentence_splits_at_its_first_clause() {
        let chunks = plan_chunks(
            "Hello, this is your bank calling today. Is now a good time?",
            true,
        );
        assert_eq!(
            texts(&chunks),
            [
                "Hello,",
                "this is your bank calling today.",
                "Is now a good time?"
            ]
        );
        assert_eq!(
            chunks.iter().map(|c| c.pause_after).collect::<Vec<_>>(),
            [false, true, true]
        );
    }

    #[test]
    fn long_first_clause_splits_before_a_phrase_start() {
        let chunks = plan_chunks(
            "We are calling about the payment on your credit card account today.",
            true,
        );
        assert_eq!(
            texts(&chunks),
            [
                "We are calling",
                "about the payment on your credit card account today."
            ]
        );
    }

    #[test]
    fn short_first_sentence_is_not_split() {
        let chunks = plan_chunks("Good morning, Anna. Your card is ready.", true);
        assert_eq!(
            texts(&chunks),
            ["Good morning, Anna.", "Your card is ready."]
        );
    }
}
