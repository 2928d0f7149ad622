"""Golden values for CINEMA-OT's parts (crates/conceptlab-models/src/cinemaot/golden_tests.rs).

Writes crates/conceptlab-models/tests/fixtures/cinemaot_golden.json (or the path given):
- Chatterjee's xi against scipy.stats.chatterjeexi (binary, tied and continuous y);
- entropic OT plans with uniform weights against POT's log-domain Sinkhorn (converged);
- FastICA's unmixing matrix against scikit-learn (whiten="arbitrary-variance", as CINEMA-OT calls it,
  logcosh, parallel, max_iter 200, tol 1e-4), which the Rust side matches up to sign and order.

Inputs are stored in the JSON, so the Rust tests never depend on NumPy's generator.
Needs numpy, scipy, scikit-learn and POT (`ot`).
"""

import json
import sys
from pathlib import Path

import numpy as np
import ot
import scipy
import sklearn
from scipy.stats import chatterjeexi
from sklearn.decomposition import FastICA


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parents[2] / "crates/conceptlab-models/tests/fixtures/cinemaot_golden.json"
    )
    rng = np.random.default_rng(20261203)

    xi_cases = []
    x = rng.normal(size=60)
    for name, y in [
        ("binary", (x + rng.normal(scale=0.7, size=60) > 0).astype(float)),
        ("tied", rng.integers(0, 4, size=60).astype(float)),
        ("continuous", np.sin(2 * x) + rng.normal(scale=0.1, size=60)),
    ]:
        stat = chatterjeexi(x, y, y_continuous=False).statistic
        xi_cases.append({"name": name, "x": x.tolist(), "y": y.tolist(), "xi": float(stat)})

    ot_cases = []
    for n, m, reg in [(6, 4, 0.5), (7, 5, 0.05)]:
        xs, xt = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 0.5
        cost = ot.dist(xs, xt)  # squared Euclidean
        a, b = np.full(n, 1 / n), np.full(m, 1 / m)
        plan = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", stopThr=1e-13, numItermax=200000)
        ot_cases.append({"n": n, "m": m, "reg": reg, "cost": cost.ravel().tolist(), "plan": plan.ravel().tolist()})

    n = 600
    sources = np.stack([
        rng.uniform(-1, 1, size=n),
        rng.laplace(size=n),
        np.sign(rng.normal(size=n)) * rng.uniform(0.5, 1.0, size=n),
    ], axis=1)
    mixing = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, -0.4], [-0.2, 0.6, 1.0]])
    x = sources @ mixing.T + np.array([1.0, -2.0, 0.5])
    ica = FastICA(n_components=3, whiten="arbitrary-variance", random_state=0, max_iter=200, tol=1e-4)
    s = ica.fit_transform(x)
    result = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
                     "pot": ot.__version__},
        "xi": xi_cases,
        "sinkhorn": ot_cases,
        "ica": {
            "n": n, "d": 3, "x": x.ravel().tolist(),
            "unmixing": ica.components_.ravel().tolist(),
            "mean": ica.mean_.tolist(),
            "source_variance": s.var(axis=0).tolist(),
            "n_iter": int(ica.n_iter_),
        },
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
