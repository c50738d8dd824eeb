//! The real MiniLM graph: matches the reference forward pass and puts similar sentences closer.
#![allow(clippy::unwrap_used)]

use callbot_models::{ModelsDir, onnxruntime_environment};
use nlu::{Embedder, EmbedderOptions, cosine};

fn embedder() -> Embedder {
    let dir = ModelsDir::resolve(None);
    let env = onnxruntime_environment(&dir).unwrap();
    Embedder::new(
        &env,
        &dir.minilm_onnx(),
        &dir.minilm_tokenizer(),
        EmbedderOptions::default(),
    )
    .unwrap()
}

#[test]
fn matches_reference_embeddings() {
    let dir = ModelsDir::resolve(None);
    let text = std::fs::read_to_string(dir.root().join("minilm/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sentences: Vec<&str> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let e = embedder();
    assert_eq!(e.dim(), 384);
    let got = e.embed_batch(&sentences).unwrap();
    for (i, want) in reference["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let max_diff = got
            .row(i)
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_diff < 1e-3, "sentence {i}: max diff {max_diff}");
        let single = e.embed(sentences[i]).unwrap();
        assert!(
            cosine(&single, &want) > 0.9999,
            "batched and single embeddings agree"
        );
    }
}

#[test]
fn similar_sentences_are_closer() {
    let e = embedder();
    let triples = [
        (
            "I want to pay my bill",
            "how can I make a payment",
            "what's the weather like tomorrow",
        ),
        (
            "my card was stolen",
            "someone took my credit card",
            "I love pizza",
        ),
        (
            "please stop calling me",
            "don't call this number again",
            "my balance is fine",
        ),
        (
            "can I pay next week",
            "I'll be able to pay on Friday",
            "the train is late",
        ),
    ];
    for (a, b, c) in triples {
        let (va, vb, vc) = (
            e.embed(a).unwrap(),
            e.embed(b).unwrap(),
            e.embed(c).unwrap(),
        );
        let norm: f32 = va.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "unit length: {norm}");
        assert!(
            cosine(&va, &vb) > cosine(&va, &vc) + 0.2,
            "{a:?} ~ {b:?} vs {c:?}"
        );
    }
}

#[test]
fn missing_model_is_an_error() {
    let dir = ModelsDir::resolve(None);
    let env = onnxruntime_environment(&dir).unwrap();
    let err = Embedder::new(
        &env,
        std::path::Path::new("/nonexistent.onnx"),
        &dir.minilm_tokenizer(),
        EmbedderOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.onnx"), "{err}");
}
