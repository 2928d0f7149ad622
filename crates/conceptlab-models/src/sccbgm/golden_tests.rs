//! scCBGM against an independent PyTorch implementation
//! (`scripts/python/sccbgm_torch.py`, fixture by `scripts/python/golden_sccbgm.py`):
//! forward pass, every loss term, every gradient, Adam steps and the
//! intervention, on a tiny network with formula-set weights.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use conceptlab_core::random::stream_rng;
use conceptlab_nn::{Adam, AdamConfig};
use indexmap::IndexMap;
use serde_json::Value;

use crate::convert::golden::assert_close;

use super::config::ScCbgmConfig;
use super::loss::objective;
use super::network::{Dims, Network};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Golden {
    json: Value,
    net: Network,
    config: ScCbgmConfig,
    inputs: IndexMap<String, Tensor>,
}

fn load(stem: &str, rename: &dyn Fn(&str) -> String) -> Golden {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{stem}.json"))).unwrap())
            .unwrap();
    let cfg = &json["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (n_hard, n_soft) = match cfg.get("n_hard_concepts") {
        Some(h) => (h.as_u64().unwrap() as usize, get("n_soft_concepts")),
        None => (get("n_concepts"), 0),
    };
    let config = ScCbgmConfig {
        hidden_dim: get("hidden_dim"),
        n_layers: get("n_layers"),
        latent_dim: get("latent_dim"),
        n_unknown: get("n_unknown"),
        beta: cfg["beta"].as_f64().unwrap(),
        concepts_hp: cfg["concepts_hp"].as_f64().unwrap(),
        orthogonality_hp: cfg["orthogonality_hp"].as_f64().unwrap(),
        ..ScCbgmConfig::reference_synthetic()
    };
    let dims = Dims {
        input_dim: get("input_dim"),
        n_hard,
        n_soft,
    };
    let net = Network::new(&config, dims, &Device::Cpu, &mut stream_rng(0, 0)).unwrap();
    let bytes = std::fs::read(fixture(&format!("{stem}.safetensors"))).unwrap();
    let raw = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    // Rename the reference's names to ours and merge split heads.
    let mut renamed: std::collections::HashMap<String, Tensor> = Default::default();
    for (k, v) in raw {
        renamed.insert(rename(&k), v);
    }
    for part in ["weight", "bias"] {
        let hard = renamed.remove(&format!("cb_hard_layers.0.{part}"));
        let soft = renamed.remove(&format!("cb_soft_layers.0.{part}"));
        if let (Some(h), Some(s)) = (hard, soft) {
            renamed.insert(
                format!("cb_concepts_layers.0.{part}"),
                Tensor::cat(&[&h, &s], 0).unwrap(),
            );
        }
    }
    let buffer =
        safetensors::serialize(renamed.iter().map(|(k, v)| (k.clone(), v.clone())), None).unwrap();
    let inputs = net.params.load_safetensors(&buffer).unwrap();
    Golden {
        json,
        net,
        config,
        inputs,
    }
}

/// The reference's value for one of our parameter names: the mixed model
/// names its modules without the underscore and splits the concept head.
fn reference(map: &Value, name: &str) -> Value {
    if let Some(v) = map.get(name) {
        return v.clone();
    }
    if let Some(part) = name.strip_prefix("cb_concepts_layers.0.") {
        let mut joined = map[format!("cb_hard_layers.0.{part}")]
            .as_array()
            .unwrap()
            .clone();
        joined.extend(
            map[format!("cb_soft_layers.0.{part}")]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        return Value::Array(joined);
    }
    let unprefixed = name.strip_prefix('_').unwrap();
    map[unprefixed].clone()
}

fn check_case(g: &Golden, section: &Value, prefix: &str) {
    let input = |k: &str| g.inputs[&format!("{prefix}.{k}")].clone();
    let (x, c, eps) = (input("x"), input("c"), input("eps"));
    let mask = Tensor::ones_like(&c).unwrap();
    let out = g.net.forward(&x, Some(&eps), None, None).unwrap();
    let fwd = &section["forward"];
    assert_close("mu", &out.mu, &fwd["mu"], 1e-5);
    assert_close("logvar", out.logvar.as_ref().unwrap(), &fwd["logvar"], 1e-5);
    assert_close("c_hat", &out.concepts, &fwd["c_hat"], 1e-5);
    assert_close("u", &out.unknown, &fwd["u"], 1e-5);
    assert_close("x_hat", &out.reconstruction, &fwd["x_hat"], 1e-5);
    let (total, terms) = objective(&g.config, g.net.dims, &out, &x, &c, &mask).unwrap();
    let loss = &section["loss"];
    for (name, value) in [
        ("mse", terms.reconstruction),
        ("kl", terms.kl),
        ("concept", terms.concept),
        ("orth", terms.orthogonality),
        ("total", terms.total),
    ] {
        let want = loss[name].as_f64().unwrap();
        assert!(
            (value - want).abs() <= 1e-5 * want.abs().max(1e-3),
            "loss {name}: got {value}, want {want}"
        );
    }
    let grads = total.backward().unwrap();
    for (name, var) in g.net.params.iter() {
        let grad = g
            .net
            .params
            .to_reference(name, grads.get(var.as_tensor()).unwrap())
            .unwrap();
        assert_close(
            &format!("grad {name}"),
            &grad,
            &reference(&section["grad"], name),
            2e-5,
        );
    }
    // Adam: one step, then (on the same batch) two more; compare weights.
    let mut adam = Adam::new(
        &g.net.params,
        AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        },
    )
    .unwrap();
    adam.step(&g.net.params, &grads).unwrap();
    for (name, var) in g.net.params.iter() {
        assert_close(
            &format!("adam1 {name}"),
            &g.net.params.to_reference(name, var.as_tensor()).unwrap(),
            &reference(&section["params_adam1"], name),
            2e-5,
        );
    }
    if let Some(after3) = section.get("params_adam3") {
        for _ in 0..2 {
            let out = g.net.forward(&x, Some(&eps), None, None).unwrap();
            let (total, _) = objective(&g.config, g.net.dims, &out, &x, &c, &mask).unwrap();
            adam.step(&g.net.params, &total.backward().unwrap())
                .unwrap();
        }
        for (name, var) in g.net.params.iter() {
            assert_close(
                &format!("adam3 {name}"),
                &g.net.params.to_reference(name, var.as_tensor()).unwrap(),
                &reference(after3, name),
                1e-4,
            );
        }
    }
}

#[test]
fn sccbgm_matches_pytorch() {
    let g = load("sccbgm_golden", &|k| k.to_string());
    check_case(&g, &g.json, "input");
    // Intervention from the untouched weights of a fresh load.
    let g = load("sccbgm_golden", &|k| k.to_string());
    let x = g.inputs["input.x"].clone();
    let (mu, _) = g.net.encode(&x, None).unwrap();
    let (_, c_hat, u) = g.net.heads(&mu).unwrap();
    let iv = &g.json["intervention"];
    assert_close("intervention c_hat", &c_hat, &iv["c_hat"], 1e-5);
    assert_close("intervention u", &u, &iv["u"], 1e-5);
    let m = g.inputs["input.mask"].clone();
    let c_new = g.inputs["input.c_new"].clone();
    let c_in = ((&c_hat * (1.0 - &m).unwrap()).unwrap() + (&c_new * &m).unwrap()).unwrap();
    assert_close("intervention c_in", &c_in, &iv["c_in"], 1e-6);
    let x_cf = g.net.decode(&c_in, &u, None).unwrap();
    assert_close("intervention x_hat", &x_cf, &iv["x_hat"], 1e-5);
}

#[test]
fn sccbgm_two_cell_batch_matches_pytorch() {
    let g = load("sccbgm_golden", &|k| k.to_string());
    check_case(&g, &g.json["batch2"], "input_b2");
}

#[test]
fn mixed_hard_soft_sccbgm_matches_pytorch() {
    // The mixed model's reference names drop the leading underscore.
    let g = load("sccbgm_mixed_golden", &|k| {
        k.strip_prefix("encoder.")
            .map(|r| format!("_encoder.{r}"))
            .or_else(|| k.strip_prefix("decoder.").map(|r| format!("_decoder.{r}")))
            .unwrap_or_else(|| k.to_string())
    });
    check_case(&g, &g.json, "input");
}
