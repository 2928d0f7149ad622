//! The velocity network against the independent PyTorch implementation
//! (`scripts/python/golden_sccbgm.py` → `tests/fixtures/flow_golden.*`):
//! forward pass, loss, gradients, one Adam step and 4-step Euler decode/edit.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use conceptlab_core::random::stream_rng;
use conceptlab_nn::ode::{Solver, integrate};
use conceptlab_nn::{Adam, AdamConfig};
use serde_json::Value;

use crate::convert::golden::assert_close;

use super::network::{FOURIER_BUFFER, VelocityDims, VelocityNet, flow_matching_loss};

/// The fixture's JSON, the network with its weights, and the inputs.
fn load() -> (Value, VelocityNet, indexmap::IndexMap<String, Tensor>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("flow_golden.json")).unwrap())
            .unwrap();
    let cfg = &json["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let dims = VelocityDims {
        x_dim: get("x_dim"),
        c_dim: get("c_dim"),
        emb_dim: get("emb_dim"),
        n_layers: get("n_layers"),
    };
    let mut net = VelocityNet::new(dims, 0.0, &Device::Cpu, &mut stream_rng(0, 0)).unwrap();
    let bytes = std::fs::read(dir.join("flow_golden.safetensors")).unwrap();
    let mut rest = net.params.load_safetensors(&bytes).unwrap();
    net.set_fourier(rest.shift_remove(FOURIER_BUFFER).unwrap())
        .unwrap();
    (json, net, rest)
}

#[test]
fn velocity_network_matches_pytorch() {
    let (json, net, rest) = load();
    let input = |k: &str| rest[&format!("input.{k}")].clone();
    let (x0, x1, c) = (input("x0"), input("x1"), input("c"));
    let t = input("t").reshape((x0.dims()[0], 1)).unwrap();

    let fwd = &json["forward"];
    let xt =
        (x0.broadcast_mul(&(1.0 - &t).unwrap()).unwrap() + x1.broadcast_mul(&t).unwrap()).unwrap();
    assert_close("x_t", &xt, &fwd["x_t"], 1e-6);
    let v = net.forward(&xt, &t, Some(&c), None).unwrap();
    assert_close("v", &v, &fwd["v"], 1e-5);
    let loss = flow_matching_loss(&net, &x0, &x1, &t, Some(&c), None).unwrap();
    let want = json["loss"].as_f64().unwrap();
    let got = loss.to_scalar::<f32>().unwrap() as f64;
    assert!(
        (got - want).abs() < 1e-5 * want.abs(),
        "loss {got} vs {want}"
    );
    let grads = loss.backward().unwrap();
    for (name, var) in net.params.iter() {
        let g = net
            .params
            .to_reference(name, grads.get(var.as_tensor()).unwrap())
            .unwrap();
        assert_close(&format!("grad {name}"), &g, &json["grad"][name], 2e-5);
    }
    let mut adam = Adam::new(
        &net.params,
        AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        },
    )
    .unwrap();
    adam.step(&net.params, &grads).unwrap();
    for (name, var) in net.params.iter() {
        let p = net.params.to_reference(name, var.as_tensor()).unwrap();
        assert_close(
            &format!("adam1 {name}"),
            &p,
            &json["params_adam1"][name],
            2e-5,
        );
    }
}

#[test]
fn euler_decode_and_edit_match_pytorch() {
    let (json, net, rest) = load();
    let input = |k: &str| rest[&format!("input.{k}")].clone();
    let (x0, x1, c, c_prime) = (input("x0"), input("x1"), input("c"), input("c_prime"));
    let n = json["config"]["euler_steps"].as_u64().unwrap() as usize;
    let b = x0.dims()[0];
    let field = |cond: Tensor| {
        let net = &net;
        move |t: f64, x: &Tensor| -> Result<Tensor, conceptlab_nn::NnError> {
            let tt = Tensor::full(t as f32, (b, 1), &Device::Cpu)?;
            net.forward(x, &tt, Some(&cond), None)
                .map_err(|e| conceptlab_nn::NnError::Tensor(e.to_string()))
        }
    };
    let (decoded, _) = integrate(&mut field(c.clone()), &x0, 0.0, 1.0, Solver::Euler, n).unwrap();
    assert_close("euler decode", &decoded, &json["euler_decode"], 1e-5);
    let (noise, _) = integrate(&mut field(c.clone()), &x1, 1.0, 0.0, Solver::Euler, n).unwrap();
    let (edited, _) = integrate(
        &mut field(c_prime.clone()),
        &noise,
        0.0,
        1.0,
        Solver::Euler,
        n,
    )
    .unwrap();
    assert_close("euler edit", &edited, &json["euler_edit"], 1e-5);
}
