#!/usr/bin/env python3
"""Cost of the reference synthetic generator's per-cell process, for comparison.

The reference (conceptlab's ``OmicsDataGenerator._model``, spec-data-eval §1.3)
loops over cells in Python; for each cell it draws the categorical
assignments, the concepts, a library offset, per-gene Gaussian noise and
exogenous uniforms, and converts them to counts with ``scipy.stats.poisson.ppf``.
This script re-implements that loop with the same numpy/scipy calls (it is not
the reference's code) and times it on N cells, printing one JSON line:

    {"tool": "numpy-reference-loop", "cells": N, "genes": F, "seconds": s,
     "seconds_per_cell": s / N, "peak_rss_mib": ...}

Usage: reference_generator.py N_CELLS N_GENES N_CONCEPTS
"""

import json
import resource
import sys
import time

import numpy as np
from scipy.stats import poisson


def main(argv):
    n, f, c = (int(a) for a in argv)
    rng = np.random.default_rng(0)
    b, t, u = 2, 3, 4
    p_batch = rng.dirichlet(np.full(b, 10.0))
    p_tissue = rng.dirichlet(np.full(t, 10.0))
    p_type = np.stack([rng.dirichlet(np.ones(u)) for _ in range(t)])
    p_concept = np.stack([rng.dirichlet(np.full(c, 0.2)) for _ in range(u)])
    std_l = rng.uniform(0.01, 0.03, b)
    gamma = rng.normal(0, 0.06, (b, f))
    omega = rng.normal(0, 0.04, (u, f))
    tau = rng.normal(0, 0.05, (t, f))
    coef = rng.normal(0, 0.08, (c, f))
    w = rng.uniform(0, np.log(5), f)
    sigma = np.zeros((c, c))
    counts = np.zeros((n, f))
    start = time.perf_counter()
    for i in range(n):
        bi = np.argmax(np.random.multinomial(1, p_batch))
        ti = np.argmax(np.random.multinomial(1, p_tissue))
        ui = np.argmax(np.random.multinomial(1, p_type[ti]))
        mu = np.log((p_concept[ui] + 1e-8) / (1 - p_concept[ui] + 1e-8))
        logits = np.clip(rng.multivariate_normal(mu, sigma), -8, 8)
        v = rng.binomial(1, 1 / (1 + np.exp(-logits)))
        l = rng.normal(0, std_l[bi])
        eps = rng.normal(0, 0.01, f)
        eta = w + v @ coef + omega[ui] + gamma[bi] + tau[ti] + l + eps
        e = rng.uniform(size=f)
        counts[i] = poisson.ppf(e, np.exp(eta))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "tool": "numpy-reference-loop", "cells": n, "genes": f, "concepts": c,
        "seconds": round(seconds, 4), "seconds_per_cell": seconds / n,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
