//! The custom ops and Adam on a CUDA device against the fused CPU ops
//! (only with the `cuda` feature, on a machine with a GPU:
//! `scripts/gpu-check.sh`). The composed paths these exercise are also
//! checked against the fused ops on the CPU by the unit tests, which always run.
#![cfg(feature = "cuda")]

use conceptlab_nn::{Adam, AdamConfig, Device, ParamSet, Tensor, Var, add_bias, layer_norm};

fn gpu() -> Device {
    Device::new_cuda(0).expect("this test needs CUDA device 0")
}

fn values(n: usize, f: impl Fn(f32) -> f32) -> Vec<f32> {
    (0..n).map(|i| f(i as f32)).collect()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (u, v) in a.iter().zip(b) {
        assert!((u - v).abs() <= tol * (1.0 + u.abs()), "{what}: {u} vs {v}");
    }
}

/// Output and gradients of `Σ w·op(x, p...)` on `device`.
fn run_on(
    device: &Device,
    shapes: &[(Vec<f32>, Vec<usize>)],
    op: &dyn Fn(&[Tensor]) -> Tensor,
) -> Vec<Vec<f32>> {
    let vars: Vec<Var> = shapes
        .iter()
        .map(|(v, s)| {
            Var::from_tensor(&Tensor::from_vec(v.clone(), s.as_slice(), device).unwrap()).unwrap()
        })
        .collect();
    let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = op(&inputs);
    let w = Tensor::from_vec(
        values(y.elem_count(), |i| (i * 0.31).cos()),
        y.shape(),
        device,
    )
    .unwrap();
    let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![host(&y)];
    out.extend(vars.iter().map(|v| host(grads.get(v.as_tensor()).unwrap())));
    out
}

#[test]
fn layer_norm_on_cuda_matches_the_cpu_op() {
    let (rows, d) = (64, 33);
    let shapes = vec![
        (
            values(rows * d, |i| (i * 0.7).sin() * (1.0 + i / 100.0)),
            vec![rows, d],
        ),
        (values(d, |i| 1.0 + 0.1 * i), vec![d]),
        (values(d, |i| 0.05 * i - 0.2), vec![d]),
    ];
    let op = |t: &[Tensor]| layer_norm(&t[0], &t[1], &t[2]).unwrap();
    let cpu = run_on(&Device::Cpu, &shapes, &op);
    let gpu = run_on(&gpu(), &shapes, &op);
    for (i, (a, b)) in cpu.iter().zip(&gpu).enumerate() {
        close(&format!("layer norm output/gradient {i}"), a, b, 1e-4);
    }
}

#[test]
fn bias_add_on_cuda_matches_the_cpu_op() {
    let (rows, d) = (257, 19);
    let shapes = vec![
        (values(rows * d, |i| (i * 0.37).sin()), vec![rows, d]),
        (values(d, |i| 0.5 - 0.1 * i), vec![d]),
    ];
    let op = |t: &[Tensor]| add_bias(&t[0], &t[1]).unwrap();
    let cpu = run_on(&Device::Cpu, &shapes, &op);
    let gpu = run_on(&gpu(), &shapes, &op);
    for (i, (a, b)) in cpu.iter().zip(&gpu).enumerate() {
        close(&format!("bias output/gradient {i}"), a, b, 1e-5);
    }
}

#[test]
fn adam_on_cuda_matches_the_fused_cpu_loop() {
    let train = |device: &Device| {
        let mut p = ParamSet::new(device);
        p.add("w", values(40_000, |i| (i * 0.013).sin()), &[200, 200])
            .unwrap();
        p.add("b", values(7, |i| i - 3.0), &[7]).unwrap();
        let config = AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(&p, config).unwrap();
        for step in 0..5 {
            let w = p.get("w").unwrap();
            let b = p.get("b").unwrap();
            let loss = (w
                .affine(1.0, 0.1 * step as f64)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                + b.powf(3.0).unwrap().sum_all().unwrap())
            .unwrap();
            adam.step(&p, &loss.backward().unwrap()).unwrap();
        }
        p.iter()
            .map(|(_, v)| host(v.as_tensor()))
            .collect::<Vec<_>>()
    };
    let (cpu, gpu) = (train(&Device::Cpu), train(&gpu()));
    for (a, b) in cpu.iter().zip(&gpu) {
        close("adam weights", a, b, 1e-5);
    }
}
