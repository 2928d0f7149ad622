//! CINEMA-OT's parts against scipy, POT and scikit-learn
//! (`scripts/python/golden_cinemaot.py`, fixture
//! `tests/fixtures/cinemaot_golden.json`).

use conceptlab_core::random::stream_rng;
use serde_json::Value;

use super::ica::Ica;
use super::sinkhorn::sinkhorn;
use super::xi::chatterjee_xi;

fn golden() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cinemaot_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn chatterjee_xi_matches_scipy() {
    for case in golden()["xi"].as_array().unwrap() {
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        let want = case["xi"].as_f64().unwrap();
        let got = chatterjee_xi(&x, &y);
        assert!(
            (got - want).abs() < 1e-12,
            "{}: {got} vs scipy {want}",
            case["name"]
        );
    }
}

#[test]
fn sinkhorn_plan_matches_pot() {
    for case in golden()["sinkhorn"].as_array().unwrap() {
        let (n, m) = (
            case["n"].as_u64().unwrap() as usize,
            case["m"].as_u64().unwrap() as usize,
        );
        let reg = case["reg"].as_f64().unwrap();
        let (cost, want) = (floats(&case["cost"]), floats(&case["plan"]));
        let plan = sinkhorn(&cost, n, m, reg, 1e-14, 200_000);
        for (g, w) in plan.plan.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-10,
                "reg {reg}: plan entry {g} vs POT {w}"
            );
        }
    }
}

#[test]
fn fastica_unmixing_matches_scikit_learn_up_to_sign_and_order() {
    let g = golden();
    let ica = &g["ica"];
    let (n, d) = (
        ica["n"].as_u64().unwrap() as usize,
        ica["d"].as_u64().unwrap() as usize,
    );
    let x = floats(&ica["x"]);
    let want = floats(&ica["unmixing"]);
    let fitted = Ica::fit(&x, n, d, d, &mut stream_rng(3, 0)).unwrap();
    assert!(fitted.converged);
    for (a, b) in fitted.mean.iter().zip(floats(&ica["mean"])) {
        assert!((a - b).abs() < 1e-12);
    }
    let mut used = vec![false; d];
    for r in 0..d {
        let row = &fitted.unmixing[r * d..(r + 1) * d];
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        // The scikit-learn row this one is (cosine ±1).
        let (best, cos) = (0..d)
            .map(|s| {
                let other = &want[s * d..(s + 1) * d];
                let dot: f64 = row.iter().zip(other).map(|(a, b)| a * b).sum();
                let on = other.iter().map(|v| v * v).sum::<f64>().sqrt();
                (s, dot / (norm * on))
            })
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        assert!(!used[best], "two rows match scikit-learn's row {best}");
        used[best] = true;
        let sign = cos.signum();
        for (a, b) in row.iter().zip(&want[best * d..(best + 1) * d]) {
            assert!(
                (a - sign * b).abs() < 2e-3 * norm,
                "row {r}: {a} vs scikit-learn {}",
                sign * b
            );
        }
    }
    // CINEMA-OT's sources have variance 1/n (whiten="arbitrary-variance").
    let s = fitted.transform(&x, n);
    for (c, want) in floats(&ica["source_variance"]).iter().enumerate() {
        let var = (0..n).map(|i| s[i * d + c].powi(2)).sum::<f64>() / n as f64;
        assert!((var - want).abs() < 1e-9, "{var} vs {want}");
    }
}
