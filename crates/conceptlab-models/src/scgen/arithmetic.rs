//! scGen's latent arithmetic: the shift δ between two training populations.
//!
//! For an edit that sets the concept columns `E` from the cell's current
//! values `s` to `t`, the "control" population is the training cells whose
//! annotations on `E` equal `s`, the "stimulated" one those equal to `t`
//! (scGen's conditions are categories, so values must match exactly; a soft
//! column matches only cells with the same value). As scGen balances by cell
//! type, each population is balanced across the strata of the *other* hard
//! concept columns (their pattern, a missing annotation its own value):
//! every stratum is resampled with replacement up to the largest stratum's
//! size; then both are subsampled without replacement to the smaller
//! population's size, and δ = mean μ(stimulated) − mean μ(control).
//!
//! The resampling of a population pair draws from its own generator, keyed
//! by the model's seed and the pair itself, so a cell's edit does not depend
//! on which other cells are edited with it.

use conceptlab_core::random::{Rng, stream_rng, streams};
use ndarray::{Array1, Array2, ArrayView1};
use rand::Rng as _;
use rand::seq::SliceRandom;

use crate::ModelError;

/// Two annotations are the same condition when they differ by at most this
/// (hard values are exactly 0 or 1; soft ones are compared as stored).
const SAME_VALUE: f32 = 1e-6;

/// The training cells' latent means and annotations: all δ needs.
#[derive(Debug, Clone)]
pub(crate) struct Populations {
    /// μ of every training cell (cells × latent).
    pub latents: Array2<f32>,
    /// Their concept annotations and observed mask (cells × concepts).
    pub values: Array2<f32>,
    pub observed: Array2<f32>,
    pub n_hard: usize,
}

/// What one edit asks for: which columns go from which values to which.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub columns: Vec<usize>,
    pub source: Vec<f32>,
    pub target: Vec<f32>,
}

impl Condition {
    /// A stable key naming the pair (it seeds the pair's resampling).
    pub fn key(&self) -> String {
        let join = |v: &[f32]| {
            v.iter()
                .map(|x| format!("{:08x}", x.to_bits()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let cols: Vec<String> = self.columns.iter().map(usize::to_string).collect();
        format!(
            "{}|{}|{}",
            cols.join(","),
            join(&self.source),
            join(&self.target)
        )
    }

    fn describe(values: &[f32], columns: &[usize]) -> String {
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| format!("column {c} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// FNV-1a: a fixed, platform-independent hash of the pair's key.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Populations {
    /// Training cells whose observed annotations on `columns` equal `values`.
    fn members(&self, columns: &[usize], values: &[f32]) -> Vec<usize> {
        (0..self.values.nrows())
            .filter(|&r| {
                columns.iter().zip(values).all(|(&j, &v)| {
                    self.observed[[r, j]] > 0.0 && (self.values[[r, j]] - v).abs() <= SAME_VALUE
                })
            })
            .collect()
    }

    /// The stratum key of training cell `r`: its pattern on the hard columns
    /// not in `columns`.
    fn stratum(&self, r: usize, columns: &[usize]) -> Vec<u8> {
        (0..self.n_hard)
            .filter(|j| !columns.contains(j))
            .map(|j| {
                if self.observed[[r, j]] == 0.0 {
                    b'?'
                } else if self.values[[r, j]] > 0.5 {
                    b'1'
                } else {
                    b'0'
                }
            })
            .collect()
    }

    /// scGen's `_balancer`: every stratum resampled with replacement up to
    /// the largest one's size (strata in key order).
    fn balance(&self, members: &[usize], columns: &[usize], rng: &mut Rng) -> Vec<usize> {
        let mut strata: std::collections::BTreeMap<Vec<u8>, Vec<usize>> = Default::default();
        for &r in members {
            strata.entry(self.stratum(r, columns)).or_default().push(r);
        }
        let largest = strata.values().map(Vec::len).max().unwrap_or(0);
        let mut out = Vec::with_capacity(largest * strata.len());
        for cells in strata.values() {
            out.extend((0..largest).map(|_| cells[rng.random_range(0..cells.len())]));
        }
        out
    }

    fn mean_latent(&self, rows: &[usize]) -> Array1<f64> {
        let mut sum = Array1::<f64>::zeros(self.latents.ncols());
        for &r in rows {
            sum.zip_mut_with(&self.latents.row(r), |s, &v| *s += v as f64);
        }
        sum / rows.len().max(1) as f64
    }

    /// δ for one condition, drawing the resampling from `seed`'s stream
    /// keyed by the condition.
    pub fn delta(&self, condition: &Condition, seed: u64) -> Result<Array1<f32>, ModelError> {
        let cols = &condition.columns;
        let control = self.members(cols, &condition.source);
        let stimulated = self.members(cols, &condition.target);
        for (what, cells, values) in [
            ("current", &control, &condition.source),
            ("target", &stimulated, &condition.target),
        ] {
            if cells.is_empty() {
                return Err(ModelError::Input(format!(
                    "scgen: no training cell has the {what} values ({}); its latent shift \
                     needs a training population with them",
                    Condition::describe(values, cols)
                )));
            }
        }
        let mut rng = stream_rng(seed ^ fnv1a(&condition.key()), streams::SCGEN_BALANCE);
        let mut control = self.balance(&control, cols, &mut rng);
        let mut stimulated = self.balance(&stimulated, cols, &mut rng);
        let equal = control.len().min(stimulated.len());
        for population in [&mut control, &mut stimulated] {
            population.shuffle(&mut rng);
            population.truncate(equal);
        }
        let delta = self.mean_latent(&stimulated) - self.mean_latent(&control);
        Ok(delta.mapv(|v| v as f32))
    }

    /// The condition of cell `i`: the columns its mask sets, its current
    /// values there (from `annotations`) and the targets. `None` when the
    /// edit sets nothing or sets every column to its current value.
    pub fn condition(
        i: usize,
        mask: ArrayView1<f32>,
        targets: ArrayView1<f32>,
        current: Option<(ArrayView1<f32>, ArrayView1<f32>)>,
    ) -> Result<Option<Condition>, ModelError> {
        let columns: Vec<usize> = (0..mask.len()).filter(|&j| mask[j] != 0.0).collect();
        if columns.is_empty() {
            return Ok(None);
        }
        let Some((values, observed)) = current else {
            return Err(ModelError::Input(
                "scgen edits need the cells' current concept annotations \
                 (scGen's shift is from their population to the target's)"
                    .into(),
            ));
        };
        let mut source = Vec::with_capacity(columns.len());
        for &j in &columns {
            if observed[j] == 0.0 {
                return Err(ModelError::Input(format!(
                    "scgen: cell {i} has no annotation for concept column {j}, which the edit \
                     sets; scGen needs each edited concept's current value"
                )));
            }
            source.push(values[j]);
        }
        let target: Vec<f32> = columns.iter().map(|&j| targets[j]).collect();
        if source
            .iter()
            .zip(&target)
            .all(|(s, t)| (s - t).abs() <= SAME_VALUE)
        {
            return Ok(None);
        }
        Ok(Some(Condition {
            columns,
            source,
            target,
        }))
    }

    /// Checks the shapes of stored populations against the model.
    pub fn check(&self, latent_dim: usize, n_concepts: usize) -> Result<(), ModelError> {
        let n = self.latents.nrows();
        if self.latents.ncols() != latent_dim
            || self.values.dim() != (n, n_concepts)
            || self.observed.dim() != (n, n_concepts)
        {
            return Err(ModelError::Input(format!(
                "scgen training populations: latents {:?}, annotations {:?}, mask {:?} do not \
                 fit {latent_dim} latent dimensions and {n_concepts} concepts",
                self.latents.dim(),
                self.values.dim(),
                self.observed.dim()
            )));
        }
        for (what, a) in [
            ("latents", &self.latents),
            ("annotations", &self.values),
            ("mask", &self.observed),
        ] {
            if let Some((i, j)) = crate::first_non_finite(a.view()) {
                return Err(ModelError::Input(format!(
                    "scgen training {what} are not finite at ({i}, {j})"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Ten cells: column 0 is the edited binary concept, column 1 a hard
    /// "cell type" (the stratum), latent 1-D. Control (concept off): three
    /// type-0 cells near 0 and one type-1 cell at 10; stimulated: six type-0
    /// cells at 1.0..1.5.
    fn populations() -> Populations {
        let mut latents = vec![0.0, 0.1, 0.2, 10.0];
        let mut values = vec![[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]];
        for k in 0..6 {
            latents.push(1.0 + 0.1 * k as f32);
            values.push([1.0, 0.0]);
        }
        let values: Vec<f32> = values.into_iter().flatten().collect();
        Populations {
            latents: Array2::from_shape_vec((10, 1), latents).unwrap(),
            values: Array2::from_shape_vec((10, 2), values).unwrap(),
            observed: Array2::ones((10, 2)),
            n_hard: 2,
        }
    }

    fn on() -> Condition {
        Condition {
            columns: vec![0],
            source: vec![0.0],
            target: vec![1.0],
        }
    }

    #[test]
    fn control_is_balanced_across_strata_of_the_other_columns() {
        let p = populations();
        // Balanced, both types weigh equally in the control (3 draws each,
        // all kept: 6 = the stimulated size): its mean is in [5.0, 5.1], so
        // δ is in [-4.1, -3.5]; the plain difference of means is -1.325.
        for seed in 0..5 {
            let d = p.delta(&on(), seed).unwrap()[0];
            assert!((-4.11..-3.49).contains(&d), "seed {seed}: δ = {d}");
        }
        // The same seed gives the same bits; the draw depends on the seed.
        assert_eq!(p.delta(&on(), 3).unwrap(), p.delta(&on(), 3).unwrap());
    }

    #[test]
    fn unmatched_or_unannotated_sources_are_refused() {
        let p = populations();
        let absent = Condition {
            columns: vec![1],
            source: vec![0.5],
            target: vec![1.0],
        };
        let err = p.delta(&absent, 0).unwrap_err().to_string();
        assert!(
            err.contains("no training cell") && err.contains("0.5"),
            "{err}"
        );
        let mask = array![1.0f32, 0.0];
        let targets = array![1.0f32, 0.0];
        let values = array![0.0f32, 0.0];
        let unobserved = array![0.0f32, 1.0];
        let err = Populations::condition(4, mask.view(), targets.view(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("annotations"), "{err}");
        let err = Populations::condition(
            4,
            mask.view(),
            targets.view(),
            Some((values.view(), unobserved.view())),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cell 4") && err.contains("column 0"), "{err}");
        // Setting a concept to its current value asks for nothing.
        let same = Populations::condition(
            0,
            mask.view(),
            values.view(),
            Some((values.view(), Array1::ones(2).view())),
        )
        .unwrap();
        assert!(same.is_none());
    }
}
