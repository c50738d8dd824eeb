//! A content-addressed cache of rendered phrases.
//!
//! Flows say the same static sentences on every call ("This call is recorded."); rendering them
//! once and replaying the samples takes synthesis off the call's critical path. The key is the
//! SHA-256 of everything that changes the samples — normalised text, voice id, synthesis
//! parameters, output rate — so a changed voice or setting can never replay stale audio.
//! Memory holds the most recently used phrases up to a byte budget; an optional directory keeps
//! them across restarts (32-bit float WAV, written to a temporary name and renamed into place).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use crate::audio::{Audio, OutputRate};
use crate::voice::Voice;
use crate::{TtsError, normalize};

/// SHA-256 of (normalised text, voice id, voice parameters, output rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhraseKey([u8; 32]);

impl PhraseKey {
    pub fn new(voice: &Voice, text: &str, rate: OutputRate) -> PhraseKey {
        Self::of_normalized(voice, &normalize(text), rate)
    }

    fn of_normalized(voice: &Voice, normalized: &str, rate: OutputRate) -> PhraseKey {
        let p = voice.params();
        let mut h = Sha256::new();
        // Length-prefixed fields, so ("ab", "c") and ("a", "bc") differ.
        for field in [normalized.as_bytes(), voice.id().as_bytes()] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field);
        }
        for v in [p.noise_scale, p.length_scale, p.noise_w, p.sentence_pause] {
            h.update(v.to_bits().to_le_bytes());
        }
        h.update(rate.resolve(voice.sample_rate()).to_le_bytes());
        PhraseKey(h.finalize().into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Hit and miss counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub misses: u64,
}

struct Entry {
    audio: Arc<Audio>,
    last_used: u64,
}

#[derive(Default)]
struct Memory {
    entries: HashMap<PhraseKey, Entry>,
    clock: u64,
    bytes: usize,
}

/// Rendered phrases by [`PhraseKey`]; share it between calls (it is `Sync`).
pub struct PhraseCache {
    memory: Mutex<Memory>,
    max_bytes: usize,
    dir: Option<PathBuf>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    temp_counter: AtomicU64,
    /// Phrases being rendered now: a second caller waits for the first instead of rendering
    /// the same phrase again (many calls of a campaign start with the same words at once).
    rendering: Mutex<HashSet<PhraseKey>>,
    rendered: Condvar,
}

impl PhraseCache {
    /// A memory-only cache holding up to `max_bytes` of samples.
    pub fn in_memory(max_bytes: usize) -> PhraseCache {
        PhraseCache {
            memory: Mutex::new(Memory::default()),
            max_bytes,
            dir: None,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            temp_counter: AtomicU64::new(0),
            rendering: Mutex::new(HashSet::new()),
            rendered: Condvar::new(),
        }
    }

    /// A cache that also keeps every phrase in `dir` (created if missing).
    pub fn with_dir(dir: &Path, max_bytes: usize) -> Result<PhraseCache, TtsError> {
        std::fs::create_dir_all(dir).map_err(|e| TtsError::io(dir, e))?;
        Ok(PhraseCache {
            dir: Some(dir.to_path_buf()),
            ..PhraseCache::in_memory(max_bytes)
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The cached audio of `text`, if any (memory, then disk); never renders.
    pub fn get(&self, voice: &Voice, text: &str, rate: OutputRate) -> Option<Arc<Audio>> {
        let key = PhraseKey::of_normalized(voice, &normalize(text), rate);
        if let Ok(Some(audio)) = self.memory_get(key) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Some(audio);
        }
        let audio = Arc::new(self.disk_get(key)?);
        self.disk_hits.fetch_add(1, Ordering::Relaxed);
        let _ = self.memory_put(key, audio.clone());
        Some(audio)
    }

    /// Stores audio rendered elsewhere (e.g. streamed sentence by sentence) for `text`.
    pub fn insert(
        &self,
        voice: &Voice,
        text: &str,
        rate: OutputRate,
        audio: Audio,
    ) -> Result<Arc<Audio>, TtsError> {
        let key = PhraseKey::of_normalized(voice, &normalize(text), rate);
        let audio = Arc::new(audio);
        self.disk_put(key, &audio)?;
        self.memory_put(key, audio.clone())?;
        Ok(audio)
    }

    /// The audio of `text`, rendered by `voice` at `rate` unless already cached.
    pub fn get_or_render(
        &self,
        voice: &Voice,
        text: &str,
        rate: OutputRate,
    ) -> Result<Arc<Audio>, TtsError> {
        let normalized = normalize(text);
        let key = PhraseKey::of_normalized(voice, &normalized, rate);
        if let Some(audio) = self.memory_get(key)? {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(audio);
        }
        if let Some(audio) = self.disk_get(key) {
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
            let audio = Arc::new(audio);
            self.memory_put(key, audio.clone())?;
            return Ok(audio);
        }
        // One renderer per phrase: wait for a render of the same phrase in progress, then
        // take its result from memory.
        {
            let mut rendering = self.rendering.lock().map_err(|_| TtsError::Poisoned)?;
            while rendering.contains(&key) {
                rendering = self
                    .rendered
                    .wait(rendering)
                    .map_err(|_| TtsError::Poisoned)?;
            }
            if let Some(audio) = self.memory_get(key)? {
                self.memory_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(audio);
            }
            rendering.insert(key);
        }
        let result = self.render_new(voice, &normalized, key, rate);
        if let Ok(mut rendering) = self.rendering.lock() {
            rendering.remove(&key);
        }
        self.rendered.notify_all();
        result
    }

    fn render_new(
        &self,
        voice: &Voice,
        normalized: &str,
        key: PhraseKey,
        rate: OutputRate,
    ) -> Result<Arc<Audio>, TtsError> {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let audio = voice
            .synthesize_normalized(normalized)?
            .resample(rate.resolve(voice.sample_rate()))?;
        let audio = Arc::new(audio);
        self.disk_put(key, &audio)?;
        self.memory_put(key, audio.clone())?;
        Ok(audio)
    }

    /// Renders the static phrases of a flow ahead of calls. Returns how many were rendered now
    /// (the others were cached already).
    pub fn prerender<'a>(
        &self,
        voice: &Voice,
        phrases: impl IntoIterator<Item = &'a str>,
        rate: OutputRate,
    ) -> Result<usize, TtsError> {
        let before = self.misses.load(Ordering::Relaxed);
        for phrase in phrases {
            self.get_or_render(voice, phrase, rate)?;
        }
        Ok((self.misses.load(Ordering::Relaxed) - before) as usize)
    }

    fn memory_get(&self, key: PhraseKey) -> Result<Option<Arc<Audio>>, TtsError> {
        let mut m = self.memory.lock().map_err(|_| TtsError::Poisoned)?;
        m.clock += 1;
        let now = m.clock;
        Ok(m.entries.get_mut(&key).map(|e| {
            e.last_used = now;
            e.audio.clone()
        }))
    }

    fn memory_put(&self, key: PhraseKey, audio: Arc<Audio>) -> Result<(), TtsError> {
        let size = audio.samples.len() * size_of::<f32>();
        if size > self.max_bytes {
            return Ok(());
        }
        let mut m = self.memory.lock().map_err(|_| TtsError::Poisoned)?;
        m.clock += 1;
        let last_used = m.clock;
        if let Some(old) = m.entries.insert(key, Entry { audio, last_used }) {
            m.bytes -= old.audio.samples.len() * size_of::<f32>();
        }
        m.bytes += size;
        while m.bytes > self.max_bytes {
            // Least recently used first; a linear scan is fine for a flow's few hundred phrases.
            let Some(oldest) = m
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = m.entries.remove(&oldest) {
                m.bytes -= e.audio.samples.len() * size_of::<f32>();
            }
        }
        Ok(())
    }

    fn disk_path(&self, key: PhraseKey) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}.wav", key.hex())))
    }

    fn disk_get(&self, key: PhraseKey) -> Option<Audio> {
        let path = self.disk_path(key)?;
        if !path.is_file() {
            return None;
        }
        match Audio::read_wav(&path) {
            Ok(audio) => Some(audio),
            Err(e) => {
                // A damaged entry is re-rendered and overwritten, not fatal.
                tracing::warn!(path = %path.display(), error = %e, "unreadable cached phrase");
                None
            }
        }
    }

    fn disk_put(&self, key: PhraseKey, audio: &Audio) -> Result<(), TtsError> {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.disk_path(key)) else {
            return Ok(());
        };
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{}.{}-{n}.tmp", key.hex(), std::process::id()));
        audio.write_wav_f32(&temp)?;
        std::fs::rename(&temp, &path).map_err(|e| TtsError::io(&path, e))
    }
}
