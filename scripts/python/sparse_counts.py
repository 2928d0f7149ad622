"""Writes a sparse (CSR) count matrix as .h5ad for memory measurements of
`fit` on sparse input (docs/performance.md, "Sparse data").

Usage: python3 scripts/python/sparse_counts.py OUT.h5ad CELLS GENES DENSITY

Cells fall into four groups; each group raises the rate of its own block of
genes, so the data have structure for PCA and a hard concept (`group`) and a
boolean concept (`treated`) to fit on. Values are Poisson counts on a random
~DENSITY fraction of entries; the file is seeded (seed 0).
"""

import sys

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp


def main() -> None:
    out, cells, genes, density = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    rng = np.random.default_rng(0)
    group = rng.integers(0, 4, size=cells)
    treated = rng.random(cells) < 0.5
    block = genes // 4
    rows, cols, vals = [], [], []
    chunk = 20_000
    for start in range(0, cells, chunk):
        stop = min(cells, start + chunk)
        n = stop - start
        nnz = rng.binomial(genes, density, size=n)
        for i in range(n):
            c = np.sort(rng.choice(genes, size=nnz[i], replace=False))
            g = group[start + i]
            rate = 1.0 + 3.0 * ((c // block) == g) + 1.5 * treated[start + i] * (c % 7 == 0)
            v = rng.poisson(rate) + 1
            rows.append(np.full(c.size, start + i, dtype=np.int64))
            cols.append(c)
            vals.append(v.astype(np.float32))
    x = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(cells, genes),
        dtype=np.float32,
    )
    obs = pd.DataFrame(
        {"group": pd.Categorical([f"g{k}" for k in group]), "treated": treated},
        index=[f"cell{i}" for i in range(cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(genes)])
    anndata.AnnData(X=x, obs=obs, var=var).write_h5ad(out)


if __name__ == "__main__":
    main()
