#!/usr/bin/env python3
"""Check that Rust-written ``.h5ad`` files are value-identical to the originals.

Usage::

    python3 scripts/python/check_roundtrip.py ORIG_DIR RUST_DIR [--no-layout]

For every ``*.h5ad`` in ORIG_DIR (written by ``h5ad_fixtures.py``), the file of
the same name in RUST_DIR (written by ``conceptlab-cli convert``) must exist and:

1. values: both files are loaded with ``anndata.read_h5ad`` and compared
   exactly: X, layers, obs/var (``assert_frame_equal`` with exact values,
   dtypes, categories + order, ordered flag, index values + name),
   obs_names/var_names, obsm/varm/obsp/varp, uns (recursively) and raw;
2. filters: every dataset in the Rust file uses only the gzip filter
   (HDF5 filter id 1) or no filter at all, so stock h5py can read it;
3. layout (skip with ``--no-layout``): both files hold the same HDF5 paths with
   the same kind (group/dataset) and the same attribute names and values
   (encoding-type, encoding-version, shape, ordered, _index, column-order).

Prints ``ok NAME`` or ``FAIL NAME: reason`` per file, then the final line
``roundtrip: N passed, M failed``.  Exits 1 if anything failed, if RUST_DIR
misses a file, or if ORIG_DIR holds no ``*.h5ad`` file.  CI runs it after
converting every fixture with the Rust CLI.
"""

import argparse
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.testing import assert_frame_equal

# Only these HDF5 filters may appear in Rust-written files (1 = deflate/gzip).
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE}


class Mismatch(AssertionError):
    """A difference between the original and the Rust-written element."""


def fail(where: str, msg: str):
    raise Mismatch(f"{where}: {msg}")


# ----------------------------------------------------------------- arrays --

def compare_ndarray(where: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != b.dtype:
        fail(where, f"dtype {a.dtype} != {b.dtype}")
    if a.shape != b.shape:
        fail(where, f"shape {a.shape} != {b.shape}")
    if a.dtype == object:  # strings: compare element-wise as python objects
        if a.ravel().tolist() != b.ravel().tolist():
            fail(where, "string values differ")
    elif a.size:  # numeric/bool: bitwise identical (NaN payloads and -0.0 included)
        ua = np.ascontiguousarray(a).view(np.uint8).reshape(a.size, -1)
        ub = np.ascontiguousarray(b).view(np.uint8).reshape(b.size, -1)
        diff = np.flatnonzero((ua != ub).any(axis=1))
        if diff.size:
            first = [int(i) for i in np.unravel_index(diff[0], a.shape)]
            fail(where, f"values differ at {diff.size} positions, first {first}")


def compare_sparse(where: str, a, b) -> None:
    if a.format != b.format:
        fail(where, f"sparse format {a.format} != {b.format}")
    if a.shape != b.shape:
        fail(where, f"shape {a.shape} != {b.shape}")
    if a.dtype != b.dtype:
        fail(where, f"dtype {a.dtype} != {b.dtype}")
    # Storage must be identical, not just the represented matrix; index arrays
    # are compared by value only (int32 vs int64 indices is not a difference).
    if not np.array_equal(a.indptr, b.indptr):
        fail(where, "indptr differs")
    if not np.array_equal(a.indices, b.indices):
        fail(where, "indices differ")
    compare_ndarray(where + ".data", a.data, b.data)


def compare_matrix(where: str, a, b) -> None:
    """X, layers, obsm/varm/obsp/varp values: dense, sparse or DataFrame."""
    if a is None or b is None:
        if (a is None) != (b is None):
            fail(where, f"one side is None ({type(a).__name__} vs {type(b).__name__})")
        return
    if sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)):
            fail(where, f"type {type(a).__name__} != {type(b).__name__}")
        compare_sparse(where, a, b)
    elif isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        compare_frame(where, a, b)
    elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        compare_ndarray(where, a, b)
    else:
        fail(where, f"unsupported/mismatched types {type(a).__name__}, {type(b).__name__}")


def compare_mapping(where: str, a, b) -> None:
    """layers / obsm / varm / obsp / varp: same keys (and order), same values."""
    if list(a.keys()) != list(b.keys()):
        fail(where, f"keys {list(a.keys())} != {list(b.keys())}")
    for k in a.keys():
        compare_matrix(f"{where}[{k!r}]", a[k], b[k])


# ------------------------------------------------------------- dataframes --

def compare_frame(where: str, a, b) -> None:
    if not (isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame)):
        fail(where, f"type {type(a).__name__} != {type(b).__name__}")
    if list(a.columns) != list(b.columns):
        fail(where, f"columns {list(a.columns)} != {list(b.columns)}")
    if a.index.name != b.index.name:
        fail(where, f"index name {a.index.name!r} != {b.index.name!r}")
    try:
        assert_frame_equal(a, b, check_exact=True, check_dtype=True, check_index_type=True,
                           check_column_type=True, check_names=True, check_categorical=True,
                           check_freq=True, check_flags=True)
    except AssertionError as e:
        fail(where, " ".join(str(e).split())[:300])
    # assert_frame_equal is lenient about category order in some versions;
    # check categories, their order, the ordered flag and the codes explicitly.
    for c in a.columns:
        if isinstance(a[c].dtype, pd.CategoricalDtype):
            ca, cb = a[c].cat, b[c].cat
            if ca.categories.tolist() != cb.categories.tolist():
                fail(f"{where}[{c!r}]", "categories or their order differ")
            if ca.categories.dtype != cb.categories.dtype:
                fail(f"{where}[{c!r}]", "category dtype differs")
            if bool(ca.ordered) != bool(cb.ordered):
                fail(f"{where}[{c!r}]", "ordered flag differs")
            if not np.array_equal(ca.codes.to_numpy(), cb.codes.to_numpy()):
                fail(f"{where}[{c!r}]", "codes differ")


# -------------------------------------------------------------------- uns --

def scalar_kind(v) -> str | None:
    """Type category of a scalar: python and numpy scalars compare alike."""
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, (str, np.str_)):
        return "str"
    return None


def compare_uns(where: str, a, b) -> None:
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            fail(where, f"type {type(a).__name__} != {type(b).__name__}")
        if sorted(a) != sorted(b):
            fail(where, f"keys {sorted(a)} != {sorted(b)}")
        for k in a:
            compare_uns(f"{where}/{k}", a[k], b[k])
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            fail(where, f"type {type(a).__name__} != {type(b).__name__}")
        compare_ndarray(where, a, b)
    elif scalar_kind(a) is not None or scalar_kind(b) is not None:
        ka, kb = scalar_kind(a), scalar_kind(b)
        if ka != kb:
            fail(where, f"scalar kind {ka} ({a!r}) != {kb} ({b!r})")
        same = (a == b) or (ka == "float" and np.isnan(a) and np.isnan(b))
        if not same:
            fail(where, f"value {a!r} != {b!r}")
    elif isinstance(a, pd.DataFrame) or sp.issparse(a):
        compare_matrix(where, a, b)
    elif isinstance(a, (pd.api.extensions.ExtensionArray, pd.Categorical)):
        if type(a) is not type(b):
            fail(where, f"type {type(a).__name__} != {type(b).__name__}")
        try:
            pd.testing.assert_extension_array_equal(a, b, check_exact=True)
        except AssertionError as e:
            fail(where, " ".join(str(e).split())[:300])
    elif a is None and b is None:
        pass
    else:
        fail(where, f"unsupported uns value types {type(a).__name__}, {type(b).__name__}")


# ---------------------------------------------------------------- anndata --

def compare_anndata(a: ad.AnnData, b: ad.AnnData) -> None:
    if a.shape != b.shape:
        fail("shape", f"{a.shape} != {b.shape}")
    for attr in ("obs_names", "var_names"):
        ia, ib = getattr(a, attr), getattr(b, attr)
        if ia.tolist() != ib.tolist() or ia.name != ib.name:
            fail(attr, "values or name differ")
    compare_matrix("X", a.X, b.X)
    compare_mapping("layers", a.layers, b.layers)
    compare_frame("obs", a.obs, b.obs)
    compare_frame("var", a.var, b.var)
    for m in ("obsm", "varm", "obsp", "varp"):
        compare_mapping(m, getattr(a, m), getattr(b, m))
    compare_uns("uns", a.uns, b.uns)
    if (a.raw is None) != (b.raw is None):
        fail("raw", f"present in {'original' if a.raw is not None else 'rust'} file only")
    if a.raw is not None:
        compare_matrix("raw.X", a.raw.X, b.raw.X)
        compare_frame("raw.var", a.raw.var, b.raw.var)
        compare_mapping("raw.varm", a.raw.varm, b.raw.varm)


# -------------------------------------------------------------------- h5py --

def check_filters(path: Path) -> None:
    """Every dataset must use no filter or only gzip (deflate)."""
    bad = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            plist = obj.id.get_create_plist()
            for i in range(plist.get_nfilters()):
                code = plist.get_filter(i)[0]
                if code not in ALLOWED_FILTERS:
                    bad.append(f"{name} (filter id {code})")

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    if bad:
        fail("filters", "non-gzip filter on " + ", ".join(bad[:5]))


def norm_attr(v):
    if isinstance(v, np.ndarray):
        return [norm_attr(x) for x in v.tolist()]
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def layout(path: Path) -> dict:
    out = {}

    def visit(name, obj):
        kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
        out[name] = (kind, {k: norm_attr(v) for k, v in obj.attrs.items()})

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return out


def check_layout(orig: Path, rust: Path) -> None:
    la, lb = layout(orig), layout(rust)
    if set(la) != set(lb):
        missing, extra = sorted(set(la) - set(lb)), sorted(set(lb) - set(la))
        fail("layout", f"missing paths {missing[:5]}, extra paths {extra[:5]}")
    for p in sorted(la):
        if la[p][0] != lb[p][0]:
            fail("layout", f"{p} is a {la[p][0]} in the original, a {lb[p][0]} in the rust file")
        if la[p][1] != lb[p][1]:
            fail("layout", f"{p} attributes {la[p][1]} != {lb[p][1]}")


# -------------------------------------------------------------------- main --

def check_file(orig: Path, rust: Path, with_layout: bool) -> list[str]:
    """Return the list of failure reasons (empty when the file round-trips)."""
    if not rust.is_file():
        return [f"missing in {rust.parent}"]
    if not h5py.is_hdf5(rust):
        return ["not an HDF5 file"]
    reasons = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = ad.read_h5ad(orig), ad.read_h5ad(rust)
        compare_anndata(a, b)
    except Mismatch as e:
        reasons.append(str(e))
    except Exception as e:  # unreadable file etc.
        reasons.append(f"read/compare error: {type(e).__name__}: {e}")
    checks = [lambda: check_filters(rust)]
    if with_layout:
        checks.append(lambda: check_layout(orig, rust))
    for check in checks:
        try:
            check()
        except Mismatch as e:
            reasons.append(str(e))
        except Exception as e:
            reasons.append(f"h5py error: {type(e).__name__}: {e}")
    return reasons


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Compare original and Rust-written h5ad files.")
    p.add_argument("orig_dir", type=Path)
    p.add_argument("rust_dir", type=Path)
    p.add_argument("--no-layout", action="store_true",
                   help="skip the HDF5 path/attribute layout comparison")
    args = p.parse_args(argv)
    files = sorted(args.orig_dir.glob("*.h5ad"))
    if not files:
        print(f"FAIL: no *.h5ad files in {args.orig_dir}")
        print("roundtrip: 0 passed, 0 failed")
        return 1
    passed = failed = 0
    for orig in files:
        reasons = check_file(orig, args.rust_dir / orig.name, not args.no_layout)
        if reasons:
            failed += 1
            print(f"FAIL {orig.name}: {'; '.join(reasons)}")
        else:
            passed += 1
            print(f"ok {orig.name}")
    print(f"roundtrip: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
