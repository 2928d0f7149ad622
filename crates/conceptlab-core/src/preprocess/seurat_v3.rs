//! scanpy's `highly_variable_genes(flavor="seurat_v3")` for one batch.
//!
//! Per gene: mean `μ` and unbiased variance of the counts; a loess fit
//! (span 0.3, degree 2, scikit-misc's interpolated surface) of `log10 var`
//! on `log10 μ` over the genes with non-zero variance gives the expected
//! standard deviation `σ̂ = sqrt(10^fit)` (1 for constant genes); counts are
//! clipped at `μ + σ̂·√n` and the normalised variance is
//! `(n μ² + Σ c² − 2 μ Σ c) / ((n − 1) σ̂²)` over the clipped counts `c`.
//! The `n_top` genes with the largest normalised variance are selected.

use super::dense::ExprMatrix;
use super::hvg::{HvgFlavor, HvgResult, mean_var};
use super::loess::{LoessSurface, loess_fit};
use super::{Result, invalid};

/// scanpy's default `span` for `seurat_v3`.
const SPAN: f64 = 0.3;

pub(super) fn seurat_v3(x: ExprMatrix<'_>, n_top: usize) -> Result<HvgResult> {
    let (cells, genes) = x.shape();
    let (means, vars) = mean_var(x, |v| v, |v| v)?;
    let varying: Vec<usize> = (0..genes).filter(|&g| vars[g] > 0.0).collect();
    let lx: Vec<f64> = varying.iter().map(|&g| means[g].log10()).collect();
    let ly: Vec<f64> = varying.iter().map(|&g| vars[g].log10()).collect();
    let fitted = loess_fit(&lx, &ly, SPAN, 2, LoessSurface::Interpolate).map_err(|e| {
        invalid(
            "highly_variable_genes (seurat_v3)",
            format!(
                "the loess fit over the {} genes with non-zero variance failed: {e}",
                varying.len()
            ),
        )
    })?;
    let mut expected = vec![0.0f64; genes];
    for (&g, &f) in varying.iter().zip(&fitted) {
        expected[g] = f;
    }
    let reg_std: Vec<f64> = expected.iter().map(|e| 10f64.powf(*e).sqrt()).collect();
    let n = cells as f64;
    let clip: Vec<f64> = reg_std
        .iter()
        .zip(&means)
        .map(|(s, m)| s * n.sqrt() + m)
        .collect();
    let mut sum = vec![0.0f64; genes];
    let mut sum_sq = vec![0.0f64; genes];
    x.for_each(|g, v| {
        let c = v.min(clip[g]);
        sum[g] += c;
        sum_sq[g] += c * c;
    })?;
    let normalized: Vec<f64> = (0..genes)
        .map(|g| {
            let m = means[g];
            (1.0 / ((n - 1.0) * reg_std[g] * reg_std[g]))
                * (n * m * m + sum_sq[g] - 2.0 * sum[g] * m)
        })
        .collect();
    // Rank by normalised variance, largest first; NaN last; equal scores in
    // gene order (numpy's unstable argsort leaves their order unspecified).
    let mut order: Vec<usize> = (0..genes).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (normalized[a], normalized[b]);
        match (sa.is_nan(), sb.is_nan()) {
            (false, false) => sb.total_cmp(&sa),
            (na, nb) => na.cmp(&nb),
        }
        .then(a.cmp(&b))
    });
    let mut selected: Vec<usize> = order.into_iter().take(n_top.min(genes)).collect();
    selected.sort_unstable();
    Ok(HvgResult {
        flavor: HvgFlavor::SeuratV3,
        selected,
        means,
        dispersions: vars,
        normalized,
    })
}
