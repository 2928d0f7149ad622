#!/usr/bin/env python3
"""Golden values for conceptlab-models: scCBGM, mixed hard/soft scCBGM and the flow velocity net.

Uses the PyTorch reference in ``sccbgm_torch.py`` (same directory). Every
parameter and input comes from a closed formula, so nothing depends on a
random-number generator:

- parameters, in ``state_dict()`` order p = 0, 1, ... (buffers included), with
  i the row-major flat index of the element and a = 1.7*p + 0.61*i + 0.037*i^2 + 0.2
  (the i^2 "chirp" term makes every weight matrix full rank; without it
  sin(alpha + beta*(r*n_in + col)) gives rank-2 matrices):
    LayerNorm weight (``*.norm.weight``)  1 + 0.1*sin(a)
    LayerNorm bias   (``*.norm.bias``)    0.1*sin(a)
    Fourier buffer   (``t_embedder.weights``) 2*pi*sin(a)
    everything else                       0.3*sin(a)
  each value is computed in float64 and rounded to float32;
- inputs (b = row, j = column), also rounded to float32:
    x[b,j]   = sin(0.7*b + 1.3*j + 0.11*b*j + 0.3) + 0.5*cos(1.9*b - 0.4*j)
    c[b,k]   = 1 if sin(1.3*b + 2.3*k + 0.17*b*k + 0.5) > 0 else 0   (hard concepts)
    c[b,k]   = 0.5 + 0.45*sin(0.9*b + 1.7*k + 0.2)                   (mixed: soft columns)
    eps[b,z] = 1.2*sin(1.1*b + 0.7*z + 0.23*b*z + 0.9)
    mask[b,k]= 1 if (b + 2k) % 3 == 0 else 0
    c_new    = 1 - c (hard columns); 0.8 on soft columns
  flow: x0[b,j] = 1.1*sin(0.8*b + 1.9*j + 0.13*b*j + 0.4), x1[b,j] = cos(0.6*b + 1.1*j + 0.1) + 0.2*j,
        t[b] = (b + 0.5)/B * 0.98 + 0.003, c[b,k] = sin(1.3*b + 0.9*k + 0.7),
        c_prime[b,k] = cos(0.5*b + 1.4*k + 0.2).

Every quantity is computed twice from the same float32-rounded parameters and
inputs: in float32 (stored) and in float64 (only used to report, under
``f32_vs_f64``, how far the stored float32 values are from exact arithmetic).

Writes, under ``crates/conceptlab-models/tests/fixtures/`` (or the directory given
as the first argument):
  sccbgm_golden.{safetensors,json}        scCBGM, G=7 H=6 L=2 Z=5 K=3 U=4, B=9 (+ a B=2 case)
  sccbgm_mixed_golden.{safetensors,json}  mixed scCBGM, Kh=2, Ks=1, B=9
  flow_golden.{safetensors,json}          mlp.FlowDecoder x_dim=5 c_dim=3 E=8 L=2, B=6

Run with the torch venv:  /work/venv-torch/bin/python scripts/python/golden_sccbgm.py
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sccbgm_torch as M  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "crates", "conceptlab-models", "tests", "fixtures")

ADAM = dict(lr=1e-2, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0)

PARAM_FORMULA = (
    "p = index in state_dict() order (buffers included), i = row-major flat element index, "
    "a = 1.7*p + 0.61*i + 0.037*i^2 + 0.2; '*.norm.weight': 1 + 0.1*sin(a); '*.norm.bias': 0.1*sin(a); "
    "'t_embedder.weights': 2*pi*sin(a); otherwise 0.3*sin(a); computed in float64, rounded to float32"
)


# ----------------------------------------------------------------------------- helpers

def formula_params(model):
    out = {}
    for p, (name, t) in enumerate(model.state_dict().items()):
        i = np.arange(t.numel(), dtype=np.float64)
        a = 1.7 * p + 0.61 * i + 0.037 * i * i + 0.2
        if name.endswith("norm.weight"):
            v = 1.0 + 0.1 * np.sin(a)
        elif name.endswith("norm.bias"):
            v = 0.1 * np.sin(a)
        elif name.endswith("t_embedder.weights"):
            v = 2.0 * math.pi * np.sin(a)
        else:
            v = 0.3 * np.sin(a)
        out[name] = torch.from_numpy(v.reshape(tuple(t.shape)).astype(np.float32))
    return out


def grid(shape, fn):
    idx = np.indices(shape, dtype=np.float64)
    return torch.from_numpy(np.asarray(fn(*idx), dtype=np.float64).astype(np.float32))


def build(model_fn, params, dtype):
    model = model_fn().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in params.items()}, strict=True)
    model.train()  # dropout is 0, so train/eval only matter for documentation
    return model


def r32(x):
    """Exactly representable decimal for a float32 value (9 significant digits round-trip)."""
    return float(f"{float(x):.9g}")


def tolist32(t):
    a = t.detach().to(torch.float32).cpu().numpy()
    if a.ndim == 0:
        return r32(a)
    return np.vectorize(r32, otypes=[object])(a).tolist()


def as64(t):
    return t.detach().to(torch.float64).cpu().numpy()


class Recorder:
    """Collects float32 results for the JSON and float32-vs-float64 discrepancies."""

    def __init__(self):
        self.disc = {}

    def put(self, section, key, t32, t64):
        a32, a64 = as64(t32), as64(t64)
        diff = float(np.max(np.abs(a32 - a64))) if a32.size else 0.0
        scale = float(np.max(np.abs(a64))) if a64.size else 0.0
        name = section + key  # section is "" or ends with "."
        prev = self.disc.get(name)
        if prev is None or diff > prev["max_abs_diff"]:
            self.disc[name] = dict(max_abs_diff=diff, max_abs_value=scale,
                                   rel_to_max=(diff / scale if scale > 0 else 0.0))
        return tolist32(t32)

    def put_dict(self, section, d32, d64):
        return {k: self.put(section + ".", k, d32[k], d64[k]) for k in d32}

    def put_named(self, section, d32, d64):
        """Per-parameter dict; the discrepancy is aggregated over all parameters of the section."""
        out = {}
        worst, scale = 0.0, 0.0
        per = {}
        for k in d32:
            a32, a64 = as64(d32[k]), as64(d64[k])
            dk = float(np.max(np.abs(a32 - a64)))
            per[k] = dk
            worst = max(worst, dk)
            scale = max(scale, float(np.max(np.abs(a64))))
            out[k] = tolist32(d32[k])
        self.disc[section] = dict(max_abs_diff=worst, max_abs_value=scale,
                                  rel_to_max=(worst / scale if scale > 0 else 0.0),
                                  worst_parameter=max(per, key=per.get))
        return out


def train_steps(model, step_loss, n_steps):
    """Adam (torch defaults apart from lr) on the same batch; returns grads at step 1, params after 1 and n steps."""
    opt = torch.optim.Adam(model.parameters(), lr=ADAM["lr"], betas=tuple(ADAM["betas"]), eps=ADAM["eps"])
    names = [n for n, _ in model.named_parameters()]
    grads = None
    after = {}
    losses = []
    for s in range(1, n_steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = step_loss(model)
        loss.backward()
        losses.append(loss.detach().clone())
        if s == 1:
            grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        opt.step()
        after[s] = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        losses.append(step_loss(model).detach().clone())
    assert list(grads) == names
    return grads, after, torch.stack(losses)


def zero_grad_counts(grads):
    """Exactly-zero gradient elements (LayerNorm channels whose ReLU is off for the whole batch)."""
    return {k: int((g == 0).sum()) for k, g in grads.items() if bool((g == 0).any())}


def write(out_dir, stem, tensors, doc):
    os.makedirs(out_dir, exist_ok=True)
    st = os.path.join(out_dir, stem + ".safetensors")
    save_file({k: v.to(torch.float32).contiguous() for k, v in tensors.items()}, st,
              metadata={"generator": f"scripts/python/golden_sccbgm.py (torch {torch.__version__})"})
    js = os.path.join(out_dir, stem + ".json")
    with open(js, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {st} ({os.path.getsize(st)} B), {js} ({os.path.getsize(js)} B)")


def common_doc(cfg_dict, model, params):
    return dict(
        generator="scripts/python/golden_sccbgm.py",
        reference="scripts/python/sccbgm_torch.py (written from docs spec-models.md)",
        torch_version=torch.__version__,
        dtype="float32 (float64 only for f32_vs_f64)",
        param_formula=PARAM_FORMULA,
        config=cfg_dict,
        adam=dict(ADAM, note="torch.optim.Adam: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)"),
        param_names=list(params.keys()),
        param_shapes={k: list(v.shape) for k, v in params.items()},
        n_trainable_params=M.n_trainable(model),
    )


# ----------------------------------------------------------------------------- scCBGM

def sccbgm_case(model_fn, params, x, c, eps, rec, section, n_adam):
    res = {}
    m = {dt: build(model_fn, params, dt) for dt in (torch.float32, torch.float64)}
    fwd, loss = {}, {}
    for dt, model in m.items():
        out = model(x.to(dt), eps.to(dt))
        fwd[dt] = {k: out[k] for k in ("mu", "logvar", "z", "c_hat", "u", "x_hat")}
        loss[dt] = model.loss_terms(out, x.to(dt), c.to(dt))
        # independent check of the clamped BCE against F.binary_cross_entropy
        kh = getattr(model.cfg, "n_hard_concepts", model.cfg.n_concepts)
        if kh > 0:
            manual = kh * M.bce_clamped(torch.clip(out["c_hat"][:, :kh], 0, 1), c.to(dt)[:, :kh])
            key = "concept_hard" if "concept_hard" in loss[dt] else "concept"
            assert torch.allclose(manual, loss[dt][key], rtol=1e-5, atol=1e-7), (manual, loss[dt][key])
    f32, f64 = torch.float32, torch.float64
    res["forward"] = rec.put_dict(section + "forward", fwd[f32], fwd[f64])
    res["loss"] = rec.put_dict(section + "loss", loss[f32], loss[f64])

    grads, after, traj = {}, {}, {}
    for dt in (f32, f64):
        model = build(model_fn, params, dt)
        xd, cd, ed = x.to(dt), c.to(dt), eps.to(dt)
        grads[dt], after[dt], traj[dt] = train_steps(
            model, lambda mm: mm.loss_terms(mm(xd, ed), xd, cd)["total"], n_adam)
    res["grad"] = rec.put_named(section + "grad", grads[f32], grads[f64])
    res["zero_gradient_elements"] = zero_grad_counts(grads[f64])
    res["params_adam1"] = rec.put_named(section + "params_adam1", after[f32][1], after[f64][1])
    if n_adam >= 3:
        res["params_adam3"] = rec.put_named(section + "params_adam3", after[f32][3], after[f64][3])
    res["loss_trajectory"] = rec.put(section, "loss_trajectory", traj[f32], traj[f64])
    return res, m


def make_inputs(b, g, k, z, n_soft=0):
    x = grid((b, g), lambda i, j: np.sin(0.7 * i + 1.3 * j + 0.11 * i * j + 0.3) + 0.5 * np.cos(1.9 * i - 0.4 * j))
    kh = k - n_soft
    c_hard = grid((b, kh), lambda i, j: (np.sin(1.3 * i + 2.3 * j + 0.17 * i * j + 0.5) > 0).astype(np.float64))
    c_soft = grid((b, n_soft), lambda i, j: 0.5 + 0.45 * np.sin(0.9 * i + 1.7 * j + 0.2))
    c = torch.cat([c_hard, c_soft], dim=1)
    eps = grid((b, z), lambda i, j: 1.2 * np.sin(1.1 * i + 0.7 * j + 0.23 * i * j + 0.9))
    mask = grid((b, k), lambda i, j: ((i + 2 * j) % 3 == 0).astype(np.float64))
    c_new = torch.cat([1.0 - c_hard, torch.full((b, n_soft), 0.8)], dim=1)
    return dict(x=x, c=c, eps=eps, mask=mask, c_new=c_new)


def gen_sccbgm(out_dir):
    cfg = M.ScCBGMConfig(input_dim=7, hidden_dim=6, n_layers=2, latent_dim=5, n_concepts=3, n_unknown=4,
                         dropout=0.0, beta=1e-3, concepts_hp=0.2, orthogonality_hp=0.3)
    model_fn = lambda: M.ScCBGM(cfg)  # noqa: E731
    params = formula_params(model_fn())
    B = 9
    inp = make_inputs(B, cfg.input_dim, cfg.n_concepts, cfg.latent_dim)
    inp2 = {k: inp[k][:2].clone() for k in ("x", "c", "eps")}
    rec = Recorder()

    doc = common_doc(dict(cfg.to_dict(), batch_size=B, batch_size_small=2, decoder_type="skip", cb_layers=1),
                     model_fn(), params)
    doc["input_formula"] = __doc__.split("- inputs")[1].split("Every quantity")[0].strip()
    doc["inputs"] = {"x": "input.x", "c": "input.c", "eps": "input.eps", "mask": "input.mask",
                     "c_new": "input.c_new"}
    main, models = sccbgm_case(model_fn, params, inp["x"], inp["c"], inp["eps"], rec, "", 3)
    doc.update(main)

    iv = {}
    for dt, model in models.items():
        iv[dt] = model.intervene(inp["x"].to(dt), inp["c_new"].to(dt), inp["mask"].to(dt))
    doc["intervention"] = rec.put_dict("intervention", iv[torch.float32], iv[torch.float64])
    doc["intervention_note"] = "abduction z = mu; c_in = c_hat*(1-mask) + c_new*mask; x_hat = decoder(c_in, u)"

    small, _ = sccbgm_case(model_fn, params, inp2["x"], inp2["c"], inp2["eps"], rec, "batch2.", 1)
    small["inputs"] = {"x": "input_b2.x", "c": "input_b2.c", "eps": "input_b2.eps",
                       "note": "rows 0..2 of input.x / input.c / input.eps"}
    doc["batch2"] = small
    doc["f32_vs_f64"] = rec.disc

    tensors = dict(params)
    tensors.update({f"input.{k}": v for k, v in inp.items()})
    tensors.update({f"input_b2.{k}": v for k, v in inp2.items()})
    write(out_dir, "sccbgm_golden", tensors, doc)
    return rec.disc


def gen_mixed(out_dir):
    cfg = M.ScCBGMMixedConfig(input_dim=7, hidden_dim=6, n_layers=2, latent_dim=5, n_hard_concepts=2,
                              n_soft_concepts=1, n_unknown=4, dropout=0.0, beta=1e-3, concepts_hp=0.2,
                              orthogonality_hp=0.3)
    model_fn = lambda: M.ScCBGMMixed(cfg)  # noqa: E731
    params = formula_params(model_fn())
    B = 9
    inp = make_inputs(B, cfg.input_dim, cfg.n_concepts, cfg.latent_dim, n_soft=cfg.n_soft_concepts)
    rec = Recorder()
    doc = common_doc(dict(cfg.to_dict(), batch_size=B, decoder_type="skip", cb_layers=1), model_fn(), params)
    doc["input_formula"] = __doc__.split("- inputs")[1].split("Every quantity")[0].strip()
    doc["inputs"] = {"x": "input.x", "c": "input.c", "eps": "input.eps", "mask": "input.mask",
                     "c_new": "input.c_new",
                     "note": "concept columns: hard first (Kh), then soft (Ks); soft targets in [0,1]"}
    main, models = sccbgm_case(model_fn, params, inp["x"], inp["c"], inp["eps"], rec, "", 3)
    doc.update(main)
    soft = np.array(main["forward"]["c_hat"])[:, cfg.n_hard_concepts:]
    doc["soft_predictions_outside_01"] = int(np.sum((soft < 0) | (soft > 1)))
    for key, sample in (("intervention", True), ("intervention_mu", False)):
        iv = {dt: model.intervene(inp["x"].to(dt), inp["c_new"].to(dt), inp["mask"].to(dt),
                                  eps=inp["eps"].to(dt), sample=sample) for dt, model in models.items()}
        doc[key] = rec.put_dict(key, iv[torch.float32], iv[torch.float64])
    doc["intervention_note"] = ("reference mixed intervention samples z = mu + exp(logvar/2)*input.eps "
                                "('intervention'); 'intervention_mu' uses z = mu. "
                                "c_in = c_hat*(1-mask) + c_new*mask")
    doc["f32_vs_f64"] = rec.disc
    tensors = dict(params)
    tensors.update({f"input.{k}": v for k, v in inp.items()})
    write(out_dir, "sccbgm_mixed_golden", tensors, doc)
    return rec.disc


# ----------------------------------------------------------------------------- flow

def gen_flow(out_dir):
    cfg = M.FlowConfig(x_dim=5, c_dim=3, emb_dim=8, n_layers=2, dropout=0.0)
    model_fn = lambda: M.FlowDecoder(cfg)  # noqa: E731
    params = formula_params(model_fn())
    B = 6
    n_euler = 4
    x0 = grid((B, cfg.x_dim), lambda i, j: 1.1 * np.sin(0.8 * i + 1.9 * j + 0.13 * i * j + 0.4))
    x1 = grid((B, cfg.x_dim), lambda i, j: np.cos(0.6 * i + 1.1 * j + 0.1) + 0.2 * j)
    t = grid((B,), lambda i: (i + 0.5) / B * 0.98 + 0.003)
    c = grid((B, cfg.c_dim), lambda i, j: np.sin(1.3 * i + 0.9 * j + 0.7))
    c_prime = grid((B, cfg.c_dim), lambda i, j: np.cos(0.5 * i + 1.4 * j + 0.2))
    rec = Recorder()
    doc = common_doc(dict(cfg.to_dict(), batch_size=B, euler_steps=n_euler), model_fn(), params)
    doc["buffers"] = ["t_embedder.weights"]
    doc["state_dict_prefix_in_Cond_FM"] = "_decoder."
    doc["inputs"] = {"x0": "input.x0", "x1": "input.x1", "t": "input.t", "c": "input.c", "c_prime": "input.c_prime"}
    doc["input_formula"] = ("x0[b,j] = 1.1*sin(0.8*b + 1.9*j + 0.13*b*j + 0.4); x1[b,j] = cos(0.6*b + 1.1*j + 0.1) + 0.2*j; "
                            "t[b] = (b + 0.5)/B*0.98 + 0.003; c[b,k] = sin(1.3*b + 0.9*k + 0.7); "
                            "c_prime[b,k] = cos(0.5*b + 1.4*k + 0.2); all rounded to float32")

    fwd = {}
    models = {}
    for dt in (torch.float32, torch.float64):
        net = build(model_fn, params, dt)
        models[dt] = net
        loss, parts = M.cfm_loss(net, x0.to(dt), x1.to(dt), t.to(dt), c.to(dt))
        fourier = net.t_embedder(t.to(dt))
        fwd[dt] = dict(fourier=fourier, t_emb=net.t_mapper(fourier), c_emb=net.c_embedder(c.to(dt)),
                       x_t=parts["x_t"], target=parts["target"], v=parts["v"], loss=loss)
    out = rec.put_dict("forward", fwd[torch.float32], fwd[torch.float64])
    doc["forward"] = {k: out[k] for k in ("fourier", "t_emb", "c_emb", "x_t", "target", "v")}
    doc["loss"] = out["loss"]

    grads, after, traj = {}, {}, {}
    for dt in (torch.float32, torch.float64):
        net = build(model_fn, params, dt)
        a0, a1, tt, cc = x0.to(dt), x1.to(dt), t.to(dt), c.to(dt)
        grads[dt], after[dt], traj[dt] = train_steps(net, lambda mm: M.cfm_loss(mm, a0, a1, tt, cc)[0], 1)
    doc["grad"] = rec.put_named("grad", grads[torch.float32], grads[torch.float64])
    doc["zero_gradient_elements"] = zero_grad_counts(grads[torch.float64])
    doc["params_adam1"] = rec.put_named("params_adam1", after[torch.float32][1], after[torch.float64][1])
    doc["loss_trajectory"] = rec.put("", "loss_trajectory", traj[torch.float32], traj[torch.float64])

    dec = {dt: M.euler_decode(net, x0.to(dt), c.to(dt), n_euler) for dt, net in models.items()}
    doc["euler_decode"] = rec.put("", "euler_decode", dec[torch.float32], dec[torch.float64])
    ed = {dt: M.euler_edit(net, x1.to(dt), c.to(dt), c_prime.to(dt), n_euler) for dt, net in models.items()}
    doc["euler_edit"] = rec.put("", "euler_edit", ed[torch.float32], ed[torch.float64])
    doc["euler_note"] = (f"euler_decode: x = input.x0, t_k = k/N for k = 0..N-1, x += v(x, t_k, c)/N, N = {n_euler}. "
                         f"euler_edit: from input.x1, t_edit = 0, w = 1, noise_add = 0: backward k = N..1 "
                         f"x -= v(x, k/N, c)/N, then forward k = 0..N-1 x += v(x, k/N, c_prime)/N, N = {n_euler}")
    doc["f32_vs_f64"] = rec.disc
    tensors = dict(params)
    tensors.update({"input.x0": x0, "input.x1": x1, "input.t": t, "input.c": c, "input.c_prime": c_prime})
    write(out_dir, "flow_golden", tensors, doc)
    return rec.disc


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    torch.manual_seed(0)  # only affects module construction; every value is then overwritten
    report = {}
    report["sccbgm"] = gen_sccbgm(out_dir)
    report["sccbgm_mixed"] = gen_mixed(out_dir)
    report["flow"] = gen_flow(out_dir)
    print("\nfloat32 vs float64 (max |f32 - f64|, max |f64|):")
    for model, disc in report.items():
        worst = max(disc.items(), key=lambda kv: kv[1]["max_abs_diff"])
        print(f"  {model}: worst {worst[0]} = {worst[1]['max_abs_diff']:.3g}")
        for k, v in disc.items():
            print(f"    {k:28s} {v['max_abs_diff']:.3g}  (max |value| {v['max_abs_value']:.3g})")


if __name__ == "__main__":
    main()
