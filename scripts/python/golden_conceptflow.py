#!/usr/bin/env python3
"""Golden loss terms of ConceptFlow (the reference's ``Concept_FM``) on a tiny fixed network, in numpy.

An independent implementation of the network and its objective (docs/baselines.md,
"ConceptFlow"): dense encoder, concept head (sigmoid on hard columns, identity on soft
ones), ReLU unknown head, the conditional Gaussian prior on h = [c_hat || u], the
flow-matching velocity network, and the four loss terms:

  flow_hp * MSE(v(x_t, t, h), x - x0) + concepts_hp * (masked BCE + masked clipped soft MSE)
  + orthogonality_hp * ||u_c^T c_std / (B - 1)||_F^2 + kl_hp * KL(mu_p, logvar_p)

with x0 = mu_p + exp(logvar_p / 2) * eps, x_t = (1 - t) x0 + t x, c_std the clipped
predicted concepts standardised by the *annotated* concepts' mean and unbiased std
(+1e-6; a column whose std is at most 1e-3 is left out), u_c the batch-centred unknown
code, and the KL a mean over cells x features.

Every weight and input is a closed formula (no random numbers): parameter p (in the
order listed below), flat index i, a = 1.7 p + 0.61 i + 0.037 i^2 + 0.2:
LayerNorm weight 1 + 0.1 sin(a), LayerNorm bias 0.1 sin(a), Fourier frequencies
2 pi sin(a), everything else 0.3 sin(a); all rounded to float32, computed in float64.

Writes crates/conceptlab-models/tests/fixtures/conceptflow_golden.json (or the path given).
Run: python3 scripts/python/golden_conceptflow.py
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

G, H, Z, U, KH, KS, L, CB, B = 4, 6, 3, 2, 2, 1, 1, 1, 5
K = KH + KS
WEIGHTS = {"flow_hp": 0.7, "concepts_hp": 0.3, "orthogonality_hp": 0.2, "kl_hp": 0.1}


def shapes():
    out = []

    def linear(name, n_in, n_out):
        out.append((f"{name}.weight", (n_out, n_in)))
        out.append((f"{name}.bias", (n_out,)))

    def norm(name, d):
        out.append((f"{name}.weight", (d,)))
        out.append((f"{name}.bias", (d,)))

    def dense(prefix, n_in, blocks, n_out):
        linear(f"{prefix}.x_embedder", n_in, H)
        for i in range(blocks):
            linear(f"{prefix}.layers.{i}.linear", H, H)
            norm(f"{prefix}.layers.{i}.norm", H)
        linear(f"{prefix}.output_layer", H, n_out)

    dense("_encoder", G, L, Z)
    dense("cb_concepts_layers", Z, CB, K)
    dense("cb_unk_layers", Z, CB, U)
    dense("fc_mu_logvar", K + U, 2, 2 * G)
    linear("_decoder.x_embedder", G, H)
    linear("_decoder.c_embedder", K + U, H)
    out.append(("_decoder.t_embedder.weights", (H // 2,)))
    linear("_decoder.t_mapper.0", H, H)
    linear("_decoder.t_mapper.2", H, H)
    for i in range(L):
        linear(f"_decoder.layers.{i}.linear", H, H)
        norm(f"_decoder.layers.{i}.norm", H)
    linear("_decoder.output_layer", H, G)
    return out


def params():
    out = {}
    for p, (name, shape) in enumerate(shapes()):
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.float64)
        a = 1.7 * p + 0.61 * i + 0.037 * i * i + 0.2
        if name.endswith("t_embedder.weights"):
            v = 2 * math.pi * np.sin(a)
        elif ".norm." in name and name.endswith("weight"):
            v = 1 + 0.1 * np.sin(a)
        elif ".norm." in name:
            v = 0.1 * np.sin(a)
        else:
            v = 0.3 * np.sin(a)
        out[name] = v.astype(np.float32).astype(np.float64).reshape(shape)
    return out


def f32(v):
    return np.asarray(v, dtype=np.float32).astype(np.float64)


def inputs():
    b = np.arange(B)[:, None]
    j = np.arange(G)[None, :]
    x = f32(3 * (np.sin(0.7 * b + 1.3 * j + 0.11 * b * j + 0.3) + 0.5 * np.cos(1.9 * b - 0.4 * j)))
    c = np.zeros((B, K))
    c[:, 0] = (np.sin(1.3 * np.arange(B) + 0.5) > 0).astype(float)
    c[:, 1] = 1.0  # constant among the observed: leaves the penalty
    c[:, 2] = 0.5 + 0.45 * np.sin(0.9 * np.arange(B) + 0.2)
    c = f32(c)
    observed = np.ones((B, K))
    observed[1, 0] = 0.0
    observed[3, 2] = 0.0
    observed[2, 1] = 0.0
    c[2, 1] = 0.0  # an unobserved entry: must not enter the statistics
    eps = f32(1.2 * np.sin(1.1 * b + 0.7 * j + 0.23 * b * j + 0.9))
    t = f32((np.arange(B) + 0.5) / B * 0.98 + 0.003)
    return x, c, observed, eps, t


def layer_norm(h, w, bias):
    m = h.mean(axis=1, keepdims=True)
    v = ((h - m) ** 2).mean(axis=1, keepdims=True)
    return (h - m) / np.sqrt(v + 1e-5) * w + bias


def lin(P, name, h):
    return h @ P[f"{name}.weight"].T + P[f"{name}.bias"]


def relu(h):
    return np.maximum(h, 0.0)


def dense(P, prefix, h, blocks):
    h = lin(P, f"{prefix}.x_embedder", h)
    for i in range(blocks):
        n = f"{prefix}.layers.{i}"
        h = h + relu(layer_norm(lin(P, f"{n}.linear", h), P[f"{n}.norm.weight"], P[f"{n}.norm.bias"]))
    return lin(P, f"{prefix}.output_layer", h)


def velocity(P, xt, t, cond):
    h = lin(P, "_decoder.x_embedder", xt)
    ce = lin(P, "_decoder.c_embedder", cond)
    ang = t[:, None] * P["_decoder.t_embedder.weights"][None, :]
    phi = np.concatenate([np.sin(ang), np.cos(ang)], axis=1)
    te = lin(P, "_decoder.t_mapper.2", relu(lin(P, "_decoder.t_mapper.0", phi)))
    inject = ce + te
    for i in range(L):
        n = f"_decoder.layers.{i}"
        h = h + relu(layer_norm(lin(P, f"{n}.linear", h + inject), P[f"{n}.norm.weight"], P[f"{n}.norm.bias"]))
    return lin(P, "_decoder.output_layer", h)


def standardize(c, observed):
    mean = np.zeros(K)
    inv = np.zeros(K)
    for k in range(K):
        v = c[observed[:, k] > 0, k]
        if len(v) < 2:
            continue
        mean[k] = v.mean()
        sd = v.std(ddof=1)
        if sd > 1e-3:
            inv[k] = 1.0 / (sd + 1e-6)
    return f32(mean), f32(inv)


def main():
    P = params()
    x, c, observed, eps, t = inputs()
    z = dense(P, "_encoder", x, L)
    logits = dense(P, "cb_concepts_layers", z, CB)
    chat = np.concatenate([1 / (1 + np.exp(-logits[:, :KH])), logits[:, KH:]], axis=1)
    u = relu(dense(P, "cb_unk_layers", z, CB))
    h = np.concatenate([chat, u], axis=1)
    prior = dense(P, "fc_mu_logvar", h, 2)
    mu, logvar = prior[:, :G], prior[:, G:]
    x0 = mu + np.exp(0.5 * logvar) * eps
    xt = (1 - t[:, None]) * x0 + t[:, None] * x
    v = velocity(P, xt, t, h)
    flow = ((v - (x - x0)) ** 2).mean()
    lh, yh, mh = logits[:, :KH], c[:, :KH], observed[:, :KH]
    bce = (mh * (np.maximum(lh, 0) - lh * yh + np.log1p(np.exp(-np.abs(lh))))).sum() / B
    soft = (observed[:, KH:] * (np.clip(chat[:, KH:], 0, 1) - c[:, KH:]) ** 2).sum() / B
    concept = bce + soft
    mean, inv = standardize(c, observed)
    cs = (np.clip(chat, 0, 1) - mean) * inv
    uc = u - u.mean(axis=0, keepdims=True)
    orth = ((uc.T @ cs / (B - 1)) ** 2).sum()
    kl = -0.5 * (1 + logvar - mu**2 - np.exp(logvar)).mean()
    total = (
        WEIGHTS["flow_hp"] * flow
        + WEIGHTS["concepts_hp"] * concept
        + WEIGHTS["orthogonality_hp"] * orth
        + WEIGHTS["kl_hp"] * kl
    )
    out = {
        "config": {"G": G, "H": H, "Z": Z, "U": U, "n_hard": KH, "n_soft": KS, "n_layers": L,
                   "cb_layers": CB, **WEIGHTS},
        "params": {k: v.tolist() for k, v in P.items()},
        "inputs": {"x": x.tolist(), "c": c.tolist(), "observed": observed.tolist(),
                   "eps": eps.tolist(), "t": t.tolist()},
        "standardize": {"mean": mean.tolist(), "inv_std": inv.tolist()},
        "forward": {"concepts": chat.tolist(), "unknown": u.tolist(), "mu": mu.tolist(),
                    "logvar": logvar.tolist(), "v": v.tolist()},
        "terms": {"flow": flow, "concept": concept, "orthogonality": orth, "kl": kl, "total": total},
    }
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "crates", "conceptlab-models", "tests", "fixtures",
                           "conceptflow_golden.json")
    path = sys.argv[1] if len(sys.argv) > 1 else default
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {out['terms']}")


if __name__ == "__main__":
    main()
