"""Rewrite an .h5ad with X as a float32 CSR matrix and no layers, its cells
repeated REPEAT times (renamed so obs names stay unique): the input of the
streaming-edit measurement in docs/performance.md.

    python3 scripts/python/to_csr.py IN.h5ad OUT.h5ad [REPEAT [DENSITY]]

DENSITY keeps only each cell's largest counts (ties kept), about that share
of all entries: synthetic counts are nearly dense, atlas data is not.
"""

import sys

import anndata
import numpy as np
import scipy.sparse as sp

adata = anndata.read_h5ad(sys.argv[1])
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
adata.X = sp.csr_matrix(np.asarray(adata.X, dtype=np.float32))
if len(sys.argv) > 4:
    cut = np.quantile(adata.X.data, 1.0 - float(sys.argv[4]) * adata.shape[0] * adata.shape[1] / adata.X.nnz)
    adata.X.data[adata.X.data < cut] = 0
    adata.X.eliminate_zeros()
adata.layers.clear()
adata.obsm.clear()
parts = []
for k in range(repeat):
    part = adata.copy()
    part.obs_names = [f"{name}-{k}" for name in adata.obs_names]
    parts.append(part)
out = anndata.concat(parts, merge="same", uns_merge="same") if repeat > 1 else adata
out.uns = adata.uns
out.X = sp.csr_matrix(out.X, dtype=np.float32)
out.write_h5ad(sys.argv[2])
print(out.shape, out.X.nnz)
