//! Checks run on converted models before they are moved into place.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use serde::Deserialize;

const GGML_MAGIC: u32 = 0x6767_6d6c;
/// The header's ftype for an all-f16 model (`GGML_FTYPE_MOSTLY_F16`).
pub const FTYPE_F16: i32 = 1;
/// The header's ftype for a Q8_0 model: `GGML_FTYPE_MOSTLY_Q8_0` (7) plus `GGML_QNT_VERSION` (2)
/// times `GGML_QNT_VERSION_FACTOR` (1000), as whisper.cpp's `quantize` writes it.
pub const FTYPE_Q8_0: i32 = 7 + 2 * 1000;
/// ggml tensor types this checker knows: f32, f16 and Q8_0 (blocks of 32 values: an f16 scale
/// and 32 int8).
const GGML_TYPE_F32: i32 = 0;
const GGML_TYPE_F16: i32 = 1;
const GGML_TYPE_Q8_0: i32 = 8;
const Q8_0_BLOCK: u64 = 32;
const Q8_0_BLOCK_BYTES: u64 = 2 + 32;

/// What a ggml whisper file declares, once its whole structure has been walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlSummary {
    pub n_vocab: i32,
    pub n_audio_layer: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub tokens: usize,
    pub tensors: usize,
    /// The header's ftype: [`FTYPE_F16`] or [`FTYPE_Q8_0`].
    pub ftype: i32,
    /// How many tensors are stored in Q8_0.
    pub q8_0_tensors: usize,
}

fn read_i32(r: &mut impl Read) -> std::io::Result<i32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(i32::from_le_bytes(b))
}

fn non_negative(v: i32, what: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("{what} is negative ({v})"))
}

/// Walks a whisper.cpp ggml file end to end: header, mel filters, vocabulary and every tensor
/// record, and checks that the tensor count matches the layers and that nothing trails.
pub fn check_ggml(path: &Path) -> Result<GgmlSummary, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::new(file);
    let io = |e: std::io::Error| format!("{}: truncated or unreadable: {e}", path.display());
    let magic = read_i32(&mut r).map_err(io)? as u32;
    if magic != GGML_MAGIC {
        return Err(format!("bad magic {magic:#x}, expected {GGML_MAGIC:#x}"));
    }
    let mut h = [0i32; 11];
    for v in &mut h {
        *v = read_i32(&mut r).map_err(io)?;
    }
    let [
        n_vocab,
        _audio_ctx,
        _audio_state,
        _audio_head,
        n_audio_layer,
        _text_ctx,
        _,
        _,
        n_text_layer,
        n_mels,
        ftype,
    ] = h;
    if ftype != FTYPE_F16 && ftype != FTYPE_Q8_0 {
        return Err(format!(
            "ftype {ftype}, expected {FTYPE_F16} (f16) or {FTYPE_Q8_0} (Q8_0)"
        ));
    }
    let (mel_rows, mel_cols) = (read_i32(&mut r).map_err(io)?, read_i32(&mut r).map_err(io)?);
    if (mel_rows, mel_cols) != (n_mels, 201) {
        return Err(format!(
            "mel filters are {mel_rows}x{mel_cols}, expected {n_mels}x201"
        ));
    }
    r.seek_relative(4 * i64::from(mel_rows) * i64::from(mel_cols))
        .map_err(io)?;
    let tokens = non_negative(read_i32(&mut r).map_err(io)?, "token count")?;
    for _ in 0..tokens {
        let n = non_negative(read_i32(&mut r).map_err(io)?, "token length")?;
        r.seek_relative(n as i64).map_err(io)?;
    }
    let mut tensors = 0usize;
    let mut q8_0_tensors = 0usize;
    loop {
        let pos = r.stream_position().map_err(io)?;
        if pos == len {
            break;
        }
        let n_dims = read_i32(&mut r).map_err(io)?;
        let name_len = non_negative(read_i32(&mut r).map_err(io)?, "name length")?;
        let ttype = read_i32(&mut r).map_err(io)?;
        if !(1..=4).contains(&n_dims) {
            return Err(format!("tensor #{tensors} at byte {pos} has {n_dims} dims"));
        }
        let mut elements = 1u64;
        let mut row = 0u64;
        for d in 0..n_dims {
            let dim = non_negative(read_i32(&mut r).map_err(io)?, "dim")?;
            if d == 0 {
                row = dim;
            }
            elements *= dim;
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).map_err(io)?;
        let name = String::from_utf8_lossy(&name);
        let bytes = match ttype {
            GGML_TYPE_F32 => elements * 4,
            GGML_TYPE_F16 => elements * 2,
            GGML_TYPE_Q8_0 if ftype != FTYPE_Q8_0 => {
                return Err(format!("tensor {name} is Q8_0 in an f16 model"));
            }
            GGML_TYPE_Q8_0 if !row.is_multiple_of(Q8_0_BLOCK) => {
                return Err(format!(
                    "tensor {name} is Q8_0 but its rows ({row}) are not a multiple of {Q8_0_BLOCK}"
                ));
            }
            GGML_TYPE_Q8_0 => {
                q8_0_tensors += 1;
                elements / Q8_0_BLOCK * Q8_0_BLOCK_BYTES
            }
            t => return Err(format!("tensor {name} has type {t}")),
        };
        r.seek_relative(bytes as i64).map_err(io)?;
        tensors += 1;
    }
    if r.stream_position().map_err(io)? != len {
        return Err(format!("{}: tensor data runs past the end", path.display()));
    }
    // whisper.cpp loads exactly: 7 encoder-wide + 15 per encoder block, 4 decoder-wide + 24 per
    // decoder block (self-attention has no key bias; cross-attention adds 9 tensors).
    let expected = 11 + 15 * n_audio_layer as i64 + 24 * n_text_layer as i64;
    if tensors as i64 != expected {
        return Err(format!(
            "{tensors} tensors, expected {expected} for {n_audio_layer}+{n_text_layer} layers"
        ));
    }
    Ok(GgmlSummary {
        n_vocab,
        n_audio_layer,
        n_text_layer,
        n_mels,
        tokens: tokens as usize,
        tensors,
        ftype,
        q8_0_tensors,
    })
}

/// `reference.json` written by `minilm_to_onnx.py` from its NumPy forward pass.
#[derive(Debug, Clone, Deserialize)]
pub struct MinilmReference {
    pub tolerance: f32,
    pub sentences: Vec<String>,
    pub token_ids: Vec<Vec<i64>>,
    pub embeddings: Vec<Vec<f32>>,
}

impl MinilmReference {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r: Self =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let n = r.sentences.len();
        if n == 0 || r.token_ids.len() != n || r.embeddings.len() != n {
            return Err(format!(
                "{}: sentences, token_ids and embeddings differ in length",
                path.display()
            ));
        }
        Ok(r)
    }
}

/// Runs the MiniLM graph through ONNX Runtime on the reference sentences as one padded batch and
/// returns the largest absolute difference from the reference embeddings; errors if it exceeds
/// the reference's tolerance. ONNX Runtime must already be initialised.
pub fn check_minilm(
    env: &ort::environment::Environment,
    onnx: &Path,
    reference: &Path,
) -> Result<f32, String> {
    let r = MinilmReference::load(reference)?;
    let n = r.token_ids.len();
    let seq = r.token_ids.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = vec![0i64; n * seq];
    let mut mask = vec![0i64; n * seq];
    for (row, tokens) in r.token_ids.iter().enumerate() {
        ids[row * seq..row * seq + tokens.len()].copy_from_slice(tokens);
        mask[row * seq..row * seq + tokens.len()].fill(1);
    }
    let ort_err = |e: ort::Error| format!("ONNX Runtime on {}: {e}", onnx.display());
    let mut session = ort::session::Session::builder(env)
        .map_err(ort_err)?
        .with_intra_threads(2)
        .map_err(|e| ort_err(e.into()))?
        .commit_from_file(onnx)
        .map_err(ort_err)?;
    let ids =
        ort::value::Tensor::from_array(([n, seq], ids.into_boxed_slice())).map_err(ort_err)?;
    let mask =
        ort::value::Tensor::from_array(([n, seq], mask.into_boxed_slice())).map_err(ort_err)?;
    let outputs = session
        .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
        .map_err(ort_err)?;
    let (shape, got) = outputs["sentence_embedding"]
        .try_extract_tensor::<f32>()
        .map_err(ort_err)?;
    let width = r.embeddings[0].len();
    if shape.iter().copied().collect::<Vec<i64>>() != [n as i64, width as i64] {
        return Err(format!(
            "sentence_embedding has shape {shape:?}, expected [{n}, {width}]"
        ));
    }
    let (tshape, _) = outputs["token_embeddings"]
        .try_extract_tensor::<f32>()
        .map_err(ort_err)?;
    if tshape.iter().copied().collect::<Vec<i64>>() != [n as i64, seq as i64, width as i64] {
        return Err(format!(
            "token_embeddings has shape {tshape:?}, expected [{n}, {seq}, {width}]"
        ));
    }
    let mut worst = 0f32;
    for (row, want) in r.embeddings.iter().enumerate() {
        for (j, w) in want.iter().enumerate() {
            worst = worst.max((got[row * width + j] - w).abs());
        }
    }
    if worst > r.tolerance {
        return Err(format!(
            "ONNX Runtime output differs from the NumPy reference by {worst:.2e} (tolerance {:.0e})",
            r.tolerance
        ));
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ggml_walk_rejects_bad_magic_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, 0x1234u32.to_le_bytes()).unwrap();
        assert!(check_ggml(&p).unwrap_err().contains("bad magic"));
        let mut bytes = GGML_MAGIC.to_le_bytes().to_vec();
        bytes.extend(1i32.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert!(check_ggml(&p).unwrap_err().contains("truncated"));
    }
}
