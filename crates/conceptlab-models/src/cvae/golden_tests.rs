//! scCVAE against an independent float64 numpy implementation
//! (`scripts/python/golden_cvae.py`, fixture `tests/fixtures/cvae_golden.json`):
//! the forward pass, both loss terms and both edit forms on a tiny network
//! with formula-set weights.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use conceptlab_nn::serialize_tensors;
use ndarray::Array2;
use serde_json::Value;

use super::{ScCvae, ScCvaeConfig, objective};
use crate::Residual;
use crate::convert::golden::{assert_close, flat};
use crate::convert::to_tensor;
use crate::sccbgm::Dims;

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cvae_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(v: &Value) -> Array2<f32> {
    let rows = v.as_array().unwrap().len();
    let values: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
    let cols = values.len() / rows;
    Array2::from_shape_vec((rows, cols), values).unwrap()
}

fn model(json: &Value) -> ScCvae {
    let cfg = &json["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let config = ScCvaeConfig {
        hidden_dim: get("hidden_dim"),
        n_layers: get("n_layers"),
        latent_dim: get("latent_dim"),
        beta: cfg["beta"].as_f64().unwrap(),
        dropout: 0.0,
    };
    let dims = Dims {
        input_dim: get("input_dim"),
        n_hard: get("n_hard"),
        n_soft: get("n_soft"),
    };
    let model = ScCvae::new(config, dims, 0, &candle_core::Device::Cpu).unwrap();
    let tensors: Vec<(String, Tensor)> = json["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let values: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
            let shape: Vec<usize> = match v.as_array().unwrap()[0].as_array() {
                Some(row) => vec![v.as_array().unwrap().len(), row.len()],
                None => vec![values.len()],
            };
            (
                name.clone(),
                Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let bytes = serialize_tensors(tensors).unwrap();
    let rest = model.params().load_safetensors(&bytes).unwrap();
    assert!(rest.is_empty(), "unused fixture tensors: {:?}", rest.keys());
    model
}

#[test]
fn forward_loss_and_edits_match_numpy() {
    let json = fixture();
    let model = model(&json);
    let input = |k: &str| matrix(&json["inputs"][k]);
    let (x, c, eps, c_new) = (input("x"), input("c"), input("eps"), input("c_new"));
    let t = |a: &Array2<f32>| to_tensor(a.view(), &Device::Cpu).unwrap();
    let out = model
        .net
        .forward(&t(&x), &t(&c), Some(&t(&eps)), None)
        .unwrap();
    let fwd = &json["forward"];
    assert_close("mu", &out.mu, &fwd["mu"], 1e-5);
    assert_close("logvar", &out.logvar, &fwd["logvar"], 1e-5);
    assert_close("x_hat", &out.reconstruction, &fwd["x_hat"], 1e-5);
    let (total, terms) = objective(model.config.beta, &out, &t(&x)).unwrap();
    let want = |k: &str| json["loss"][k].as_f64().unwrap();
    assert!((terms.reconstruction - want("reconstruction")).abs() < 1e-5);
    assert!((terms.kl - want("kl")).abs() < 1e-5, "{terms:?}");
    assert!((total.to_scalar::<f32>().unwrap() as f64 - want("total")).abs() < 1e-5);
    for (residual, key) in [(Residual::Discard, "discard"), (Residual::Keep, "keep")] {
        let edited = model
            .edit(x.view(), c.view(), c_new.view(), residual)
            .unwrap();
        assert_close(key, &t(&edited), &json["edit"][key], 1e-5);
    }
}
