//! The option sweep behind `TrainOptions`' defaults, on VALIDATION data only:
//! Banking77 (our 75/10/15 split: fit on train, score validation) and CLINC150 (fit on 80% of
//! `train`, score the other 20% plus `oos_train`). Embeddings are cached in $TMPDIR between runs
//! of this tool only.
//!
//! `cargo run --release -p nlu --example tune -- banking|shots|clinc`; `TUNE_MODEL=DIR` scores
//! another encoder (DIR/model.onnx with the same outputs, DIR/tokenizer.json; see mpnet_probe.py).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use callbot_models::{ModelsDir, onnxruntime_environment};
use ndarray::{Array2, Axis};
use nlu::data::{
    Example, accuracy_and_macro_f1, banking77_split, load_clinc150, sample_shots, stratified_split,
};
use nlu::intent::{calibrate_oos_threshold, oos_metrics};
use nlu::{Embedder, EmbedderOptions, FeatureSpec, IntentModel, TrainOptions};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// All frozen views (see `Embedder::views_batch`: sentence, 6 layer means, max-pool), cached;
/// composed into features by `FEAT` (e.g. `FEAT=4,3` or `FEAT=5,max`; empty = sentence only,
/// unset = the default `FeatureSpec`).
fn embed_cached(name: &str, rows: &[Example]) -> Array2<f32> {
    let spec = match std::env::var("FEAT") {
        Err(_) => FeatureSpec::default(),
        Ok(v) => FeatureSpec {
            layers: v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
            max_pool: v.contains("max"),
        },
    };
    eprintln!("features {spec:?}");
    let dir = ModelsDir::resolve(None);
    // TUNE_MODEL: a folder with model.onnx and tokenizer.json to try instead of MiniLM.
    let (model, tokenizer, tag) = match std::env::var("TUNE_MODEL") {
        Ok(m) => {
            let m = PathBuf::from(m);
            let tag = m.to_string_lossy().replace('/', "_");
            (m.join("model.onnx"), m.join("tokenizer.json"), tag)
        }
        Err(_) => (dir.minilm_onnx(), dir.minilm_tokenizer(), "minilm".into()),
    };
    let env = onnxruntime_environment(&dir).unwrap();
    let e = Embedder::new(
        &env,
        &model,
        &tokenizer,
        EmbedderOptions {
            intra_threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let (dim, layers) = (e.dim(), e.layer_count());
    let path = std::env::temp_dir().join(format!("nlu-tune-views-{tag}-{name}-{}.f32", rows.len()));
    if let Ok(bytes) = std::fs::read(&path) {
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let views = Array2::from_shape_vec((rows.len(), e.views_dim()), v).unwrap();
        return spec.compose(views.view(), dim, layers);
    }
    let t = std::time::Instant::now();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let m = e.views_batch(&texts).unwrap();
    eprintln!(
        "embedded {} in {:.1}s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    let bytes: Vec<u8> = m.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, bytes).unwrap();
    spec.compose(m.view(), dim, layers)
}

fn eval(
    train: &[Example],
    te: &Array2<f32>,
    test: &[Example],
    se: &Array2<f32>,
    o: &TrainOptions,
) -> (f64, f64, f64) {
    let t = std::time::Instant::now();
    let texts: Vec<&str> = train.iter().map(|r| r.text.as_str()).collect();
    let intents: Vec<&str> = train.iter().map(|r| r.intent.as_str()).collect();
    let m = IntentModel::train(&texts, &intents, te.view(), o.clone()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let pred: Vec<String> = test
        .iter()
        .enumerate()
        .map(|(i, r)| m.classify(&r.text, se.row(i)).ranking[0].0.clone())
        .collect();
    let gold: Vec<&str> = test.iter().map(|r| r.intent.as_str()).collect();
    let p: Vec<&str> = pred.iter().map(String::as_str).collect();
    let (a, f) = accuracy_and_macro_f1(&gold, &p);
    (a, f, secs)
}

fn rows_of(all: &Array2<f32>, idx: &[usize]) -> Array2<f32> {
    all.select(Axis(0), idx)
}

fn grid() -> Vec<(String, TrainOptions)> {
    let spec = std::env::var("GRID").unwrap_or_default();
    let mut out = vec![("default".to_string(), TrainOptions::default())];
    for item in spec.split(';').filter(|s| !s.is_empty()) {
        let mut o = TrainOptions::default();
        for kv in item.split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            let f: f32 = v.parse().unwrap();
            match k {
                "l2" => o.l2 = f,
                "tf" => o.tfidf_weight = f,
                "es" => o.embedding_scale = f,
                "knn" => o.knn_weight = f,
                "k" => o.knn_k = f as usize,
                "temp" => o.knn_temperature = f,
                "prior" => o.centroid_prior = f,
                "iter" => o.max_iter = f as usize,
                "oosw" => o.oos_similarity_weight = f,
                _ => panic!("unknown {k}"),
            }
        }
        out.push((item.to_string(), o));
    }
    out
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "banking".into());
    let data = PathBuf::from(DATA);
    if mode == "banking" || mode == "shots" {
        let (train, val, _test) = banking77_split(&data.join("banking77/train.csv")).unwrap();
        let all: Vec<Example> = train.iter().chain(&val).cloned().collect();
        let emb = embed_cached("banking-trainval", &all);
        let (te, ve) = (
            emb.slice(ndarray::s![..train.len(), ..]).to_owned(),
            emb.slice(ndarray::s![train.len().., ..]).to_owned(),
        );
        let (tr, trm): (Vec<Example>, Array2<f32>) = if mode == "shots" {
            let shots = sample_shots(&train, 10, 10);
            let idx: Vec<usize> = shots
                .iter()
                .map(|s| train.iter().position(|t| t == s).unwrap())
                .collect();
            (shots, rows_of(&te, &idx))
        } else {
            (train.clone(), te)
        };
        for (name, o) in grid() {
            let (a, f, s) = eval(&tr, &trm, &val, &ve, &o);
            println!(
                "{mode} {name}: val accuracy {:.2}% macro_f1 {:.2}% train {s:.1}s",
                a * 100.0,
                f * 100.0
            );
        }
    } else {
        let c = load_clinc150(&data.join("clinc150/train_val.json")).unwrap();
        let emb = embed_cached(
            "clinc-train-oostrain",
            &c.train
                .iter()
                .chain(&c.oos_train)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let indexed: Vec<Example> = c
            .train
            .iter()
            .enumerate()
            .map(|(i, r)| Example {
                text: format!("{i}\t{}", r.text),
                intent: r.intent.clone(),
            })
            .collect();
        let parts = stratified_split(&indexed, &[0.8, 0.2], 150);
        let idx = |p: &[Example]| -> Vec<usize> {
            p.iter()
                .map(|r| r.text.split('\t').next().unwrap().parse().unwrap())
                .collect()
        };
        let strip = |p: &[Example]| -> Vec<Example> {
            p.iter()
                .map(|r| Example {
                    text: r.text.split_once('\t').unwrap().1.to_string(),
                    intent: r.intent.clone(),
                })
                .collect()
        };
        let (fit, cal) = (strip(&parts[0]), strip(&parts[1]));
        let (fe, ce) = (
            rows_of(&emb, &idx(&parts[0])),
            rows_of(&emb, &idx(&parts[1])),
        );
        let oe = emb.slice(ndarray::s![c.train.len().., ..]).to_owned();
        for (name, o) in grid() {
            let texts: Vec<&str> = fit.iter().map(|r| r.text.as_str()).collect();
            let intents: Vec<&str> = fit.iter().map(|r| r.intent.as_str()).collect();
            let m = IntentModel::train(&texts, &intents, fe.view(), o.clone()).unwrap();
            let mut res = Vec::new();
            for (i, r) in cal.iter().enumerate() {
                res.push((m.classify(&r.text, ce.row(i)), Some(r.intent.as_str())));
            }
            for (i, r) in c.oos_train.iter().enumerate() {
                res.push((m.classify(&r.text, oe.row(i)), None));
            }
            let (acc0, _) = oos_metrics(&res, f32::NEG_INFINITY);
            for target in [0.93f32, 0.94, 0.95] {
                let (t, a, r) = calibrate_oos_threshold(&res, target);
                println!(
                    "clinc {name}: no-reject acc {:.2}% | target {target}: t={t:.3} acc {:.2}% oos recall {:.2}%",
                    acc0 * 100.0,
                    a * 100.0,
                    r * 100.0
                );
            }
        }
    }
}
