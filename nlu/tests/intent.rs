//! Intent accuracy on real data with the real model. Banking77: our fixed 75/10/15 split of
//! `banking77/train.csv` (options were tuned on the validation part only; these tests train on
//! train+validation and score the test part). CLINC150: a per-intent subset to keep the run short
//! (the bench runs the full protocol). Embeddings are computed once per test run.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use callbot_models::{ModelsDir, onnxruntime_environment};
use ndarray::Array2;
use nlu::data::{
    Example, accuracy_and_macro_f1, banking77_split, load_clinc150, sample_shots, stratified_split,
};
use nlu::intent::{calibrate_oos_threshold, oos_metrics};
use nlu::{Context, Embedder, EmbedderOptions, IntentClassifier, IntentModel, Nlu, TrainOptions};

// Floors sit a little below the figures measured on this split, so a regression fails.
const FULL_FLOOR: f64 = 0.905;
const SHOT_FLOOR: f64 = 0.81;
const CLINC_ACC_FLOOR: f32 = 0.87;
const CLINC_RECALL_FLOOR: f32 = 0.85;

fn data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
}

fn embedder() -> Arc<Embedder> {
    static E: OnceLock<Arc<Embedder>> = OnceLock::new();
    E.get_or_init(|| {
        let dir = ModelsDir::resolve(None);
        let env = onnxruntime_environment(&dir).unwrap();
        let opts = EmbedderOptions {
            intra_threads: 2,
            ..Default::default()
        };
        Arc::new(Embedder::new(&env, &dir.minilm_onnx(), &dir.minilm_tokenizer(), opts).unwrap())
    })
    .clone()
}

/// Embeds each distinct text once per test process. The lock is held while embedding so that
/// tests running in parallel never embed the same sentences twice.
fn embed(rows: &[Example]) -> Array2<f32> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<f32>>>> = OnceLock::new();
    let mut c = CACHE.get_or_init(Default::default).lock().unwrap();
    let mut missing: Vec<&str> = rows
        .iter()
        .map(|r| r.text.as_str())
        .filter(|t| !c.contains_key(*t))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let e = embedder().embed_batch(&missing).unwrap();
        for (t, row) in missing.iter().zip(e.rows()) {
            c.insert((*t).to_string(), row.to_vec());
        }
    }
    let mut out = Array2::zeros((rows.len(), 384));
    for (i, r) in rows.iter().enumerate() {
        out.row_mut(i)
            .assign(&ndarray::ArrayView1::from(&c[&r.text]));
    }
    out
}

fn train(rows: &[Example], opts: TrainOptions) -> IntentModel {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let intents: Vec<&str> = rows.iter().map(|r| r.intent.as_str()).collect();
    IntentModel::train(&texts, &intents, embed(rows).view(), opts).unwrap()
}

fn accuracy(model: &IntentModel, test: &[Example]) -> (f64, f64) {
    let emb = embed(test);
    let pred: Vec<String> = test
        .iter()
        .enumerate()
        .map(|(i, r)| model.classify(&r.text, emb.row(i)).ranking[0].0.clone())
        .collect();
    let gold: Vec<&str> = test.iter().map(|r| r.intent.as_str()).collect();
    let p: Vec<&str> = pred.iter().map(String::as_str).collect();
    accuracy_and_macro_f1(&gold, &p)
}

fn banking() -> (Vec<Example>, Vec<Example>) {
    let (train, val, test) = banking77_split(&data().join("banking77/train.csv")).unwrap();
    (train.into_iter().chain(val).collect(), test)
}

#[test]
fn banking77_full_train() {
    let (train_rows, test) = banking();
    let model = train(&train_rows, TrainOptions::default());
    let (acc, f1) = accuracy(&model, &test);
    eprintln!(
        "banking77 full: accuracy {:.2}% macro_f1 {:.2}%",
        acc * 100.0,
        f1 * 100.0
    );
    // Measured 91.99% (macro-F1 92.20%) on this split; the target of 93.5% is not reached.
    assert!(acc >= FULL_FLOOR, "accuracy {acc}");
}

#[test]
fn banking77_ten_shot() {
    let (train_rows, test) = banking();
    let shots = sample_shots(&train_rows, 10, 10);
    assert_eq!(shots.len(), 770);
    let model = train(&shots, TrainOptions::few_shot());
    let (acc, _) = accuracy(&model, &test);
    eprintln!("banking77 10-shot: accuracy {:.2}%", acc * 100.0);
    // Measured 82.56% on this split; the target of 86% is not reached.
    assert!(acc >= SHOT_FLOOR, "accuracy {acc}");
}

#[test]
fn clinc150_out_of_scope() {
    let c = load_clinc150(&data().join("clinc150/train_val.json")).unwrap();
    // Subset: 30 training and 10 calibration utterances per intent from `train`; report on
    // 10 per intent of `val` plus all of `oos_val` (never used to choose anything).
    let parts = stratified_split(&c.train, &[0.3, 0.1, 0.6], 150);
    let (fit, cal) = (&parts[0], &parts[1]);
    let report = &stratified_split(&c.val, &[0.5, 0.5], 150)[0];
    let mut model = train(fit, TrainOptions::default());
    let scored = |model: &IntentModel, rows: &[Example], oos: bool| {
        let emb = embed(rows);
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    model.classify(&r.text, emb.row(i)),
                    (!oos).then(|| r.intent.clone()),
                )
            })
            .collect::<Vec<_>>()
    };
    let cal_res: Vec<_> = scored(&model, cal, false)
        .into_iter()
        .chain(scored(&model, &c.oos_train, true))
        .collect();
    let cal_ref: Vec<_> = cal_res
        .iter()
        .map(|(r, g)| (r.clone(), g.as_deref()))
        .collect();
    let (t, _, _) = calibrate_oos_threshold(&cal_ref, 0.93);
    model.set_oos_threshold(Some(t));
    let rep: Vec<_> = scored(&model, report, false)
        .into_iter()
        .chain(scored(&model, &c.oos_val, true))
        .collect();
    let rep_ref: Vec<_> = rep.iter().map(|(r, g)| (r.clone(), g.as_deref())).collect();
    let (acc, recall) = oos_metrics(&rep_ref, t);
    eprintln!(
        "clinc150 subset: threshold {t:.3}, in-scope accuracy {:.2}%, oos recall {:.2}%",
        acc * 100.0,
        recall * 100.0
    );
    // Measured on this subset: 89.00% in-scope accuracy at 93.00% OOS recall (threshold 0.470,
    // calibrated for 93% on the calibration part). The bench runs the full-data protocol.
    assert!(
        acc >= CLINC_ACC_FLOOR && recall >= CLINC_RECALL_FLOOR,
        "{acc} {recall}"
    );
}

#[test]
fn flow_sized_intents_through_the_facade() {
    let examples = [
        ("yes I'll pay today", "will_pay"),
        ("I can pay now", "will_pay"),
        ("sure, I'll make the payment right away", "will_pay"),
        ("I'll settle it this afternoon", "will_pay"),
        ("okay I will pay the full amount today", "will_pay"),
        ("can I pay next Friday", "pay_later"),
        ("I get paid next week", "pay_later"),
        ("I need a few more days", "pay_later"),
        ("can it wait until the end of the month", "pay_later"),
        ("I can't pay until my salary comes in", "pay_later"),
        ("I already paid that", "dispute"),
        ("that charge is not mine", "dispute"),
        ("I never made that purchase", "dispute"),
        ("this amount is wrong", "dispute"),
        ("I paid it last week, check again", "dispute"),
    ];
    let t = std::time::Instant::now();
    let clf = IntentClassifier::train(embedder(), &examples, TrainOptions::default()).unwrap();
    eprintln!("15 examples trained in {:?}", t.elapsed());
    let nlu = Nlu::new(Some(clf));
    let now = nlu::chrono::NaiveDate::from_ymd_opt(2025, 3, 12)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let cases = [
        ("yeah I can pay it right now", "will_pay"),
        ("could I pay on the 28th instead", "pay_later"),
        ("I don't recognise this charge", "dispute"),
        (
            "my paycheck comes next Thursday, can I pay then",
            "pay_later",
        ),
        ("that charge is wrong, I paid it a week ago", "dispute"),
    ];
    for (text, want) in cases {
        let u = nlu.parse(text, &Context::at(now)).unwrap();
        assert_eq!(
            u.intent.as_deref(),
            Some(want),
            "{text:?}: {:?}",
            u.intent_detail.map(|d| d.ranking)
        );
    }
    let u = nlu
        .parse("could I pay on the 28th instead", &Context::at(now))
        .unwrap();
    assert_eq!(
        u.entities.when.unwrap().date,
        nlu::chrono::NaiveDate::from_ymd_opt(2025, 3, 28)
    );
}
