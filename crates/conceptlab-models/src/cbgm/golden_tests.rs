//! CBGM against an independent numpy implementation
//! (`scripts/python/golden_cbgm.py`, fixture `tests/fixtures/cbgm_golden.json`):
//! the forward pass and every loss term, on tiny networks with formula-set
//! weights, for each decoder kind and both orthogonality penalties, with
//! missing annotations and a soft column.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use conceptlab_core::random::stream_rng;
use serde_json::Value;

use crate::convert::golden::{assert_close, flat};
use crate::sccbgm::{DecoderKind, Dims, Orthogonality};

use super::config::CbgmConfig;
use super::loss::objective;
use super::network::Network;

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cbgm_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn shape(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(a) => {
            let mut s = vec![a.len()];
            if let Some(first) = a.first() {
                s.extend(shape(first));
            }
            s
        }
        _ => vec![],
    }
}

fn tensor(v: &Value) -> Tensor {
    let data: Vec<f32> = flat(v).into_iter().map(|x| x as f32).collect();
    Tensor::from_vec(data, shape(v), &Device::Cpu).unwrap()
}

fn build(case: &Value) -> (CbgmConfig, Network) {
    let cfg = &case["config"];
    let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let f = |k: &str| cfg[k].as_f64().unwrap();
    let config = CbgmConfig {
        hidden_dim: n("H"),
        n_layers: n("L"),
        latent_dim: n("Z"),
        n_unknown: n("n_unknown"),
        beta: f("beta"),
        concepts_hp: f("concepts_hp"),
        orthogonality_hp: f("orthogonality_hp"),
        orthogonality: serde_json::from_value::<Orthogonality>(cfg["orthogonality"].clone())
            .unwrap(),
        decoder: serde_json::from_value::<DecoderKind>(cfg["decoder"].clone()).unwrap(),
        dropout: 0.0,
    };
    let dims = Dims {
        input_dim: n("G"),
        n_hard: n("Kh"),
        n_soft: n("Ks"),
    };
    let net = Network::new(&config, dims, &Device::Cpu, &mut stream_rng(0, 0)).unwrap();
    assert_eq!(net.sizes.embedding, n("e"), "sizes rule: e");
    assert_eq!(net.sizes.unknown, n("U"), "sizes rule: U");
    let params = case["params"].as_object().unwrap();
    assert_eq!(params.len(), net.params.len(), "parameter count");
    let buffer =
        safetensors::serialize(params.iter().map(|(k, v)| (k.clone(), tensor(v))), None).unwrap();
    let extra = net.params.load_safetensors(&buffer).unwrap();
    assert!(extra.is_empty(), "unused tensors: {:?}", extra.keys());
    (config, net)
}

#[test]
fn forward_pass_and_every_loss_term_match_numpy() {
    let json = fixture();
    let cases = json["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 3);
    for (name, case) in cases {
        let (config, net) = build(case);
        let input = |k: &str| tensor(&case["inputs"][k]);
        let (x, c, o, eps) = (input("x"), input("c"), input("observed"), input("eps"));
        let out = net.forward(&x, Some(&eps), None).unwrap();
        let fwd = &case["forward"];
        for (what, got) in [
            ("mu", &out.mu),
            ("logvar", &out.logvar),
            ("logits", &out.logits),
            ("probs", &out.probs),
            ("embedding", &out.embedding),
            ("unknown", &out.unknown),
            ("reconstruction", &out.reconstruction),
        ] {
            assert_close(&format!("{name}: {what}"), got, &fwd[what], 1e-5);
        }
        // The contexts of the sampled z.
        let z = (&out.mu
            + (&out.logvar * 0.5)
                .unwrap()
                .exp()
                .unwrap()
                .mul(&eps)
                .unwrap())
        .unwrap();
        let (_, _, contexts, _) = net.heads(&z).unwrap();
        assert_close(
            &format!("{name}: contexts"),
            &contexts,
            &fwd["contexts"],
            1e-5,
        );
        let (total, terms) = objective(&config, net.dims, &out, &x, &c, &o).unwrap();
        let want = &case["loss"];
        for (what, got) in [
            ("total", terms.total),
            ("reconstruction", terms.reconstruction),
            ("kl", terms.kl),
            ("concept", terms.concept),
            ("orthogonality", terms.orthogonality),
        ] {
            let w = want[what].as_f64().unwrap();
            assert!(
                (got - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{name}: {what} got {got}, want {w}"
            );
        }
        assert_eq!(total.to_scalar::<f32>().unwrap() as f64, terms.total);
        // z = μ, as edits abduct.
        let at_mu = net.forward(&x, None, None).unwrap();
        let mu = &case["forward_mu"];
        assert_close(
            &format!("{name}: probs at μ"),
            &at_mu.probs,
            &mu["probs"],
            1e-5,
        );
        assert_close(
            &format!("{name}: reconstruction at μ"),
            &at_mu.reconstruction,
            &mu["reconstruction"],
            1e-5,
        );
    }
}

#[test]
fn a_missing_annotation_does_not_enter_the_concept_loss() {
    let json = fixture();
    let case = &json["cases"]["skip_cross_covariance_mixed"];
    let (config, net) = build(case);
    let input = |k: &str| tensor(&case["inputs"][k]);
    let (x, c, o, eps) = (input("x"), input("c"), input("observed"), input("eps"));
    let out = net.forward(&x, Some(&eps), None).unwrap();
    let (_, base) = objective(&config, net.dims, &out, &x, &c, &o).unwrap();
    // Flip every target whose annotation is missing: nothing may change.
    let flipped =
        ((&c * &o).unwrap() + ((1.0 - &c).unwrap() * (1.0 - &o).unwrap()).unwrap()).unwrap();
    let (_, same) = objective(&config, net.dims, &out, &x, &flipped, &o).unwrap();
    assert_eq!(base.concept, same.concept);
    // ...while flipping an observed one does.
    let all = Tensor::ones_like(&o).unwrap();
    let (_, unmasked) = objective(&config, net.dims, &out, &x, &flipped, &all).unwrap();
    assert!((unmasked.concept - base.concept).abs() > 1e-3);
}
