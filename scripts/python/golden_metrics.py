#!/usr/bin/env python3
"""Golden values for conceptlab-eval, computed with scipy and scikit-learn.

Writes small deterministic point sets and every metric conceptlab-eval
implements, computed here independently:

- MMD²: scikit-learn ``rbf_kernel`` with gamma = 1/d, unbiased estimator
  (diagonals excluded), clipped at 0 — scCBGM's ``calculate_mmd``;
- rMMD: MMD²(target, prediction) / (min over training groups with >= 10
  cells of MMD²(target, group) + 1e-8);
- E-distance: scipy ``cdist`` (Euclidean), means over all pairs;
- Fréchet: ``scipy.linalg.sqrtm`` of the covariance product, real part;
- R² (squared Pearson via ``scipy.stats.pearsonr``, and
  ``sklearn.metrics.r2_score``), Pearson delta, MSE/MAE of means and deltas;
- cell-level MSE with pairs matched by key (prediction rows shuffled);
- exact squared W2 with POT ``ot.emd2`` (uniform weights, squared Euclidean
  cost) and the debiased Sinkhorn cost with ``ot.sinkhorn2`` (log domain,
  eps = 0.1 * max cross cost, shared by the three terms);
- concept accuracy / F1 / AUROC / AUPRC with scikit-learn, LISI with
  harmonypy (perplexity 30), kNN-graph modularity (k = 30, self included)
  with networkx;
- Wilcoxon rank-sum per gene: ``scipy.stats.ranksums`` (no tie correction)
  and ``mannwhitneyu(method="asymptotic", use_continuity=False)`` (tie
  corrected), BH with ``false_discovery_control``, and DE recall.

Usage: golden_metrics.py OUT.json   (CI regenerates it and the Rust test
``crates/conceptlab-eval/tests/golden.rs`` reads it via CONCEPTLAB_GOLDEN_METRICS)
"""

import json
import sys

import numpy as np
import ot
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist
from scipy.stats import false_discovery_control, mannwhitneyu, norm, pearsonr, ranksums
import networkx as nx
from harmonypy import compute_lisi
from sklearn.metrics import accuracy_score, auc, f1_score, precision_recall_curve, r2_score, roc_auc_score
from sklearn.neighbors import NearestNeighbors
from sklearn.metrics.pairwise import rbf_kernel


def mmd2(x, y):
    gamma = 1.0 / x.shape[1]
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=gamma), rbf_kernel(y, y, gamma=gamma), rbf_kernel(x, y, gamma=gamma)
    m, n = len(x), len(y)
    value = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
             - 2 * kxy.mean())
    return max(float(value), 0.0)


def e_distance(x, y):
    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def frechet(x, y):
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = sqrtm(cx @ cy)
    return float(((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * np.real(root)))


def main(out):
    rng = np.random.default_rng(2026)
    d = 6
    target = rng.normal(1.0, 1.0, (40, d))
    prediction = rng.normal(0.4, 1.2, (35, d))
    control = rng.normal(0.0, 1.0, (30, d))
    # "tiny" matches the target best but has fewer than 10 cells: it must be skipped.
    train = np.vstack([rng.normal(0.0, 1.0, (25, d)), rng.normal(1.7, 1.0, (20, d)), rng.normal(1.0, 1.0, (5, d))])
    labels = ["control"] * 25 + ["other"] * 20 + ["tiny"] * 5
    groups = {g: train[[i for i, l in enumerate(labels) if l == g]] for g in dict.fromkeys(labels)}
    usable = {g: v for g, v in groups.items() if len(v) >= 10}
    nearest = min(usable, key=lambda g: mmd2(target, usable[g]))
    d_train = mmd2(target, usable[nearest])

    mt, mp, mc = target.mean(0), prediction.mean(0), control.mean(0)
    order = rng.permutation(len(prediction))
    keys = [f"cell_{i}" for i in range(len(prediction))]
    truth_cells = prediction + rng.normal(0, 0.3, prediction.shape)
    cell_mse = float(np.mean(((prediction - truth_cells) ** 2).mean(1)))

    # Gene space: log1p of Poisson counts (many ties), some genes up or down.
    genes = 40
    rate = rng.uniform(0.5, 4.0, genes)
    effect = np.ones(genes)
    effect[:8], effect[8:14] = 3.0, 0.25
    base = np.log1p(rng.poisson(rate, (120, genes)).astype(float))
    de_target = np.log1p(rng.poisson(rate * effect, (80, genes)).astype(float))
    effect_pred = effect.copy()
    effect_pred[6:8], effect_pred[12:14] = 1.0, 1.0  # the prediction misses some effects
    de_pred = np.log1p(rng.poisson(rate * effect_pred, (70, genes)).astype(float))
    z_plain = [float(ranksums(de_target[:, g], base[:, g]).statistic) for g in range(genes)]
    p_plain = [float(ranksums(de_target[:, g], base[:, g]).pvalue) for g in range(genes)]
    p_tie = [float(mannwhitneyu(de_target[:, g], base[:, g], method="asymptotic", use_continuity=False).pvalue)
             for g in range(genes)]

    def lfc(a, b):
        return np.log2((np.expm1(a.mean(0)) + 1e-9) / (np.expm1(b.mean(0)) + 1e-9))

    def calls(group, threshold):
        p = [mannwhitneyu(group[:, g], base[:, g], method="asymptotic", use_continuity=False).pvalue
             for g in range(genes)]
        q = false_discovery_control(p)
        l = lfc(group, base)
        return (q < threshold) & (l > 0), (q < threshold) & (l < 0)

    true_up, true_down = calls(de_target, 0.001)
    pred_up, pred_down = calls(de_pred, 0.05)

    def w2_squared(x, y):
        return float(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cdist(x, y, "sqeuclidean"),
                             numItermax=10_000_000))

    def sinkhorn_divergence(x, y, scale=0.1):
        eps = scale * cdist(x, y, "sqeuclidean").max()

        def cost(a, b):
            return float(ot.sinkhorn2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)),
                                      cdist(a, b, "sqeuclidean"), eps, method="sinkhorn_log",
                                      numItermax=100_000, stopThr=1e-13))
        return cost(x, y) - 0.5 * cost(x, x) - 0.5 * cost(y, y)

    # Concept head: noisy probabilities with tied scores (rounded to 0.1).
    truth = (rng.uniform(size=200) < 0.3).astype(int)
    prob = np.clip(np.round(0.35 * truth + rng.uniform(0, 0.7, 200), 1), 0, 1)
    precision, recall, _ = precision_recall_curve(truth, prob)
    concept = {
        "truth": truth.tolist(), "probability": prob.tolist(),
        "accuracy": float(accuracy_score(truth, prob >= 0.5)), "f1": float(f1_score(truth, prob >= 0.5)),
        "auroc": float(roc_auc_score(truth, prob)), "auprc": float(auc(recall, precision)),
    }

    # Mixing on an embedding: two partly overlapping batches.
    emb = np.vstack([rng.normal(0, 1, (150, 5)), rng.normal(0.8, 1, (130, 5))])
    batch = ["a"] * 150 + ["b"] * 130
    import pandas as pd
    lisi = compute_lisi(emb, pd.DataFrame({"batch": batch}), ["batch"], perplexity=30)[:, 0]
    nn = NearestNeighbors(n_neighbors=30).fit(emb)
    _, idx = nn.kneighbors(emb)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(emb)))
    graph.add_edges_from((i, int(j)) for i, row in enumerate(idx) for j in row)
    communities = [{i for i, b in enumerate(batch) if b == "a"}, {i for i, b in enumerate(batch) if b == "b"}]
    mixing = {"embedding": emb.tolist(), "labels": batch, "lisi": lisi.tolist(),
              "modularity": float(nx.community.modularity(graph, communities))}

    # scGen's "top DEGs": rank genes by Wilcoxon score of target vs base.
    # (tie-corrected z recovered from mannwhitneyu's asymptotic p and the sign of U - n1 n0 / 2)
    def z_score(a, b):
        r = mannwhitneyu(a, b, method="asymptotic", use_continuity=False)
        return float(np.sign(r.statistic - len(a) * len(b) / 2) * norm.isf(r.pvalue / 2))
    z_rank = np.argsort([-z_score(de_target[:, g], base[:, g]) for g in range(genes)], kind="stable")[:10]
    mt_k, mp_k = de_target[:, z_rank].mean(0), de_pred[:, z_rank].mean(0)
    top_k = {"genes": z_rank.tolist(), "r2_pearson_means": float(pearsonr(mt_k, mp_k)[0] ** 2),
             "r2_score_means": float(r2_score(mt_k, mp_k))}

    golden = {
        "top_k": top_k,
        "concept": concept,
        "mixing": mixing,
        "w2_squared": w2_squared(target, prediction),
        "sinkhorn_divergence": sinkhorn_divergence(target, prediction),
        "de": {
            "base": base.tolist(), "target": de_target.tolist(), "prediction": de_pred.tolist(),
            "z_no_tie_correction": z_plain, "p_no_tie_correction": p_plain, "p_tie_corrected": p_tie,
            "bh_of_p_tie_corrected": false_discovery_control(p_tie).tolist(),
            "log2_fold_change": lfc(de_target, base).tolist(),
            "recall_up": float((true_up & pred_up).sum() / true_up.sum()),
            "recall_down": float((true_down & pred_down).sum() / true_down.sum()),
            "n_true_up": int(true_up.sum()), "n_true_down": int(true_down.sum()),
        },
        "dims": d,
        "target": target.tolist(), "prediction": prediction.tolist(), "control": control.tolist(),
        "train": train.tolist(), "train_labels": labels,
        "mmd2": mmd2(target, prediction),
        "rmmd": {"ratio": mmd2(target, prediction) / (d_train + 1e-8), "nearest_group": nearest,
                 "nearest_group_distance": d_train},
        "e_distance": e_distance(target, prediction),
        "frechet": frechet(target, prediction),
        "r2_pearson_means": float(pearsonr(mt, mp)[0] ** 2),
        "r2_score_means": float(r2_score(mt, mp)),
        "pearson_delta": float(pearsonr(mt - mc, mp - mc)[0]),
        "mse_means": float(((mt - mp) ** 2).mean()), "mae_means": float(np.abs(mt - mp).mean()),
        "cell_level": {
            "prediction": prediction[order].tolist(), "prediction_keys": [keys[i] for i in order],
            "truth": truth_cells.tolist(), "truth_keys": keys, "mse": cell_mse,
        },
    }
    with open(out, "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
