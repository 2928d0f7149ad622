#!/usr/bin/env python3
"""Golden values for conceptlab_core::preprocess::score_gene_sets.

Fixture: the first 120 cells x 200 genes of data/pbmc68k_reduced.h5ad's
``raw.X`` (log-normalised expression, float32) and the hand-written GMT file
crates/conceptlab-core/tests/fixtures/gene_sets.gmt (4 sets, one with only
two genes in the data, one with a duplicate gene, genes absent from the data).

Records:

- the reference's ``annotate_set_concepts`` score (spec §2.7), computed here
  with numpy from the formula: genes restricted to those of the data that are
  in any set of the file; per cell mean and population variance over them;
  ``C[n,p] = sum_{g in p} (x_ng - mu_n)^2 / (|p| sigma2_n)``; and
  ``1 - exp(-temp C)`` with temp = 0.7;
- scanpy's ``sc.tl.score_genes`` with ctrl_size=50 and n_bins=25 (scanpy's
  defaults) and with n_bins=5. scanpy draws control genes with numpy's
  generator, which cannot be reproduced outside numpy; with 200 genes the
  bins hold at most 8 (n_bins=25) or 50 (n_bins=5) genes, never more than
  ctrl_size, so scanpy takes every gene of each bin and the control set is
  deterministic. The script asserts that.

Usage: gene_set_goldens.py OUT.json   (CI regenerates it and the Rust test
``crates/conceptlab-core/tests/gene_sets.rs`` reads it via
CONCEPTLAB_GOLDEN_GENE_SETS)
"""

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "pbmc68k_reduced.h5ad"
GMT = ROOT / "crates" / "conceptlab-core" / "tests" / "fixtures" / "gene_sets.gmt"
N_CELLS, N_GENES = 120, 200
MIN_GENES = 5
TEMP = 0.7
CTRL_SIZE = 50


def f32_list(a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return [float(str(v)) for v in a]
    return [f32_list(row) for row in a]


def read_gmt(path):
    sets = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        name, _desc, *genes = line.split("\t")
        sets[name] = list(dict.fromkeys(g for g in genes if g))
    return sets


def reference_scores(x, var_names, sets):
    genes = sorted({g for gs in sets.values() for g in gs})
    shared = [g for g in genes if g in set(var_names)]
    m = np.zeros((len(shared), len(sets)))
    pos = {g: i for i, g in enumerate(shared)}
    for p, gs in enumerate(sets.values()):
        for g in gs:
            if g in pos:
                m[pos[g], p] = 1.0
    col = {g: j for j, g in enumerate(var_names)}
    xs = x[:, [col[g] for g in shared]].astype(np.float64)
    mu = xs.mean(axis=1, keepdims=True)
    var = xs.var(axis=1, keepdims=True)
    c = ((xs - mu) ** 2 @ m) / (m.sum(axis=0) * var)
    return c


def check_bins_deterministic(adata, n_bins):
    """Every bin within ctrl_size genes, and bins identical from float32 and
    float64 gene means (the Rust code averages in float64)."""
    x = adata.X
    cuts = []
    for means in (np.nanmean(x, axis=0), np.nanmean(x.astype(np.float64), axis=0)):
        avg = pd.Series(means, index=adata.var_names)
        n_items = int(np.round(len(avg) / (n_bins - 1)))
        cuts.append(avg.rank(method="min") // n_items)
    assert (cuts[0] == cuts[1]).all(), "bins depend on float32 rounding"
    sizes = cuts[0].value_counts()
    assert sizes.max() <= CTRL_SIZE, f"a bin has {sizes.max()} genes > {CTRL_SIZE}"
    return int(sizes.max())


def main(out):
    warnings.simplefilter("ignore")
    full = sc.read_h5ad(DATA)
    raw = full.raw.to_adata()
    sub = raw[:N_CELLS, :N_GENES]
    x = np.asarray(sub.X.toarray() if hasattr(sub.X, "toarray") else sub.X, dtype=np.float32)
    var_names = list(sub.var_names)
    adata = ad.AnnData(X=x.copy(), obs=pd.DataFrame(index=list(sub.obs_names)),
                       var=pd.DataFrame(index=var_names))
    sets = read_gmt(GMT)
    present = {n: [g for g in gs if g in set(var_names)] for n, gs in sets.items()}
    scored = [n for n in sets if len(present[n]) >= MIN_GENES]
    skipped = [n for n in sets if len(present[n]) < MIN_GENES]

    c = reference_scores(x, var_names, sets)
    names = list(sets)
    ref = {n: c[:, names.index(n)].tolist() for n in scored}
    unit = {n: (1.0 - np.exp(-TEMP * c[:, names.index(n)])).tolist() for n in scored}

    scanpy = {}
    max_bin = {}
    for n_bins in (25, 5):
        max_bin[n_bins] = check_bins_deterministic(adata, n_bins)
        scores = {}
        for n in scored:
            sc.tl.score_genes(adata, present[n], ctrl_size=CTRL_SIZE, n_bins=n_bins,
                              score_name="s", random_state=0)
            scores[n] = adata.obs["s"].to_numpy(dtype=np.float64).tolist()
        scanpy[str(n_bins)] = scores

    golden = {
        "versions": {k: version(k) for k in ("scanpy", "anndata", "numpy", "pandas")},
        "source": f"{DATA.name}: raw.X[:{N_CELLS}, :{N_GENES}]",
        "x": f32_list(x),
        "var_names": var_names,
        "sets": sets,
        "min_genes": MIN_GENES,
        "scored": scored,
        "skipped": skipped,
        "shared": {n: len(present[n]) for n in sets},
        "reference": ref,
        "temp": TEMP,
        "reference_unit_interval": unit,
        "ctrl_size": CTRL_SIZE,
        "max_bin_size": {str(k): v for k, v in max_bin.items()},
        "scanpy": scanpy,
    }
    Path(out).write_text(json.dumps(golden))


if __name__ == "__main__":
    main(sys.argv[1])
