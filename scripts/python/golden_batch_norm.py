#!/usr/bin/env python3
"""Golden values for conceptlab-nn's BatchNorm1d, computed with numpy alone.

PyTorch's `nn.BatchNorm1d(D, eps=1e-5, momentum=0.1)` semantics in float64:
training normalises by the batch mean and biased variance and moves the
running statistics by `running = (1 - m) * running + m * batch` (the running
variance with the unbiased batch variance); evaluation normalises by the
running statistics. Also the gradients of L = sum(y * w) in the first
training step (the closed-form batch-norm backward pass).

Inputs (b row, j column), rounded to float32:
  x1[b,j] = sin(0.7*b + 1.3*j + 0.3) * (1 + 0.5*j) + 0.2*j
  x2[b,j] = cos(0.9*b - 0.6*j + 0.1) * 2 + 1
  x3[b,j] = sin(1.7*b + 0.4*j)
  gamma[j] = 1 + 0.1*sin(j + 0.5), beta[j] = 0.2*cos(j)
  w[b,j]  = sin(0.3*b + 0.8*j + 0.2)

Writes crates/conceptlab-nn/tests/fixtures/batch_norm_golden.json.
Run: python3 scripts/python/golden_batch_norm.py
"""

import json
import os
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "crates", "conceptlab-nn", "tests", "fixtures", "batch_norm_golden.json")
B, D, EPS, MOMENTUM = 6, 4, 1e-5, 0.1


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def main():
    b = np.arange(B, dtype=np.float64)[:, None]
    j = np.arange(D, dtype=np.float64)[None, :]
    x1 = f32(np.sin(0.7 * b + 1.3 * j + 0.3) * (1 + 0.5 * j) + 0.2 * j)
    x2 = f32(np.cos(0.9 * b - 0.6 * j + 0.1) * 2 + 1)
    x3 = f32(np.sin(1.7 * b + 0.4 * j))
    jj = np.arange(D, dtype=np.float64)
    gamma = f32(1 + 0.1 * np.sin(jj + 0.5))
    beta = f32(0.2 * np.cos(jj))
    w = f32(np.sin(0.3 * b + 0.8 * j + 0.2))
    rm, rv = np.zeros(D), np.ones(D)
    out = {}
    for step, x in [(1, x1), (2, x2)]:
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mean) / np.sqrt(var + EPS)
        y = xhat * gamma + beta
        rm = (1 - MOMENTUM) * rm + MOMENTUM * mean
        rv = (1 - MOMENTUM) * rv + MOMENTUM * x.var(axis=0, ddof=1)
        out[f"train{step}"] = {"y": y.tolist(), "running_mean": rm.tolist(), "running_var": rv.tolist()}
        if step == 1:
            dy = w
            inv = 1.0 / np.sqrt(var + EPS)
            out["grad"] = {
                "x": ((gamma * inv / B) * (B * dy - dy.sum(axis=0) - xhat * (dy * xhat).sum(axis=0))).tolist(),
                "gamma": (dy * xhat).sum(axis=0).tolist(),
                "beta": dy.sum(axis=0).tolist(),
            }
    out["eval"] = {"y": ((x3 - rm) / np.sqrt(rv + EPS) * gamma + beta).tolist()}
    doc = {
        "description": __doc__.strip().splitlines()[0],
        "eps": EPS,
        "momentum": MOMENTUM,
        "inputs": {"x1": x1.tolist(), "x2": x2.tolist(), "x3": x3.tolist(), "gamma": gamma.tolist(),
                   "beta": beta.tolist(), "w": w.tolist()},
        **out,
    }
    path = sys.argv[1] if len(sys.argv) > 1 else OUT
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
