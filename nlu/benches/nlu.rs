//! NLU latency, throughput and accuracy. `cargo bench -p nlu --bench nlu`
//! Prints `nlu.<figure> <value>` lines (machine-readable) after human-readable ones.
//! Set NLU_BENCH_QUICK=1 to skip the accuracy runs (they embed ~28k sentences).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use callbot_models::{ModelsDir, onnxruntime_environment};
use ndarray::Array2;
use nlu::data::{
    Example, accuracy_and_macro_f1, banking77_split, load_clinc150, sample_shots, stratified_split,
};
use nlu::intent::{calibrate_oos_threshold, oos_metrics};
use nlu::{
    Context, Embedder, EmbedderOptions, IntentClassifier, IntentModel, IntentResult, Nlu,
    TrainOptions,
};

const UTTERANCES: &[&str] = &[
    "yes I can pay two hundred dollars next Friday",
    "I already paid that last week",
    "can you call me back tomorrow afternoon",
    "this is ridiculous, I want to speak to a manager",
    "my card ending four two one seven was stolen",
    "no",
    "I get paid on the 15th, can I pay then?",
    "what is this call about",
];

fn embedder(threads: usize) -> Arc<Embedder> {
    let dir = ModelsDir::resolve(None);
    let env = onnxruntime_environment(&dir).unwrap();
    let opts = EmbedderOptions {
        intra_threads: threads,
        ..Default::default()
    };
    Arc::new(Embedder::new(&env, &dir.minilm_onnx(), &dir.minilm_tokenizer(), opts).unwrap())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency(threads: usize) {
    let examples = [
        ("yes I'll pay today", "will_pay"),
        ("I can pay now", "will_pay"),
        ("I'll make the payment right away", "will_pay"),
        ("can I pay next Friday", "pay_later"),
        ("I get paid next week", "pay_later"),
        ("I need a few more days", "pay_later"),
        ("I already paid that", "dispute"),
        ("that charge is not mine", "dispute"),
        ("this amount is wrong", "dispute"),
        ("who is this", "who_is_calling"),
        ("what company are you from", "who_is_calling"),
        ("why are you calling me", "who_is_calling"),
    ];
    let t = Instant::now();
    let clf =
        IntentClassifier::train(embedder(threads), &examples, TrainOptions::default()).unwrap();
    let train_ms = t.elapsed().as_secs_f64() * 1000.0;
    let nlu = Nlu::new(Some(clf));
    let ctx = Context::at(
        nlu::chrono::NaiveDate::from_ymd_opt(2025, 3, 12)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
    );
    for u in UTTERANCES {
        nlu.parse(u, &ctx).unwrap();
    }
    let mut ms: Vec<f64> = (0..25)
        .flat_map(|_| UTTERANCES.iter())
        .map(|u| {
            let t = Instant::now();
            nlu.parse(u, &ctx).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "parse with intents, {threads} thread(s): p50 {:.2} ms, p95 {:.2} ms over {} calls; flow of 12 examples trained in {train_ms:.1} ms",
        pct(&ms, 0.5),
        pct(&ms, 0.95),
        ms.len()
    );
    println!("nlu.parse_p50_ms.threads{threads} {:.3}", pct(&ms, 0.5));
    println!("nlu.parse_p95_ms.threads{threads} {:.3}", pct(&ms, 0.95));
    println!("nlu.flow_train_ms.threads{threads} {train_ms:.1}");
}

fn throughput(e: &Embedder, threads: usize) {
    let texts: Vec<&str> = (0..32).flat_map(|_| UTTERANCES.iter().copied()).collect();
    let t = Instant::now();
    e.embed_batch(&texts).unwrap();
    let per_s = texts.len() as f64 / t.elapsed().as_secs_f64();
    println!("batched embedding, {threads} thread(s): {per_s:.0} sentences/s");
    println!("nlu.embed_batch_per_s.threads{threads} {per_s:.1}");
}

fn embed(e: &Embedder, rows: &[Example]) -> Array2<f32> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    e.embed_batch(&texts).unwrap()
}

fn fit(rows: &[Example], emb: &Array2<f32>, opts: TrainOptions) -> IntentModel {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let intents: Vec<&str> = rows.iter().map(|r| r.intent.as_str()).collect();
    IntentModel::train(&texts, &intents, emb.view(), opts).unwrap()
}

fn score(m: &IntentModel, rows: &[Example], emb: &Array2<f32>) -> Vec<IntentResult> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| m.classify(&r.text, emb.row(i)))
        .collect()
}

fn accuracy(e: &Embedder) {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    let (train, val, test) = banking77_split(&data.join("banking77/train.csv")).unwrap();
    let train: Vec<Example> = train.into_iter().chain(val).collect();
    let (tr_e, te_e) = (embed(e, &train), embed(e, &test));
    let gold: Vec<&str> = test.iter().map(|r| r.intent.as_str()).collect();
    let eval = |m: &IntentModel| {
        let res = score(m, &test, &te_e);
        let pred: Vec<&str> = res.iter().map(|r| r.ranking[0].0.as_str()).collect();
        accuracy_and_macro_f1(&gold, &pred)
    };
    let t = Instant::now();
    let (acc, f1) = eval(&fit(&train, &tr_e, TrainOptions::default()));
    println!(
        "banking77 full train ({} examples, fit+score {:.1}s): accuracy {:.2}%, macro_f1 {:.2}%",
        train.len(),
        t.elapsed().as_secs_f64(),
        acc * 100.0,
        f1 * 100.0
    );
    println!(
        "nlu.banking77_full_accuracy {:.4}\nnlu.banking77_full_macro_f1 {:.4}",
        acc, f1
    );
    let shots = sample_shots(&train, 10, 10);
    let idx: Vec<usize> = shots
        .iter()
        .map(|s| train.iter().position(|t| t == s).unwrap())
        .collect();
    let (acc, f1) = eval(&fit(
        &shots,
        &tr_e.select(ndarray::Axis(0), &idx),
        TrainOptions::few_shot(),
    ));
    println!(
        "banking77 10-shot: accuracy {:.2}%, macro_f1 {:.2}%",
        acc * 100.0,
        f1 * 100.0
    );
    println!("nlu.banking77_10shot_accuracy {:.4}", acc);

    let c = load_clinc150(&data.join("clinc150/train_val.json")).unwrap();
    let (train_e, oos_train_e) = (embed(e, &c.train), embed(e, &c.oos_train));
    // Threshold: fit on 80% of train, calibrate on the other 20% + oos_train.
    let parts = stratified_split(&c.train, &[0.8, 0.2], 150);
    let pos = |p: &[Example]| -> Vec<usize> {
        let mut used = vec![false; c.train.len()];
        p.iter()
            .map(|r| {
                let i = (0..c.train.len())
                    .find(|&i| !used[i] && c.train[i] == *r)
                    .unwrap();
                used[i] = true;
                i
            })
            .collect()
    };
    let (fe, ce) = (
        train_e.select(ndarray::Axis(0), &pos(&parts[0])),
        train_e.select(ndarray::Axis(0), &pos(&parts[1])),
    );
    let m = fit(&parts[0], &fe, TrainOptions::default());
    let cal: Vec<(IntentResult, Option<&str>)> = score(&m, &parts[1], &ce)
        .into_iter()
        .zip(parts[1].iter().map(|r| Some(r.intent.as_str())))
        .chain(
            score(&m, &c.oos_train, &oos_train_e)
                .into_iter()
                .map(|r| (r, None)),
        )
        .collect();
    let (t, _, _) = calibrate_oos_threshold(&cal, 0.94);
    let full = fit(&c.train, &train_e, TrainOptions::default());
    let (ve, oe) = (embed(e, &c.val), embed(e, &c.oos_val));
    let rep: Vec<(IntentResult, Option<&str>)> = score(&full, &c.val, &ve)
        .into_iter()
        .zip(c.val.iter().map(|r| Some(r.intent.as_str())))
        .chain(score(&full, &c.oos_val, &oe).into_iter().map(|r| (r, None)))
        .collect();
    let (acc0, _) = oos_metrics(&rep, f32::NEG_INFINITY);
    let (acc, recall) = oos_metrics(&rep, t);
    println!(
        "clinc150 val+oos_val: no rejection {:.2}%; threshold {t:.3}: in-scope accuracy {:.2}%, oos recall {:.2}%",
        acc0 * 100.0,
        acc * 100.0,
        recall * 100.0
    );
    println!(
        "nlu.clinc150_inscope_accuracy {acc:.4}\nnlu.clinc150_oos_recall {recall:.4}\nnlu.clinc150_threshold {t:.4}"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for threads in [1, 2] {
        latency(threads);
        throughput(&embedder(threads), threads);
    }
    if std::env::var_os("NLU_BENCH_QUICK").is_none() {
        accuracy(&embedder(2));
    }
}
