#!/usr/bin/env python3
"""Golden values for conceptlab_core::preprocess, computed with scanpy,
scikit-misc and scikit-learn.

From a small deterministic count matrix (negative-binomial counts with four
cell-type programmes, all-zero genes, a constant gene and all-zero cells)
and an obs frame, this records:

- scanpy ``normalize_total`` with ``target_sum=1214`` and with the median
  rule, on dense and on CSR input (the median rules differ), and ``log1p``;
- ``highly_variable_genes(flavor="seurat", n_top_genes=50)`` on the log
  data and ``flavor="seurat_v3"`` (50 genes) on the counts, and
  scikit-misc's loess fit behind the latter (interpolated surface, as scanpy
  uses it, and the direct surface);
- scikit-learn ``PCA(n_components=20, svd_solver="full")`` on the log data
  (the exact solver path in Rust), and on a 600 x 700 matrix generated from
  an integer hash that the Rust test regenerates (the randomized path);
- the expected concept matrix of the obs frame under conceptlab's rules
  (built with pandas ``get_dummies``; a two-category column indicates its
  second category).

Usage: golden_preprocess.py OUT.json   (CI regenerates it and the Rust test
``crates/conceptlab-core/tests/preprocess.rs`` reads it via
CONCEPTLAB_GOLDEN_PREPROCESS)
"""

import json
import sys
import warnings
from importlib.metadata import version

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from skmisc.loess import loess
from sklearn.decomposition import PCA

N_CELLS, N_GENES = 300, 400
ZERO_GENES = [3, 50, 51, 222, 399]
CONSTANT_GENE = 7
ZERO_CELLS = [4, 120, 299]
TARGET = 1214.0
N_TOP = 50
N_PCS = 20
# Rows of each normalised matrix stored (the zero cells 4 and 120 among
# them); downstream goldens (HVG, PCA) check the Rust log data in full.
ROWS_KEPT = 130
MEDIAN_ROWS = 20
MASK64 = (1 << 64) - 1


def f32_list(a):
    """Shortest float32 text of each value, so the JSON stays small."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return [float(str(v)) for v in a]
    return [f32_list(row) for row in a]


def f64_list(a):
    return [None if np.isnan(v) else float(v) for v in np.asarray(a, dtype=np.float64)]


def counts_and_obs():
    rng = np.random.default_rng(1214)
    types = rng.integers(0, 4, N_CELLS)
    base = rng.lognormal(-1.0, 1.5, N_GENES)
    programme = rng.lognormal(0.0, 0.8, (4, N_GENES))
    profile = base[None, :] * programme[types]
    profile /= profile.sum(1, keepdims=True)
    library = rng.lognormal(np.log(1200.0), 0.4, N_CELLS)
    mu = profile * library[:, None]
    mu[:, ZERO_GENES] = 0.0
    shape = 2.0
    counts = rng.poisson(rng.gamma(shape, mu / shape)).astype(np.int64)
    counts[:, CONSTANT_GENE] = 1
    counts[ZERO_CELLS, :] = 0

    type_names = np.array(["B", "Mono", "NK", "T"])
    cell_type = pd.Categorical(type_names[types], categories=["T", "B", "NK", "Mono"])
    cell_type[3] = np.nan
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(rng.choice(["ctrl", "stim"], N_CELLS)),
            "cell_type": cell_type,
            "is_doublet": rng.random(N_CELLS) < 0.1,
            "dose": rng.choice([0.0, 0.1, 1.0, 10.0], N_CELLS),
        },
        index=[f"cell_{i}" for i in range(N_CELLS)],
    )
    return counts, obs


def expected_concepts(obs):
    """Conceptlab's encoding, written independently with pandas."""
    cond = pd.get_dummies(obs["condition"], prefix="condition", prefix_sep="=", dtype=np.float32)
    cond = cond[["condition=stim"]]
    ct = pd.get_dummies(obs["cell_type"], prefix="cell_type", prefix_sep="=", dtype=np.float32)
    doublet = obs[["is_doublet"]].astype(np.float32)
    dose = obs["dose"]
    dose = ((dose - dose.min()) / (dose.max() - dose.min())).astype(np.float32).to_frame()
    values = pd.concat([cond, ct, doublet, dose], axis=1)
    observed = np.ones(values.shape, dtype=np.float32)
    missing = obs["cell_type"].isna().to_numpy()
    observed[missing, 1:5] = 0.0
    return {
        "hard": ["condition", "cell_type", "is_doublet"],
        "soft": ["dose"],
        "names": list(values.columns),
        "values": values.to_numpy().tolist(),
        "observed": observed.tolist(),
    }


def normalized(x, target):
    a = ad.AnnData(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(a, target_sum=target)
    out = a.X.toarray() if sp.issparse(a.X) else a.X
    return np.asarray(out, dtype=np.float32)


def median_target(x, dense):
    totals = np.asarray(x.sum(1)).ravel().astype(np.float32)
    return float(np.median(totals[totals > 0]) if dense else np.median(totals))


def splitmix_uniform(rows, cols, salt):
    """Uniform [0, 1) values from splitmix64 of (salt, row, col); the Rust
    test computes the same bits."""
    idx = (np.arange(rows, dtype=np.uint64)[:, None] * np.uint64(cols)
           + np.arange(cols, dtype=np.uint64)[None, :])
    with np.errstate(over="ignore"):
        z = idx + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def hashed_matrix(rows, cols, rank, decay, noise):
    """sum_r decay^r a_r b_r^T + noise, from hashed uniforms, as float32."""
    a = splitmix_uniform(rows, rank, 1) - 0.5
    b = splitmix_uniform(rank, cols, 2) - 0.5
    e = splitmix_uniform(rows, cols, 3) - 0.5
    x = np.zeros((rows, cols))
    for r in range(rank):
        x += (10.0 * decay**r) * np.outer(a[:, r], b[r, :])
    x += noise * e
    return x.astype(np.float32)


def pca_golden(x, k, rows_kept):
    pca = PCA(n_components=k, svd_solver="full").fit(x.astype(np.float64))
    scores = pca.transform(x.astype(np.float64))
    return {
        "n_components": k,
        "mean": f32_list(pca.mean_),
        "components": f32_list(pca.components_),
        "explained_variance": pca.explained_variance_.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
        "scores": f32_list(scores[:rows_kept]),
    }


def main(out):
    counts, obs = counts_and_obs()
    x32 = counts.astype(np.float32)
    csr = sp.csr_matrix(x32)

    norm_dense = normalized(x32.copy(), TARGET)
    norm_csr = normalized(csr.copy(), TARGET)
    assert np.array_equal(norm_dense, norm_csr)
    med_dense = normalized(x32.copy(), None)
    med_csr = normalized(csr.copy(), None)

    a = ad.AnnData(norm_dense.copy())
    sc.pp.log1p(a)
    log = np.asarray(a.X, dtype=np.float32)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hvg = sc.pp.highly_variable_genes(ad.AnnData(log.copy()), flavor="seurat", n_top_genes=N_TOP,
                                          inplace=False)
        hvg_sparse = sc.pp.highly_variable_genes(ad.AnnData(sp.csr_matrix(log)), flavor="seurat",
                                                 n_top_genes=N_TOP, inplace=False)
        v3 = sc.pp.highly_variable_genes(ad.AnnData(x32.copy()), flavor="seurat_v3", n_top_genes=N_TOP,
                                         inplace=False)
    assert (hvg["highly_variable"].to_numpy() == hvg_sparse["highly_variable"].to_numpy()).all()

    # The loess fit inside seurat_v3, both surfaces.
    mean = x32.astype(np.float64).mean(0)
    var = (x32.astype(np.float64) ** 2).mean(0) - mean**2
    var *= N_CELLS / (N_CELLS - 1)
    varying = var > 0
    lx, ly = np.log10(mean[varying]), np.log10(var[varying])
    fits = {}
    for surface in ["interpolate", "direct"]:
        model = loess(lx, ly, span=0.3, degree=2, surface=surface)
        model.fit()
        fits[surface] = model.outputs.fitted_values.tolist()

    hashed = hashed_matrix(600, 700, rank=40, decay=0.93, noise=0.2)

    golden = {
        "versions": {
            name: version(name)
            for name in ["scanpy", "anndata", "scikit-learn", "scikit-misc", "numpy", "pandas"]
        },
        "counts": counts.tolist(),
        "obs": {
            "index": list(obs.index),
            "condition": {"categories": list(obs["condition"].cat.categories),
                          "codes": obs["condition"].cat.codes.tolist()},
            "cell_type": {"categories": list(obs["cell_type"].cat.categories),
                          "codes": obs["cell_type"].cat.codes.tolist()},
            "is_doublet": obs["is_doublet"].tolist(),
            "dose": obs["dose"].tolist(),
        },
        "concepts": expected_concepts(obs),
        "target_sum": TARGET,
        "normalized_rows": f32_list(norm_dense[:ROWS_KEPT]),
        "median_target_dense": median_target(x32, dense=True),
        "median_target_sparse": median_target(csr, dense=False),
        "normalized_median_dense_rows": f32_list(med_dense[:MEDIAN_ROWS]),
        "normalized_median_sparse_rows": f32_list(med_csr[:MEDIAN_ROWS]),
        "log1p_rows": f32_list(log[:ROWS_KEPT]),
        "hvg_seurat": {
            "n_top": N_TOP,
            "means": f64_list(hvg["means"]),
            "dispersions": f64_list(hvg["dispersions"]),
            "dispersions_norm": f64_list(hvg["dispersions_norm"]),
            "selected": np.flatnonzero(hvg["highly_variable"].to_numpy()).tolist(),
        },
        "hvg_seurat_v3": {
            "n_top": N_TOP,
            "means": f64_list(v3["means"]),
            "variances": f64_list(v3["variances"]),
            "variances_norm": f64_list(v3["variances_norm"]),
            "selected": np.flatnonzero(v3["highly_variable"].to_numpy()).tolist(),
        },
        "loess": {"x": lx.tolist(), "y": ly.tolist(), "span": 0.3, "degree": 2,
                  "interpolate": fits["interpolate"], "direct": fits["direct"]},
        "pca_log": pca_golden(log, N_PCS, rows_kept=N_CELLS),
        "pca_hashed": {"rows": 600, "cols": 700, "rank": 40, "decay": 0.93, "noise": 0.2,
                       **pca_golden(hashed, N_PCS, rows_kept=10)},
    }
    with open(out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1])
