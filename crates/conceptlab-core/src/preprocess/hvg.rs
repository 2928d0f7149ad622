//! Highly-variable genes, scanpy's `highly_variable_genes` for one batch:
//! flavour `seurat` on log-normalised data and
//! `seurat_v3` on raw counts (see [`super::seurat_v3`]).

use serde::{Deserialize, Serialize};

use super::dense::ExprMatrix;
use super::{Result, invalid, seurat_v3};

/// Which of scanpy's definitions of "highly variable".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HvgFlavor {
    /// Dispersion of `expm1(x)` normalised within 20 mean bins; input is
    /// log1p-normalised data. Ties at the cut-off keep every tied gene.
    Seurat,
    /// Variance of counts standardised by a loess fit of log variance on log
    /// mean (span 0.3, degree 2), values clipped at `mean + sd·√n`; input is
    /// raw counts. Exactly `n_top` genes.
    SeuratV3,
}

/// Per-gene statistics and the selection, every vector in gene order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HvgResult {
    pub flavor: HvgFlavor,
    /// Indices of the selected genes, ascending (the original gene order).
    pub selected: Vec<usize>,
    /// `seurat`: `ln(1 + mean(expm1(x)))` (scanpy's `means`);
    /// `seurat_v3`: mean count.
    pub means: Vec<f64>,
    /// `seurat`: log dispersion `ln(var/mean)` of `expm1(x)` (NaN where the
    /// variance is 0); `seurat_v3`: the unbiased count variance (scanpy's
    /// `variances`).
    pub dispersions: Vec<f64>,
    /// The score genes are ranked by: `seurat`: `dispersions_norm` (NaN for
    /// genes without a defined dispersion); `seurat_v3`: `variances_norm`.
    pub normalized: Vec<f64>,
}

impl HvgResult {
    /// A boolean mask over genes (scanpy's `var["highly_variable"]`).
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.means.len()];
        for &g in &self.selected {
            mask[g] = true;
        }
        mask
    }
}

/// Number of mean bins of the `seurat` flavour (scanpy's `n_bins`).
const N_BINS: usize = 20;

/// Selects the `n_top` most variable genes of `x` (cells × genes; a dense
/// `f32` array or any [`Matrix`](crate::Matrix), sparse ones are read
/// without densifying). `n_top` larger than the number of genes selects all.
pub fn highly_variable_genes<'a>(
    x: impl Into<ExprMatrix<'a>>,
    flavor: HvgFlavor,
    n_top: usize,
) -> Result<HvgResult> {
    let x = x.into();
    let (cells, genes) = x.shape();
    if cells < 2 || genes == 0 {
        return Err(invalid(
            "highly_variable_genes",
            format!("needs at least 2 cells and 1 gene, got {cells} x {genes}"),
        ));
    }
    if n_top == 0 {
        return Err(invalid("highly_variable_genes", "n_top must be at least 1"));
    }
    x.check_finite("highly_variable_genes input")?;
    match flavor {
        HvgFlavor::Seurat => seurat(x, n_top),
        HvgFlavor::SeuratV3 => seurat_v3::seurat_v3(x, n_top),
    }
}

/// Per-gene mean and unbiased variance of `f(x)` as scanpy's dense
/// `_get_mean_var` computes them: `(E[y²] − E[y]²)·n/(n−1)`, sums in f64 and,
/// for float32 input, `y` and `y²` rounded to float32 as numpy does.
pub(super) fn mean_var(
    x: ExprMatrix<'_>,
    f32_map: impl Fn(f32) -> f32,
    f64_map: impl Fn(f64) -> f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (cells, genes) = x.shape();
    let mut s1 = vec![0.0f64; genes];
    let mut s2 = vec![0.0f64; genes];
    if x.is_f32() {
        x.for_each(|g, v| {
            let y = f32_map(v as f32);
            s1[g] += f64::from(y);
            s2[g] += f64::from(y * y);
        })?;
    } else {
        x.for_each(|g, v| {
            let y = f64_map(v);
            s1[g] += y;
            s2[g] += y * y;
        })?;
    }
    let n = cells as f64;
    let means: Vec<f64> = s1.iter().map(|s| s / n).collect();
    let vars = s2
        .iter()
        .zip(&means)
        .map(|(s, m)| (s / n - m * m) * (n / (n - 1.0)))
        .collect();
    Ok((means, vars))
}

fn seurat(x: ExprMatrix<'_>, n_top: usize) -> Result<HvgResult> {
    let (mut means, vars) = mean_var(x, f32::exp_m1, f64::exp_m1)?;
    let mut dispersions = Vec::with_capacity(means.len());
    for (m, v) in means.iter_mut().zip(&vars) {
        if *m == 0.0 {
            *m = 1e-12;
        }
        let d = v / *m;
        dispersions.push(if d == 0.0 { f64::NAN } else { d.ln() });
        *m = m.ln_1p();
    }
    let bins = pandas_cut(&means, N_BINS);
    let normalized = normalize_in_bins(&dispersions, &bins, N_BINS);
    let selected = top_with_ties(&normalized, n_top)?;
    Ok(HvgResult {
        flavor: HvgFlavor::Seurat,
        selected,
        means,
        dispersions,
        normalized,
    })
}

/// Bin index of each value under `pandas.cut(values, bins)`: equal-width
/// right-closed intervals over `[min, max]`, edges from `numpy.linspace`, the
/// lowest edge lowered by 0.1 % of the range so the minimum falls in bin 0
/// (a zero range widens both ends by 0.1 % of the value, or by 0.001).
fn pandas_cut(values: &[f64], n_bins: usize) -> Vec<usize> {
    let mut mn = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut mx = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let same = mn == mx;
    if same {
        mn -= if mn != 0.0 { 0.001 * mn.abs() } else { 0.001 };
        mx += if mx != 0.0 { 0.001 * mx.abs() } else { 0.001 };
    }
    let step = (mx - mn) / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|i| i as f64 * step + mn).collect();
    edges[n_bins] = mx;
    if !same {
        edges[0] -= (mx - mn) * 0.001;
    }
    values
        .iter()
        .map(|&v| {
            // searchsorted(side="left") counts the edges strictly below v.
            let below = edges.partition_point(|&e| e < v);
            below.clamp(1, n_bins) - 1
        })
        .collect()
}

/// `(d − mean_bin) / sd_bin` with pandas' NaN-skipping group mean
/// (compensated sum) and sample standard deviation (Welford); a bin whose
/// deviation is undefined (one defined dispersion) uses `mean` as the
/// deviation and 0 as the mean, as scanpy does, so its gene scores 1.
fn normalize_in_bins(dispersions: &[f64], bins: &[usize], n_bins: usize) -> Vec<f64> {
    let mut avg = vec![f64::NAN; n_bins];
    let mut dev = vec![f64::NAN; n_bins];
    for b in 0..n_bins {
        let members: Vec<f64> = dispersions
            .iter()
            .zip(bins)
            .filter(|&(d, &bin)| bin == b && !d.is_nan())
            .map(|(&d, _)| d)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for &d in &members {
            let y = d - comp;
            let t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
        avg[b] = sum / members.len() as f64;
        if members.len() > 1 {
            let (mut mean, mut ssq) = (0.0f64, 0.0f64);
            for (i, &d) in members.iter().enumerate() {
                let old = mean;
                mean += (d - old) / (i + 1) as f64;
                ssq += (d - mean) * (d - old);
            }
            dev[b] = (ssq / (members.len() - 1) as f64).sqrt();
        }
    }
    for b in 0..n_bins {
        if dev[b].is_nan() {
            dev[b] = avg[b];
            avg[b] = 0.0;
        }
    }
    dispersions
        .iter()
        .zip(bins)
        .map(|(&d, &b)| (d - avg[b]) / dev[b])
        .collect()
}

/// Genes whose score is at least the `n_top`-th highest defined score (all
/// genes tied with it included); NaN scores are never selected.
fn top_with_ties(scores: &[f64], n_top: usize) -> Result<Vec<usize>> {
    let mut defined: Vec<f64> = scores.iter().copied().filter(|s| !s.is_nan()).collect();
    if defined.is_empty() {
        return Err(invalid(
            "highly_variable_genes",
            "no gene has a defined normalised dispersion (every gene is constant)",
        ));
    }
    defined.sort_by(|a, b| b.total_cmp(a));
    let cutoff = defined[n_top.min(defined.len()) - 1];
    Ok((0..scores.len()).filter(|&g| scores[g] >= cutoff).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pandas_cut_edges() {
        // Minimum in the first bin, maximum in the last, a value exactly on
        // an inner edge in the bin below it (right-closed).
        let v = [0.0, 1.0, 0.5, 0.05];
        assert_eq!(pandas_cut(&v, 20), vec![0, 19, 9, 0]);
        // A constant input falls into one middle bin.
        let c = pandas_cut(&[2.0, 2.0], 20);
        assert_eq!(c[0], c[1]);
    }

    #[test]
    fn singleton_bin_scores_one() {
        let z = normalize_in_bins(&[0.7, 1.0, 2.0, f64::NAN], &[0, 1, 1, 1], 2);
        assert_eq!(z[0], 1.0);
        assert!(z[3].is_nan());
        assert!((z[1] + z[2]).abs() < 1e-12);
    }

    #[test]
    fn ties_at_cutoff_are_kept() {
        let s = [1.0, 3.0, 2.0, 2.0, f64::NAN];
        assert_eq!(top_with_ties(&s, 2).unwrap(), vec![1, 2, 3]);
        assert_eq!(top_with_ties(&s, 10).unwrap(), vec![0, 1, 2, 3]);
    }
}
