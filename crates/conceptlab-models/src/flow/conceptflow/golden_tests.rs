//! ConceptFlow's loss terms against the independent numpy implementation
//! (`scripts/python/golden_conceptflow.py` → `tests/fixtures/conceptflow_golden.json`).

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::loss::{Batch, Standardize, objective};
use super::*;
use crate::convert::golden::{assert_close, flat};

fn tensor(v: &Value, shape: &[usize]) -> Tensor {
    let values: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn shape_of(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(a) => {
            let mut s = vec![a.len()];
            if let Some(first) = a.first() {
                s.extend(shape_of(first));
            }
            s
        }
        _ => Vec::new(),
    }
}

#[test]
fn loss_terms_match_numpy() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conceptflow_golden.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cfg = &json["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let getf = |k: &str| cfg[k].as_f64().unwrap();
    let config = ConceptFlowConfig {
        hidden_dim: get("H"),
        latent_dim: get("Z"),
        n_unknown: get("U"),
        n_layers: get("n_layers"),
        cb_layers: get("cb_layers"),
        dropout: 0.0,
        flow_hp: getf("flow_hp"),
        concepts_hp: getf("concepts_hp"),
        orthogonality_hp: getf("orthogonality_hp"),
        kl_hp: getf("kl_hp"),
    };
    let dims = Dims {
        input_dim: get("G"),
        n_hard: get("n_hard"),
        n_soft: get("n_soft"),
    };
    let tensors: Vec<(String, Tensor)> = json["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), tensor(v, &shape_of(v))))
        .collect();
    let bytes = conceptlab_nn::serialize_tensors(tensors).unwrap();
    let model =
        ConceptFlow::from_safetensors(config.clone(), dims, &bytes, &candle_core::Device::Cpu)
            .unwrap();

    let inputs = &json["inputs"];
    let arr = |k: &str| {
        let v = &inputs[k];
        let s = shape_of(v);
        Array2::from_shape_vec(
            (s[0], s[1]),
            flat(v).into_iter().map(|x| x as f32).collect(),
        )
        .unwrap()
    };
    let (x, c, o, eps) = (arr("x"), arr("c"), arr("observed"), arr("eps"));
    let b = x.nrows();
    let data = ConceptData::new(x.clone(), c.clone(), o.clone(), dims.n_hard).unwrap();
    let stats = Standardize::of(&data);
    let want = &json["standardize"];
    for (got, want) in [
        (&stats.mean, &want["mean"]),
        (&stats.inv_std, &want["inv_std"]),
    ] {
        for (g, w) in got.iter().zip(flat(want)) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{g} vs {w}"
            );
        }
    }
    // The constant column leaves the penalty.
    assert_eq!(stats.inv_std[1], 0.0);

    let dev = Device::Cpu;
    let t = tensor(&inputs["t"], &[b, 1]);
    let (xt, ct, ot, et) = (
        to_tensor(x.view(), &dev).unwrap(),
        to_tensor(c.view(), &dev).unwrap(),
        to_tensor(o.view(), &dev).unwrap(),
        to_tensor(eps.view(), &dev).unwrap(),
    );
    let batch = Batch {
        x: &xt,
        concepts: &ct,
        observed: &ot,
        eps: &et,
        t: &t,
    };
    let bn = model.net.bottleneck(&xt, None).unwrap();
    let fwd = &json["forward"];
    assert_close("concepts", &bn.concepts, &fwd["concepts"], 1e-5);
    assert_close("unknown", &bn.unknown, &fwd["unknown"], 1e-5);
    let (mu, logvar) = model.net.prior(&bn.condition().unwrap(), None).unwrap();
    assert_close("mu", &mu, &fwd["mu"], 1e-5);
    assert_close("logvar", &logvar, &fwd["logvar"], 1e-5);

    let (_, terms) = objective(&config, &model.net, &batch, &stats, None).unwrap();
    let want = &json["terms"];
    for (name, got) in [
        ("flow", terms.flow),
        ("concept", terms.concept),
        ("orthogonality", terms.orthogonality),
        ("kl", terms.kl),
        ("total", terms.total),
    ] {
        let w = want[name].as_f64().unwrap();
        assert!(
            (got - w).abs() <= 1e-5 * w.abs() + 1e-7,
            "{name}: {got} vs numpy {w}"
        );
    }
}
