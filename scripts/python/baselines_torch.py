#!/usr/bin/env python3
"""PyTorch reference networks of the paper's neural baselines, for training-throughput comparisons.

Written from ``/work/shared/docs/spec-models.md`` (§2, §5, §6.1, §7.1, §7.5, §7.6, §8.1, §8.2, §11), not copied
from almaan/scCBGM, pertpy/scgen or trvaep. The blocks that scCBGM already has (ResBlock, SkipDecoderBlock,
EncoderBlock, mlp.FlowDecoder, the VAE losses) are imported from ``sccbgm_torch.py`` in this directory so that
both benchmarks time the very same layers; only what the baselines add is defined here.

Models (each exposes ``loss_terms(...)`` returning a dict whose ``total`` one optimisation step minimises):

``CEMVAE`` (scCEM / CEM-VAE / the "CBGM" baseline; §5)
    NoResEncoderBlock -> z sampled -> per concept k: context s_k = ReLU(Linear(Z->2e)(z)),
    p_k = Sigmoid(Linear(2e->1)(s_k)); embedding E_k = s_k+ * c_k + s_k- * (1 - c_k), flattened concept-major
    (width U = K*e); unknown u = ReLU(Linear(Z->U)(z)); decoder on (E, u), selectable: "no residual" (the
    synthetic CBGM), "residual" (CEM-VAE's DecoderBlock) or "skip". Loss MSE + beta*KL + lambda_c*K*BCE
    + lambda_o*mean_b |cos(E_b, u_b)|.
``ScCVAE`` (§6.1)
    CVAEEncoderBlock([x || c]) -> z sampled -> CVAEDecoderBlock([z || c]); loss MSE + beta*KL.
``ScGen`` (§8.1, the original PyTorch scGen layout)
    2 x [Linear(800) -> BatchNorm1d -> LeakyReLU -> Dropout 0.2] -> mean / log-variance (100); the decoder mirrors
    it with a linear output; loss mean over cells of 0.5*sum_g (x - x_hat)^2 + 0.5*alpha*KL (KL summed over the
    latent). Unconditional: the condition labels only matter at prediction time (latent arithmetic).
``TrVAE`` (§8.2, trvaep.CVAE)
    [x || onehot] -> 128 -> 32 (no-bias Linear -> BN -> ReLU -> Dropout 0.2) -> mean / log-variance (10);
    [z || onehot] -> 32 -> 128 (same pattern) -> Linear(G) -> ReLU; loss (sum SE + alpha*sum KL)/B
    + beta * sum over condition pairs of the unbiased multi-kernel MMD of the first decoder layer's output.
``ConceptFM`` (ConceptFlow; §7.6)
    DenseEncoder x -> z (deterministic); DenseEncoder heads z -> c_hat (sigmoid), z -> u (ReLU); prior
    DenseEncoder [c_hat || u] -> (mu_p, logvar_p) of x0; mlp.FlowDecoder velocity conditioned on [c_hat || u];
    loss flow*MSE + concepts*K*BCE + orthogonality*cross-cov' (concepts standardised by the dataset's true-concept
    mean / std) + kl*KL(mu_p, logvar_p).
``CondFM`` (§7.1)
    mlp.FlowDecoder on an identity condition embedder (p_uncond 0); CFM loss with x0 ~ N(0, I), t ~ U[0, 1).
    ``raw-fm`` conditions it on the K observed concepts; ``sccvae-fm`` on [mu_CVAE || c] (C = Z + K).

The ``expected_*_params`` functions give closed forms derived from the architecture; ``expected_cond_fm_params``
is the spec's own formula (§2.4 / §7.1). Importing this module has no side effects; it expects
``sccbgm_torch`` on ``sys.path`` (the benchmark script puts this directory there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

import sccbgm_torch as M

COS_EPS = 1e-6          # nn.CosineSimilarity(dim=1, eps=1e-6) in the CEM loss (§0)
SCGEN_BN_MOMENTUM = 0.01  # flax momentum 0.99 == PyTorch momentum 0.01 (running = 0.99*running + 0.01*batch)
SCGEN_BN_EPS = 1e-3
# trvaep's MMD: k(x, y) = sum_j exp(-alpha_j * ||x - y||^2) over these 19 scales (§8.2)
TRVAE_MMD_ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 100.0,
                    1e3, 1e4, 1e5, 1e6)
DECODER_TYPES = ("skip", "residual", "no residual")


# ----------------------------------------------------------------------------- shared pieces (§2.1-§2.3)

class NoResBlock(nn.Module):
    """y = Dropout(ReLU(LN(Linear(x)))): ResBlock without the residual add (§2.1)."""

    def __init__(self, d, dropout=0.0):
        super().__init__()
        self.linear = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=M.LN_EPS)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(F.relu(self.norm(self.linear(x))))


class NoResEncoderBlock(M.EncoderBlock):
    """Linear(in->H) (no activation) -> L x NoResBlock -> fc_mu / fc_var; forward (and logvar clip) inherited.

    Used by CEM (input x) and, with in = G + K, as scCVAE's CVAEEncoderBlock (the caller concatenates [x || c]).
    """

    def __init__(self, input_dim, hidden_dim, n_layers, latent_dim, dropout=0.0):
        super().__init__(input_dim, hidden_dim, n_layers, latent_dim, dropout, variational=True)
        # only the hidden blocks differ from scCBGM's EncoderBlock; swap them, keep the state-dict names
        self.layers = nn.ModuleList([NoResBlock(hidden_dim, dropout) for _ in range(n_layers)])


class ConcatDecoderBlock(nn.Module):
    """x_embedder Linear(in->H) -> L x (ResBlock | NoResBlock) -> output_later Linear(H->G), linear output.

    DecoderBlock ("residual"), NoResDecoderBlock ("no residual") and CVAEDecoderBlock (NoRes on [z || c]) are all
    this shape; the caller concatenates the input in the reference order.
    """

    def __init__(self, input_dim, hidden_dim, output_dim, n_layers, dropout=0.0, residual=False):
        super().__init__()
        block = M.ResBlock if residual else NoResBlock
        self.x_embedder = nn.Linear(input_dim, hidden_dim)
        self.layers = nn.ModuleList([block(hidden_dim, dropout) for _ in range(n_layers)])
        self.output_later = nn.Linear(hidden_dim, output_dim)

    def forward(self, h):
        h = self.x_embedder(h)
        for layer in self.layers:
            h = layer(h)
        return self.output_later(h)


def gaussian_kl_sum(mu, logvar):
    """Textbook KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent: one value per cell (scGen, trVAE)."""
    return 0.5 * torch.sum(logvar.exp() + mu.pow(2) - 1.0 - logvar, dim=1)


def abs_cosine_loss(a, b):
    """mean_b |a_b . b_b / (max(||a_b||, eps) * max(||b_b||, eps))| (§2.5; the per-norm clamp of §0)."""
    na = torch.clamp(a.norm(dim=1), min=COS_EPS)
    nb = torch.clamp(b.norm(dim=1), min=COS_EPS)
    return torch.mean(torch.abs((a * b).sum(dim=1) / (na * nb)))


# ----------------------------------------------------------------------------- CEM-VAE / scCEM / CBGM (§5)

def cem_sizes(n_concepts, n_unknown):
    """§5.1: e = floor(U0 / K) and U = K * e, or e = 1 and U = K when K > U0. Returns (e, U)."""
    if n_concepts > n_unknown:
        return 1, n_concepts
    e = n_unknown // n_concepts
    return e, n_concepts * e


@dataclass
class CEMConfig:
    input_dim: int = 128      # G
    hidden_dim: int = 1024    # H   (§11.1 CEM-VAE row)
    n_layers: int = 4         # L
    latent_dim: int = 128     # Z
    n_concepts: int = 10      # K
    n_unknown: int = 128      # U0 before the §5.1 rounding (-> U = 120 at K = 10)
    decoder_type: str = "no residual"
    dropout: float = 0.0
    beta: float = 1e-5
    concepts_hp: float = 0.1
    orthogonality_hp: float = 0.5
    fused_heads: bool = False  # one Linear for all K context generators (same maths and parameter count)

    @property
    def emb_size(self):
        return cem_sizes(self.n_concepts, self.n_unknown)[0]

    @property
    def bottleneck(self):
        return cem_sizes(self.n_concepts, self.n_unknown)[1]

    def to_dict(self):
        d = asdict(self)
        d.update(emb_size=self.emb_size, n_unknown_effective=self.bottleneck)
        return d


class CEMVAE(nn.Module):
    def __init__(self, cfg: CEMConfig):
        super().__init__()
        if cfg.decoder_type not in DECODER_TYPES:
            raise ValueError(f"decoder_type must be one of {DECODER_TYPES}, got {cfg.decoder_type!r}")
        self.cfg = cfg
        k, z, e, u = cfg.n_concepts, cfg.latent_dim, cfg.emb_size, cfg.bottleneck
        self._encoder = NoResEncoderBlock(cfg.input_dim, cfg.hidden_dim, cfg.n_layers, z, cfg.dropout)
        if cfg.fused_heads:
            # K independent Linear(Z->2e) stacked row-wise are one Linear(Z->K*2e); the K probability heads
            # Linear(2e->1) become a (K, 2e) weight applied per concept. Identical function and count.
            self.concept_context = nn.Linear(z, k * 2 * e)
            self.concept_prob_weight = nn.Parameter(torch.empty(k, 2 * e))
            self.concept_prob_bias = nn.Parameter(torch.empty(k))
            bound = 1.0 / math.sqrt(2 * e)  # nn.Linear(2e, 1)'s default init range
            nn.init.uniform_(self.concept_prob_weight, -bound, bound)
            nn.init.uniform_(self.concept_prob_bias, -bound, bound)
        else:
            # the reference's layout: one context generator and one probability head per concept
            self.concept_context = nn.ModuleList([nn.Sequential(nn.Linear(z, 2 * e), nn.ReLU()) for _ in range(k)])
            self.concept_prob = nn.ModuleList([nn.Sequential(nn.Linear(2 * e, 1), nn.Sigmoid()) for _ in range(k)])
        self.cb_unk_layers = nn.Sequential(nn.Linear(z, u), nn.ReLU())
        if cfg.decoder_type == "skip":
            # concept stream is the embedding E (width U, not K), unknown stream u (width U)
            self._decoder = M.SkipDecoderBlock(u, u, cfg.hidden_dim, cfg.input_dim, cfg.n_layers, cfg.dropout)
        else:
            self._decoder = ConcatDecoderBlock(2 * u, cfg.hidden_dim, cfg.input_dim, cfg.n_layers, cfg.dropout,
                                               residual=cfg.decoder_type == "residual")

    def contexts_and_probs(self, z):
        """Returns s (B, K, 2e) and c_hat (B, K)."""
        cfg = self.cfg
        if cfg.fused_heads:
            s = F.relu(self.concept_context(z)).view(z.shape[0], cfg.n_concepts, 2 * cfg.emb_size)
            c_hat = torch.sigmoid((s * self.concept_prob_weight).sum(dim=2) + self.concept_prob_bias)
            return s, c_hat
        ss = [g(z) for g in self.concept_context]
        c_hat = torch.cat([p(s_k) for p, s_k in zip(self.concept_prob, ss)], dim=1)
        return torch.stack(ss, dim=1), c_hat

    def embed(self, s, c_in):
        """E_k = s_k+ * c_k + s_k- * (1 - c_k), flattened concept-major to (B, K*e)."""
        e = self.cfg.emb_size
        w = c_in.unsqueeze(2)
        emb = s[:, :, :e] * w + s[:, :, e:] * (1.0 - w)
        return emb.reshape(s.shape[0], -1)

    def decode(self, emb, u):
        if self.cfg.decoder_type == "skip":
            return self._decoder(emb, u)
        return self._decoder(torch.cat([u, emb], dim=1))  # NoRes/residual: [u || E], unknown first (§2.3)

    def forward(self, x, eps=None):
        mu, logvar = self._encoder(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = M.reparametrize(mu, logvar, eps)
        s, c_hat = self.contexts_and_probs(z)
        u = self.cb_unk_layers(z)
        emb = self.embed(s, c_hat)  # training forward: embedding from the *predicted* probabilities (§5.4)
        return dict(mu=mu, logvar=logvar, z=z, c_hat=c_hat, u=u, emb=emb, x_hat=self.decode(emb, u))

    def loss_terms(self, x, c):
        cfg = self.cfg
        out = self(x)
        mse = F.mse_loss(out["x_hat"], x, reduction="mean")
        kl = M.kl_loss(out["mu"], out["logvar"])
        concept = M.hard_concept_loss(out["c_hat"], c)
        orth = abs_cosine_loss(out["emb"], out["u"])  # on the embedding E, not the probabilities (§5.3)
        total = mse + cfg.beta * kl + cfg.concepts_hp * concept + cfg.orthogonality_hp * orth
        return dict(mse=mse, kl=kl, concept=concept, orth=orth, total=total)


def expected_cem_params(g, h, l, z, k, u0, decoder_type="no residual"):
    e, u = cem_sizes(k, u0)
    enc = g * h + h + l * (h * h + 3 * h) + 2 * (h * z + z)
    heads = k * (z * 2 * e + 2 * e) + k * (2 * e + 1) + z * u + u
    if decoder_type == "skip":
        dec = 2 * (u * h + h) + l * (2 * h * h + 3 * h) + h * g + g
    else:
        dec = 2 * u * h + h + l * (h * h + 3 * h) + h * g + g
    return enc + heads + dec


# ----------------------------------------------------------------------------- scCVAE (§6.1)

@dataclass
class CVAEConfig:
    input_dim: int = 128      # G
    hidden_dim: int = 1024    # H   (§11.1 scCVAE row)
    n_layers: int = 4         # L
    latent_dim: int = 128     # Z
    n_concepts: int = 10      # K
    dropout: float = 0.0
    beta: float = 1e-5

    def to_dict(self):
        return asdict(self)


class ScCVAE(nn.Module):
    def __init__(self, cfg: CVAEConfig):
        super().__init__()
        self.cfg = cfg
        self._encoder = NoResEncoderBlock(cfg.input_dim + cfg.n_concepts, cfg.hidden_dim, cfg.n_layers,
                                          cfg.latent_dim, cfg.dropout)
        self._decoder = ConcatDecoderBlock(cfg.latent_dim + cfg.n_concepts, cfg.hidden_dim, cfg.input_dim,
                                           cfg.n_layers, cfg.dropout, residual=False)

    def forward(self, x, c, eps=None):
        mu, logvar = self._encoder(torch.cat([x, c], dim=1))  # order (x, c)
        if eps is None:
            eps = torch.randn_like(mu)
        z = M.reparametrize(mu, logvar, eps)
        return dict(mu=mu, logvar=logvar, z=z, x_hat=self._decoder(torch.cat([z, c], dim=1)))  # order (z, c)

    def loss_terms(self, x, c):
        out = self(x, c)  # training uses the true concepts in both encoder and decoder
        mse = F.mse_loss(out["x_hat"], x, reduction="mean")
        kl = M.kl_loss(out["mu"], out["logvar"])
        return dict(mse=mse, kl=kl, total=mse + self.cfg.beta * kl)


def expected_cvae_params(g, h, l, z, k):
    enc = (g + k) * h + h + l * (h * h + 3 * h) + 2 * (h * z + z)
    dec = (z + k) * h + h + l * (h * h + 3 * h) + h * g + g
    return enc + dec


# ----------------------------------------------------------------------------- scGen (§8.1)

@dataclass
class ScGenConfig:
    input_dim: int = 128
    hidden_dim: int = 800
    n_layers: int = 2
    latent_dim: int = 100
    dropout: float = 0.2
    kl_weight: float = 5e-5   # alpha

    def to_dict(self):
        return asdict(self)


def _scgen_stack(in_dim, hidden, n_layers, dropout):
    layers = []
    for i in range(n_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden),
                   nn.BatchNorm1d(hidden, momentum=SCGEN_BN_MOMENTUM, eps=SCGEN_BN_EPS),
                   nn.LeakyReLU(),  # slope 0.01 in both torch and flax
                   nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class ScGen(nn.Module):
    def __init__(self, cfg: ScGenConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = _scgen_stack(cfg.input_dim, cfg.hidden_dim, cfg.n_layers, cfg.dropout)
        self.fc_mean = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.fc_logvar = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.decoder = _scgen_stack(cfg.latent_dim, cfg.hidden_dim, cfg.n_layers, cfg.dropout)
        self.output = nn.Linear(cfg.hidden_dim, cfg.input_dim)  # linear output

    def forward(self, x, eps=None):
        q = self.encoder(x)
        mu, logvar = self.fc_mean(q), self.fc_logvar(q)
        if eps is None:
            eps = torch.randn_like(mu)
        z = M.reparametrize(mu, logvar, eps)
        return dict(mu=mu, logvar=logvar, z=z, x_hat=self.output(self.decoder(z)))

    def loss_terms(self, x, c=None):
        out = self(x)  # scGen trains unconditionally; c is accepted for a uniform call signature
        rec = torch.sum((x - out["x_hat"]).pow(2), dim=1)
        kl = gaussian_kl_sum(out["mu"], out["logvar"])
        total = torch.mean(0.5 * rec + 0.5 * self.cfg.kl_weight * kl)
        return dict(rec=rec.mean(), kl=kl.mean(), total=total)


def expected_scgen_params(g, h=800, n=2, z=100):
    def stack(i):
        return (i * h + h + 2 * h) + (n - 1) * (h * h + h + 2 * h)  # Linear + BN affine (running stats are buffers)
    return stack(g) + 2 * (h * z + z) + stack(z) + h * g + g


# ----------------------------------------------------------------------------- trVAE (§8.2)

@dataclass
class TrVAEConfig:
    input_dim: int = 128
    n_conditions: int = 2          # number of distinct flip strings
    encoder_sizes: tuple = (128, 32)
    decoder_sizes: tuple = (32, 128)
    latent_dim: int = 10
    dropout: float = 0.2
    alpha: float = 1e-4            # KL weight
    beta: float = 10.0             # MMD weight

    def to_dict(self):
        d = asdict(self)
        d["encoder_sizes"], d["decoder_sizes"] = list(self.encoder_sizes), list(self.decoder_sizes)
        return d


def _trvae_layer(i, o, dropout):
    # trvaep hidden layer: no-bias Linear (BN supplies the shift) -> BN -> ReLU -> Dropout
    return nn.Sequential(nn.Linear(i, o, bias=False), nn.BatchNorm1d(o), nn.ReLU(), nn.Dropout(dropout))


class TrVAE(nn.Module):
    def __init__(self, cfg: TrVAEConfig):
        super().__init__()
        self.cfg = cfg
        n = cfg.n_conditions
        enc_in = [cfg.input_dim + n] + list(cfg.encoder_sizes[:-1])
        self.encoder = nn.Sequential(*[_trvae_layer(i, o, cfg.dropout) for i, o in zip(enc_in, cfg.encoder_sizes)])
        self.fc_mean = nn.Linear(cfg.encoder_sizes[-1], cfg.latent_dim)
        self.fc_logvar = nn.Linear(cfg.encoder_sizes[-1], cfg.latent_dim)
        dec_in = [cfg.latent_dim + n] + list(cfg.decoder_sizes[:-1])
        # kept as a list so the first layer's output (the MMD target) is available without a second pass
        self.decoder = nn.ModuleList([_trvae_layer(i, o, cfg.dropout) for i, o in zip(dec_in, cfg.decoder_sizes)])
        self.output = nn.Linear(cfg.decoder_sizes[-1], cfg.input_dim)  # with bias, then ReLU

    def forward(self, x, label, eps=None):
        onehot = F.one_hot(label, self.cfg.n_conditions).to(x.dtype)
        q = self.encoder(torch.cat([x, onehot], dim=1))
        mu, logvar = self.fc_mean(q), self.fc_logvar(q)
        if eps is None:
            eps = torch.randn_like(mu)
        z = M.reparametrize(mu, logvar, eps)
        h = torch.cat([z, onehot], dim=1)
        y = None
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i == 0:
                y = h
        return dict(mu=mu, logvar=logvar, z=z, y=y, x_hat=F.relu(self.output(h)))

    def loss_terms(self, x, label):
        cfg = self.cfg
        out = self(x, label)
        b = x.shape[0]
        se = torch.sum((out["x_hat"] - x).pow(2))
        kl = torch.sum(gaussian_kl_sum(out["mu"], out["logvar"]))
        vae = (se + cfg.alpha * kl) / b
        mmd = conditions_mmd(out["y"], label, cfg.n_conditions)
        return dict(se=se / b, kl=kl / b, mmd=mmd, total=vae + cfg.beta * mmd)


def mmd_unbiased(a, b, alphas=TRVAE_MMD_ALPHAS):
    """Unbiased MMD^2 of two samples with k(x, y) = sum_j exp(-alpha_j ||x - y||^2) (Gretton et al. 2012)."""
    n1, n2 = a.shape[0], b.shape[0]
    ab = torch.cat([a, b], dim=0)
    sq = ab.pow(2).sum(dim=1)
    d2 = torch.clamp(sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * ab @ ab.t(), min=0.0)
    al = torch.tensor(alphas, dtype=ab.dtype, device=ab.device).view(-1, 1, 1)
    k = torch.exp(-al * d2.unsqueeze(0)).sum(dim=0)
    k11, k22, k12 = k[:n1, :n1], k[n1:, n1:], k[:n1, n1:]
    return ((k11.sum() - torch.diagonal(k11).sum()) / (n1 * (n1 - 1))
            + (k22.sum() - torch.diagonal(k22).sum()) / (n2 * (n2 - 1))
            - 2.0 * k12.sum() / (n1 * n2))


def conditions_mmd(y, label, n_conditions):
    """Sum of the MMD over every pair of conditions present with >= 2 cells (conditions with < 2 are skipped)."""
    groups = [y[label == i] for i in range(n_conditions)]
    groups = [g for g in groups if g.shape[0] >= 2]
    total = y.new_zeros(())
    for i in range(len(groups)):
        for j in range(i):
            total = total + mmd_unbiased(groups[j], groups[i])
    return total


def expected_trvae_params(g, n, enc=(128, 32), dec=(32, 128), z=10):
    def stack(i0, sizes):
        ins = [i0] + list(sizes[:-1])
        return sum(i * o + 2 * o for i, o in zip(ins, sizes))  # no-bias Linear + BN affine
    return stack(g + n, enc) + 2 * (enc[-1] * z + z) + stack(z + n, dec) + dec[-1] * g + g


# ----------------------------------------------------------------------------- Cond_FM (§7.1)

def _condition_embedder(c_dim, emb_dim, p_uncond):
    """ConditionEmbedding(C->H) when p_uncond > 0 (then FlowDecoder.c_embedder is a second Linear), else identity.

    Returns (module or None, the velocity net's c_dim).
    """
    if p_uncond <= 0:
        return None, c_dim
    emb = nn.Module()
    emb.linear = nn.Linear(c_dim, emb_dim)  # state name condition_embedder.linear.*
    return emb, emb_dim


def _embed_condition(embedder, p_uncond, c):
    if embedder is None:
        return c
    e = embedder.linear(c)
    keep = (torch.rand(e.shape[0], 1, device=e.device) >= p_uncond).to(e.dtype)
    return e * keep  # whole rows zeroed with probability p_uncond (classifier-free guidance training)


class CondFM(nn.Module):
    """Cond_FM: identity condition embedder when p_uncond = 0 (every shipped config); velocity net under ``_decoder``.

    Also the flow stage of scCVAE-FM (§7.5), with the condition [mu_CVAE || c] (C = Z + K); its scCVAE stage is the
    ``sccvae`` model and is not part of this network.
    """

    def __init__(self, x_dim, c_dim, emb_dim=1024, n_layers=4, dropout=0.1, p_uncond=0.0):
        super().__init__()
        self.p_uncond = p_uncond
        self.condition_embedder, c_dim = _condition_embedder(c_dim, emb_dim, p_uncond)
        self.cfg = M.FlowConfig(x_dim=x_dim, c_dim=c_dim, emb_dim=emb_dim, n_layers=n_layers, dropout=dropout)
        self._decoder = M.FlowDecoder(self.cfg)

    def loss_terms(self, x1, c):
        x0 = torch.randn_like(x1)  # no OT coupling
        t = torch.rand(x1.shape[0], device=x1.device)
        loss, _ = M.cfm_loss(self._decoder, x0, x1, t, _embed_condition(self.condition_embedder, self.p_uncond, c))
        return dict(flow=loss, total=loss)


def expected_cond_fm_params(g, c):
    """Spec §2.4 / §7.1 (E = H = 1024, L = 4): 2049*G + 1024*C + 6,307,840 (Fourier buffer not counted)."""
    return 2049 * g + 1024 * c + 6_307_840


# ----------------------------------------------------------------------------- ConceptFlow (§7.6)

class FeedForwardBlock(M.ResBlock):
    """mlp.py FeedForwardBlock: ResBlock whose Linear bias starts at 0."""

    def __init__(self, d, dropout=0.0):
        super().__init__(d, dropout)
        nn.init.zeros_(self.linear.bias)


class DenseEncoder(nn.Module):
    """x_embedder Linear(in->H) -> n x FeedForwardBlock(H) -> output_layer Linear(H->out) -> activation."""

    def __init__(self, input_dim, hidden_dim, n_layers, output_dim, dropout=0.0, activation=None):
        super().__init__()
        if activation not in (None, "sigmoid", "relu", "hypersphere"):
            raise ValueError(f"unknown activation {activation!r}")
        self.activation = activation
        self.x_embedder = nn.Linear(input_dim, hidden_dim)
        self.layers = nn.ModuleList([FeedForwardBlock(hidden_dim, dropout) for _ in range(n_layers)])
        self.output_layer = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        h = self.x_embedder(x)
        for layer in self.layers:
            h = layer(h)
        h = self.output_layer(h)
        if self.activation == "sigmoid":
            return torch.sigmoid(h)
        if self.activation == "relu":
            return F.relu(h)
        if self.activation == "hypersphere":
            return F.normalize(h, p=2, dim=1)
        return h


@dataclass
class ConceptFMConfig:
    input_dim: int = 128         # G
    hidden_dim: int = 1024       # H (also the velocity net's E)   -- fm_config/model/conceptflow.yaml
    latent_dim: int = 128        # Z
    n_concepts: int = 10         # K
    n_unknown: int = 128         # U
    n_layers: int = 4            # L
    cb_layers: int = 2           # default (not set by the shipped config)
    dropout: float = 0.1
    p_uncond: float = 0.0
    unknown_activation: str = "relu"
    flow_hp: float = 1.0
    concepts_hp: float = 0.1
    orthogonality_hp: float = 0.2  # the yaml's "othogonality_hp: 0.1" is a typo, so the default 0.2 applies
    kl_hp: float = 0.1

    def to_dict(self):
        return asdict(self)


class ConceptFM(nn.Module):
    def __init__(self, cfg: ConceptFMConfig, concept_mean=None, concept_std=None):
        super().__init__()
        self.cfg = cfg
        g, h, k, u = cfg.input_dim, cfg.hidden_dim, cfg.n_concepts, cfg.n_unknown
        act_u = "hypersphere" if cfg.unknown_activation == "hypersphere" else "relu"
        self._encoder = DenseEncoder(g, h, cfg.n_layers, cfg.latent_dim, cfg.dropout)
        self.cb_concepts_layers = DenseEncoder(cfg.latent_dim, h, cfg.cb_layers, k, cfg.dropout, "sigmoid")
        self.cb_unk_layers = DenseEncoder(cfg.latent_dim, h, cfg.cb_layers, u, cfg.dropout, act_u)
        self.fc_mu_logvar = DenseEncoder(k + u, h, 2, 2 * g, cfg.dropout)
        self.condition_embedder, c_dim = _condition_embedder(k + u, h, cfg.p_uncond)
        self._decoder = M.FlowDecoder(M.FlowConfig(x_dim=g, c_dim=c_dim, emb_dim=h, n_layers=cfg.n_layers,
                                                   dropout=cfg.dropout))
        # dataset-level statistics of the *true* concepts, computed once before training (§7.6)
        self.register_buffer("concept_mean", torch.zeros(k) if concept_mean is None else concept_mean.clone())
        self.register_buffer("concept_std", torch.ones(k) if concept_std is None else concept_std.clone())

    def set_concept_stats(self, concepts):
        self.concept_mean.copy_(concepts.mean(dim=0))
        self.concept_std.copy_(concepts.std(dim=0) + 1e-6)  # unbiased std + 1e-6, as the reference

    def loss_terms(self, x, c):
        cfg = self.cfg
        z = self._encoder(x)  # deterministic encoder
        c_hat = self.cb_concepts_layers(z)
        u = self.cb_unk_layers(z)
        hb = torch.cat([c_hat, u], dim=1)  # predicted concepts, never the true ones
        mu_logvar = self.fc_mu_logvar(hb)
        mu_p, logvar_p = mu_logvar[:, :cfg.input_dim], mu_logvar[:, cfg.input_dim:]
        x0 = M.reparametrize(mu_p, logvar_p, torch.randn_like(mu_p))  # gradient reaches the prior through x0
        t = torch.rand(x.shape[0], device=x.device)
        flow, _ = M.cfm_loss(self._decoder, x0, x, t, _embed_condition(self.condition_embedder, cfg.p_uncond, hb))
        concept = M.hard_concept_loss(c_hat, c)
        c_std = (torch.clip(c_hat, 0.0, 1.0) - self.concept_mean) / self.concept_std
        u_c = u - u.mean(dim=0, keepdim=True)
        orth = torch.sum((u_c.t() @ c_std / (x.shape[0] - 1)).pow(2))  # concepts standardised, not batch-centred
        kl = M.kl_loss(mu_p, logvar_p)
        total = cfg.flow_hp * flow + cfg.concepts_hp * concept + cfg.orthogonality_hp * orth + cfg.kl_hp * kl
        return dict(flow=flow, concept=concept, orth=orth, kl=kl, total=total)


def expected_dense_params(i, h, n, o):
    return i * h + h + n * (h * h + 3 * h) + h * o + o


def expected_concept_fm_params(g=128, h=1024, z=128, k=10, u=128, l=4, cb=2):
    assert h == 1024 and l == 4, "the spec's Cond_FM formula is for E = 1024, L = 4"
    return (expected_dense_params(g, h, l, z) + expected_dense_params(z, h, cb, k) + expected_dense_params(z, h, cb, u)
            + expected_dense_params(k + u, h, 2, 2 * g) + expected_cond_fm_params(g, k + u))


n_trainable = M.n_trainable
