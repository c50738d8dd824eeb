//! The phrase cache: identical audio on a hit, keys that follow text/voice/rate, disk persistence.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use tts::{CacheStats, OutputRate, PhraseCache, PhraseKey};

const MB: usize = 1 << 20;

#[test]
fn second_request_is_a_memory_hit_with_identical_audio() {
    let voice = common::voice();
    let cache = PhraseCache::in_memory(64 * MB);
    let first = cache
        .get_or_render(voice, "This call is recorded.", OutputRate::TELEPHONY)
        .unwrap();
    let second = cache
        .get_or_render(voice, "This call is recorded.", OutputRate::TELEPHONY)
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(first.sample_rate, 8_000);
    assert!(first.rms() > 0.01);
    assert_eq!(
        cache.stats(),
        CacheStats {
            memory_hits: 1,
            disk_hits: 0,
            misses: 1
        }
    );
}

#[test]
fn keys_follow_normalised_text_and_rate() {
    let voice = common::voice();
    let k = |t: &str, r| PhraseKey::new(voice, t, r);
    assert_eq!(
        k("Pay $5 today.", OutputRate::Native),
        k("Pay five dollars today.", OutputRate::Native)
    );
    assert_ne!(
        k("Pay $5 today.", OutputRate::Native),
        k("Pay $6 today.", OutputRate::Native)
    );
    assert_ne!(
        k("Pay $5 today.", OutputRate::Native),
        k("Pay $5 today.", OutputRate::TELEPHONY)
    );
    // Native is resolved to the voice's rate: the same audio, the same key.
    assert_eq!(
        k("Hi.", OutputRate::Native),
        k("Hi.", OutputRate::Hz(22_050))
    );
    assert_eq!(k("Hi.", OutputRate::Native).hex().len(), 64);
}

#[test]
fn disk_entries_survive_a_new_cache_bit_for_bit() {
    let voice = common::voice();
    let dir = tempfile::tempdir().unwrap();
    let text = "Your call is important to us.";
    let rendered = {
        let cache = PhraseCache::with_dir(dir.path(), 64 * MB).unwrap();
        cache
            .get_or_render(voice, text, OutputRate::TELEPHONY)
            .unwrap()
    };
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let key = PhraseKey::new(voice, text, OutputRate::TELEPHONY);
    assert_eq!(
        files,
        [format!("{}.wav", key.hex())],
        "no temporary files left behind"
    );

    let fresh = PhraseCache::with_dir(dir.path(), 64 * MB).unwrap();
    let replayed = fresh
        .get_or_render(voice, text, OutputRate::TELEPHONY)
        .unwrap();
    assert_eq!(*replayed, *rendered);
    assert_eq!(fresh.stats().disk_hits, 1);
    assert_eq!(fresh.stats().misses, 0);
}

#[test]
fn damaged_disk_entry_is_rendered_again() {
    let voice = common::voice();
    let dir = tempfile::tempdir().unwrap();
    let text = "Goodbye.";
    let key = PhraseKey::new(voice, text, OutputRate::Native);
    std::fs::write(dir.path().join(format!("{}.wav", key.hex())), b"not a wav").unwrap();
    let cache = PhraseCache::with_dir(dir.path(), 64 * MB).unwrap();
    let audio = cache
        .get_or_render(voice, text, OutputRate::Native)
        .unwrap();
    assert!(audio.rms() > 0.01);
    assert_eq!(cache.stats().misses, 1);
    let again = PhraseCache::with_dir(dir.path(), 64 * MB).unwrap();
    again
        .get_or_render(voice, text, OutputRate::Native)
        .unwrap();
    assert_eq!(again.stats().disk_hits, 1);
}

#[test]
fn prerender_renders_each_phrase_once() {
    let voice = common::voice();
    let cache = PhraseCache::in_memory(64 * MB);
    let phrases = ["Hello.", "This call is recorded.", "Hello."];
    assert_eq!(
        cache
            .prerender(voice, phrases, OutputRate::TELEPHONY)
            .unwrap(),
        2
    );
    assert_eq!(
        cache
            .prerender(voice, phrases, OutputRate::TELEPHONY)
            .unwrap(),
        0
    );
}

#[test]
fn memory_budget_evicts_least_recently_used() {
    let voice = common::voice();
    // About 1.5 s of 8 kHz f32 audio: room for one short phrase, not two.
    let cache = PhraseCache::in_memory(48_000);
    let rate = OutputRate::TELEPHONY;
    cache.get_or_render(voice, "Yes.", rate).unwrap();
    cache.get_or_render(voice, "Thank you.", rate).unwrap();
    cache.get_or_render(voice, "Yes.", rate).unwrap();
    assert_eq!(cache.stats().misses, 3, "{:?}", cache.stats());
}

#[test]
fn concurrent_requests_for_one_phrase_render_it_once() {
    let voice = common::voice();
    let cache = PhraseCache::in_memory(64 * MB);
    let text = "Hello, this is Northwind Bank calling about your card.";
    let audios: Vec<Arc<tts::Audio>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    cache
                        .get_or_render(voice, text, OutputRate::TELEPHONY)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(cache.stats().misses, 1, "{:?}", cache.stats());
    assert_eq!(cache.stats().memory_hits, 5);
    assert!(audios.iter().all(|a| Arc::ptr_eq(a, &audios[0])));
}
