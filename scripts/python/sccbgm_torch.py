#!/usr/bin/env python3
"""Self-contained PyTorch reference of scCBGM and the flow-matching velocity net.

Written from ``/work/shared/docs/spec-models.md`` (sections 0, 2.1-2.5, 3, 4 and
7.1), not copied from almaan/scCBGM. The modules use the reference state-dict
names so that checkpoints and the golden fixtures map 1:1 onto the Rust crate
``conceptlab-models``:

scCBGM (``ScCBGM``; spec §3.1)
    _encoder.x_embedder.{weight,bias}          Linear(G -> H)
    _encoder.layers.{i}.linear.{weight,bias}   Linear(H -> H)   (ResBlock)
    _encoder.layers.{i}.norm.{weight,bias}     LayerNorm(H)
    _encoder.fc_mu.*, _encoder.fc_var.*        Linear(H -> Z)
    cb_concepts_layers.0.*                     Linear(Z -> K), then Sigmoid
    cb_unk_layers.0.*                          Linear(Z -> U), then ReLU
    _decoder.concept_embedder.*                Linear(K -> H)
    _decoder.unknown_embedder.*                Linear(U -> H)
    _decoder.layers.{i}.linear.*               Linear(2H -> H)  (SkipBlock, input [h || c_e])
    _decoder.layers.{i}.norm.*                 LayerNorm(H)
    _decoder.output_later.*                    Linear(H -> G)   ("later" sic)

Mixed hard/soft scCBGM (``ScCBGMMixed``; spec §4) uses ``encoder.`` / ``decoder.``
(no underscore), ``cb_hard_layers.0`` (Linear(Z -> Kh) + Sigmoid),
``cb_soft_layers.0`` (Linear(Z -> Ks), no activation) and ``cb_unk_layers.0``.

Velocity net (``FlowDecoder`` = ``mlp.FlowDecoder``; spec §2.4); ``Cond_FM`` stores
it under the prefix ``_decoder.``:
    x_embedder.*            Linear(x_dim -> E)
    c_embedder.*            Linear(c_dim -> E)     (only if c_dim > 0)
    t_embedder.weights      buffer (E/2,), N(0,1)*2*pi at construction
    t_mapper.0.*, t_mapper.2.*   Linear(E -> E), ReLU, Linear(E -> E)
    layers.{i}.linear.*     Linear(E -> E), bias initialised to 0
    layers.{i}.norm.*       LayerNorm(E)
    output_layer.*          Linear(E -> x_dim), Xavier-uniform gain 0.1, bias 0

Losses follow spec §2.5/§3.2/§4 exactly (KL as a mean over B x Z, K * BCE with
PyTorch's -100 log clamp on clip(c_hat, 0, 1), cross-covariance with 1/(B-1)).
Only torch is needed; importing this module has no side effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5
LOGVAR_CLIP = 1e5


# ----------------------------------------------------------------------------- configs

@dataclass
class ScCBGMConfig:
    input_dim: int            # G
    hidden_dim: int           # H
    n_layers: int             # L (shared by encoder and decoder)
    latent_dim: int           # Z
    n_concepts: int           # K
    n_unknown: int            # U
    dropout: float = 0.0
    beta: float = 1e-5
    concepts_hp: float = 0.1
    orthogonality_hp: float = 0.5

    def to_dict(self):
        return asdict(self)


@dataclass
class ScCBGMMixedConfig:
    input_dim: int
    hidden_dim: int
    n_layers: int
    latent_dim: int
    n_hard_concepts: int      # Kh (sigmoid head)
    n_soft_concepts: int      # Ks (linear head)
    n_unknown: int
    dropout: float = 0.0
    beta: float = 1e-5
    concepts_hp: float = 0.1
    orthogonality_hp: float = 0.5

    @property
    def n_concepts(self):
        return self.n_hard_concepts + self.n_soft_concepts

    def to_dict(self):
        d = asdict(self)
        d["n_concepts"] = self.n_concepts
        return d


@dataclass
class FlowConfig:
    x_dim: int                # G
    c_dim: int                # C (condition width fed to the velocity net)
    emb_dim: int = 1024       # E
    n_layers: int = 4         # L
    dropout: float = 0.1

    def to_dict(self):
        return asdict(self)


# ----------------------------------------------------------------------------- blocks (§2.1)

class ResBlock(nn.Module):
    """y = x + Dropout(ReLU(LN(Linear(x))))."""

    def __init__(self, d, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return x + self.drop(F.relu(self.norm(self.linear(x))))


class SkipBlock(nn.Module):
    """y = h + Dropout(ReLU(LN(Linear([h || c_e])))), Linear(2d -> d)."""

    def __init__(self, d, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(2 * d, d)
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        self.drop = nn.Dropout(dropout)

    def forward(self, h, c_e):
        return h + self.drop(F.relu(self.norm(self.linear(torch.cat([h, c_e], dim=1)))))


class FlowBlock(nn.Module):
    """h <- h + Dropout(ReLU(LN(Linear(h + c_e + t_e)))); bias initialised to 0 (mlp.py)."""

    def __init__(self, d, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        self.drop = nn.Dropout(dropout)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h, c_e, t_e):
        return h + self.drop(F.relu(self.norm(self.linear(h + c_e + t_e))))


# ----------------------------------------------------------------------------- encoder / decoder (§2.2, §2.3)

class EncoderBlock(nn.Module):
    def __init__(self, input_dim, hidden_dim, n_layers, latent_dim, dropout=0.0, variational=True):
        super().__init__()
        self.x_embedder = nn.Linear(input_dim, hidden_dim)
        self.layers = nn.ModuleList([ResBlock(hidden_dim, dropout) for _ in range(n_layers)])
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_var = nn.Linear(hidden_dim, latent_dim) if variational else None

    def forward(self, x):
        h = self.x_embedder(x)  # no activation
        for layer in self.layers:
            h = layer(h)
        mu = self.fc_mu(h)
        logvar = None
        if self.fc_var is not None:
            logvar = torch.clip(self.fc_var(h), -LOGVAR_CLIP, LOGVAR_CLIP)
        return mu, logvar


class SkipDecoderBlock(nn.Module):
    def __init__(self, n_concepts, n_unknown, hidden_dim, output_dim, n_layers, dropout=0.0):
        super().__init__()
        self.concept_embedder = nn.Linear(n_concepts, hidden_dim)
        self.unknown_embedder = nn.Linear(n_unknown, hidden_dim)
        self.layers = nn.ModuleList([SkipBlock(hidden_dim, dropout) for _ in range(n_layers)])
        self.output_later = nn.Linear(hidden_dim, output_dim)

    def forward(self, c, u):
        c_e = self.concept_embedder(c)
        h = self.unknown_embedder(u)
        for layer in self.layers:
            h = layer(h, c_e)  # concept embedding re-injected at every block
        return self.output_later(h)  # linear output


# ----------------------------------------------------------------------------- losses (§2.5)

def reparametrize(mu, logvar, eps):
    if logvar is None:
        return mu
    return mu + torch.exp(0.5 * logvar) * eps


def kl_loss(mu, logvar):
    """-1/2 * mean over B x Z of (1 + logvar - mu^2 - exp(logvar))."""
    if logvar is None:
        return mu.new_zeros(())
    return -0.5 * torch.mean(1.0 + logvar - mu.pow(2) - logvar.exp())


def bce_clamped(p, y):
    """Element mean of -[y log p + (1-y) log(1-p)], each log clamped to >= -100 (as F.binary_cross_entropy)."""
    log_p = torch.clamp(torch.log(p), min=-100.0)
    log_1mp = torch.clamp(torch.log(1.0 - p), min=-100.0)
    return -torch.mean(y * log_p + (1.0 - y) * log_1mp)


def hard_concept_loss(c_hat, c):
    """K * BCE(clip(c_hat, 0, 1), c), BCE averaged over B x K."""
    k = c_hat.shape[1]
    return k * F.binary_cross_entropy(torch.clip(c_hat, 0.0, 1.0), c, reduction="mean")


def soft_concept_loss(c_hat, c):
    """K * MSE(clip(c_hat, 0, 1), c)."""
    k = c_hat.shape[1]
    return k * F.mse_loss(torch.clip(c_hat, 0.0, 1.0), c, reduction="mean")


def cross_cov_loss(c_clipped, u):
    """||Uc^T Cc / (B-1)||_F^2 with batch-centred Uc, Cc (NaN for B = 1, as in the reference)."""
    b = c_clipped.shape[0]
    cc = c_clipped - c_clipped.mean(dim=0, keepdim=True)
    uc = u - u.mean(dim=0, keepdim=True)
    sigma = uc.t() @ cc / (b - 1)
    return torch.sum(sigma.pow(2))


# ----------------------------------------------------------------------------- scCBGM (§3)

class ScCBGM(nn.Module):
    def __init__(self, cfg: ScCBGMConfig):
        super().__init__()
        self.cfg = cfg
        self._encoder = EncoderBlock(cfg.input_dim, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim, cfg.dropout)
        self.cb_concepts_layers = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.n_concepts), nn.Sigmoid())
        self.cb_unk_layers = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.n_unknown), nn.ReLU())
        self._decoder = SkipDecoderBlock(cfg.n_concepts, cfg.n_unknown, cfg.hidden_dim, cfg.input_dim,
                                         cfg.n_layers, cfg.dropout)

    def heads(self, z):
        return self.cb_concepts_layers(z), self.cb_unk_layers(z)

    def forward(self, x, eps=None):
        """Training/reconstruction forward: z sampled (eps ~ N(0,I) unless given), decoder gets c_hat."""
        mu, logvar = self._encoder(x)
        if eps is None and logvar is not None:
            eps = torch.randn_like(mu)
        z = reparametrize(mu, logvar, eps)
        c_hat, u = self.heads(z)
        x_hat = self._decoder(c_hat, u)
        return dict(mu=mu, logvar=logvar, z=z, c_hat=c_hat, u=u, x_hat=x_hat)

    def loss_terms(self, out, x, c):
        cfg = self.cfg
        c_clip = torch.clip(out["c_hat"], 0.0, 1.0)
        mse = F.mse_loss(out["x_hat"], x, reduction="mean")
        kl = kl_loss(out["mu"], out["logvar"])
        concept = hard_concept_loss(out["c_hat"], c)
        orth = cross_cov_loss(c_clip, out["u"])
        total = mse + cfg.beta * kl + cfg.concepts_hp * concept + cfg.orthogonality_hp * orth
        return dict(mse=mse, kl=kl, concept=concept, orth=orth, total=total)

    @torch.no_grad()
    def intervene(self, x, c_new, mask):
        """Abduction (z = mu), action c_in = c_hat*(1-m) + c_new*m, prediction = decoder(c_in, u)."""
        mu, _ = self._encoder(x)
        c_hat, u = self.heads(mu)
        c_in = c_hat * (1.0 - mask) + c_new * mask
        return dict(z=mu, c_hat=c_hat, u=u, c_in=c_in, x_hat=self._decoder(c_in, u))


# ----------------------------------------------------------------------------- mixed hard/soft (§4)

class ScCBGMMixed(nn.Module):
    def __init__(self, cfg: ScCBGMMixedConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = EncoderBlock(cfg.input_dim, cfg.hidden_dim, cfg.n_layers, cfg.latent_dim, cfg.dropout)
        self.cb_hard_layers = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.n_hard_concepts), nn.Sigmoid())
        self.cb_soft_layers = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.n_soft_concepts))
        self.cb_unk_layers = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.n_unknown), nn.ReLU())
        self.decoder = SkipDecoderBlock(cfg.n_concepts, cfg.n_unknown, cfg.hidden_dim, cfg.input_dim,
                                        cfg.n_layers, cfg.dropout)

    def heads(self, z):
        c_hard = self.cb_hard_layers(z)
        c_soft = self.cb_soft_layers(z)
        return torch.cat([c_hard, c_soft], dim=1), self.cb_unk_layers(z)  # hard columns first

    def forward(self, x, eps=None):
        mu, logvar = self.encoder(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = reparametrize(mu, logvar, eps)
        c_hat, u = self.heads(z)
        return dict(mu=mu, logvar=logvar, z=z, c_hat=c_hat, u=u, x_hat=self.decoder(c_hat, u))

    def loss_terms(self, out, x, c):
        cfg = self.cfg
        kh = cfg.n_hard_concepts
        c_hat = out["c_hat"]
        mse = F.mse_loss(out["x_hat"], x, reduction="mean")
        kl = kl_loss(out["mu"], out["logvar"])
        hard = hard_concept_loss(c_hat[:, :kh], c[:, :kh]) if kh > 0 else c_hat.new_zeros(())
        soft = soft_concept_loss(c_hat[:, kh:], c[:, kh:]) if cfg.n_soft_concepts > 0 else c_hat.new_zeros(())
        orth = cross_cov_loss(torch.clip(c_hat, 0.0, 1.0), out["u"])
        concept = hard + soft
        total = mse + cfg.beta * kl + cfg.concepts_hp * concept + cfg.orthogonality_hp * orth
        return dict(mse=mse, kl=kl, concept_hard=hard, concept_soft=soft, concept=concept, orth=orth, total=total)

    @torch.no_grad()
    def intervene(self, x, c_new, mask, eps=None, sample=True):
        """Reference mixed intervention samples z (spec §4); sample=False uses z = mu."""
        mu, logvar = self.encoder(x)
        if sample:
            if eps is None:
                eps = torch.randn_like(mu)
            z = reparametrize(mu, logvar, eps)
        else:
            z = mu
        c_hat, u = self.heads(z)
        c_in = c_hat * (1.0 - mask) + c_new * mask
        return dict(z=z, c_hat=c_hat, u=u, c_in=c_in, x_hat=self.decoder(c_in, u))


# ----------------------------------------------------------------------------- flow matching (§2.4, §7.1)

class FourierEmbedding(nn.Module):
    """phi(t) = [sin(t w) || cos(t w)], w = N(0,1)*2*pi fixed buffer of size E/2 (saved in the state dict)."""

    def __init__(self, emb_dim):
        super().__init__()
        assert emb_dim % 2 == 0
        self.register_buffer("weights", torch.randn(emb_dim // 2) * 2.0 * math.pi)

    def forward(self, t):
        if t.dim() == 1:
            t = t.unsqueeze(1)
        arg = t * self.weights.unsqueeze(0)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class FlowDecoder(nn.Module):
    """mlp.FlowDecoder: the velocity network v(x_t, t, c)."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        e = cfg.emb_dim
        self.x_embedder = nn.Linear(cfg.x_dim, e)
        self.c_embedder = nn.Linear(cfg.c_dim, e) if cfg.c_dim > 0 else None
        self.t_embedder = FourierEmbedding(e)
        self.t_mapper = nn.Sequential(nn.Linear(e, e), nn.ReLU(), nn.Linear(e, e))
        self.layers = nn.ModuleList([FlowBlock(e, cfg.dropout) for _ in range(cfg.n_layers)])
        self.output_layer = nn.Linear(e, cfg.x_dim)
        nn.init.xavier_uniform_(self.output_layer.weight, gain=0.1)
        nn.init.zeros_(self.output_layer.bias)

    def forward(self, x_t, t, c=None):
        h = self.x_embedder(x_t)
        if c is None or self.c_embedder is None:
            c_e = torch.zeros_like(h)
        else:
            c_e = self.c_embedder(c)
        t_e = self.t_mapper(self.t_embedder(t))
        for layer in self.layers:
            h = layer(h, c_e, t_e)
        return self.output_layer(h)


def cfm_interpolate(x0, x1, t):
    """x_t = (1-t) x0 + t x1 and target velocity x1 - x0 (t = 0 noise, t = 1 data)."""
    tt = t.unsqueeze(1) if t.dim() == 1 else t
    return (1.0 - tt) * x0 + tt * x1, x1 - x0


def cfm_loss(net, x0, x1, t, c):
    x_t, target = cfm_interpolate(x0, x1, t)
    v = net(x_t, t, c)
    return F.mse_loss(v, target, reduction="mean"), dict(x_t=x_t, target=target, v=v)


@torch.no_grad()
def euler_decode(net, x0, c, n_steps):
    """Generation from x0 (noise) with explicit Euler, t_k = k/N, w_cfg = 1 (no unconditional branch)."""
    x = x0.clone()
    dt = 1.0 / n_steps
    for k in range(n_steps):
        t = torch.full((x.shape[0],), k / n_steps, dtype=x.dtype, device=x.device)
        x = x + net(x, t, c) * dt
    return x


@torch.no_grad()
def euler_edit(net, x, c, c_new, n_steps, t_edit=0.0, noise=None, noise_add=0.0):
    """Cond_FM.edit with w = 1: invert under c (velocity at the upper end of each step), regenerate under c_new."""
    dt = 1.0 / n_steps
    n_e = int(math.floor(t_edit * n_steps))
    x = x.clone()
    for k in range(n_steps, n_e, -1):
        t = torch.full((x.shape[0],), k / n_steps, dtype=x.dtype, device=x.device)
        x = x - net(x, t, c) * dt
    if noise_add != 0.0:
        x = x + noise_add * (noise if noise is not None else torch.randn_like(x))
    for k in range(n_e, n_steps):
        t = torch.full((x.shape[0],), k / n_steps, dtype=x.dtype, device=x.device)
        x = x + net(x, t, c_new) * dt
    return x


# ----------------------------------------------------------------------------- parameter counts

def n_trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def expected_sccbgm_params(g, h, l, z, k, u):
    """Closed form for the skip-decoder scCBGM (cb_layers = 1)."""
    enc = g * h + h + l * (h * h + h + 2 * h) + 2 * (h * z + z)
    heads = z * k + k + z * u + u
    dec = k * h + h + u * h + h + l * (2 * h * h + h + 2 * h) + h * g + g
    return enc + heads + dec


def expected_flow_params(g, c, e, l):
    return g * e + e + c * e + e + 2 * (e * e + e) + l * (e * e + e + 2 * e) + e * g + g


if __name__ == "__main__":
    # Quick self-check of the spec parameter counts.
    real = ScCBGM(ScCBGMConfig(128, 1024, 4, 128, 10, 128))
    assert n_trainable(real) == 13_294_346 == expected_sccbgm_params(128, 1024, 4, 128, 10, 128)
    synth = ScCBGM(ScCBGMConfig(128, 128, 2, 64, 5, 128))
    assert n_trainable(synth) == 141_440 + 257 * 128 + 193 * 5
    flow = FlowDecoder(FlowConfig(128, 138, 1024, 4))
    assert n_trainable(flow) == 2049 * 128 + 1024 * 138 + 6_307_840
    assert flow.t_embedder.weights.numel() == 512
    print("parameter counts match the spec")
