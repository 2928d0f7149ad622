#!/usr/bin/env python3
"""PyTorch CPU baseline throughput for scCBGM training and the flow-matching velocity net.

Uses the reference modules in ``sccbgm_torch.py`` (same directory). Data are
random: x ~ N(0,1) (B x G, G = 128 "PCs"), concepts random 0/1; nothing is read
from disk. Timing covers one full optimisation step (zero_grad, forward with
fresh reparametrisation noise, loss, backward, Adam step); the reported
throughput is batch / median(step time) over the timed steps after warm-up.

Models and configurations:
  --model sccbgm --config real       G 128, H 1024, L 4, Z 128, U 128, K 10, batch 128, Adam lr 3e-4
                                     (fm_config/model/cbm.yaml: beta 1e-5, concepts_hp 0.1, orthogonality_hp 0.5)
  --model sccbgm --config synthetic  G 128, H 128, L 2, Z 64, U 128, K 5, batch 512, Adam lr 5e-4
                                     (scCBGM.yaml best: beta 1e-4, concepts_hp 0.005, orthogonality_hp 0.05)
  --model flow                       Cond_FM velocity net (mlp.FlowDecoder), x_dim 128, c_dim 138 (K 10 + U 128),
                                     E 1024, L 4, dropout 0.1, batch 128, Adam lr 3e-4; CFM loss with
                                     x0 ~ N(0,I), t ~ U[0,1)
  --model flow --edit                eval()/no_grad Euler edit (Cond_FM.edit with t_edit 0, w 1, noise 0):
                                     N backward + N forward velocity evaluations per cell, --edit-cells cells in
                                     batches of --edit-batch; reports cells/s of the whole edit

Parameter counts are checked against spec-models.md (real scCBGM, G 128, K 10:
13,294,346; Cond_FM: 2049*G + 1024*C + 6,307,840 plus the 512-float Fourier buffer).

--device cuda[:N] runs the same on a GPU (data generated on the CPU, then moved;
every timed step ends with a host read of the loss or an explicit synchronize).

Examples (venv at /work/venv-torch):
  /work/venv-torch/bin/python scripts/python/bench_sccbgm_torch.py --config real --threads 1 --json
  /work/venv-torch/bin/python scripts/python/bench_sccbgm_torch.py --model flow --edit --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sccbgm_torch as M  # noqa: E402

SCCBGM_CONFIGS = {
    "real": dict(model=dict(input_dim=128, hidden_dim=1024, n_layers=4, latent_dim=128, n_concepts=10,
                            n_unknown=128, dropout=0.0, beta=1e-5, concepts_hp=0.1, orthogonality_hp=0.5),
                 batch=128, lr=3e-4),
    "synthetic": dict(model=dict(input_dim=128, hidden_dim=128, n_layers=2, latent_dim=64, n_concepts=5,
                                 n_unknown=128, dropout=0.0, beta=1e-4, concepts_hp=0.005, orthogonality_hp=0.05),
                      batch=512, lr=5e-4),
}
FLOW_CONFIG = dict(model=dict(x_dim=128, c_dim=138, emb_dim=1024, n_layers=4, dropout=0.1), batch=128, lr=3e-4)


def summarise(times, cells_per_step):
    med = statistics.median(times)
    return dict(
        step_s_median=med,
        step_s_mean=statistics.fmean(times),
        step_s_min=min(times),
        step_s_max=max(times),
        cells_per_s=cells_per_step / med,
        cells_per_s_best=cells_per_step / min(times),
    )


DEVICE = torch.device("cpu")


def sync():
    # CUDA kernels run asynchronously: a time is only taken after they finish.
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed_training(step, n_batches, warmup, steps):
    for i in range(warmup):
        step(i % n_batches)
    times = []
    last = None
    for i in range(steps):
        t0 = time.perf_counter()
        last = step((warmup + i) % n_batches)
        times.append(time.perf_counter() - t0)
    return times, last


def bench_sccbgm(args):
    spec = SCCBGM_CONFIGS[args.config]
    cfg = M.ScCBGMConfig(**spec["model"])
    model = M.ScCBGM(cfg).to(DEVICE)
    model.train()
    n_params = M.n_trainable(model)
    expected = M.expected_sccbgm_params(cfg.input_dim, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim,
                                        cfg.n_concepts, cfg.n_unknown)
    if args.config == "real":
        assert expected == 13_020_544 + 2049 * cfg.input_dim + 1153 * cfg.n_concepts == 13_294_346
    else:
        assert expected == 141_440 + 257 * cfg.input_dim + 193 * cfg.n_concepts
    assert n_params == expected, (n_params, expected)

    b = args.batch or spec["batch"]
    n_batches = 8
    gen = torch.Generator().manual_seed(args.seed)
    xs = torch.randn(n_batches, b, cfg.input_dim, generator=gen).to(DEVICE)
    cs = (torch.rand(n_batches, b, cfg.n_concepts, generator=gen) < 0.5).float().to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])

    def step(i):
        opt.zero_grad(set_to_none=True)
        out = model(xs[i])  # eps ~ N(0,I) drawn inside, as in training
        loss = model.loss_terms(out, xs[i], cs[i])["total"]
        loss.backward()
        opt.step()
        return float(loss.detach())

    times, last = timed_training(step, n_batches, args.warmup, args.steps)
    return dict(model="sccbgm", config=args.config, hyper=dict(spec["model"], batch=b, lr=spec["lr"]),
                n_params=n_params, n_params_expected=expected, params_match_spec=n_params == expected,
                batch=b, final_loss=last, **summarise(times, b))


def build_flow():
    cfg = M.FlowConfig(**FLOW_CONFIG["model"])
    net = M.FlowDecoder(cfg)
    n_params = M.n_trainable(net)
    expected = 2049 * cfg.x_dim + 1024 * cfg.c_dim + 6_307_840
    assert M.expected_flow_params(cfg.x_dim, cfg.c_dim, cfg.emb_dim, cfg.n_layers) == expected
    assert n_params == expected, (n_params, expected)
    assert net.t_embedder.weights.numel() == cfg.emb_dim // 2
    return cfg, net, n_params, expected


def bench_flow_train(args):
    cfg, net, n_params, expected = build_flow()
    net = net.to(DEVICE)
    net.train()
    b = args.batch or FLOW_CONFIG["batch"]
    n_batches = 8
    gen = torch.Generator().manual_seed(args.seed)
    x1s = torch.randn(n_batches, b, cfg.x_dim, generator=gen).to(DEVICE)
    cs = torch.randn(n_batches, b, cfg.c_dim, generator=gen).to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=FLOW_CONFIG["lr"])

    def step(i):
        opt.zero_grad(set_to_none=True)
        x0 = torch.randn_like(x1s[i])
        t = torch.rand(b, device=DEVICE)
        loss, _ = M.cfm_loss(net, x0, x1s[i], t, cs[i])
        loss.backward()
        opt.step()
        return float(loss.detach())

    times, last = timed_training(step, n_batches, args.warmup, args.steps)
    return dict(model="flow", mode="train", hyper=dict(FLOW_CONFIG["model"], batch=b, lr=FLOW_CONFIG["lr"]),
                n_params=n_params, n_params_expected=expected, params_match_spec=n_params == expected,
                fourier_buffer=cfg.emb_dim // 2, batch=b, final_loss=last, **summarise(times, b))


def bench_flow_edit(args):
    cfg, net, n_params, expected = build_flow()
    net = net.to(DEVICE)
    net.eval()
    gen = torch.Generator().manual_seed(args.seed)
    n, bs, n_steps = args.edit_cells, args.edit_batch, args.edit_steps
    x = torch.randn(n, cfg.x_dim, generator=gen).to(DEVICE)
    c = torch.randn(n, cfg.c_dim, generator=gen).to(DEVICE)
    c_new = c.clone()
    c_new[:, :2] = 1.0 - c_new[:, :2]
    with torch.no_grad():
        # warm-up: a short edit of one batch
        M.euler_edit(net, x[:bs], c[:bs], c_new[:bs], max(1, args.warmup))
        sync()
        batch_times = []
        t_all = time.perf_counter()
        for s in range(0, n, bs):
            t0 = time.perf_counter()
            M.euler_edit(net, x[s:s + bs], c[s:s + bs], c_new[s:s + bs], n_steps)
            sync()
            batch_times.append(time.perf_counter() - t0)
        total = time.perf_counter() - t_all
    evals = 2 * n_steps
    return dict(model="flow", mode="edit", hyper=dict(FLOW_CONFIG["model"]), n_params=n_params,
                n_params_expected=expected, params_match_spec=n_params == expected,
                edit_cells=n, edit_batch=bs, euler_steps=n_steps, velocity_evals_per_cell=evals,
                total_s=total, cells_per_s=n / total, cell_evals_per_s=n * evals / total,
                batch_s_median=statistics.median(batch_times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["sccbgm", "flow"], default="sccbgm")
    ap.add_argument("--config", choices=sorted(SCCBGM_CONFIGS), default="real", help="scCBGM configuration")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps (edit: Euler steps of one batch)")
    ap.add_argument("--batch", type=int, default=0, help="override the configuration's batch size")
    ap.add_argument("--edit", action="store_true", help="flow only: time the Euler edit instead of training")
    ap.add_argument("--edit-cells", type=int, default=10_000)
    ap.add_argument("--edit-batch", type=int, default=1024)
    ap.add_argument("--edit-steps", type=int, default=100, help="N (the edit runs N backward + N forward steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device")

    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    denormal = torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    if args.model == "sccbgm":
        res = bench_sccbgm(args)
    elif args.edit:
        res = bench_flow_edit(args)
    else:
        res = bench_flow_train(args)
    if not args.edit:
        res.update(steps=args.steps, warmup=args.warmup)
    res.update(threads=args.threads, torch_threads=torch.get_num_threads(), flush_denormal=bool(denormal),
               torch_version=torch.__version__, python=platform.python_version(), machine=platform.machine(),
               cpu_count=os.cpu_count(), device=str(DEVICE),
               gpu=torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
               load_avg_1m_before=load_before, load_avg_1m_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:26s} {v:.6g}" if isinstance(v, float) else f"{k:26s} {v}")


if __name__ == "__main__":
    main()
