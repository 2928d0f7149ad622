#!/usr/bin/env python3
"""Write the small ``.h5ad`` files that ``conceptlab-io``'s hostile-input tests use.

Usage::

    python3 scripts/python/io_fuzz_corpus.py [CRATE_TESTS_FIXTURES_DIR]

The default directory is ``crates/conceptlab-io/tests/fixtures``. Two
subdirectories are (re)written, and both are committed so ``cargo test`` never
needs Python:

``corpus/``
    Tiny but complete files written by anndata (and, for the pre-0.7 layout,
    by h5py directly), one per encoding family: dense X of several dtypes,
    CSR and CSC X, every obs/var column kind, obsm/varm/obsp/varp, layers,
    a nested uns with scalars, strings, string arrays, a rec-array (which
    anndata stores with variable-length string fields) and a data frame,
    raw, gzip-compressed and uncompressed variants, and a legacy-layout file.
    The fuzz harness (``tests/fuzz.rs``) mutates copies of these.

``hostile/``
    Files that are well-formed HDF5 but declare absurd or inconsistent
    content, each a regression case of ``tests/hostile.rs``:

    * ``huge_dense_x.h5ad``: X declared 1,000,000 x 1,000,000 float32,
      chunked and gzip-compressed but never written (so the file is tiny),
      with 300 obs and 60 var names.
    * ``wide_dense_x.h5ad``: X declared 300 x 2^31 float32, contiguous and
      unallocated, against 60 var names.
    * ``budget_dense_x.h5ad``: X declared 256 x 256 float32 (256 KiB),
      unwritten, with matching obs/var: valid, used to test the memory limit.
    * ``wide_sparse_x.h5ad``: a CSR X whose ``shape`` says 300 x 2^31.
    * ``long_indptr.h5ad``: a CSR X whose ``indptr`` has 10^6 + 1 entries
      (stored compressed) for 5 rows.
    * ``huge_obsm.h5ad``: a valid 6 x 4 file plus obsm/X_huge declared
      6 x 2^40 float32 (24 TiB), unwritten: only a memory bound stops it.
    * ``no_column_order.h5ad``: obs without its ``column-order`` attribute.
    * ``unreadable_column_order.h5ad``: obs whose ``column-order`` is stored
      as a compound, a type the reader cannot decode.
    * ``dup_categories.h5ad``: a categorical obs column whose categories
      repeat a value.
    * ``x_3d.h5ad``: a 3-dimensional X.
    * ``rec_vlen.h5ad``: uns/interventions as a rec-array with
      variable-length string fields (what anndata writes on a re-save).
    * ``uns_cycle.h5ad``: uns/loop holds a hard link back to itself.

All values are deterministic, so rerunning the script reproduces the files
(byte-for-byte up to HDF5 library timestamps, which anndata disables).
"""

import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.simplefilter("ignore")
ad.settings.allow_write_nullable_strings = True

N_OBS, N_VARS = 6, 4


def names(prefix, n):
    return pd.Index([f"{prefix}{i}" for i in range(n)])


def base(x, **kw):
    obs = pd.DataFrame(index=names("cell", x.shape[0]))
    var = pd.DataFrame(index=names("gene", x.shape[1]))
    return ad.AnnData(x, obs=obs, var=var, **kw)


def counts(rng, dtype=np.float32, density=0.5):
    dense = rng.integers(1, 9, size=(N_OBS, N_VARS)) * (rng.random((N_OBS, N_VARS)) < density)
    return dense.astype(dtype)


def corpus(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    files = {}

    files["dense_f32.h5ad"] = (base(counts(rng)), {})
    files["dense_f64_gzip.h5ad"] = (base(counts(rng, np.float64)), {"compression": "gzip"})
    files["dense_i32.h5ad"] = (base(counts(rng, np.int32)), {})
    files["csr_f32_gzip.h5ad"] = (base(sp.csr_matrix(counts(rng))), {"compression": "gzip"})
    files["csc_f64.h5ad"] = (base(sp.csc_matrix(counts(rng, np.float64))), {})

    a = base(sp.csr_matrix(counts(rng)))
    a.obs["cat"] = pd.Categorical(["a", "b", "a", "c", "b", "a"])
    a.obs["ordered"] = pd.Categorical([1, 2, 1, 2, 1, 2], ordered=True)
    a.obs["f"] = np.linspace(0, 1, N_OBS).astype(np.float32)
    a.obs["i"] = np.arange(N_OBS, dtype=np.int64)
    a.obs["b"] = np.array([True, False] * 3)
    a.obs["s"] = [f"s{i}" for i in range(N_OBS)]
    a.obs["nint"] = pd.array([1, None, 3, 4, None, 6], dtype="Int64")
    a.obs["nbool"] = pd.array([True, None, False, True, False, None], dtype="boolean")
    a.obs["nstr"] = pd.array(["x", None, "z", "w", "v", None], dtype="string")
    a.var["gc"] = pd.Categorical(["u", "v", "u", "v"])
    files["columns.h5ad"] = (a, {"convert_strings_to_categoricals": False})

    a = base(counts(rng))
    a.layers["counts"] = sp.csr_matrix(counts(rng, np.int32))
    a.layers["dense"] = counts(rng, np.float64)
    a.obsm["X_pca"] = rng.random((N_OBS, 3)).astype(np.float32)
    a.varm["PCs"] = rng.random((N_VARS, 3))
    a.obsp["distances"] = sp.csr_matrix(rng.random((N_OBS, N_OBS)) * (rng.random((N_OBS, N_OBS)) < 0.3))
    a.varp["corr"] = rng.random((N_VARS, N_VARS))
    files["axes_gzip.h5ad"] = (a, {"compression": "gzip"})

    a = base(counts(rng))
    a.uns["name"] = "run 1"
    a.uns["n"] = 3
    a.uns["x"] = 0.5
    a.uns["arr"] = np.arange(5, dtype=np.int16)
    a.uns["strs"] = np.array(["p", "q", "r"], dtype=object)
    a.uns["nested"] = {"inner": {"v": np.array([1.0, 2.0])}, "label": "deep"}
    a.uns["interventions"] = np.rec.fromarrays(
        [np.array(["ko_a", "ko_b"]), np.array([1.5, -2.0]), np.array([1, 2], dtype=np.int32)],
        names=["name", "value", "n"],
    )
    a.uns["table"] = pd.DataFrame({"k": [1, 2]}, index=["r0", "r1"])
    files["uns.h5ad"] = (a, {})

    a = base(sp.csr_matrix(counts(rng)))
    a.raw = a
    a = a[:, :3].copy()
    files["raw_gzip.h5ad"] = (a, {"compression": "gzip"})

    for name, (adata, kwargs) in files.items():
        adata.write_h5ad(out / name, **kwargs)
    legacy(out / "legacy.h5ad", rng)


def legacy(path: Path, rng):
    """The pre-0.7 layout: compound obs/var, uns/<col>_categories, h5sparse X."""
    with h5py.File(path, "w") as f:
        x = sp.csr_matrix(counts(rng))
        g = f.create_group("X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array(x.shape)
        g["data"], g["indices"], g["indptr"] = x.data, x.indices, x.indptr
        obs = np.zeros(N_OBS, dtype=[("index", "S8"), ("louvain", "i1"), ("n_genes", "<i8")])
        obs["index"] = [f"cell{i}".encode() for i in range(N_OBS)]
        obs["louvain"] = [0, 1, 0, 1, 1, 0]
        obs["n_genes"] = np.arange(N_OBS)
        f["obs"] = obs
        var = np.zeros(N_VARS, dtype=[("index", "S8"), ("means", "<f4")])
        var["index"] = [f"gene{i}".encode() for i in range(N_VARS)]
        var["means"] = rng.random(N_VARS)
        f["var"] = var
        obsm = np.zeros(N_OBS, dtype=[("X_pca", "<f4", (2,))])
        obsm["X_pca"] = rng.random((N_OBS, 2))
        f["obsm"] = obsm
        f.create_group("uns")["louvain_categories"] = np.array([b"A", b"B"])


def top(f):
    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"


def enc(obj, kind, version="0.2.0"):
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def frame(f, key, n, prefix):
    g = f.create_group(key)
    enc(g, "dataframe")
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array([], dtype=float)
    d = g.create_dataset("_index", data=np.array([f"{prefix}{i}" for i in range(n)], dtype=object),
                         dtype=h5py.string_dtype())
    enc(d, "string-array")


def hostile(out: Path):
    out.mkdir(parents=True, exist_ok=True)

    def declared_x(name, shape, n_obs, n_vars, **kwargs):
        with h5py.File(out / name, "w") as f:
            top(f)
            enc(f.create_dataset("X", shape=shape, dtype="f4", **kwargs), "array")
            frame(f, "obs", n_obs, "c")
            frame(f, "var", n_vars, "g")

    declared_x("huge_dense_x.h5ad", (10**6, 10**6), 300, 60, chunks=(1000, 1000), compression="gzip")
    declared_x("wide_dense_x.h5ad", (300, 2**31), 300, 60)
    declared_x("budget_dense_x.h5ad", (256, 256), 256, 256, chunks=(64, 256), compression="gzip")

    def sparse_x(name, shape, indptr, n_obs, n_vars):
        with h5py.File(out / name, "w") as f:
            top(f)
            g = f.create_group("X")
            enc(g, "csr_matrix", "0.1.0")
            g.attrs["shape"] = np.array(shape)
            g.create_dataset("data", data=np.ones(2, dtype="f4"))
            g.create_dataset("indices", data=np.arange(2, dtype="i4"))
            g.create_dataset("indptr", data=indptr, chunks=True, compression="gzip")
            frame(f, "obs", n_obs, "c")
            frame(f, "var", n_vars, "g")

    sparse_x("wide_sparse_x.h5ad", (300, 2**31), np.r_[0, np.full(300, 2)].astype("i8"), 300, 60)
    sparse_x("long_indptr.h5ad", (5, 4), np.full(10**6 + 1, 2, dtype="i8"), 5, 4)

    a = base(counts(np.random.default_rng(1)))
    a.obs["c"] = pd.Categorical(["a", "b", "a", "b", "a", "b"])
    a.obs["v"] = np.arange(N_OBS)
    a.write_h5ad(out / "no_column_order.h5ad")
    with h5py.File(out / "no_column_order.h5ad", "a") as f:
        del f["obs"].attrs["column-order"]

    a.write_h5ad(out / "unreadable_column_order.h5ad")
    with h5py.File(out / "unreadable_column_order.h5ad", "a") as f:
        f["obs"].attrs["column-order"] = np.array([(1, 2)], dtype=[("a", "i4"), ("b", "i4")])

    a.write_h5ad(out / "huge_obsm.h5ad")
    with h5py.File(out / "huge_obsm.h5ad", "a") as f:
        d = f["obsm"].create_dataset("X_huge", shape=(N_OBS, 2**40), dtype="f4", chunks=(1, 2**20),
                                     compression="gzip")
        enc(d, "array")

    a.write_h5ad(out / "dup_categories.h5ad")
    with h5py.File(out / "dup_categories.h5ad", "a") as f:
        del f["obs/c/categories"]
        d = f["obs/c"].create_dataset("categories", data=np.array(["a", "a"], dtype=object),
                                      dtype=h5py.string_dtype())
        enc(d, "string-array")

    a.write_h5ad(out / "x_3d.h5ad")
    with h5py.File(out / "x_3d.h5ad", "a") as f:
        del f["X"]
        enc(f.create_dataset("X", data=np.ones((N_OBS, 2, 2), dtype="f4")), "array")

    a = base(counts(np.random.default_rng(2)))
    a.uns["interventions"] = np.rec.fromarrays(
        [np.array(["ko_a", "ko_bb", "ü"]), np.array([1.5, -2.0, 0.25]), np.array([1, 2, 3], dtype=np.int32)],
        names=["name", "value", "n"],
    )
    a.write_h5ad(out / "rec_vlen.h5ad")

    a = base(counts(np.random.default_rng(3)))
    a.uns["loop"] = {"x": 1}
    a.write_h5ad(out / "uns_cycle.h5ad")
    with h5py.File(out / "uns_cycle.h5ad", "a") as f:
        f["uns/loop/again"] = f["uns/loop"]


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("crates/conceptlab-io/tests/fixtures")
    corpus(root / "corpus")
    hostile(root / "hostile")


if __name__ == "__main__":
    main()
