//! Sentence embeddings from all-MiniLM-L6-v2 through ONNX Runtime (`ort`) and `tokenizers`.

use std::path::Path;
use std::sync::Mutex;

use ndarray::{Array2, ArrayView2, ArrayView3, Axis, s};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::NluError;

#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    /// ONNX Runtime intra-op threads. 1 gives the best latency per utterance when several calls
    /// run at once on a small machine; 2 halves single-call latency on an idle one (see the bench).
    pub intra_threads: usize,
    /// Sentences per forward pass when embedding many.
    pub batch_size: usize,
    /// Longer inputs are truncated (the model was trained on up to 256 word pieces).
    pub max_tokens: usize,
    /// The intent features [`Embedder::features`] returns.
    pub features: FeatureSpec,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            batch_size: 32,
            max_tokens: 128,
            features: FeatureSpec::default(),
        }
    }
}

/// Which frozen views of the model make up the features of the intent head ([`Embedder::features`]).
/// Each view is L2-normalised and the concatenation is scaled to unit length, so a dot product of
/// two feature rows is the mean cosine similarity over the views.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// Mean-pooled outputs of these transformer layers (0-based; needs the graph's
    /// `layer_embeddings`), beside the final `sentence_embedding`.
    pub layers: Vec<usize>,
    /// Add the max over tokens of the last hidden state.
    pub max_pool: bool,
}

/// The sentence embedding alone: on Banking77 validation (`examples/tune.rs`, `FEAT=`) adding
/// layer means (4; 4,3; 5,4; 3,2) or the max-pool lost 0.3–0.8 points full-train and 0.1–1.0
/// points 10-shot, also with the embedding scale and L2 re-tuned.
impl Default for FeatureSpec {
    fn default() -> Self {
        Self::sentence_only()
    }
}

impl FeatureSpec {
    /// Just `sentence_embedding` (what [`Embedder::embed_batch`] returns).
    pub fn sentence_only() -> Self {
        Self {
            layers: Vec::new(),
            max_pool: false,
        }
    }

    /// Builds feature rows from rows of [`Embedder::views_batch`] (`layer_count` layers, width
    /// `dim`). Layers the graph does not have are skipped.
    pub fn compose(&self, views: ArrayView2<f32>, dim: usize, layer_count: usize) -> Array2<f32> {
        let mut blocks = vec![0];
        blocks.extend(
            self.layers
                .iter()
                .filter(|&&l| l < layer_count)
                .map(|l| (1 + l) * dim),
        );
        if self.max_pool {
            blocks.push((1 + layer_count) * dim);
        }
        let scale = 1.0 / (blocks.len() as f32).sqrt();
        let mut out = Array2::<f32>::zeros((views.nrows(), blocks.len() * dim));
        for (b, &start) in blocks.iter().enumerate() {
            let src = views.slice(s![.., start..start + dim]);
            let mut dst = out.slice_mut(s![.., b * dim..(b + 1) * dim]);
            dst.assign(&src);
            for mut row in dst.axis_iter_mut(Axis(0)) {
                let n = row.dot(&row).sqrt().max(1e-12);
                row.mapv_inplace(|v| v / n * scale);
            }
        }
        out
    }
}

/// Turns sentences into L2-normalised 384-dimensional vectors; cosine similarity is a dot product.
/// Also gives the richer intent features of a [`FeatureSpec`] ([`Embedder::features`]).
pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    output: String,
    token_type_ids: bool,
    /// Layers in the graph's `layer_embeddings` output (0 when it has none).
    layer_count: usize,
    dim: usize,
    batch_size: usize,
    features: FeatureSpec,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("output", &self.output)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads the graph and tokenizer. `env` is the process's ONNX Runtime environment.
    pub fn new(
        env: &Environment,
        model: &Path,
        tokenizer: &Path,
        opts: EmbedderOptions,
    ) -> Result<Self, NluError> {
        let model_err = |message: String| NluError::Model {
            path: model.to_path_buf(),
            message,
        };
        if !model.is_file() {
            return Err(model_err(
                "file not found (run `callbot models fetch`)".into(),
            ));
        }
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(opts.intra_threads.max(1))?))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| model_err(e.to_string()))?;
        let names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output = names
            .iter()
            .find(|n| n.as_str() == "sentence_embedding")
            .or(names.first())
            .cloned()
            .ok_or_else(|| model_err("graph has no outputs".into()))?;
        let token_type_ids = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");

        let mut tok = Tokenizer::from_file(tokenizer).map_err(|e| NluError::TokenizerLoad {
            path: tokenizer.to_path_buf(),
            message: e.to_string(),
        })?;
        tok.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tok.with_truncation(Some(TruncationParams {
            max_length: opts.max_tokens,
            ..Default::default()
        }))
        .map_err(|e| NluError::TokenizerLoad {
            path: tokenizer.to_path_buf(),
            message: e.to_string(),
        })?;
        let layers = names.iter().any(|n| n == "layer_embeddings");
        let mut me = Self {
            session: Mutex::new(session),
            tokenizer: tok,
            output,
            token_type_ids,
            layer_count: 0,
            dim: 0,
            batch_size: opts.batch_size.max(1),
            features: opts.features,
        };
        let probe = me.run(&["hello"], layers, false)?;
        me.dim = probe.0.ncols();
        me.layer_count = probe.1.map_or(0, |l| l.shape()[1]);
        Ok(me)
    }

    /// Layers in the graph's `layer_embeddings` output (0 for an older graph without it).
    pub fn layer_count(&self) -> usize {
        self.layer_count
    }

    /// Width of a [`Embedder::views_batch`] row: the sentence embedding, each layer's mean, and
    /// the last layer's max over tokens, `dim` values each.
    pub fn views_dim(&self) -> usize {
        (self.layer_count + 2) * self.dim
    }

    /// The intent features of the [`FeatureSpec`] given at construction, one unit-length row
    /// per text.
    pub fn features<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>, NluError> {
        let spec = &self.features;
        let wants_layers = spec.layers.iter().any(|&l| l < self.layer_count);
        // The per-turn path: the sentence embedding is the first block of the views, so it
        // alone composes the same features without extracting layers or pooling tokens.
        let views = if wants_layers || spec.max_pool {
            self.views_batch(texts)?
        } else {
            self.embed_batch(texts)?
        };
        Ok(spec.compose(views.view(), self.dim, self.layer_count))
    }

    pub fn feature_spec(&self) -> &FeatureSpec {
        &self.features
    }

    /// All frozen views per text, unnormalised except the sentence embedding (see
    /// [`Embedder::views_dim`]); [`FeatureSpec::compose`] picks from them.
    pub fn views_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>, NluError> {
        self.batched(texts, |batch| {
            let (sentence, layers, max_last) = self.run(batch, self.layer_count > 0, true)?;
            let max_last = max_last.unwrap_or_else(|| Array2::zeros(sentence.dim()));
            let mut blocks = vec![sentence.view()];
            if let Some(l) = &layers {
                blocks.extend(l.axis_iter(Axis(1)));
            }
            blocks.push(max_last.view());
            ndarray::concatenate(Axis(1), &blocks)
                .map_err(|e| NluError::Inference(format!("joining views: {e}")))
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The name of the graph output read (normally `sentence_embedding`).
    pub fn output_name(&self) -> &str {
        &self.output
    }

    pub fn embed(&self, text: &str) -> Result<Vec<f32>, NluError> {
        Ok(self.embed_batch(&[text])?.row(0).to_vec())
    }

    /// One row per text, in the order given. Texts are grouped by length so that little padding
    /// is computed.
    pub fn embed_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>, NluError> {
        self.batched(texts, |batch| Ok(self.run(batch, false, false)?.0))
    }

    fn batched<S: AsRef<str>>(
        &self,
        texts: &[S],
        forward: impl Fn(&[&str]) -> Result<Array2<f32>, NluError>,
    ) -> Result<Array2<f32>, NluError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].as_ref().len());
        let mut out = Array2::<f32>::zeros((texts.len(), self.dim.max(1)));
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_ref()).collect();
            let emb = forward(&batch)?;
            if out.ncols() != emb.ncols() {
                out = Array2::zeros((texts.len(), emb.ncols()));
            }
            for (row, &i) in chunk.iter().enumerate() {
                out.row_mut(i).assign(&emb.row(row));
            }
        }
        Ok(out)
    }

    /// (sentence embedding, per-layer means when `layers`, last layer's max over real tokens when
    /// `max_pool` and the graph has `token_embeddings`).
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        batch: &[&str],
        layers: bool,
        max_pool: bool,
    ) -> Result<
        (
            Array2<f32>,
            Option<ndarray::Array3<f32>>,
            Option<Array2<f32>>,
        ),
        NluError,
    > {
        let enc = self
            .tokenizer
            .encode_batch(batch.to_vec(), true)
            .map_err(|e| NluError::Tokenize(e.to_string()))?;
        let seq = enc
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let n = batch.len();
        let mut ids = Array2::<i64>::zeros((n, seq));
        let mut mask = Array2::<i64>::zeros((n, seq));
        for (r, e) in enc.iter().enumerate() {
            for (c, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
                ids[[r, c]] = i64::from(id);
                mask[[r, c]] = i64::from(m);
            }
        }
        let types = Array2::<i64>::zeros((n, seq));
        let inf = |e: ort::Error| NluError::Inference(e.to_string());
        let mut session = self
            .session
            .lock()
            .map_err(|_| NluError::Inference("session lock poisoned".into()))?;
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view(&ids).map_err(inf)?,
            "attention_mask" => TensorRef::from_array_view(&mask).map_err(inf)?,
        ];
        if self.token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view(&types).map_err(inf)?.into(),
            ));
        }
        let outputs = session.run(inputs).map_err(inf)?;
        let shape_err = |name: &str, want: &str, e: ndarray::ShapeError| {
            NluError::Inference(format!("output `{name}` is not {want}: {e}"))
        };
        let arr = outputs[self.output.as_str()]
            .try_extract_array::<f32>()
            .map_err(inf)?;
        let view: ArrayView2<f32> = arr
            .into_dimensionality()
            .map_err(|e| shape_err(&self.output, "[batch, dim]", e))?;
        let sentence = view.to_owned();
        let layer_means = if layers {
            let arr = outputs["layer_embeddings"]
                .try_extract_array::<f32>()
                .map_err(inf)?;
            let view: ArrayView3<f32> = arr
                .into_dimensionality()
                .map_err(|e| shape_err("layer_embeddings", "[batch, layers, dim]", e))?;
            Some(view.to_owned())
        } else {
            None
        };
        let tokens = if max_pool {
            outputs.get("token_embeddings")
        } else {
            None
        };
        let max_last = if let Some(tokens) = tokens {
            let mut max_last = Array2::<f32>::zeros(sentence.dim());
            let arr = tokens.try_extract_array::<f32>().map_err(inf)?;
            let view: ArrayView3<f32> = arr
                .into_dimensionality()
                .map_err(|e| shape_err("token_embeddings", "[batch, seq, dim]", e))?;
            for (r, mut out) in max_last.axis_iter_mut(Axis(0)).enumerate() {
                out.fill(f32::NEG_INFINITY);
                for (c, tok) in view.index_axis(Axis(0), r).axis_iter(Axis(0)).enumerate() {
                    if mask[[r, c]] != 0 {
                        out.zip_mut_with(&tok, |a, &b| *a = a.max(b));
                    }
                }
                out.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
            }
            Some(max_last)
        } else {
            None
        };
        Ok((sentence, layer_means, max_last))
    }
}

/// Dot product of two L2-normalised vectors, i.e. their cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
