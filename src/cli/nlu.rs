//! `callbot nlu eval|parse`: intent accuracy on labelled CSVs, and one utterance understood as JSON.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use callbot_models::{ModelsDir, onnxruntime_environment};
use clap::Subcommand;
use nlu::data::{Example, accuracy_and_macro_f1, load_labelled_csv, sample_shots};
use nlu::{Context, Embedder, EmbedderOptions, IntentClassifier, IntentModel, Nlu, TrainOptions};

#[derive(Subcommand)]
pub enum NluCommand {
    /// Train intents on one CSV (columns text,category) and print accuracy and macro-F1 on another.
    Eval {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: PathBuf,
        /// Keep only N examples per intent of the training CSV (few-shot), chosen with --seed.
        #[arg(long)]
        shots: Option<usize>,
        #[arg(long, default_value_t = 10)]
        seed: u64,
        /// ONNX Runtime intra-op threads for the embedder.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Print what one utterance means as JSON: entities, sentiment and, with --intents, the intent.
    Parse {
        text: String,
        /// Example utterances per intent (CSV columns text,category).
        #[arg(long)]
        intents: Option<PathBuf>,
        /// Reference time for dates, `YYYY-MM-DDTHH:MM:SS` (default: now, local time).
        #[arg(long)]
        now: Option<String>,
        /// An option the caller may be choosing from (repeatable).
        #[arg(long = "choice")]
        choices: Vec<String>,
    },
}

fn embedder(models: &ModelsDir, threads: usize) -> anyhow::Result<Arc<Embedder>> {
    let env = onnxruntime_environment(models)?;
    let opts = EmbedderOptions {
        intra_threads: threads,
        ..Default::default()
    };
    Ok(Arc::new(Embedder::new(
        &env,
        &models.minilm_onnx(),
        &models.minilm_tokenizer(),
        opts,
    )?))
}

fn load(path: &Path) -> anyhow::Result<Vec<Example>> {
    load_labelled_csv(path).with_context(|| format!("reading {}", path.display()))
}

pub fn run(cmd: NluCommand, models: &ModelsDir) -> anyhow::Result<()> {
    match cmd {
        NluCommand::Eval {
            train,
            test,
            shots,
            seed,
            threads,
        } => {
            let mut train = load(&train)?;
            let test = load(&test)?;
            if let Some(n) = shots {
                train = sample_shots(&train, n, seed);
            }
            let e = embedder(models, threads)?;
            let t = Instant::now();
            let texts: Vec<&str> = train.iter().map(|r| r.text.as_str()).collect();
            let intents: Vec<&str> = train.iter().map(|r| r.intent.as_str()).collect();
            let train_emb = e.features(&texts)?;
            let embed_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let distinct: std::collections::HashSet<&str> = intents.iter().copied().collect();
            let options = TrainOptions::for_data(texts.len(), distinct.len());
            let model = IntentModel::train(&texts, &intents, train_emb.view(), options)?;
            let fit_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let test_texts: Vec<&str> = test.iter().map(|r| r.text.as_str()).collect();
            let test_emb = e.features(&test_texts)?;
            let predicted: Vec<String> = test_texts
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    model
                        .classify(text, test_emb.row(i))
                        .ranking
                        .first()
                        .map(|r| r.0.clone())
                        .unwrap_or_default()
                })
                .collect();
            let test_s = t.elapsed().as_secs_f64();
            let gold: Vec<&str> = test.iter().map(|r| r.intent.as_str()).collect();
            let pred: Vec<&str> = predicted.iter().map(String::as_str).collect();
            let (acc, f1) = accuracy_and_macro_f1(&gold, &pred);
            println!("accuracy {:.2}%", acc * 100.0);
            println!("macro_f1 {:.2}%", f1 * 100.0);
            eprintln!(
                "train {} examples, {} intents: embed {embed_s:.1}s, fit {fit_s:.1}s; test {} utterances: {test_s:.1}s ({:.1} ms each)",
                train.len(),
                model.intents().len(),
                test.len(),
                test_s * 1000.0 / test.len().max(1) as f64
            );
            Ok(())
        }
        NluCommand::Parse {
            text,
            intents,
            now,
            choices,
        } => {
            let now = match now {
                Some(s) => nlu::chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S")
                    .with_context(|| format!("--now {s:?}: expected YYYY-MM-DDTHH:MM:SS"))?,
                None => nlu::chrono::Local::now().naive_local(),
            };
            let classifier = match intents {
                Some(path) => {
                    let rows = load(&path)?;
                    let examples: Vec<(&str, &str)> = rows
                        .iter()
                        .map(|r| (r.text.as_str(), r.intent.as_str()))
                        .collect();
                    let distinct: std::collections::HashSet<&str> =
                        examples.iter().map(|e| e.1).collect();
                    let options = TrainOptions::for_data(examples.len(), distinct.len());
                    Some(IntentClassifier::train(
                        embedder(models, 1)?,
                        &examples,
                        options,
                    )?)
                }
                None => None,
            };
            let ctx = Context {
                now,
                expected_choices: choices,
            };
            let understanding = Nlu::new(classifier).parse(&text, &ctx)?;
            println!("{}", serde_json::to_string_pretty(&understanding)?);
            Ok(())
        }
    }
}
