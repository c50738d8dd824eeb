#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper export into whisper.cpp's ggml format.

Usage: ct2_whisper_to_ggml.py MODEL_DIR OUT_FILE [OUT_Q8_0_FILE]

MODEL_DIR holds CTranslate2's model.bin (binary version 6, spec WhisperSpec revision 3) and
vocabulary.txt. Only numpy is needed. The output follows the layout whisper.cpp's loader reads:
magic, eleven i32 hyper-parameters, the 80x201 Slaney mel filter bank, the 50,256 regular tokens
as raw bytes, then named tensors (n_dims, name length, type, dims innermost first, name, data).

Mapping facts (CTranslate2 -> whisper.cpp):
- self_attention/linear_0 fuses Q, K, V row-wise; the K bias is zeros and whisper.cpp has none.
- decoder cross-attention: attention/linear_0 is Q, attention/linear_1 fuses K, V.
- weights are (out, in) like PyTorch; ggml lists dims innermost first, so dims are written
  reversed with no transpose.
- 1-d tensors, positional embeddings and conv biases are stored as f32; conv biases as (width, 1).

OUT_Q8_0_FILE, when given, receives the same model with every 2-d weight matrix in ggml's Q8_0
format, as whisper.cpp's own `quantize` tool writes it: blocks of 32 consecutive values of a row,
each block an f16 scale d = max|x| / 127 followed by 32 int8 values round(x / d) (rounding half
away from zero, like C's roundf), quantized from the f16 weights. Conv kernels (3-d), biases,
norms and positional embeddings stay as in the f16 file. The header's ftype becomes
GGML_FTYPE_MOSTLY_Q8_0 (7) plus GGML_QNT_VERSION (2) x 1000.
"""

import struct
import sys
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C
CT2_BINARY_VERSION = 6
CT2_SPEC = "WhisperSpec"
CT2_SPEC_REVISION = 3
N_REGULAR_TOKENS = 50256
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0 = 0, 1, 8
FTYPE_F16 = 1
FTYPE_Q8_0 = 7 + 2 * 1000  # GGML_FTYPE_MOSTLY_Q8_0 + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR
Q8_0_BLOCK = 32
F32_TENSORS = {"encoder.conv1.bias", "encoder.conv2.bias",
               "encoder.positional_embedding", "decoder.positional_embedding"}

# CTranslate2 dtype ids (ctranslate2/specs/model_spec.py).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ConversionError(Exception):
    pass


def read_ct2(path):
    """Returns ({name: ndarray}, {alias: target}) from a CTranslate2 model.bin."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise ConversionError(f"{path}: truncated at byte {pos}")
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += size
        return value

    def string():
        nonlocal pos
        n = take("<H")
        raw = data[pos : pos + n]
        pos += n
        if len(raw) != n or not raw.endswith(b"\0"):
            raise ConversionError(f"{path}: bad string at byte {pos - n}")
        return raw[:-1].decode("utf-8")

    version = take("<I")
    if version != CT2_BINARY_VERSION:
        raise ConversionError(f"{path}: CTranslate2 binary version {version}, expected 6")
    spec = string()
    revision = take("<I")
    if spec != CT2_SPEC or revision != CT2_SPEC_REVISION:
        raise ConversionError(f"{path}: spec {spec} rev {revision}, expected {CT2_SPEC} rev 3")
    variables = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype_id = take("<B")
        nbytes = take("<I")
        if dtype_id not in CT2_DTYPES:
            raise ConversionError(f"{path}: {name} has unknown dtype id {dtype_id}")
        raw = data[pos : pos + nbytes]
        pos += nbytes
        arr = np.frombuffer(raw, dtype=CT2_DTYPES[dtype_id])
        if arr.size != int(np.prod(dims)):
            raise ConversionError(f"{path}: {name} holds {arr.size} values for dims {dims}")
        variables[name] = arr.reshape(dims)
    aliases = {}
    for _ in range(take("<I")):
        alias = string()
        aliases[alias] = string()
    if pos != len(data):
        raise ConversionError(f"{path}: {len(data) - pos} trailing bytes")
    return variables, aliases


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def read_vocabulary(path):
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < N_REGULAR_TOKENS:
        raise ConversionError(f"{path}: {len(lines)} tokens, expected at least {N_REGULAR_TOKENS}")
    tokens = []
    for lineno, token in enumerate(lines[:N_REGULAR_TOKENS], start=1):
        try:
            tokens.append(bytes(byte_of[c] for c in token))
        except KeyError as e:
            raise ConversionError(f"{path}:{lineno}: character {e} is not a GPT-2 byte") from None
    return tokens, len(lines)


def hz_to_mel(f):
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """Slaney-normalised triangular filters, as librosa.filters.mel(sr, n_fft, n_mels)."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def whisper_tensors(v, n_audio_layer, n_text_layer, width):
    """Yields (whisper.cpp name, array) in whisper.cpp's naming."""

    def linear(prefix, src):
        yield f"{prefix}.weight", v[f"{src}/weight"]
        yield f"{prefix}.bias", v[f"{src}/bias"]

    def norm(prefix, src):
        yield f"{prefix}.weight", v[f"{src}/gamma"]
        yield f"{prefix}.bias", v[f"{src}/beta"]

    def fused_qkv(prefix, src):
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        if w.shape[0] != 3 * width:
            raise ConversionError(f"{src}/weight has {w.shape[0]} rows, expected {3 * width}")
        if np.any(b[width : 2 * width] != 0):
            raise ConversionError(f"{src}/bias: K bias is not zero; whisper.cpp has no K bias")
        yield f"{prefix}.query.weight", w[:width]
        yield f"{prefix}.query.bias", b[:width]
        yield f"{prefix}.key.weight", w[width : 2 * width]
        yield f"{prefix}.value.weight", w[2 * width :]
        yield f"{prefix}.value.bias", b[2 * width :]

    def fused_kv(prefix, src):
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        if w.shape[0] != 2 * width:
            raise ConversionError(f"{src}/weight has {w.shape[0]} rows, expected {2 * width}")
        if np.any(b[:width] != 0):
            raise ConversionError(f"{src}/bias: K bias is not zero; whisper.cpp has no K bias")
        yield f"{prefix}.key.weight", w[:width]
        yield f"{prefix}.value.weight", w[width:]
        yield f"{prefix}.value.bias", b[width:]

    yield "encoder.positional_embedding", v["encoder/position_encodings/encodings"]
    yield "encoder.conv1.weight", v["encoder/conv1/weight"]
    yield "encoder.conv1.bias", v["encoder/conv1/bias"]
    yield "encoder.conv2.weight", v["encoder/conv2/weight"]
    yield "encoder.conv2.bias", v["encoder/conv2/bias"]
    yield from norm("encoder.ln_post", "encoder/layer_norm")
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from fused_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0")
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")

    yield "decoder.positional_embedding", v["decoder/position_encodings/encodings"]
    yield "decoder.token_embedding.weight", v["decoder/embeddings/weight"]
    yield from norm("decoder.ln", "decoder/layer_norm")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from fused_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0")
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        yield from linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        yield from fused_kv(f"{dst}.cross_attn", f"{src}/attention/linear_1")
        yield from linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        yield from norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")


def count_layers(v, side):
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in v:
        n += 1
    if n == 0:
        raise ConversionError(f"no {side} layers found")
    return n


def convert(model_dir, out_path, q8_path=None):
    model_dir = Path(model_dir)
    v, aliases = read_ct2(model_dir / "model.bin")
    if aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != "decoder/embeddings/weight":
        raise ConversionError("decoder/projection/weight is not the token embedding")
    tokens, n_vocab = read_vocabulary(model_dir / "vocabulary.txt")
    n_audio_ctx, width = v["encoder/position_encodings/encodings"].shape
    n_text_ctx = v["decoder/position_encodings/encodings"].shape[0]
    n_mels = v["encoder/conv1/weight"].shape[1]
    if v["decoder/embeddings/weight"].shape[0] != n_vocab:
        raise ConversionError(
            f"vocabulary.txt has {n_vocab} tokens, embedding has {v['decoder/embeddings/weight'].shape[0]}"
        )
    n_audio_head = int(v["encoder/num_heads"]) if "encoder/num_heads" in v else width // 64
    n_text_head = int(v["decoder/num_heads"]) if "decoder/num_heads" in v else width // 64
    n_audio_layer = count_layers(v, "encoder")
    n_text_layer = count_layers(v, "decoder")
    hparams = [n_vocab, n_audio_ctx, width, n_audio_head, n_audio_layer,
               n_text_ctx, width, n_text_head, n_text_layer, n_mels, FTYPE_F16]

    filters = mel_filters(n_mels=n_mels)
    tensors = []
    for name, arr in whisper_tensors(v, n_audio_layer, n_text_layer, width):
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            arr = arr.reshape(arr.shape[0], 1)
        if arr.ndim < 2 or name in F32_TENSORS:
            tensors.append((name, arr.astype("<f4")))
        else:
            tensors.append((name, arr.astype("<f2")))
    header = (hparams, filters, tokens)
    write_ggml(out_path, header, FTYPE_F16, tensors, quantize=False)
    print(f"wrote {out_path}: {len(tensors)} tensors, n_vocab {n_vocab}, width {width}, "
          f"{n_audio_layer}+{n_text_layer} layers")
    if q8_path is not None:
        n = write_ggml(q8_path, header, FTYPE_Q8_0, tensors, quantize=True)
        print(f"wrote {q8_path}: {n} of {len(tensors)} tensors in Q8_0")


def quantize_q8_0(arr):
    """ggml's quantize_row_q8_0_ref over the rows of a 2-d f16 array; returns the block bytes."""
    _, cols = arr.shape
    if cols % Q8_0_BLOCK:
        raise ConversionError(f"row length {cols} is not a multiple of {Q8_0_BLOCK}")
    x = arr.astype(np.float32).reshape(-1, Q8_0_BLOCK)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    scaled = x * inv[:, None]
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)
    blocks = np.empty(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (Q8_0_BLOCK,))])
    blocks["d"] = d.astype("<f2")
    blocks["qs"] = q
    return blocks.tobytes()


def write_ggml(out_path, header, ftype, tensors, quantize):
    """Writes one ggml file (via OUT.part, renamed when complete); returns how many tensors it
    quantized."""
    hparams, filters, tokens = header
    quantized = 0
    tmp = Path(str(out_path) + ".part")
    with open(tmp, "wb") as out:
        out.write(struct.pack("<i", GGML_MAGIC))
        out.write(struct.pack("<11i", *hparams[:-1], ftype))
        out.write(struct.pack("<ii", *filters.shape))
        out.write(filters.astype("<f4").tobytes())
        out.write(struct.pack("<i", len(tokens)))
        for t in tokens:
            out.write(struct.pack("<i", len(t)))
            out.write(t)
        for name, arr in tensors:
            if arr.dtype == np.float32:
                ttype, data = GGML_TYPE_F32, np.ascontiguousarray(arr).tobytes()
            elif quantize and arr.ndim == 2:
                ttype, data = GGML_TYPE_Q8_0, quantize_q8_0(arr)
                quantized += 1
            else:
                ttype, data = GGML_TYPE_F16, np.ascontiguousarray(arr).tobytes()
            raw_name = name.encode("utf-8")
            out.write(struct.pack("<iii", arr.ndim, len(raw_name), ttype))
            out.write(struct.pack(f"<{arr.ndim}i", *reversed(arr.shape)))
            out.write(raw_name)
            out.write(data)
    tmp.replace(out_path)
    return quantized


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        convert(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    except (ConversionError, OSError, KeyError) as e:
        print(f"ct2_whisper_to_ggml: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
