#!/usr/bin/env python3
"""Golden values for the CBGM baseline (concept-embedding VAE) in conceptlab-models.

An independent numpy implementation of the forward pass and every loss term,
written from docs/architecture.md's description of CBGM and the module docs of
``crates/conceptlab-models/src/cbgm/``: per-concept context generators and
probability heads are separate layers here (looped over concepts), where the
Rust network stacks them; the BCE is the clamped-log form on probabilities,
where Rust computes it from logits.

Every parameter and input comes from a closed formula (no random generator):
- parameters in the order listed in ``param_order`` (p = 0, 1, ...), i the
  row-major flat index, a = 1.7*p + 0.61*i + 0.037*i^2 + 0.2:
  LayerNorm weight 1 + 0.1*sin(a), LayerNorm bias 0.1*sin(a), else 0.3*sin(a);
  rounded to float32;
- x[b,j] = sin(0.7b + 1.3j + 0.11bj + 0.3) + 0.5cos(1.9b - 0.4j);
  hard c[b,k] = 1 if sin(1.3b + 2.3k + 0.17bk + 0.5) > 0 else 0,
  soft c[b,k] = 0.5 + 0.45 sin(0.9b + 1.7k + 0.2);
  eps[b,z] = 1.2 sin(1.1b + 0.7z + 0.23bz + 0.9);
  observed[b,k] = 0 if (b + 2k) % 4 == 1 else 1 (missing annotations).

Computed in float64 from the float32-rounded values. Writes
``crates/conceptlab-models/tests/fixtures/cbgm_golden.json`` (or the path given
as the first argument). Needs only numpy:  python3 scripts/python/golden_cbgm.py
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

CASES = [
    # name, decoder, orthogonality, G, H, L, Z, U0, Kh, Ks, B
    ("no_residual_cosine", "no-residual", "cosine", 7, 6, 2, 5, 7, 3, 0, 9),
    ("skip_cross_covariance_mixed", "skip", "cross-covariance", 6, 5, 1, 4, 5, 2, 1, 8),
    ("residual_cosine_wide", "residual", "cosine", 5, 4, 1, 3, 4, 1, 0, 6),
]


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def sizes(k, u0):
    e = 1 if k > u0 else u0 // k
    return e, k * e


def make_params(G, H, L, Z, K, e, U, decoder):
    """Reference-layout parameters (linear W is out x in), in creation order."""
    shapes = []

    def linear(name, fan_in, fan_out):
        shapes.append((f"{name}.weight", (fan_out, fan_in), "w"))
        shapes.append((f"{name}.bias", (fan_out,), "w"))

    def norm(name, d):
        shapes.append((f"{name}.weight", (d,), "ln_w"))
        shapes.append((f"{name}.bias", (d,), "ln_b"))

    linear("_encoder.x_embedder", G, H)
    for i in range(L):
        linear(f"_encoder.layers.{i}.linear", H, H)
        norm(f"_encoder.layers.{i}.norm", H)
    linear("_encoder.fc_mu", H, Z)
    linear("_encoder.fc_var", H, Z)
    for k in range(K):
        linear(f"ctx.{k}", Z, 2 * e)
        linear(f"prob.{k}", 2 * e, 1)
    linear("cb_unk_layers.0", Z, U)
    if decoder == "skip":
        linear("_decoder.concept_embedder", U, H)
        linear("_decoder.unknown_embedder", U, H)
        for i in range(L):
            linear(f"_decoder.layers.{i}.linear", 2 * H, H)
            norm(f"_decoder.layers.{i}.norm", H)
    else:
        linear("_decoder.x_embedder", 2 * U, H)
        for i in range(L):
            linear(f"_decoder.layers.{i}.linear", H, H)
            norm(f"_decoder.layers.{i}.norm", H)
    linear("_decoder.output_later", H, G)
    params = {}
    for p, (name, shape, kind) in enumerate(shapes):
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.float64)
        a = 1.7 * p + 0.61 * i + 0.037 * i * i + 0.2
        v = {"w": 0.3 * np.sin(a), "ln_w": 1 + 0.1 * np.sin(a), "ln_b": 0.1 * np.sin(a)}[kind]
        params[name] = f32(v.reshape(shape))
    return params, [s[0] for s in shapes]


def lin(params, name, x):
    return x @ params[f"{name}.weight"].T + params[f"{name}.bias"]


def layer_norm(params, name, x):
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * params[f"{name}.weight"] + params[f"{name}.bias"]


def relu(x):
    return np.maximum(x, 0.0)


def block(params, prefix, x, residual):
    h = relu(layer_norm(params, f"{prefix}.norm", lin(params, f"{prefix}.linear", x)))
    return x + h if residual else h


def forward(params, cfg, x, eps):
    G, H, L, Z, K, e, U, decoder = (cfg[k] for k in ("G", "H", "L", "Z", "K", "e", "U", "decoder"))
    h = lin(params, "_encoder.x_embedder", x)
    for i in range(L):
        h = block(params, f"_encoder.layers.{i}", h, residual=False)
    mu = lin(params, "_encoder.fc_mu", h)
    logvar = lin(params, "_encoder.fc_var", h)
    z = mu + np.exp(0.5 * logvar) * eps
    contexts, logits, emb = [], [], []
    for k in range(K):
        s = relu(lin(params, f"ctx.{k}", z))
        contexts.append(s)
        logits.append(lin(params, f"prob.{k}", s)[:, 0])
    logits = np.stack(logits, axis=1)
    probs = 1.0 / (1.0 + np.exp(-logits))
    for k in range(K):
        s = contexts[k]
        emb.append(s[:, :e] * probs[:, k : k + 1] + s[:, e:] * (1 - probs[:, k : k + 1]))
    E = np.concatenate(emb, axis=1)
    u = relu(lin(params, "cb_unk_layers.0", z))
    if decoder == "skip":
        ce = lin(params, "_decoder.concept_embedder", E)
        h = lin(params, "_decoder.unknown_embedder", u)
        for i in range(L):
            joined = np.concatenate([h, ce], axis=1)
            h = h + relu(layer_norm(params, f"_decoder.layers.{i}.norm",
                                    lin(params, f"_decoder.layers.{i}.linear", joined)))
    else:
        h = lin(params, "_decoder.x_embedder", np.concatenate([u, E], axis=1))
        for i in range(L):
            h = block(params, f"_decoder.layers.{i}", h, residual=(decoder == "residual"))
    xhat = lin(params, "_decoder.output_later", h)
    return dict(mu=mu, logvar=logvar, z=z, logits=logits, probs=probs,
                contexts=np.concatenate(contexts, axis=1), embedding=E, unknown=u,
                reconstruction=xhat)


def losses(out, cfg, x, c, o):
    Kh, Ks = cfg["Kh"], cfg["Ks"]
    B = x.shape[0]
    rec = ((out["reconstruction"] - x) ** 2).mean()
    kl = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - np.exp(out["logvar"])).mean()
    p = np.clip(out["probs"], 0, 1)
    logp = np.maximum(np.log(p), -100.0)
    log1mp = np.maximum(np.log(1 - p), -100.0)
    bce = -(c * logp + (1 - c) * log1mp)
    concept = (bce[:, :Kh] * o[:, :Kh]).sum() / B + (((p - c) ** 2)[:, Kh:] * o[:, Kh:]).sum() / B
    E, u = out["embedding"], out["unknown"]
    if cfg["orthogonality"] == "cosine":
        dot = (E * u).sum(axis=1)
        ne = np.maximum(np.linalg.norm(E, axis=1), 1e-6)
        nu = np.maximum(np.linalg.norm(u, axis=1), 1e-6)
        orth = np.abs(dot / (ne * nu)).mean()
    else:
        Ec = E - E.mean(axis=0)
        uc = u - u.mean(axis=0)
        cov = uc.T @ Ec / (B - 1)
        orth = (cov ** 2).sum()
    total = rec + cfg["beta"] * kl + cfg["concepts_hp"] * concept + cfg["orthogonality_hp"] * orth
    return dict(total=total, reconstruction=rec, kl=kl, concept=concept, orthogonality=orth)


def case(name, decoder, orthogonality, G, H, L, Z, U0, Kh, Ks, B):
    K = Kh + Ks
    e, U = sizes(K, U0)
    cfg = dict(G=G, H=H, L=L, Z=Z, K=K, Kh=Kh, Ks=Ks, e=e, U=U, decoder=decoder,
               orthogonality=orthogonality, beta=0.3, concepts_hp=0.7, orthogonality_hp=0.45)
    params, order = make_params(G, H, L, Z, K, e, U, decoder)
    b = np.arange(B, dtype=np.float64)[:, None]
    j = np.arange(G, dtype=np.float64)[None, :]
    x = f32(np.sin(0.7 * b + 1.3 * j + 0.11 * b * j + 0.3) + 0.5 * np.cos(1.9 * b - 0.4 * j))
    k = np.arange(K, dtype=np.float64)[None, :]
    c = np.where(np.sin(1.3 * b + 2.3 * k + 0.17 * b * k + 0.5) > 0, 1.0, 0.0)
    c[:, Kh:] = 0.5 + 0.45 * np.sin(0.9 * b + 1.7 * k[:, Kh:] + 0.2)
    c = f32(c)
    o = np.where(((b + 2 * k) % 4) == 1, 0.0, 1.0)
    zz = np.arange(Z, dtype=np.float64)[None, :]
    eps = f32(1.2 * np.sin(1.1 * b + 0.7 * zz + 0.23 * b * zz + 0.9))
    out = forward(params, cfg, x, eps)
    # z = μ (the edit's abduction): the forward with zero noise.
    out_mu = forward(params, cfg, x, np.zeros_like(eps))
    # Rust's layout: the per-concept layers stacked.
    rust = {n: v for n, v in params.items() if not n.startswith(("ctx.", "prob."))}
    rust["concept_context.weight"] = np.concatenate([params[f"ctx.{i}.weight"] for i in range(K)], axis=0)
    rust["concept_context.bias"] = np.concatenate([params[f"ctx.{i}.bias"] for i in range(K)], axis=0)
    rust["concept_prob.weight"] = np.concatenate([params[f"prob.{i}.weight"] for i in range(K)], axis=0)
    rust["concept_prob.bias"] = np.concatenate([params[f"prob.{i}.bias"] for i in range(K)], axis=0)
    return {
        "config": {key: cfg[key] for key in ("G", "H", "L", "Z", "Kh", "Ks", "e", "U", "decoder",
                                             "orthogonality", "beta", "concepts_hp", "orthogonality_hp")}
        | {"n_unknown": U0},
        "param_order": order,
        "params": {n: v.tolist() for n, v in rust.items()},
        "inputs": {"x": x.tolist(), "c": c.tolist(), "observed": o.tolist(), "eps": eps.tolist()},
        "forward": {n: v.tolist() for n, v in out.items() if n != "z"},
        "forward_mu": {n: out_mu[n].tolist() for n in ("probs", "unknown", "contexts", "reconstruction")},
        "loss": {n: float(v) for n, v in losses(out, cfg, x, c, o).items()},
    }


def main():
    root = Path(__file__).resolve().parents[2]
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "crates/conceptlab-models/tests/fixtures/cbgm_golden.json"
    doc = {
        "generator": "scripts/python/golden_cbgm.py (numpy " + np.__version__ + ")",
        "cases": {c[0]: case(*c) for c in CASES},
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
