#!/usr/bin/env python3
"""Benchmark the reference reader: time ``anndata.read_h5ad`` on one file.

Usage::

    python3 scripts/python/bench_read.py FILE.h5ad

Reads FILE fully into memory (not backed) and touches X so that it is really
loaded, then prints exactly one JSON line::

    {"tool": "python-anndata", "anndata": "<version>", "seconds": <wall>,
     "peak_rss_mib": <peak>, "baseline_rss_mib": <after imports>}

``seconds`` is the wall time of read + touch.  ``peak_rss_mib`` is
``resource.getrusage(RUSAGE_SELF).ru_maxrss / 1024`` after reading (ru_maxrss
is in KiB on Linux) and ``baseline_rss_mib`` the same value measured right
after the imports, before reading; their difference approximates the memory
the read itself needed.  CI runs it next to the Rust reader's benchmark on the
same file and compares the JSON lines.
"""

import json
import resource
import sys
import time
import warnings
from importlib.metadata import version

import anndata as ad
import numpy as np
import scipy.sparse as sp


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Resident memory now (VmRSS): the import-time high-water mark can hide
    the read's own footprint in ru_maxrss, so the difference of this value
    before and after reading is reported too."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def touch(x) -> float:
    """Reduce over X so every value has been materialised in memory."""
    if x is None:
        return 0.0
    if sp.issparse(x):
        return float(np.asarray(x.data).sum(dtype=np.float64))
    return float(np.asarray(x).sum(dtype=np.float64))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: bench_read.py FILE.h5ad", file=sys.stderr)
        return 2
    path = argv[0]
    baseline = rss_mib()
    before = current_rss_mib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        adata = ad.read_h5ad(path)  # backed=None: everything in memory
        touch(adata.X)
        seconds = time.perf_counter() - t0
    print(json.dumps({
        "tool": "python-anndata",
        "anndata": version("anndata"),
        "seconds": round(seconds, 6),
        "peak_rss_mib": round(rss_mib(), 3),
        "baseline_rss_mib": round(baseline, 3),
        "rss_held_by_result_mib": round(current_rss_mib() - before, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
