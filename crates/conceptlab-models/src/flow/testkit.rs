//! Small held-out benchmarks the flow kinds' tests share: a zero-shot
//! (cell type, concept) combination of `conceptlab-synth` with its exact
//! twins, and a soft dose-like concept with exact twins.

use conceptlab_core::random::{standard_normal, stream_rng};
use conceptlab_core::{DenseArray, Matrix, NumVec};
use conceptlab_synth::{Role, SynthConfig, benchmark_split, generate};
use ndarray::{Array2, Axis};

use crate::data::ConceptData;
use crate::model::{Annotations, EditRequest, Residual};
use crate::pipeline::{PreprocessConfig, Preprocessor};

/// Training cells, the cells to edit, their twins and the edit.
pub struct Held {
    pub train: ConceptData,
    pub source: Array2<f32>,
    pub twins: Array2<f32>,
    /// The source cells' own concepts (all observed).
    pub own: Array2<f32>,
    pub observed: Array2<f32>,
    pub values: Array2<f32>,
    pub mask: Array2<f32>,
}

impl Held {
    /// The edit as a request (annotations given, default sampling).
    pub fn request(&self) -> EditRequest<'_> {
        EditRequest {
            x: self.source.view(),
            annotations: Some(Annotations {
                values: self.own.view(),
                observed: self.observed.view(),
            }),
            values: self.values.view(),
            mask: self.mask.view(),
            residual: Residual::Keep,
            sampling: None,
        }
    }

    /// Mean squared error of predictions to the twins.
    pub fn error(&self, predicted: &Array2<f32>) -> f64 {
        mse(predicted, &self.twins)
    }

    /// The error of returning the source cells unedited.
    pub fn copy_error(&self) -> f64 {
        mse(&self.source, &self.twins)
    }
}

pub fn mse(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (a - b)
        .mapv(|v| (v as f64).powi(2))
        .mean()
        .unwrap_or(f64::NAN)
}

fn counts(values: &[u32], rows: usize, cols: usize) -> Matrix {
    let data: Vec<f32> = values.iter().map(|&c| c as f32).collect();
    Matrix::Dense(DenseArray::new(vec![rows, cols], NumVec::F32(data)).unwrap())
}

/// synthetic_1 at 1,200 cells × 60 genes (8 PCs), cell type as a one-hot
/// concept group; of the held-out combinations, the one whose concept moves
/// the cells most on average (a combination where the concept barely acts,
/// or acts only as cell-to-cell noise, cannot tell an edit from a copy).
pub fn synthetic() -> Held {
    let mut config = SynthConfig::preset("synthetic_1").unwrap();
    config.n_obs = 1200;
    config.n_vars = 60;
    let data = generate(&config, 3).unwrap();
    let ivs = benchmark_split(&data).unwrap();
    let (n, g) = (data.n_obs(), data.n_vars());
    let fit_rows: Vec<usize> = (0..n)
        .filter(|&i| ivs.iter().all(|iv| iv.roles[i] != Role::Drop))
        .collect();
    let pre_config = PreprocessConfig {
        target_sum: Some(1214.0),
        n_top_genes: None,
        n_pcs: Some(8),
        ..PreprocessConfig::default()
    };
    let (pre, features) = Preprocessor::fit(
        &counts(&data.counts, n, g),
        &pre_config,
        Some(fit_rows.as_slice()),
        3,
    )
    .unwrap();
    let (t, c) = (config.n_celltypes, data.n_concepts());
    let concepts = Array2::from_shape_fn((n, t + c), |(i, j)| {
        if j < t {
            f32::from(data.celltype[i] as usize == j)
        } else {
            f32::from(data.cell_concepts(i)[j - t])
        }
    });
    let held = ivs
        .iter()
        .map(|iv| {
            let twins = pre
                .transform(&counts(&iv.twins, iv.modify.len(), g))
                .unwrap();
            let source = features.select(Axis(0), &iv.modify);
            let shift = (&twins - &source).mean_axis(Axis(0)).unwrap();
            let shared = shift.mapv(|v| (v as f64).powi(2)).mean().unwrap();
            (iv, shared, source, twins)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    let (iv, _, source, twins) = held;
    let train_rows: Vec<usize> = (0..n).filter(|&i| iv.roles[i] == Role::Train).collect();
    let train = ConceptData::new(
        features.select(Axis(0), &train_rows),
        concepts.select(Axis(0), &train_rows),
        Array2::ones((train_rows.len(), t + c)),
        t + c,
    )
    .unwrap()
    .with_groups(
        std::iter::once(0..t)
            .chain((t..t + c).map(|j| j..j + 1))
            .collect(),
    )
    .unwrap();
    let own = concepts.select(Axis(0), &iv.modify);
    let target = t + iv.concept;
    let mut values = own.clone();
    let mut mask = Array2::zeros(own.dim());
    values.column_mut(target).fill(1.0);
    mask.column_mut(target).fill(1.0);
    Held {
        train,
        observed: Array2::ones(own.dim()),
        source,
        twins,
        own,
        values,
        mask,
    }
}

/// 480 cells × 6 features: two cell types (one hard concept) and a soft
/// dose in {0, .25, .5, .75, 1} moving each feature by a type-specific
/// amount, plus fixed per-cell noise. Type-1 cells at dose 1 are held out;
/// type-1 cells at dose 0 are edited to dose 1, their twins the same cells
/// (same noise) at dose 1.
pub fn dose() -> Held {
    let (n, g) = (480usize, 6usize);
    let mut rng = stream_rng(11, 0);
    let base: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..g).map(|_| 2.0 * standard_normal(&mut rng)).collect())
        .collect();
    let effect: Vec<Vec<f64>> = (0..2)
        .map(|k| {
            (0..g)
                .map(|j| (1.5 + 0.5 * k as f64) * if j % 2 == 0 { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    let cell = |ty: usize, dose: f64, noise: &[f64]| -> Vec<f32> {
        (0..g)
            .map(|j| (base[ty][j] + dose * effect[ty][j] + 0.1 * noise[j]) as f32)
            .collect()
    };
    let mut rows = Vec::new();
    let mut twins = Vec::new();
    let (mut train_x, mut train_c) = (Vec::new(), Vec::new());
    let (mut source, mut own) = (Vec::new(), Vec::new());
    for i in 0..n {
        let ty = i % 2;
        let dose = ((i / 2) % 5) as f64 / 4.0;
        let noise: Vec<f64> = (0..g).map(|_| standard_normal(&mut rng)).collect();
        let x = cell(ty, dose, &noise);
        if ty == 1 && dose == 1.0 {
            continue;
        }
        if ty == 1 && dose == 0.0 && i % 4 == 1 {
            source.extend(x);
            twins.extend(cell(ty, 1.0, &noise));
            own.extend([1.0, 0.0]);
            rows.push(i);
            continue;
        }
        train_x.extend(x);
        train_c.extend([ty as f32, dose as f32]);
    }
    let m = train_c.len() / 2;
    let train = ConceptData::new(
        Array2::from_shape_vec((m, g), train_x).unwrap(),
        Array2::from_shape_vec((m, 2), train_c).unwrap(),
        Array2::ones((m, 2)),
        1,
    )
    .unwrap();
    let k = rows.len();
    let own = Array2::from_shape_vec((k, 2), own).unwrap();
    let mut values = own.clone();
    values.column_mut(1).fill(1.0);
    let mut mask = Array2::zeros((k, 2));
    mask.column_mut(1).fill(1.0);
    Held {
        train,
        source: Array2::from_shape_vec((k, g), source).unwrap(),
        twins: Array2::from_shape_vec((k, g), twins).unwrap(),
        observed: Array2::ones((k, 2)),
        own,
        values,
        mask,
    }
}
