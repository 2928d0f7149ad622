//! scGen's network and loss against an independent numpy implementation
//! (`scripts/python/golden_scgen.py`, fixture `tests/fixtures/scgen_golden.json`):
//! a training-mode forward (batch statistics, running statistics updated),
//! then an eval-mode forward with the updated running statistics.

use candle_core::{Device, Tensor};
use conceptlab_core::random::stream_rng;
use serde_json::Value;

use crate::convert::golden::{assert_close, flat};

use super::config::ScGenConfig;
use super::network::{Network, objective};

fn fixture() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scgen_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(v: &Value) -> Tensor {
    let rows = v.as_array().unwrap().len();
    let values: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
    let cols = values.len() / rows;
    Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
}

fn network(json: &Value) -> Network {
    let cfg = &json["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let config = ScGenConfig {
        hidden_dim: get("hidden_dim"),
        n_layers: get("n_layers"),
        latent_dim: get("latent_dim"),
        dropout: 0.0,
        kl_weight: cfg["kl_weight"].as_f64().unwrap(),
    };
    let net = Network::new(
        &config,
        get("input_dim"),
        &Device::Cpu,
        &mut stream_rng(0, 0),
    )
    .unwrap();
    let tensors: Vec<(String, Tensor)> = json["weights"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let values: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
            let shape: Vec<usize> = match v.as_array().unwrap()[0] {
                Value::Array(ref row) => vec![values.len() / row.len(), row.len()],
                _ => vec![values.len()],
            };
            let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
            (name.clone(), t)
        })
        .collect();
    let bytes = conceptlab_nn::serialize_tensors(tensors).unwrap();
    let left = net.params.load_safetensors(&bytes).unwrap();
    assert!(left.is_empty(), "unused fixture tensors: {:?}", left.keys());
    net
}

#[test]
fn training_and_eval_forward_and_loss_match_numpy() {
    let json = fixture();
    let net = network(&json);
    let kl_weight = json["config"]["kl_weight"].as_f64().unwrap();
    let x = matrix(&json["x"]);
    let eps = matrix(&json["eps"]);
    // Training mode: a generator switches batch statistics on (dropout is 0).
    let mut rng = stream_rng(0, 1);
    let out = net.forward(&x, Some(&eps), Some(&mut rng)).unwrap();
    let (_, terms) = objective(&out, &x, kl_weight).unwrap();
    let want = &json["train"];
    assert_close("train mu", &out.mu, &want["mu"], 1e-5);
    assert_close("train var", &out.var, &want["var"], 1e-5);
    assert_close(
        "train reconstruction",
        &out.reconstruction,
        &want["reconstruction"],
        1e-5,
    );
    for (what, got, key) in [
        ("total", terms.total, "loss_total"),
        (
            "reconstruction",
            terms.reconstruction,
            "loss_reconstruction",
        ),
        ("kl", terms.kl, "loss_kl"),
    ] {
        let w = want[key].as_f64().unwrap();
        assert!(
            (got - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what}: {got} vs {w}"
        );
    }
    for (name, values) in json["running_after_train"].as_object().unwrap() {
        let got = net.params.get(name).unwrap();
        assert_close(name, got, values, 1e-6);
    }
    // Eval mode: running statistics, z = μ.
    let out = net.forward(&x, None, None).unwrap();
    let (_, terms) = objective(&out, &x, kl_weight).unwrap();
    let want = &json["eval"];
    assert_close("eval mu", &out.mu, &want["mu"], 1e-5);
    assert_close(
        "eval reconstruction",
        &out.reconstruction,
        &want["reconstruction"],
        1e-5,
    );
    let w = want["loss_total"].as_f64().unwrap();
    assert!((terms.total - w).abs() <= 1e-5 * w.abs().max(1.0));
}
