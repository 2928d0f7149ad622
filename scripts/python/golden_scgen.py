"""Golden values for scGen's network and loss (crates/conceptlab-models/src/scgen/golden_tests.rs).

An independent numpy implementation of PyTorch scGen's VAE (scvi-tools FCLayers:
Linear -> BatchNorm1d(momentum 0.01, eps 1e-3) -> LeakyReLU(0.01) -> Dropout; encoder
variance exp(.) + 1e-4; linear decoder output; loss mean over cells of
0.5 * sum (x - xhat)^2 + 0.5 * alpha * KL) on a tiny network with fixed weights:
one training-mode forward (batch statistics, running statistics updated with the
unbiased batch variance) and then one eval-mode forward (running statistics, z = mu).
Dropout is 0 so that both sides see the same network.

Run: python3 scripts/python/golden_scgen.py > crates/conceptlab-models/tests/fixtures/scgen_golden.json
"""

import json

import numpy as np

N_IN, HIDDEN, LATENT, N_LAYERS, BATCH = 5, 4, 3, 2, 6
MOMENTUM, BN_EPS, SLOPE, VAR_EPS, KL_WEIGHT = 0.01, 1e-3, 0.01, 1e-4, 0.5

rng = np.random.default_rng(7)
weights = {}
order = []


def linear(name, fan_in, fan_out):
    bound = 1.0 / np.sqrt(fan_in)
    weights[f"{name}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in))
    weights[f"{name}.bias"] = rng.uniform(-bound, bound, fan_out)


def batch_norm(name, dim):
    # Non-trivial affine parameters so that gamma and beta are exercised.
    weights[f"{name}.weight"] = rng.uniform(0.5, 1.5, dim)
    weights[f"{name}.bias"] = rng.uniform(-0.5, 0.5, dim)
    weights[f"{name}.running_mean"] = np.zeros(dim)
    weights[f"{name}.running_var"] = np.ones(dim)


def fc_layers(prefix, n_in):
    names = []
    for i in range(N_LAYERS):
        name = f"{prefix}.fc_layers.Layer {i}"
        linear(f"{name}.0", n_in if i == 0 else HIDDEN, HIDDEN)
        batch_norm(f"{name}.1", HIDDEN)
        names.append(name)
    return names


encoder = fc_layers("z_encoder.encoder", N_IN)
linear("z_encoder.mean_encoder", HIDDEN, LATENT)
linear("z_encoder.var_encoder", HIDDEN, LATENT)
decoder = fc_layers("decoder.decoder", LATENT)
linear("decoder.linear_out", HIDDEN, N_IN)
initial = {k: v.copy() for k, v in weights.items()}

x = rng.normal(1.0, 2.0, (BATCH, N_IN))
eps = rng.normal(0.0, 1.0, (BATCH, LATENT))


def dense(name, h):
    return h @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]


def layers(names, h, train):
    for name in names:
        h = dense(f"{name}.0", h)
        bn = f"{name}.1"
        if train:
            mean, var = h.mean(0), h.var(0)
            n = h.shape[0]
            weights[f"{bn}.running_mean"] = (1 - MOMENTUM) * weights[f"{bn}.running_mean"] + MOMENTUM * mean
            weights[f"{bn}.running_var"] = (1 - MOMENTUM) * weights[f"{bn}.running_var"] + MOMENTUM * var * n / (n - 1)
        else:
            mean, var = weights[f"{bn}.running_mean"], weights[f"{bn}.running_var"]
        h = (h - mean) / np.sqrt(var + BN_EPS) * weights[f"{bn}.weight"] + weights[f"{bn}.bias"]
        h = np.where(h > 0, h, SLOPE * h)
    return h


def forward(train):
    h = layers(encoder, x, train)
    mu = dense("z_encoder.mean_encoder", h)
    var = np.exp(dense("z_encoder.var_encoder", h)) + VAR_EPS
    z = mu + np.sqrt(var) * eps if train else mu
    recon = dense("decoder.linear_out", layers(decoder, z, train))
    rl = 0.5 * ((x - recon) ** 2).sum(1)
    kl = 0.5 * (var + mu**2 - 1.0 - np.log(var)).sum(1)
    total = (rl + 0.5 * KL_WEIGHT * kl).mean()
    return {
        "mu": mu.tolist(),
        "var": var.tolist(),
        "reconstruction": recon.tolist(),
        "loss_total": float(total),
        "loss_reconstruction": float(rl.mean()),
        "loss_kl": float(kl.mean()),
    }


train = forward(True)
running = {k: v.tolist() for k, v in weights.items() if "running" in k}
evaluation = forward(False)

print(
    json.dumps(
        {
            "config": {
                "input_dim": N_IN,
                "hidden_dim": HIDDEN,
                "latent_dim": LATENT,
                "n_layers": N_LAYERS,
                "kl_weight": KL_WEIGHT,
            },
            "weights": {k: v.tolist() for k, v in initial.items()},
            "x": x.tolist(),
            "eps": eps.tolist(),
            "train": train,
            "running_after_train": running,
            "eval": evaluation,
        },
        indent=1,
    )
)
