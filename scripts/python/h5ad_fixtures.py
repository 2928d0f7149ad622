#!/usr/bin/env python3
"""Write small, deterministic ``.h5ad`` fixtures with the reference writer (anndata).

Usage::

    python3 scripts/python/h5ad_fixtures.py OUTDIR [--golden DIR]

``OUTDIR`` receives a set of focused files that together cover every element
type the Rust crate ``conceptlab-io`` must read and write: dense X of several
dtypes, CSR/CSC X (float and integer), empty sparse rows, dense and sparse
layers, every obs/var column kind (categoricals, numerics, bool, strings,
pandas nullable Int64/boolean/string), named and unnamed indices, non-ASCII
names, obsm/varm/obsp/varp, a nested ``uns`` and ``raw``.  Some files are
gzip-compressed, the others are uncompressed.

``--golden DIR`` additionally writes ``DIR/python_written.h5ad`` (one small,
gzip-compressed file that combines most features) and ``DIR/python_written.json``
listing facts about it that a Rust unit test can check without Python (shape,
nnz, sums, first values, column dtypes, categories, NA positions, the uns tree
and the HDF5 layout with every encoding-type / encoding-version attribute).

CI use: generate fixtures into a temp dir, run ``conceptlab-cli convert`` on
each file into a second dir, then run ``check_roundtrip.py`` on the two dirs.
All randomness comes from a seeded ``numpy.random.Generator`` (seed derived
from the file name), so the values are identical on every run.
"""

import argparse
import json
import math
import sys
import zlib
from importlib.metadata import version
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

# anndata 0.12 refuses to write pandas StringArray ("string" dtype) columns
# unless this opt-in is set (it defaults to False for compatibility with <0.11).
ad.settings.allow_write_nullable_strings = True

SEED = 20240607


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded from the fixture name, so files are independent."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def frame(prefix: str, n: int, index_name: str | None = None) -> pd.DataFrame:
    """Empty DataFrame indexed by prefix000, prefix001, ..."""
    return pd.DataFrame(index=pd.Index([f"{prefix}{i:03d}" for i in range(n)], name=index_name))


def axes(n: int, m: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Default obs (cell_000...) and var (gene_000...) frames, unnamed index."""
    return frame("cell_", n), frame("gene_", m)


def sparse_counts(rng, shape, density, dtype, fmt="csr", empty_rows=()):
    """Random sparse counts (1..50) with the given rows forced to be empty."""
    dense = rng.integers(1, 51, size=shape) * (rng.random(shape) < density)
    dense[list(empty_rows), :] = 0
    m = sp.csr_matrix(dense.astype(dtype)) if fmt == "csr" else sp.csc_matrix(dense.astype(dtype))
    m.sort_indices()
    return m


# Fixtures: name -> (builder(rng) -> AnnData, write_h5ad keyword arguments)

GZIP = {"compression": "gzip"}
NONE: dict = {}


def fx_dense_f32(rng):
    # Dense float32 X, default unnamed obs/var index, CSR int32 + dense f64 layers.
    n, m = 120, 30
    a = ad.AnnData(rng.standard_normal((n, m)).astype(np.float32), *axes(n, m))
    a.obs["batch"] = pd.Categorical(rng.choice(["b1", "b2"], n))
    a.layers["counts"] = sparse_counts(rng, (n, m), 0.3, np.int32)
    a.layers["scaled"] = rng.standard_normal((n, m))  # float64
    return a


def fx_dense_f64_gzip(rng):
    # Dense float64 X (gzip), named obs index, dense int64 layer.
    n, m = 80, 25
    a = ad.AnnData(rng.standard_normal((n, m)), frame("cell_", n, "cell_id"), frame("gene_", m))
    a.layers["counts"] = rng.integers(0, 1000, (n, m), dtype=np.int64)
    return a


def fx_dense_i32_counts(rng):
    # Dense int32 counts X (uncompressed), dense float32 layer.
    n, m = 60, 20
    X = rng.integers(0, 200, (n, m), dtype=np.int32)
    a = ad.AnnData(X, *axes(n, m))
    a.layers["log1p"] = np.log1p(X).astype(np.float32)
    return a


def fx_dense_i64_counts_gzip(rng):
    # Dense int64 counts X (gzip), CSR float32 layer.
    n, m = 70, 24
    X = rng.integers(0, 5000, (n, m), dtype=np.int64)
    a = ad.AnnData(X, *axes(n, m))
    a.layers["normalized"] = sp.csr_matrix((X * (X > 2500)).astype(np.float32) / 100)
    return a


def fx_csr_f32_gzip(rng):
    # CSR float32 X (gzip), CSR int32 counts layer, dense float64 layer.
    n, m = 150, 40
    counts = sparse_counts(rng, (n, m), 0.15, np.int32, empty_rows=(3, 77))
    X = counts.astype(np.float32)
    X.data = np.log1p(X.data).astype(np.float32)
    a = ad.AnnData(X, *axes(n, m))
    a.layers["counts"] = counts
    a.layers["dense_norm"] = X.toarray().astype(np.float64)
    return a


def fx_csr_f32_empty_rows(rng):
    # CSR float32 X (uncompressed) whose first, last and many middle rows are
    # empty, one fully empty column, plus an all-zero CSR layer (nnz == 0).
    n, m = 90, 30
    empty = [0, n - 1] + list(range(10, 40, 3))
    X = sparse_counts(rng, (n, m), 0.2, np.float32, empty_rows=empty).tolil()
    X[:, 5] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    a = ad.AnnData(X, *axes(n, m))
    a.layers["all_zero"] = sp.csr_matrix((n, m), dtype=np.float32)
    return a


def fx_csc_f64(rng):
    # CSC float64 X (uncompressed), CSR float32 + dense int32 layers.
    n, m = 100, 35
    X = sparse_counts(rng, (n, m), 0.2, np.float64, fmt="csc", empty_rows=(5,))
    X.data = X.data / 7.0
    a = ad.AnnData(X, *axes(n, m))
    a.layers["csr_f32"] = sp.csr_matrix(X.astype(np.float32))
    a.layers["counts"] = rng.integers(0, 9, (n, m), dtype=np.int32)
    return a


def fx_int_counts_csr_gzip(rng):
    # CSR int64 counts X (gzip) with empty rows, dense uint16 layer.
    n, m = 200, 50
    X = sparse_counts(rng, (n, m), 0.1, np.int64, empty_rows=(0, 1, 150))
    a = ad.AnnData(X, *axes(n, m))
    a.layers["dense_u16"] = X.toarray().astype(np.uint16)
    return a


def fx_obs_all_columns(rng):
    # Every non-nullable obs/var column kind; named index with non-ASCII names.
    # Written with the default convert_strings_to_categoricals=True, so the
    # repeated-string var column "biotype" is stored as a categorical.
    n, m = 100, 20
    obs = pd.DataFrame(index=pd.Index([f"zelle_ü_{i}" for i in range(n)], name="cell_id"))
    obs["cell_type"] = pd.Categorical(rng.choice(["T", "B", "NK", "Mono"], n))
    obs["stage"] = pd.Categorical(rng.choice(["early", "mid", "late"], n),
                                  categories=["early", "mid", "late"], ordered=True)
    with_na = rng.choice(["ctrl", "stim"], n).astype(object)
    with_na[rng.random(n) < 0.2] = None
    obs["condition"] = pd.Categorical(with_na, categories=["ctrl", "stim"])  # code -1
    obs["leiden"] = pd.Categorical(rng.choice([0, 1, 2, 10], n))  # integer categories
    obs["f32"] = rng.standard_normal(n).astype(np.float32)
    obs["f64"] = rng.standard_normal(n)
    obs.loc[obs.index[7], "f64"] = np.nan  # NaN in a float column
    obs["i32"] = rng.integers(-1000, 1000, n, dtype=np.int32)
    obs["i64"] = rng.integers(-(2**40), 2**40, n, dtype=np.int64)
    obs["u8"] = rng.integers(0, 256, n, dtype=np.uint8)
    obs["is_doublet"] = rng.random(n) < 0.1
    obs["barcode"] = [f"ACGT-{i:04d}-ß" for i in range(n)]  # unique -> stays object
    var = frame("gene_", m)
    var["gene_symbol"] = [f"SYM{i}" for i in range(m)]
    var["highly_variable"] = rng.random(m) < 0.5
    var["means"] = rng.random(m).astype(np.float32)
    var["n_cells"] = rng.integers(0, n, m, dtype=np.int64)
    var["biotype"] = rng.choice(["protein_coding", "lncRNA"], m)  # -> categorical
    return ad.AnnData(rng.standard_normal((n, m)).astype(np.float32), obs, var)


def fx_nullable_gzip(rng):
    # pandas nullable extension columns with NA (gzip).  Written with
    # convert_strings_to_categoricals=False, otherwise anndata would turn the
    # "string" column (and any repeated object-string column) into a categorical.
    n, m = 60, 20
    obs = frame("cell_", n)
    na = rng.random(n) < 0.25
    obs["n_genes"] = pd.array(np.where(na, None, rng.integers(0, 500, n)), dtype="Int64")
    obs["n_genes_full"] = pd.array(rng.integers(0, 9, n), dtype="Int64")  # no NA
    nb = rng.random(n) < 0.2
    obs["qc_pass"] = pd.array(np.where(nb, None, rng.random(n) < 0.5), dtype="boolean")
    ns = rng.random(n) < 0.3
    obs["donor"] = pd.array(np.where(ns, None, rng.choice(["d1", "d2", "d3"], n)), dtype="string")
    obs["sample"] = rng.choice(["s1", "s2"], n).astype(object)  # repeated, stays object
    var = frame("gene_", m)
    var["chrom"] = pd.array([None if i % 4 == 0 else f"chr{i % 3 + 1}" for i in range(m)],
                            dtype="string")
    var["length"] = pd.array([None if i % 5 == 0 else i * 100 for i in range(m)], dtype="Int64")
    return ad.AnnData(rng.standard_normal((n, m)).astype(np.float32), obs, var)


def fx_embeddings_gzip(rng):
    # obsm (dense f32, dense f64, CSR), varm, obsp (CSR), varp (dense, CSR); gzip.
    n, m = 120, 30
    a = ad.AnnData(sparse_counts(rng, (n, m), 0.2, np.float32), *axes(n, m))
    a.obsm["X_pca"] = rng.standard_normal((n, 10)).astype(np.float32)
    a.obsm["X_umap"] = rng.standard_normal((n, 2))
    a.obsm["X_sparse"] = sp.csr_matrix(rng.random((n, 8)) * (rng.random((n, 8)) < 0.3))
    a.varm["PCs"] = rng.standard_normal((m, 10))
    a.obsp["distances"] = knn_graph(rng, n, 5, np.float64)
    a.obsp["connectivities"] = knn_graph(rng, n, 5, np.float32)
    a.varp["corr"] = np.corrcoef(rng.standard_normal((m, 50)))
    a.varp["adjacency"] = sp.csr_matrix((np.abs(a.varp["corr"]) > 0.3).astype(np.float32))
    return a


def knn_graph(rng, n, k, dtype):
    """Random k-nearest-neighbour style CSR graph (no self loops)."""
    rows = np.repeat(np.arange(n), k)
    cols = np.concatenate([rng.choice(np.delete(np.arange(n), i), k, replace=False)
                           for i in range(n)])
    g = sp.csr_matrix((rng.random(n * k).astype(dtype) + 0.01, (rows, cols)), shape=(n, n))
    g.sort_indices()
    return g


def uns_tree(rng) -> dict:
    return {
        "neighbors": {
            "params": {"n_neighbors": 15, "method": "umap", "metric": "euclidean",
                       "use_rep": {"name": "X_pca", "n_pcs": 10}},
            "connectivities_key": "connectivities",
        },
        "int_scalar": 42, "neg_int": -7, "float_scalar": 3.25,
        "bool_true": True, "bool_false": False, "str_scalar": "hello ü world",
        "int_array": np.arange(10, dtype=np.int64),
        "int32_array": np.array([3, 1, 2], dtype=np.int32),
        "float_2d": rng.standard_normal((3, 4)),
        "str_array": np.array(["alpha", "beta", "gamma", "ü"], dtype=object),
        "bool_array": np.array([True, False, True]),
        "empty": {}, "nested_empty": {"inner": {}},
        # A numeric record array (anndata "rec-array"), like scanpy's
        # rank_genes_groups/scores. String-field record arrays are written by
        # anndata with variable-length strings inside the compound, which
        # conceptlab does not read (see docs/decisions/h5ad-io.md).
        "rec_scores": np.rec.fromarrays(
            [rng.standard_normal(5).astype(np.float32), np.arange(5, dtype=np.int64)],
            names="CD4+/CD25 T Reg,rank"),
    }


def fx_uns_nested(rng):
    # uns with nested dicts, python scalars, numeric/string arrays, empty dicts.
    n, m = 50, 20
    a = ad.AnnData(rng.standard_normal((n, m)).astype(np.float32), *axes(n, m))
    a.uns = uns_tree(rng)
    return a


def fx_raw_gzip(rng):
    # raw = full log-normalized CSR matrix with more vars; X = dense subset (gzip).
    n, m = 80, 60
    full = sparse_counts(rng, (n, m), 0.2, np.float32)
    full.data = np.log1p(full.data).astype(np.float32)
    var = frame("gene_", m)
    var["highly_variable"] = np.arange(m) % 3 == 0
    var["means"] = np.asarray(full.mean(axis=0)).ravel()
    a = ad.AnnData(full, frame("cell_", n), var)
    a.raw = a
    a = a[:, a.var["highly_variable"].to_numpy()].copy()
    a.X = a.X.toarray()
    return a


def fx_large_csr_gzip(rng):
    # Big enough that conceptlab's writer must split arrays into several
    # chunks (> 65,535 elements), and wide enough (> 65,535 columns) that a
    # dense row cannot be one chunk: chunk extents libhdf5 accepts are
    # exercised, which tiny fixtures never reach.
    n, m = 3000, 400
    X = sparse_counts(rng, (n, m), 0.1, np.float32)
    a = ad.AnnData(X, *axes(n, m))
    a.obsm["wide"] = rng.standard_normal((2, 70_000)).astype(np.float32)[np.zeros(n, dtype=int) % 2]
    return a


FIXTURES = {
    "dense_f32.h5ad": (fx_dense_f32, NONE),
    "dense_f64_gzip.h5ad": (fx_dense_f64_gzip, GZIP),
    "dense_i32_counts.h5ad": (fx_dense_i32_counts, NONE),
    "dense_i64_counts_gzip.h5ad": (fx_dense_i64_counts_gzip, GZIP),
    "csr_f32_gzip.h5ad": (fx_csr_f32_gzip, GZIP),
    "csr_f32_empty_rows.h5ad": (fx_csr_f32_empty_rows, NONE),
    "csc_f64.h5ad": (fx_csc_f64, NONE),
    "int_counts_csr_gzip.h5ad": (fx_int_counts_csr_gzip, GZIP),
    "obs_all_columns.h5ad": (fx_obs_all_columns, NONE),
    "nullable_gzip.h5ad": (fx_nullable_gzip, {**GZIP, "convert_strings_to_categoricals": False}),
    "embeddings_gzip.h5ad": (fx_embeddings_gzip, GZIP),
    "uns_nested.h5ad": (fx_uns_nested, NONE),
    "raw_gzip.h5ad": (fx_raw_gzip, GZIP),
    "large_csr_gzip.h5ad": (fx_large_csr_gzip, GZIP),
}


# Golden file + JSON facts

def build_golden() -> ad.AnnData:
    rng = rng_for("python_written")
    n, m = 100, 40
    # X values are multiples of 1/4, so every partial sum is exact in f64 and
    # the X sum does not depend on summation order (Rust can compare with ==).
    X = sp.random(n, m, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    X.data = (np.ceil(X.data * 40) / 4).astype(np.float32)
    X.sort_indices()
    obs = pd.DataFrame(index=pd.Index([f"cell_ü_{i:03d}" for i in range(n)], name="cell_id"))
    obs["cell_type"] = pd.Categorical(rng.choice(["B", "NK", "T"], n), categories=["B", "NK", "T"])
    obs["stage"] = pd.Categorical(rng.choice(["early", "mid", "late"], n),
                                  categories=["early", "mid", "late"], ordered=True)
    obs["n_counts"] = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    obs["is_doublet"] = rng.random(n) < 0.1
    obs["barcode"] = [f"BC{i:05d}" for i in range(n)]
    obs["n_genes_na"] = pd.array([None if i % 7 == 3 else int(X[i].nnz) for i in range(n)],
                                 dtype="Int64")
    obs["qc_pass"] = pd.array([None if i % 11 == 5 else bool(i % 2) for i in range(n)],
                              dtype="boolean")
    obs["donor"] = pd.array([None if i % 9 == 0 else f"donor{i % 3}" for i in range(n)],
                            dtype="string")
    var = frame("gene_", m)
    var["highly_variable"] = np.arange(m) % 4 == 0
    a = ad.AnnData(X=X, obs=obs, var=var)
    a.layers["counts"] = (X.toarray() * 4).astype(np.int32)
    a.obsm["X_pca"] = rng.standard_normal((n, 4)).astype(np.float32)
    a.varm["PCs"] = rng.standard_normal((m, 4))
    a.obsp["distances"] = knn_graph(rng, n, 3, np.float64)
    a.uns = {"params": {"lr": 0.001, "name": "test", "flag": True, "arr": np.arange(3)},
             "title": "fixture"}
    return a


def jsonable(v):
    """Convert uns values (and numpy scalars/arrays) to plain JSON values."""
    if isinstance(v, dict):
        return {k: jsonable(v[k]) for k in sorted(v)}
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()] if v.dtype == object else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def h5_layout(path: Path) -> dict:
    """Every HDF5 object: kind, encoding attrs, other attrs, dtype and shape."""
    out = {}

    def visit(name, obj):
        entry = {"kind": "dataset" if isinstance(obj, h5py.Dataset) else "group"}
        for k, v in obj.attrs.items():
            entry[k] = jsonable(v) if not isinstance(v, (bool, np.bool_)) else bool(v)
        if isinstance(obj, h5py.Dataset):
            entry["dtype"] = "string" if h5py.check_string_dtype(obj.dtype) else (
                "bool" if obj.dtype == bool else str(obj.dtype))
            entry["shape"] = list(obj.shape)
            entry["compression"] = obj.compression
        out[name] = entry

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return out


def golden_facts(path: Path) -> dict:
    """Facts read back from the written file (so they reflect what is on disk)."""
    a = ad.read_h5ad(path)
    X = a.X
    facts = {
        "anndata_version": version("anndata"),
        "shape": list(a.shape),
        "X": {"format": X.format, "dtype": str(X.dtype), "nnz": int(X.nnz),
              "sum": math.fsum(X.data.astype(np.float64)),
              "data_first5": [float(x) for x in X.data[:5]],
              "indices_first5": X.indices[:5].tolist(), "indptr_first5": X.indptr[:5].tolist()},
        "layers": {k: {"format": "dense", "dtype": str(v.dtype), "shape": list(v.shape),
                       "sum": int(v.sum())} for k, v in a.layers.items()},
        "obs_index_name": a.obs.index.name,
        "obs_names_first3": a.obs_names[:3].tolist(),
        "var_names_first3": a.var_names[:3].tolist(),
        "obs_columns": [[c, str(a.obs[c].dtype)] for c in a.obs.columns],
        "var_columns": [[c, str(a.var[c].dtype)] for c in a.var.columns],
        "categories": {}, "missing": {},
        "obsm": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in a.obsm.items()},
        "varm": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in a.varm.items()},
        "obsp": {k: {"format": v.format, "dtype": str(v.dtype), "shape": list(v.shape),
                     "nnz": int(v.nnz)} for k, v in a.obsp.items()},
        "uns": jsonable(a.uns),
        "h5_layout": h5_layout(path),
    }
    for c in a.obs.columns:
        s = a.obs[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            facts["categories"][c] = {
                "categories": s.cat.categories.tolist(), "ordered": bool(s.cat.ordered),
                "counts": {str(k): int(v) for k, v in s.value_counts(sort=False).items()}}
        if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and s.isna().any():
            facts["missing"][c] = np.flatnonzero(s.isna().to_numpy()).tolist()
    return facts


def write_golden(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    h5 = outdir / "python_written.h5ad"
    build_golden().write_h5ad(h5, compression="gzip", convert_strings_to_categoricals=False)
    facts = golden_facts(h5)
    text = json.dumps(facts, indent=1, ensure_ascii=False) + "\n"
    (outdir / "python_written.json").write_text(text, encoding="utf-8")
    print(f"golden {h5} ({h5.stat().st_size} bytes)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path, nargs="?", help="directory for the fixture set")
    p.add_argument("--golden", type=Path, metavar="DIR",
                   help="also write python_written.h5ad + python_written.json to DIR")
    args = p.parse_args(argv)
    if args.outdir is None and args.golden is None:
        p.error("give OUTDIR and/or --golden DIR")
    if args.outdir is not None:
        args.outdir.mkdir(parents=True, exist_ok=True)
        for fname, (builder, kwargs) in FIXTURES.items():
            builder(rng_for(fname)).write_h5ad(args.outdir / fname, **kwargs)
            print(f"wrote {args.outdir / fname}")
    if args.golden is not None:
        write_golden(args.golden)
    return 0


if __name__ == "__main__":
    sys.exit(main())
