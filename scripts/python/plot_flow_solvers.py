"""Plot the ODE solver study of `cargo xtask flow-study`.

Reads results/flow-study.json (the first run carries the study) and writes
docs/images/flow-solvers.png: per solver, the distance of CBM-FM edits to
the reference's 1000-step Euler integration, the round-trip (inversion)
error, and the counterfactual error against the true twins, each against
network evaluations per edited cell.

    python3 scripts/python/plot_flow_solvers.py [results/flow-study.json] [out.png]
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

root = Path(__file__).resolve().parents[2]
src = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "results/flow-study.json"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "docs/images/flow-solvers.png"

study = json.loads(src.read_text())
points = next(
    r["outcome"]["flow"]["solvers"]
    for r in study["runs"]
    if r["outcome"].get("flow", {}).get("solvers")
)


def family(p):
    kind = p["solver"]["kind"]
    return "dopri5 (adaptive)" if kind == "dormand-prince" else kind


families = {}
for p in points:
    families.setdefault(family(p), []).append(p)

fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
panels = [
    ("mse_to_euler_1000", "MSE to 1000-step Euler edit"),
    ("round_trip_mse", "round-trip MSE (unchanged concepts)"),
    ("mse_to_truth", "counterfactual MSE to true twins"),
]
reference = next(p for p in points if p["solver"]["kind"] == "euler" and p["steps"] == 1000)
for ax, (key, title) in zip(axes, panels):
    for name, ps in families.items():
        ps = sorted(ps, key=lambda p: p["evaluations_per_cell"])
        xs = [p["evaluations_per_cell"] for p in ps]
        ys = [max(p[key], 1e-12) for p in ps]
        if name == "euler" and key == "mse_to_euler_1000":
            xs, ys = xs[:-1], ys[:-1]  # the reference itself (0)
        ax.plot(xs, ys, marker="o", label=name)
    if key == "mse_to_truth":
        ax.axhline(reference[key], color="grey", ls="--", lw=1, label="Euler 1000")
    ax.axvline(100, color="red", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("network evaluations per edited cell (invert + regenerate)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
axes[0].legend()
fig.suptitle("CBM-FM edits on synthetic_1: solver accuracy against cost (red: 100 evaluations)")
fig.tight_layout()
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=110)
print("wrote", out)
