//! The MiniLM ONNX graph, run by ONNX Runtime through `ort`, against the NumPy reference forward
//! pass recorded by `minilm_to_onnx.py`. Fails (does not skip) when the model is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbot_models::ModelsDir;
use callbot_models::verify::{MinilmReference, check_minilm};

fn models() -> ModelsDir {
    let models = ModelsDir::resolve(None);
    for p in [
        models.minilm_onnx(),
        models.minilm_tokenizer(),
        reference(&models),
    ] {
        assert!(
            p.is_file(),
            "{} is missing: run `callbot models fetch`",
            p.display()
        );
    }
    models
}

fn reference(models: &ModelsDir) -> std::path::PathBuf {
    models.minilm_onnx().with_file_name("reference.json")
}

#[test]
fn ort_output_matches_numpy_reference_on_a_padded_batch() {
    let models = models();
    let env = callbot_models::onnxruntime_environment(&models).unwrap();
    let diff = check_minilm(&env, &models.minilm_onnx(), &reference(&models)).unwrap();
    assert!(diff <= 1e-4, "max |diff| {diff}");
    let r = MinilmReference::load(&reference(&models)).unwrap();
    let lengths: Vec<usize> = r.token_ids.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().min() < lengths.iter().max(),
        "the batch must need padding: {lengths:?}"
    );
}

#[test]
fn rust_tokenizers_give_the_reference_token_ids() {
    let models = models();
    let r = MinilmReference::load(&reference(&models)).unwrap();
    let tok = tokenizers::Tokenizer::from_file(models.minilm_tokenizer()).unwrap();
    for (sentence, want) in r.sentences.iter().zip(&r.token_ids) {
        let enc = tok.encode(sentence.as_str(), true).unwrap();
        let got: Vec<i64> = enc
            .get_ids()
            .iter()
            .zip(enc.get_attention_mask())
            .filter(|(_, m)| **m == 1)
            .map(|(id, _)| i64::from(*id))
            .collect();
        assert_eq!(&got, want, "{sentence:?}");
    }
}

/// Embeds sentences one at a time (no padding) through the graph.
fn embed(models: &ModelsDir, sentences: &[&str]) -> Vec<Vec<f32>> {
    let env = callbot_models::onnxruntime_environment(models).unwrap();
    let mut session = ort::session::Session::builder(&env)
        .unwrap()
        .commit_from_file(models.minilm_onnx())
        .unwrap();
    let tok = tokenizers::Tokenizer::from_file(models.minilm_tokenizer()).unwrap();
    sentences
        .iter()
        .map(|s| {
            let enc = tok.encode(*s, true).unwrap();
            let (ids, mask): (Vec<i64>, Vec<i64>) = enc
                .get_ids()
                .iter()
                .zip(enc.get_attention_mask())
                .filter(|(_, m)| **m == 1)
                .map(|(id, m)| (i64::from(*id), i64::from(*m)))
                .unzip();
            let n = ids.len();
            let ids = ort::value::Tensor::from_array(([1, n], ids.into_boxed_slice())).unwrap();
            let mask = ort::value::Tensor::from_array(([1, n], mask.into_boxed_slice())).unwrap();
            let out = session
                .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
                .unwrap();
            out["sentence_embedding"]
                .try_extract_tensor::<f32>()
                .unwrap()
                .1
                .to_vec()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let models = models();
    let e = embed(
        &models,
        &[
            "I already paid that bill.",
            "I have paid it already.",
            "What will the weather be like tomorrow?",
        ],
    );
    for v in &e {
        let norm = cosine(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "embedding norm {norm}");
    }
    let (para, unrelated) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]));
    assert!(
        para > unrelated + 0.3,
        "paraphrase {para}, unrelated {unrelated}"
    );
}
