//! The zero-shot benchmark split: held-out (cell type,
//! concept) combinations, the cells to edit, and their exact counterfactual
//! twins.

use conceptlab_core::random;
use rand::seq::SliceRandom;

use crate::{SynthDataset, SynthError, counterfactual};

// The stream the split draws from (cells use streams 1 to 2n; this one is
// far above any data set's cells).
use conceptlab_core::random::streams::BENCHMARK_SPLIT as SPLIT_STREAM;

/// The role of a generated cell in one intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Seen in training.
    Train,
    /// A cell of the held-out type with the concept off: to be edited (turned on).
    Modify,
    /// A cell of the held-out type with the concept on: never shown, so the
    /// combination is unseen (zero-shot).
    Drop,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Modify => "modify",
            Role::Drop => "drop",
        }
    }
}

/// One held-out combination.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    pub celltype: usize,
    pub concept: usize,
    /// The role of every generated cell.
    pub roles: Vec<Role>,
    /// Cells to edit, in the order of their twins.
    pub modify: Vec<usize>,
    /// Ground truth: counts of each `modify` cell with the concept turned on
    /// (`modify.len() x n_vars`).
    pub twins: Vec<u32>,
}

/// Builds `config.benchmark.n_hold_out` held-out combinations.
///
/// A combination is eligible when its cell type has at least `min_cells`
/// cells with the concept on and `2 * min_cells` with it off; eligible
/// combinations are drawn without replacement, then half of the off cells
/// (rounded down, chosen at random) become `modify`, the others stay in
/// training, and all on cells are dropped.
pub fn benchmark_split(data: &SynthDataset) -> Result<Vec<Intervention>, SynthError> {
    let bench = &data.config.benchmark;
    let (n, c, u) = (data.n_obs(), data.n_concepts(), data.config.n_celltypes);
    let mut on = vec![0usize; u * c];
    let mut total = vec![0usize; u];
    for cell in 0..n {
        let t = data.celltype[cell] as usize;
        total[t] += 1;
        for (k, &v) in data.cell_concepts(cell).iter().enumerate() {
            on[t * c + k] += usize::from(v);
        }
    }
    let mut eligible: Vec<(usize, usize)> = (0..u)
        .flat_map(|t| (0..c).map(move |k| (t, k)))
        .filter(|&(t, k)| {
            on[t * c + k] >= bench.min_cells && total[t] - on[t * c + k] >= 2 * bench.min_cells
        })
        .collect();
    if eligible.len() < bench.n_hold_out {
        return Err(SynthError::InvalidRequest(format!(
            "only {} (cell type, concept) combinations have at least {} cells with the concept on and {} off; \
             {} were requested (generate more cells, or lower benchmark.n_hold_out / benchmark.min_cells)",
            eligible.len(),
            bench.min_cells,
            2 * bench.min_cells,
            bench.n_hold_out
        )));
    }
    let mut rng = random::stream_rng(data.seed, SPLIT_STREAM);
    eligible.shuffle(&mut rng);
    eligible.truncate(bench.n_hold_out);
    eligible
        .into_iter()
        .map(|(celltype, concept)| {
            let mut roles = vec![Role::Train; n];
            let mut off = Vec::new();
            for (cell, role) in roles.iter_mut().enumerate() {
                if data.celltype[cell] as usize == celltype {
                    if data.cell_concepts(cell)[concept] == 1 {
                        *role = Role::Drop;
                    } else {
                        off.push(cell);
                    }
                }
            }
            off.shuffle(&mut rng);
            let mut modify = off[..off.len() / 2].to_vec();
            modify.sort_unstable();
            for &cell in &modify {
                roles[cell] = Role::Modify;
            }
            let edited: Vec<u8> = modify
                .iter()
                .flat_map(|&cell| {
                    let mut v = data.cell_concepts(cell).to_vec();
                    v[concept] = 1;
                    v
                })
                .collect();
            let twins = counterfactual(data, &modify, &edited)?;
            Ok(Intervention {
                celltype,
                concept,
                roles,
                modify,
                twins,
            })
        })
        .collect()
}
