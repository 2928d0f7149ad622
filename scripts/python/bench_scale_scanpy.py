"""scanpy's preprocessing on an .h5ad file, timed step by step, for
`cargo xtask bench-scale` (the comparison with conceptlab's own
normalize_total / log1p / PCA on the same file, in the same run).

Usage: python3 bench_scale_scanpy.py FILE [--n-pcs 128]
Prints one JSON line: seconds of each step, peak RSS (MiB), the matrix's
storage and density (stored non-zeros / cells x genes).
"""

import argparse
import json
import resource
import time

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--n-pcs", type=int, default=128)
    args = parser.parse_args()

    seconds = {}
    start = time.perf_counter()
    adata = ad.read_h5ad(args.file)
    seconds["read"] = time.perf_counter() - start
    x = adata.X
    n_cells, n_genes = adata.shape
    if sp.issparse(x):
        storage, nnz = type(x).__name__, int(x.nnz)
    else:
        storage, nnz = "dense", int(np.count_nonzero(x))

    # The same steps as conceptlab's fit: normalise to the median library
    # size (scanpy's default target), log1p, PCA on every gene.
    for name, step in [
        ("normalize_total", lambda: sc.pp.normalize_total(adata)),
        ("log1p", lambda: sc.pp.log1p(adata)),
        ("pca", lambda: sc.pp.pca(adata, n_comps=args.n_pcs)),
    ]:
        start = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - start

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "tool": "scanpy",
                "scanpy": sc.__version__,
                "anndata": ad.__version__,
                "cells": n_cells,
                "genes": n_genes,
                "storage": storage,
                "density": nnz / max(n_cells * n_genes, 1),
                "seconds": seconds,
                "preprocess_seconds": seconds["normalize_total"]
                + seconds["log1p"]
                + seconds["pca"],
                "peak_rss_mib": peak_mib,
            }
        )
    )


if __name__ == "__main__":
    main()
