#!/usr/bin/env python3
"""PyTorch CPU training throughput of the paper's neural baselines (counterparts for `cargo xtask bench-train`).

Uses the reference modules in ``baselines_torch.py`` (which builds on ``sccbgm_torch.py``; both in this
directory) and the timing helpers of ``bench_sccbgm_torch.py``, so the method is the same as for scCBGM: random
data (x ~ N(0,1), B x G with G = 128 "PCs"; K = 10 concepts random 0/1), nothing read from disk; one timed step is
a full optimisation step (zero_grad, forward with fresh noise, loss, backward, Adam step); throughput is
batch / median(step time) over the timed steps after warm-up. Adam is PyTorch's default (0.9, 0.999, eps 1e-8).

Models (G 128, K 10; spec-models.md sections in brackets):
  cbgm         scCEM / CEM-VAE [§5, §11.1 CEM-VAE row]: H 1024, L 4, Z 128, U0 128 -> e 12, U 120, NoRes encoder,
               decoder --decoder (default "no residual", as the synthetic CBGM), beta 1e-5, lambda_c 0.1,
               lambda_o 0.5 (|cos| on the embedding), batch 128, lr 3e-4
  sccvae       scCVAE [§6.1, §11.1]: H 1024, L 4, Z 128, beta 1e-5, batch 128, lr 3e-4
  scgen        scGen [§8.1]: 2 x [Linear(800) -> BN -> LeakyReLU -> Dropout 0.2], latent 100, alpha 5e-5,
               batch 128, lr 1e-3 (unconditional training; the flip-string labels only matter for prediction)
  trvae        trVAE [§8.2]: encoder [128, 32], decoder [32, 128], latent 10, alpha 1e-4, MMD beta 10 over
               19 scales, condition = flip string of the first --trvae-flip concepts (2 conditions by default),
               batch 512, lr 1e-3
  conceptflow  Concept_FM [§7.6, fm_config conceptflow.yaml]: H 1024, Z 128, U 128, L 4, cb_layers 2, dropout
               0.1, p_uncond 0, ReLU unknown, kl 0.1, concepts 0.1, orthogonality 0.2, flow 1.0, batch 128,
               lr 3e-4; concept mean / std from the whole random concept set
  raw-fm       Cond_FM on the observed concepts [§7.1, §7.3]: c_dim 10, H 1024, L 4, dropout 0.1, batch 128, lr 3e-4
  sccvae-fm    the flow stage of scCVAE-FM only [§7.5]: Cond_FM with c_dim 128 + 10 (condition = [mu_CVAE || c],
               here N(0,1) latents next to the 0/1 concepts); the scCVAE stage is timed as `sccvae`

Parameter counts: raw-fm / sccvae-fm are checked against the spec's Cond_FM formula (2049*G + 1024*C
+ 6,307,840); conceptflow's velocity net too, plus closed forms for its DenseEncoders; the spec gives no totals for
the other baselines, so they are checked against closed forms derived from the architecture. `--check` builds
every model (all cbgm decoders, both CEM head layouts) and asserts all of them, then exits.

Examples (venv at /work/venv-torch):
  /work/venv-torch/bin/python scripts/python/bench_baselines_torch.py --model cbgm --threads 1 --json
  /work/venv-torch/bin/python scripts/python/bench_baselines_torch.py --check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines_torch as B  # noqa: E402
import sccbgm_torch as M  # noqa: E402
from bench_sccbgm_torch import summarise, timed_training  # noqa: E402  (same timing method as scCBGM)

G, K = 128, 10
CVAE_LATENT = 128            # Z of scCVAE: sccvae-fm's condition is [mu (Z) || c (K)]
N_BATCHES = 8                # distinct random batches cycled through, as bench_sccbgm_torch does
MODELS = ("cbgm", "sccvae", "scgen", "trvae", "conceptflow", "raw-fm", "sccvae-fm")
DECODERS = {"no-residual": "no residual", "residual": "residual", "skip": "skip"}


def build(name, decoder="no residual", fused=False, trvae_flip=1):
    """Returns (model, spec dict): hyper, batch, lr, expected params, where the expectation comes from."""
    if name == "cbgm":
        cfg = B.CEMConfig(input_dim=G, n_concepts=K, decoder_type=decoder, fused_heads=fused)
        assert (cfg.emb_size, cfg.bottleneck) == (12, 120)  # §5.1's worked example (U0 128, K 10)
        exp = B.expected_cem_params(G, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim, K, cfg.n_unknown, decoder)
        return B.CEMVAE(cfg), dict(hyper=cfg.to_dict(), batch=128, lr=3e-4, expected=exp,
                                   expected_source="closed form of §5.2 (spec gives no total)")
    if name == "sccvae":
        cfg = B.CVAEConfig(input_dim=G, n_concepts=K)
        exp = B.expected_cvae_params(G, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim, K)
        return B.ScCVAE(cfg), dict(hyper=cfg.to_dict(), batch=128, lr=3e-4, expected=exp,
                                   expected_source="closed form of §6.1 (spec gives no total)")
    if name == "scgen":
        cfg = B.ScGenConfig(input_dim=G)
        exp = B.expected_scgen_params(G, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim)
        return B.ScGen(cfg), dict(hyper=cfg.to_dict(), batch=128, lr=1e-3, expected=exp,
                                  expected_source="closed form of §8.1 (spec gives no total)")
    if name == "trvae":
        cfg = B.TrVAEConfig(input_dim=G, n_conditions=2 ** trvae_flip)
        exp = B.expected_trvae_params(G, cfg.n_conditions, cfg.encoder_sizes, cfg.decoder_sizes, cfg.latent_dim)
        return B.TrVAE(cfg), dict(hyper=dict(cfg.to_dict(), flip_concepts=trvae_flip), batch=512, lr=1e-3,
                                  expected=exp, expected_source="closed form of §8.2 (spec gives no total)")
    if name == "conceptflow":
        cfg = B.ConceptFMConfig(input_dim=G, n_concepts=K)
        exp = B.expected_concept_fm_params(G, cfg.hidden_dim, cfg.latent_dim, K, cfg.n_unknown, cfg.n_layers,
                                           cfg.cb_layers)
        return B.ConceptFM(cfg), dict(hyper=cfg.to_dict(), batch=128, lr=3e-4, expected=exp,
                                      expected_source="§7.1 formula for the velocity net + closed-form DenseEncoders")
    if name in ("raw-fm", "sccvae-fm"):
        c_dim = K if name == "raw-fm" else CVAE_LATENT + K
        net = B.CondFM(G, c_dim, emb_dim=1024, n_layers=4, dropout=0.1, p_uncond=0.0)
        hyper = dict(net.cfg.to_dict(), p_uncond=0.0)
        if name == "sccvae-fm":
            hyper["note"] = "flow stage only (Cond_FM on [mu_CVAE || c]); scCVAE stage = model sccvae"
        return net, dict(hyper=hyper, batch=128, lr=3e-4, expected=B.expected_cond_fm_params(G, c_dim),
                         expected_source="spec §7.1 formula 2049*G + 1024*C + 6,307,840")
    raise ValueError(name)


def make_batches(name, model, b, seed, trvae_flip=1):
    """N_BATCHES argument tuples for model.loss_terms, drawn like bench_sccbgm_torch (x ~ N(0,1), concepts 0/1)."""
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn(N_BATCHES, b, G, generator=gen)
    cs = (torch.rand(N_BATCHES, b, K, generator=gen) < 0.5).float()
    if name == "trvae":
        # condition = the flip string of the first n concepts, as an integer label (2^n conditions)
        weights = 2 ** torch.arange(trvae_flip)
        labels = (cs[:, :, :trvae_flip].long() * weights).sum(dim=2)
        return [(xs[i], labels[i]) for i in range(N_BATCHES)]
    if name == "sccvae-fm":
        mus = torch.randn(N_BATCHES, b, CVAE_LATENT, generator=gen)
        return [(xs[i], torch.cat([mus[i], cs[i]], dim=1)) for i in range(N_BATCHES)]
    if name == "conceptflow":
        model.set_concept_stats(cs.reshape(-1, K))  # "dataset" = every cell the benchmark will see
    return [(xs[i], cs[i]) for i in range(N_BATCHES)]


def fourier_buffers(model):
    return [m.t_embedder.weights.numel() for m in model.modules() if isinstance(m, M.FlowDecoder)]


def bench(args):
    decoder = DECODERS[args.decoder]
    model, spec = build(args.model, decoder, args.cem_fused, args.trvae_flip)
    model.train()
    n_params = B.n_trainable(model)
    b = args.batch or spec["batch"]
    data = make_batches(args.model, model, b, args.seed, args.trvae_flip)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = model.loss_terms(*data[i])["total"]  # fresh reparametrisation / flow noise inside
        loss.backward()
        opt.step()
        return float(loss.detach())

    times, last = timed_training(step, N_BATCHES, args.warmup, args.steps)
    res = dict(tool="pytorch", model=args.model, hyper=dict(spec["hyper"], batch=b, lr=spec["lr"]),
               n_params=n_params, n_params_expected=spec["expected"], n_params_source=spec["expected_source"],
               params_match_spec=n_params == spec["expected"], batch=b, final_loss=last, **summarise(times, b))
    fb = fourier_buffers(model)
    if fb:
        res["fourier_buffer"] = fb[0]
    return res


def check():
    """Builds every model variant and asserts its trainable parameter count; returns the counts."""
    counts = {}
    variants = [(m, "no residual", False) for m in MODELS]
    variants += [("cbgm", d, f) for d in ("residual", "skip") for f in (False, True)] + [("cbgm", "no residual", True)]
    for name, decoder, fused in variants:
        model, spec = build(name, decoder, fused)
        n = B.n_trainable(model)
        key = name if name != "cbgm" else f"cbgm[{decoder}{', fused' if fused else ''}]"
        assert n == spec["expected"], (key, n, spec["expected"])
        counts[key] = n
    # the spec's Cond_FM formula agrees with the generic FlowDecoder closed form in sccbgm_torch
    for c_dim in (K, CVAE_LATENT + K, K + 128):
        assert B.expected_cond_fm_params(G, c_dim) == M.expected_flow_params(G, c_dim, 1024, 4)
    for name in ("conceptflow", "raw-fm", "sccvae-fm"):
        assert fourier_buffers(build(name)[0]) == [512]  # the 512-float buffer, not a trainable parameter
    # fused CEM heads are a re-layout, not a different model: same count as the per-concept ModuleLists
    assert counts["cbgm[no residual]"] == counts["cbgm[no residual, fused]"]
    counts["trvae[4 conditions]"] = B.n_trainable(build("trvae", trvae_flip=2)[0])
    assert counts["trvae[4 conditions]"] == B.expected_trvae_params(G, 4)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=MODELS, default="cbgm")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps")
    ap.add_argument("--batch", type=int, default=0, help="override the model's batch size")
    ap.add_argument("--decoder", choices=sorted(DECODERS), default="no-residual", help="cbgm only: decoder type")
    ap.add_argument("--cem-fused", action="store_true",
                    help="cbgm only: one Linear for the K context generators (same function and parameter count)")
    ap.add_argument("--trvae-flip", type=int, default=1, help="trvae only: concepts in the flip string (2^n conditions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--check", action="store_true", help="assert every model's parameter count and exit")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    if args.check:
        counts = check()
        if args.json:
            print(json.dumps(dict(tool="pytorch", check="ok", n_params=counts)))
        else:
            for k, v in counts.items():
                print(f"{k:34s} {v:>12,d}")
            print("all parameter counts match")
        return

    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    denormal = torch.set_flush_denormal(True)
    res = bench(args)
    res.update(steps=args.steps, warmup=args.warmup, threads=args.threads, torch_threads=torch.get_num_threads(),
               flush_denormal=bool(denormal), torch_version=torch.__version__, python=platform.python_version(),
               machine=platform.machine(), cpu_count=os.cpu_count(), device="cpu",
               load_avg_1m_before=load_before, load_avg_1m_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:26s} {v:.6g}" if isinstance(v, float) else f"{k:26s} {v}")


if __name__ == "__main__":
    main()
