#!/usr/bin/env python3
"""Python reference timings for `cargo xtask bench-eval` (same data, same run).

Reads raw little-endian float64 matrices written by the xtask and times:
- unbiased RBF MMD² (gamma = 1/d) with scikit-learn's rbf_kernel, as scCBGM;
- the E-distance with scipy's cdist, as pertpy computes it;
- per-gene Wilcoxon rank-sum tests with scipy.stats.mannwhitneyu(axis=0,
  method="asymptotic") — vectorised over genes.
Prints one JSON line with seconds and values.

Usage: bench_metrics.py X.f64 Y.f64 N D GROUP.f64 REST.f64 N1 N0 GENES
"""

import json
import sys
import time

import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu
from sklearn.metrics.pairwise import rbf_kernel


def load(path, rows, cols):
    return np.fromfile(path, dtype="<f8").reshape(rows, cols)


def main(a):
    x, y = load(a[0], int(a[2]), int(a[3])), load(a[1], int(a[2]), int(a[3]))
    g = 1.0 / x.shape[1]
    t0 = time.perf_counter()
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=g), rbf_kernel(y, y, gamma=g), rbf_kernel(x, y, gamma=g)
    m, n = len(x), len(y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2 * kxy.mean())
    del kxx, kyy, kxy
    t1 = time.perf_counter()
    edist = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    t2 = time.perf_counter()
    genes = int(a[8])
    group, rest = load(a[4], int(a[6]), genes), load(a[5], int(a[7]), genes)
    t3 = time.perf_counter()
    p = mannwhitneyu(group, rest, axis=0, method="asymptotic", use_continuity=False).pvalue
    t4 = time.perf_counter()
    print(json.dumps({"tool": "python (numpy/scipy/scikit-learn)", "mmd2": float(max(mmd, 0.0)),
                      "mmd_seconds": t1 - t0, "e_distance": float(edist), "e_distance_seconds": t2 - t1,
                      "wilcoxon_seconds": t4 - t3, "wilcoxon_min_p": float(np.min(p))}))


if __name__ == "__main__":
    main(sys.argv[1:])
