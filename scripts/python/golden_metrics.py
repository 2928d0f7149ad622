#!/usr/bin/env python3
"""Golden values for conceptlab-eval, computed with scipy and scikit-learn.

Writes small deterministic point sets and every metric conceptlab-eval
implements, computed here independently:

- MMD²: scikit-learn ``rbf_kernel`` with gamma = 1/d, unbiased estimator
  (diagonals excluded), clipped at 0 — scCBGM's ``calculate_mmd``;
- rMMD: MMD²(target, prediction) / (min over training groups with >= 10
  cells of MMD²(target, group) + 1e-8);
- E-distance: scipy ``cdist`` (Euclidean), means over all pairs;
- Fréchet: ``scipy.linalg.sqrtm`` of the covariance product, real part;
- R² (squared Pearson via ``scipy.stats.pearsonr``, and
  ``sklearn.metrics.r2_score``), Pearson delta, MSE/MAE of means and deltas;
- cell-level MSE with pairs matched by key (prediction rows shuffled).

Usage: golden_metrics.py OUT.json   (CI regenerates it and the Rust test
``crates/conceptlab-eval/tests/golden.rs`` reads it via CONCEPTLAB_GOLDEN_METRICS)
"""

import json
import sys

import numpy as np
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist
from scipy.stats import pearsonr
from sklearn.metrics import r2_score
from sklearn.metrics.pairwise import rbf_kernel


def mmd2(x, y):
    gamma = 1.0 / x.shape[1]
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=gamma), rbf_kernel(y, y, gamma=gamma), rbf_kernel(x, y, gamma=gamma)
    m, n = len(x), len(y)
    value = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
             - 2 * kxy.mean())
    return max(float(value), 0.0)


def e_distance(x, y):
    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def frechet(x, y):
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = sqrtm(cx @ cy)
    return float(((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * np.real(root)))


def main(out):
    rng = np.random.default_rng(2026)
    d = 6
    target = rng.normal(1.0, 1.0, (40, d))
    prediction = rng.normal(0.4, 1.2, (35, d))
    control = rng.normal(0.0, 1.0, (30, d))
    # "tiny" matches the target best but has fewer than 10 cells: it must be skipped.
    train = np.vstack([rng.normal(0.0, 1.0, (25, d)), rng.normal(1.7, 1.0, (20, d)), rng.normal(1.0, 1.0, (5, d))])
    labels = ["control"] * 25 + ["other"] * 20 + ["tiny"] * 5
    groups = {g: train[[i for i, l in enumerate(labels) if l == g]] for g in dict.fromkeys(labels)}
    usable = {g: v for g, v in groups.items() if len(v) >= 10}
    nearest = min(usable, key=lambda g: mmd2(target, usable[g]))
    d_train = mmd2(target, usable[nearest])

    mt, mp, mc = target.mean(0), prediction.mean(0), control.mean(0)
    order = rng.permutation(len(prediction))
    keys = [f"cell_{i}" for i in range(len(prediction))]
    truth_cells = prediction + rng.normal(0, 0.3, prediction.shape)
    cell_mse = float(np.mean(((prediction - truth_cells) ** 2).mean(1)))

    golden = {
        "dims": d,
        "target": target.tolist(), "prediction": prediction.tolist(), "control": control.tolist(),
        "train": train.tolist(), "train_labels": labels,
        "mmd2": mmd2(target, prediction),
        "rmmd": {"ratio": mmd2(target, prediction) / (d_train + 1e-8), "nearest_group": nearest,
                 "nearest_group_distance": d_train},
        "e_distance": e_distance(target, prediction),
        "frechet": frechet(target, prediction),
        "r2_pearson_means": float(pearsonr(mt, mp)[0] ** 2),
        "r2_score_means": float(r2_score(mt, mp)),
        "pearson_delta": float(pearsonr(mt - mc, mp - mc)[0]),
        "mse_means": float(((mt - mp) ** 2).mean()), "mae_means": float(np.abs(mt - mp).mean()),
        "cell_level": {
            "prediction": prediction[order].tolist(), "prediction_keys": [keys[i] for i in order],
            "truth": truth_cells.tolist(), "truth_keys": keys, "mse": cell_mse,
        },
    }
    with open(out, "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
