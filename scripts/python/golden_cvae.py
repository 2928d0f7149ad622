#!/usr/bin/env python3
"""Golden values for scCVAE (conceptlab-models `cvae`), computed with numpy alone.

An independent float64 implementation of the reference's scCVAE
(`CVAEEncoderBlock` on [x | c] -> mu, logvar; `CVAEDecoderBlock` on [z | c];
blocks Linear -> LayerNorm(eps 1e-5, biased variance) -> ReLU, no residual;
loss MSE + beta * KL with the KL a mean over B x Z) on a tiny network whose
parameters and inputs come from closed formulas:

- parameters, in state-dict order p = 0, 1, ..., i the row-major flat index,
  a = 1.7*p + 0.61*i + 0.037*i^2 + 0.2:
    '*.norm.weight' 1 + 0.1*sin(a); '*.norm.bias' 0.1*sin(a); otherwise 0.3*sin(a)
  (weights W are out x in, PyTorch's layout), rounded to float32;
- inputs (b row, j column), rounded to float32:
    x[b,j]   = sin(0.7*b + 1.3*j + 0.11*b*j + 0.3) + 0.5*cos(1.9*b - 0.4*j)
    c[b,k]   = 1 if sin(1.3*b + 2.3*k + 0.17*b*k + 0.5) > 0 else 0   (hard columns)
    c[b,k]   = 0.5 + 0.45*sin(0.9*b + 1.7*k + 0.2)                   (the soft column)
    eps[b,z] = 1.2*sin(1.1*b + 0.7*z + 0.23*b*z + 0.9)
    c_new    = c with hard column 0 flipped and the soft column set to 0.8

Writes crates/conceptlab-models/tests/fixtures/cvae_golden.json (or the path
given as the first argument). Run: python3 scripts/python/golden_cvae.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "crates", "conceptlab-models", "tests", "fixtures", "cvae_golden.json")

G, N_HARD, N_SOFT, H, L, Z, B = 5, 2, 1, 4, 2, 3, 6
K = N_HARD + N_SOFT
BETA = 0.37


def shapes():
    """State-dict names and shapes, in creation order."""
    out = [("_encoder.x_embedder.weight", (H, G + K)), ("_encoder.x_embedder.bias", (H,))]
    for i in range(L):
        out += [
            (f"_encoder.layers.{i}.linear.weight", (H, H)),
            (f"_encoder.layers.{i}.linear.bias", (H,)),
            (f"_encoder.layers.{i}.norm.weight", (H,)),
            (f"_encoder.layers.{i}.norm.bias", (H,)),
        ]
    out += [
        ("_encoder.fc_mu.weight", (Z, H)),
        ("_encoder.fc_mu.bias", (Z,)),
        ("_encoder.fc_var.weight", (Z, H)),
        ("_encoder.fc_var.bias", (Z,)),
        ("_decoder.x_embedder.weight", (H, Z + K)),
        ("_decoder.x_embedder.bias", (H,)),
    ]
    for i in range(L):
        out += [
            (f"_decoder.layers.{i}.linear.weight", (H, H)),
            (f"_decoder.layers.{i}.linear.bias", (H,)),
            (f"_decoder.layers.{i}.norm.weight", (H,)),
            (f"_decoder.layers.{i}.norm.bias", (H,)),
        ]
    out += [("_decoder.output_later.weight", (G, H)), ("_decoder.output_later.bias", (G,))]
    return out


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def params():
    out = {}
    for p, (name, shape) in enumerate(shapes()):
        i = np.arange(int(np.prod(shape)), dtype=np.float64)
        a = 1.7 * p + 0.61 * i + 0.037 * i * i + 0.2
        if name.endswith("norm.weight"):
            v = 1.0 + 0.1 * np.sin(a)
        elif name.endswith("norm.bias"):
            v = 0.1 * np.sin(a)
        else:
            v = 0.3 * np.sin(a)
        out[name] = f32(v).reshape(shape)
    return out


def inputs():
    b = np.arange(B, dtype=np.float64)[:, None]
    j = np.arange(G, dtype=np.float64)[None, :]
    x = np.sin(0.7 * b + 1.3 * j + 0.11 * b * j + 0.3) + 0.5 * np.cos(1.9 * b - 0.4 * j)
    k = np.arange(K, dtype=np.float64)[None, :]
    hard = (np.sin(1.3 * b + 2.3 * k + 0.17 * b * k + 0.5) > 0).astype(np.float64)
    soft = 0.5 + 0.45 * np.sin(0.9 * b + 1.7 * k + 0.2)
    c = np.concatenate([hard[:, :N_HARD], soft[:, N_HARD:]], axis=1)
    zz = np.arange(Z, dtype=np.float64)[None, :]
    eps = 1.2 * np.sin(1.1 * b + 0.7 * zz + 0.23 * b * zz + 0.9)
    c_new = c.copy()
    c_new[:, 0] = 1.0 - c_new[:, 0]
    c_new[:, N_HARD] = 0.8
    return f32(x), f32(c), f32(eps), f32(c_new)


def linear(P, name, h):
    return h @ P[f"{name}.weight"].T + P[f"{name}.bias"]


def layer_norm(P, name, h):
    mean = h.mean(axis=1, keepdims=True)
    var = ((h - mean) ** 2).mean(axis=1, keepdims=True)
    return (h - mean) / np.sqrt(var + 1e-5) * P[f"{name}.weight"] + P[f"{name}.bias"]


def blocks(P, prefix, h):
    for i in range(L):
        h = np.maximum(layer_norm(P, f"{prefix}.layers.{i}.norm", linear(P, f"{prefix}.layers.{i}.linear", h)), 0.0)
    return h


def encode(P, x, c):
    h = blocks(P, "_encoder", linear(P, "_encoder.x_embedder", np.concatenate([x, c], axis=1)))
    return linear(P, "_encoder.fc_mu", h), linear(P, "_encoder.fc_var", h)


def decode(P, z, c):
    h = blocks(P, "_decoder", linear(P, "_decoder.x_embedder", np.concatenate([z, c], axis=1)))
    return linear(P, "_decoder.output_later", h)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    P = params()
    x, c, eps, c_new = inputs()
    mu, logvar = encode(P, x, c)
    z = mu + np.exp(0.5 * logvar) * eps
    x_hat = decode(P, z, c)
    mse = float(((x_hat - x) ** 2).mean())
    kl = float(-0.5 * (1.0 + logvar - mu**2 - np.exp(logvar)).mean())
    edit_discard = decode(P, mu, c_new)
    edit_keep = x + edit_discard - decode(P, mu, c)
    doc = {
        "description": __doc__.strip().splitlines()[0],
        "config": {"input_dim": G, "n_hard": N_HARD, "n_soft": N_SOFT, "hidden_dim": H,
                   "n_layers": L, "latent_dim": Z, "beta": BETA, "batch": B},
        "params": {k: v.tolist() for k, v in P.items()},
        "inputs": {"x": x.tolist(), "c": c.tolist(), "eps": eps.tolist(), "c_new": c_new.tolist()},
        "forward": {"mu": mu.tolist(), "logvar": logvar.tolist(), "x_hat": x_hat.tolist()},
        "loss": {"reconstruction": mse, "kl": kl, "total": mse + BETA * kl},
        "edit": {"discard": edit_discard.tolist(), "keep": edit_keep.tolist()},
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
