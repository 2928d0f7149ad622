//! Training on a CUDA device against the same training on the CPU, and
//! checkpoints crossing devices (only with the `cuda` feature, on a machine
//! with a GPU: `scripts/gpu-check.sh`).
#![cfg(feature = "cuda")]

use candle_core::Device;
#[allow(unused_imports)] // `Model`'s methods on the boxed models
use conceptlab_models::Model;
use conceptlab_models::{ConceptData, ModelConfig, ScCbgmConfig, TrainConfig, registry};
use ndarray::Array2;

fn data() -> ConceptData {
    let (n, d, k) = (600, 24, 3);
    let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 17) as f32 / 8.0 - 1.0);
    let c = Array2::from_shape_fn((n, k), |(i, j)| ((i >> j) & 1) as f32);
    ConceptData::new(x, c, Array2::ones((n, k)), k).unwrap()
}

fn weights(bytes: &[u8]) -> Vec<(String, Vec<f32>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let v = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Same seed on both devices: the same weights up to float reassociation
/// (cuBLAS and candle's CUDA reductions sum in another order than the CPU).
#[test]
fn sccbgm_trains_on_cuda_like_on_the_cpu_and_loads_on_either() {
    let gpu = Device::new_cuda(0).expect("this test needs CUDA device 0");
    let config = ModelConfig::ScCbgm(ScCbgmConfig {
        hidden_dim: 32,
        latent_dim: 8,
        n_unknown: 4,
        ..ScCbgmConfig::default()
    });
    let train = TrainConfig {
        max_epochs: 3,
        batch_size: 64,
        ..TrainConfig::default()
    };
    let data = data();
    let fit =
        |device: &Device| registry::fit(&config, &data, &train, 7, device, &mut |_| {}).unwrap();
    let (on_cpu, on_gpu) = (fit(&Device::Cpu), fit(&gpu));
    let (a, b) = (
        on_cpu.model.to_safetensors().unwrap(),
        on_gpu.model.to_safetensors().unwrap(),
    );
    for ((name, u), (_, v)) in weights(&a).iter().zip(&weights(&b)) {
        let worst = u
            .iter()
            .zip(v)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "{name}: the devices differ by {worst}");
    }
    // Weights saved from the GPU load on the CPU (and back) unchanged.
    let dims = on_gpu.model.dims();
    let back = registry::load(&config, dims, 7, &b, &Device::Cpu).unwrap();
    assert_eq!(back.to_safetensors().unwrap(), b);
    let again = registry::load(&config, dims, 7, &a, &gpu).unwrap();
    assert_eq!(again.to_safetensors().unwrap(), a);
}

/// The same seed on the same GPU gives the same bytes: candle issues every
/// kernel on one stream, where cuBLAS documents its results as bit-wise
/// reproducible (same toolkit, same architecture and SM count).
#[test]
fn a_seed_fixes_every_byte_on_the_gpu() {
    let gpu = Device::new_cuda(0).expect("this test needs CUDA device 0");
    let config = ModelConfig::ScCbgm(ScCbgmConfig {
        hidden_dim: 32,
        latent_dim: 8,
        n_unknown: 4,
        ..ScCbgmConfig::default()
    });
    let train = TrainConfig {
        max_epochs: 2,
        batch_size: 64,
        ..TrainConfig::default()
    };
    let data = data();
    let bytes = || {
        registry::fit(&config, &data, &train, 3, &gpu, &mut |_| {})
            .unwrap()
            .model
            .to_safetensors()
            .unwrap()
    };
    assert_eq!(bytes(), bytes());
}
