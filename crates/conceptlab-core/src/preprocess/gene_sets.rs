//! Gene-set (pathway-activity) scores per cell: the reference's dispersion
//! score (`annotate_set_concepts`, spec §2.7) and scanpy's `score_genes`.
//!
//! Both work on any [`Matrix`] (dense, CSR or CSC, any element type) without
//! densifying it whole: only the columns of genes that some set or control
//! set uses are copied, as `f64`.

use indexmap::{IndexMap, IndexSet};
use ndarray::{Array2, ArrayView2, s};
use rand::Rng as _;

use super::{Result, check_finite, invalid, to_csr_f32};
use crate::random::stream_rng;
use crate::{Matrix, SparseFormat};

/// Named gene sets in file order, each gene once (in order of first
/// appearance). What `conceptlab-io` reads GMT, Reactome and GO files into.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneSets {
    sets: IndexMap<String, IndexSet<String>>,
}

impl GeneSets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `gene` to set `name` (creating the set at the end); a gene
    /// already in the set is ignored. Returns whether the set is new.
    pub fn add(&mut self, name: &str, gene: &str) -> bool {
        let new = !self.sets.contains_key(name);
        self.sets
            .entry(name.to_owned())
            .or_default()
            .insert(gene.to_owned());
        new
    }

    /// Creates an empty set `name` if there is none; `false` if it existed.
    pub fn create(&mut self, name: &str) -> bool {
        if self.sets.contains_key(name) {
            return false;
        }
        self.sets.insert(name.to_owned(), IndexSet::new());
        true
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The genes of set `name`, in order.
    pub fn get(&self, name: &str) -> Option<impl Iterator<Item = &str>> {
        self.sets.get(name).map(|g| g.iter().map(String::as_str))
    }

    /// `(name, genes)` in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.sets
            .iter()
            .map(|(n, g)| (n.as_str(), g.iter().map(String::as_str).collect()))
    }
}

/// How a set's score is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetScore {
    /// The reference's `annotate_set_concepts`: the mean squared deviation
    /// of the set's genes from the cell's mean, in units of the cell's
    /// variance; with `unit_interval`, `1 − exp(−temp · C)`.
    Reference { unit_interval: bool, temp: f64 },
    /// scanpy's `sc.tl.score_genes` (ctrl_as_ref=True, gene pool = all
    /// genes): the set's mean minus the mean of control genes drawn from the
    /// same expression bins. Controls are drawn from `seed` (stream = set
    /// index), not numpy's generator: where a bin has more than `ctrl_size`
    /// genes the draw differs from scanpy's; where every bin has at most
    /// `ctrl_size` genes the control set, and so the score, is scanpy's.
    Scanpy {
        ctrl_size: usize,
        n_bins: usize,
        seed: u64,
    },
}

impl SetScore {
    /// scanpy's defaults (ctrl_size 50, 25 bins).
    pub fn scanpy(seed: u64) -> Self {
        SetScore::Scanpy {
            ctrl_size: 50,
            n_bins: 25,
            seed,
        }
    }
}

/// A set that was not scored.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedSet {
    pub name: String,
    /// Genes in the set.
    pub size: usize,
    /// Of which found in the data.
    pub shared: usize,
}

/// Scores of the sets that had at least `min_genes` genes in the data.
#[derive(Debug, Clone, PartialEq)]
pub struct SetScores {
    /// Scored sets, in file order.
    pub names: Vec<String>,
    /// Genes of each scored set found in the data.
    pub shared: Vec<usize>,
    /// cells × scored sets.
    pub scores: Array2<f64>,
    pub skipped: Vec<SkippedSet>,
}

/// Scores every set of `sets` on `x` (cells × genes), matching set genes
/// against `gene_ids` (one identifier per column of `x`: var_names or a var
/// column; where an identifier occurs twice, its first column is used).
/// Sets with fewer than `min_genes` genes in the data are skipped.
///
/// For [`SetScore::Reference`], the cell mean and (population) variance are
/// taken over the genes in the data that belong to any set of the file,
/// skipped sets included: the reference builds one gene × pathway matrix of
/// the whole file and restricts it to the shared genes, so a set's score
/// depends on the other sets of its file. A cell whose values are constant
/// over those genes scores 0 (the reference divides 0 by 0: NaN, which
/// cannot be a concept value).
///
/// Non-finite values in `x` are refused (scanpy's nan-means would skip
/// them; a concept must not silently rest on fewer genes in some cells).
pub fn score_gene_sets(
    x: &Matrix,
    gene_ids: &[String],
    sets: &GeneSets,
    min_genes: usize,
    method: SetScore,
) -> Result<SetScores> {
    let (n_cells, n_genes) = shape(x)?;
    if gene_ids.len() != n_genes {
        return Err(invalid(
            "gene identifiers",
            format!("{} for a matrix of {n_genes} genes", gene_ids.len()),
        ));
    }
    check_finite(x, "expression matrix")?;
    let mut column: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(n_genes);
    for (j, id) in gene_ids.iter().enumerate() {
        column.entry(id.as_str()).or_insert(j);
    }
    // Ensembl ids match across releases: `ENSG00000141510.17` is
    // `ENSG00000141510` (exact ids win where both exist).
    for (j, id) in gene_ids.iter().enumerate() {
        column.entry(unversioned(id)).or_insert(j);
    }
    // Columns of each set's genes in the data, in set order.
    let members: Vec<(&str, usize, Vec<usize>)> = sets
        .iter()
        .map(|(name, genes)| {
            let cols = genes
                .iter()
                .filter_map(|g| {
                    column
                        .get(g)
                        .or_else(|| column.get(unversioned(g)))
                        .copied()
                })
                .collect();
            (name, genes.len(), cols)
        })
        .collect();
    let mut names = Vec::new();
    let mut shared = Vec::new();
    let mut skipped = Vec::new();
    // (index of the set in the file, its columns)
    let mut kept: Vec<(usize, &Vec<usize>)> = Vec::new();
    for (index, (name, size, cols)) in members.iter().enumerate() {
        if cols.len() < min_genes.max(1) {
            skipped.push(SkippedSet {
                name: (*name).to_owned(),
                size: *size,
                shared: cols.len(),
            });
        } else {
            names.push((*name).to_owned());
            shared.push(cols.len());
            kept.push((index, cols));
        }
    }
    let mut scores = Array2::<f64>::zeros((n_cells, kept.len()));
    match method {
        SetScore::Reference {
            unit_interval,
            temp,
        } => {
            if !temp.is_finite() || temp <= 0.0 {
                return Err(invalid("temperature", format!("{temp} is not > 0")));
            }
            let mut universe: Vec<usize> = members
                .iter()
                .flat_map(|(_, _, c)| c.iter().copied())
                .collect();
            universe.sort_unstable();
            universe.dedup();
            for_row_blocks(x, &universe, |start, values, position| {
                for (i, row) in values.outer_iter().enumerate() {
                    let n = start + i;
                    let k = row.len() as f64;
                    let mu = row.sum() / k;
                    let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / k;
                    for (p, (_, cols)) in kept.iter().enumerate() {
                        let c = if var > 0.0 {
                            let ss: f64 = cols
                                .iter()
                                .map(|&j| {
                                    let d = row[position[j]] - mu;
                                    d * d
                                })
                                .sum();
                            ss / (cols.len() as f64 * var)
                        } else {
                            0.0
                        };
                        scores[(n, p)] = if unit_interval {
                            1.0 - (-temp * c).exp()
                        } else {
                            c
                        };
                    }
                }
            })?;
        }
        SetScore::Scanpy {
            ctrl_size,
            n_bins,
            seed,
        } => {
            if n_bins < 2 {
                return Err(invalid("n_bins", format!("{n_bins} is not at least 2")));
            }
            let cuts = expression_cuts(x, n_bins)?;
            // Each bin's genes in column order, built once (not per set).
            let mut bins: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
            for (g, &c) in cuts.iter().enumerate() {
                bins.entry(c).or_default().push(g);
            }
            let mut controls = Vec::with_capacity(kept.len());
            for (index, cols) in &kept {
                // One stream per set (its place in the file), so that a set's
                // controls do not depend on which other sets were scored.
                controls.push(control_genes(
                    cols,
                    &cuts,
                    &bins,
                    ctrl_size,
                    seed,
                    *index as u64,
                ));
            }
            let mut used: Vec<usize> = kept
                .iter()
                .flat_map(|(_, c)| c.iter().copied())
                .chain(controls.iter().flatten().copied())
                .collect();
            used.sort_unstable();
            used.dedup();
            for (p, ctrl) in controls.iter().enumerate() {
                if ctrl.is_empty() {
                    // scanpy raises "No control genes found in any cut."
                    return Err(invalid(
                        format!("gene set `{}`", names[p]),
                        "no control genes in its expression bins (every gene of its bins is in the set)",
                    ));
                }
            }
            for_row_blocks(x, &used, |start, values, position| {
                for (i, row) in values.outer_iter().enumerate() {
                    let mean = |c: &[usize]| {
                        c.iter().map(|&j| row[position[j]]).sum::<f64>() / c.len() as f64
                    };
                    for (p, ((_, cols), ctrl)) in kept.iter().zip(&controls).enumerate() {
                        scores[(start + i, p)] = mean(cols) - mean(ctrl);
                    }
                }
            })?;
        }
    }
    Ok(SetScores {
        names,
        shared,
        scores,
        skipped,
    })
}

/// An Ensembl id without its version suffix (`ENSMUSG00000000001.3` →
/// `ENSMUSG00000000001`);
/// any other name as it is.
fn unversioned(id: &str) -> &str {
    match id.rsplit_once('.') {
        Some((stem, version))
            if stem.starts_with("ENS")
                && !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            stem
        }
        _ => id,
    }
}

fn shape(x: &Matrix) -> Result<(usize, usize)> {
    match x {
        Matrix::Dense(d) => match d.shape.as_slice() {
            [r, c] => Ok((*r, *c)),
            other => Err(invalid(
                "expression matrix",
                format!("expected 2 dimensions, found shape {other:?}"),
            )),
        },
        Matrix::Sparse(s) => Ok(s.shape),
    }
}

/// Rows per block of [`for_row_blocks`]: a block of a few thousand genes
/// stays within tens of megabytes whatever the number of cells.
const ROW_BLOCK: usize = 1024;

/// Calls `f(first_row, block, position)` for consecutive blocks of rows of
/// the columns `cols` (sorted, distinct) of `x`, as dense `f64` (only those
/// columns, so a set file's genes never densify the whole matrix);
/// `position[j]` is column `j`'s place in the block (`usize::MAX` outside
/// `cols`). CSC input is converted to CSR (`f32` values) first.
fn for_row_blocks(
    x: &Matrix,
    cols: &[usize],
    mut f: impl FnMut(usize, ArrayView2<f64>, &[usize]),
) -> Result<()> {
    let (rows, n_genes) = shape(x)?;
    let mut position = vec![usize::MAX; n_genes];
    for (k, &j) in cols.iter().enumerate() {
        position[j] = k;
    }
    let converted;
    let x = match x {
        Matrix::Sparse(s) if s.format == SparseFormat::Csc => {
            converted = Matrix::Sparse(to_csr_f32(s)?);
            &converted
        }
        other => other,
    };
    let mut block = Array2::<f64>::zeros((ROW_BLOCK.min(rows), cols.len()));
    for start in (0..rows).step_by(ROW_BLOCK) {
        let end = (start + ROW_BLOCK).min(rows);
        block.fill(0.0);
        for r in start..end {
            let mut out = block.row_mut(r - start);
            match x {
                Matrix::Dense(d) => {
                    for (k, &j) in cols.iter().enumerate() {
                        out[k] = d.data.get_f64(r * n_genes + j).unwrap_or(0.0);
                    }
                }
                Matrix::Sparse(s) => {
                    for i in s.indptr[r] as usize..s.indptr[r + 1] as usize {
                        let k = position[s.indices[i] as usize];
                        if k != usize::MAX {
                            // Duplicate entries add up, as scipy sums them.
                            out[k] += s.data.get_f64(i).unwrap_or(0.0);
                        }
                    }
                }
            }
        }
        f(start, block.slice(s![..end - start, ..]), &position);
    }
    Ok(())
}

/// Each gene's expression bin as scanpy computes it: mean over cells (as
/// numpy computes it: float32 for dense float32 data, float64 otherwise),
/// `rank(method="min") // round(n_genes / (n_bins − 1))` (numpy rounds half
/// to even). When that divisor is 0 (fewer than about n_bins/2 genes),
/// pandas divides by zero and every gene lands in the same (infinite) cut;
/// so here every gene is in bin 0.
fn expression_cuts(x: &Matrix, n_bins: usize) -> Result<Vec<u64>> {
    let (rows, n_genes) = shape(x)?;
    let mut sums = vec![0.0f64; n_genes];
    match x {
        Matrix::Dense(d) => {
            for r in 0..rows {
                for (j, s) in sums.iter_mut().enumerate() {
                    *s += d.data.get_f64(r * n_genes + j).unwrap_or(0.0);
                }
            }
        }
        Matrix::Sparse(s) => {
            for (major, w) in s.indptr.windows(2).enumerate() {
                for i in w[0] as usize..w[1] as usize {
                    let j = match s.format {
                        SparseFormat::Csr => s.indices[i] as usize,
                        SparseFormat::Csc => major,
                    };
                    sums[j] += s.data.get_f64(i).unwrap_or(0.0);
                }
            }
        }
    }
    let mut means: Vec<f64> = sums.iter().map(|s| s / rows.max(1) as f64).collect();
    if let Matrix::Dense(d) = x
        && let crate::NumVec::F32(v) = &d.data
    {
        // numpy averages a dense float32 matrix over cells in float32 (row
        // after row, then one division in float64 rounded back), and the
        // ranks see those float32 means: genes whose means differ by less
        // than float32 rounding would otherwise land in other bins.
        let mut acc = vec![0.0f32; n_genes];
        for row in v.chunks_exact(n_genes.max(1)) {
            for (a, &x) in acc.iter_mut().zip(row) {
                *a += x;
            }
        }
        means = acc
            .iter()
            .map(|&a| (f64::from(a) / rows.max(1) as f64) as f32 as f64)
            .collect();
    }
    let n_items = (n_genes as f64 / (n_bins - 1) as f64).round_ties_even() as u64;
    let mut order: Vec<usize> = (0..n_genes).collect();
    order.sort_by(|&a, &b| means[a].total_cmp(&means[b]));
    let mut cuts = vec![0u64; n_genes];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && means[order[end]] == means[order[start]] {
            end += 1;
        }
        // Tied genes share the lowest rank of their group (1-based).
        let rank = start as u64 + 1;
        let cut = rank.checked_div(n_items).unwrap_or(0);
        for &g in &order[start..end] {
            cuts[g] = cut;
        }
        start = end;
    }
    Ok(cuts)
}

/// scanpy's control genes of one set: for each bin the set's genes fall in
/// (ascending), all genes of the bin, or `ctrl_size` of them drawn without
/// replacement when the bin is larger; minus the set's genes; the union.
fn control_genes(
    set: &[usize],
    cuts: &[u64],
    bins: &std::collections::BTreeMap<u64, Vec<usize>>,
    ctrl_size: usize,
    seed: u64,
    stream: u64,
) -> Vec<usize> {
    let mut rng = stream_rng(
        seed,
        crate::random::streams::GENE_SET_CONTROLS_BASE + stream,
    );
    let mut set_cuts: Vec<u64> = set.iter().map(|&g| cuts[g]).collect();
    set_cuts.sort_unstable();
    set_cuts.dedup();
    let in_set: std::collections::HashSet<usize> = set.iter().copied().collect();
    let mut out = Vec::new();
    for cut in set_cuts {
        let mut bin = bins.get(&cut).cloned().unwrap_or_default();
        if ctrl_size < bin.len() {
            // Partial Fisher–Yates: the first ctrl_size are a uniform draw.
            for i in 0..ctrl_size {
                let k = rng.random_range(i..bin.len());
                bin.swap(i, k);
            }
            bin.truncate(ctrl_size);
        }
        out.extend(bin.into_iter().filter(|g| !in_set.contains(g)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DenseArray, NumVec, SparseMatrix};

    fn dense(rows: usize, cols: usize, v: Vec<f64>) -> Matrix {
        Matrix::Dense(DenseArray::new(vec![rows, cols], NumVec::F64(v)).unwrap())
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("g{i}")).collect()
    }

    fn sets(list: &[(&str, &[&str])]) -> GeneSets {
        let mut s = GeneSets::new();
        for (name, genes) in list {
            s.create(name);
            for g in *genes {
                s.add(name, g);
            }
        }
        s
    }

    #[test]
    fn ensembl_versions_do_not_stop_a_match() {
        assert_eq!(unversioned("ENSG00000141510.17"), "ENSG00000141510");
        assert_eq!(unversioned("ENSG00000141510"), "ENSG00000141510");
        assert_eq!(unversioned("HLA-DQA1"), "HLA-DQA1");
        assert_eq!(unversioned("RP11-34P13.7"), "RP11-34P13.7");
        assert_eq!(unversioned("ENSG1.x"), "ENSG1.x");
        let x = dense(3, 3, vec![1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 2.0, 2.0, 5.0]);
        let data_ids: Vec<String> = ["ENSG1.2", "ENSG2.7", "ENSG3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let versioned = sets(&[("s", &["ENSG1", "ENSG2.9", "ENSG3.1"])]);
        let plain = sets(&[("s", &["ENSG1.2", "ENSG2.7", "ENSG3"])]);
        let method = SetScore::Reference {
            unit_interval: false,
            temp: 1.0,
        };
        let a = score_gene_sets(&x, &data_ids, &versioned, 1, method).unwrap();
        let b = score_gene_sets(&x, &data_ids, &plain, 1, method).unwrap();
        assert_eq!(a.shared, vec![3]);
        assert_eq!(a.scores, b.scores);
    }

    #[test]
    fn gene_sets_keep_order_and_drop_duplicates() {
        let s = sets(&[("B", &["x", "y", "x"]), ("A", &["z"])]);
        let all: Vec<_> = s.iter().collect();
        assert_eq!(all, vec![("B", vec!["x", "y"]), ("A", vec!["z"])]);
    }

    #[test]
    fn reference_score_by_hand() {
        // One cell, genes 0..4 = [0, 1, 2, 5]; both sets cover the universe.
        let x = dense(1, 4, vec![0.0, 1.0, 2.0, 5.0]);
        let s = sets(&[("a", &["g0", "g3"]), ("b", &["g1", "g2"])]);
        let r = score_gene_sets(
            &x,
            &ids(4),
            &s,
            1,
            SetScore::Reference {
                unit_interval: false,
                temp: 1.0,
            },
        )
        .unwrap();
        let (mu, var) = (2.0, (4.0 + 1.0 + 0.0 + 9.0) / 4.0);
        let a = (4.0 + 9.0) / (2.0 * var);
        let b = (1.0 + 0.0) / (2.0 * var);
        assert!((mu - 2.0f64).abs() < 1e-15);
        assert!((r.scores[(0, 0)] - a).abs() < 1e-12);
        assert!((r.scores[(0, 1)] - b).abs() < 1e-12);
        let u = score_gene_sets(
            &x,
            &ids(4),
            &s,
            1,
            SetScore::Reference {
                unit_interval: true,
                temp: 2.0,
            },
        )
        .unwrap();
        assert!((u.scores[(0, 0)] - (1.0 - (-2.0 * a).exp())).abs() < 1e-12);
    }

    #[test]
    fn constant_cells_score_zero_and_small_sets_are_skipped() {
        let x = dense(1, 3, vec![1.0, 1.0, 1.0]);
        let s = sets(&[("a", &["g0", "g1"]), ("tiny", &["g2", "missing"])]);
        let r = score_gene_sets(
            &x,
            &ids(3),
            &s,
            2,
            SetScore::Reference {
                unit_interval: false,
                temp: 1.0,
            },
        )
        .unwrap();
        assert_eq!(r.names, vec!["a"]);
        assert_eq!(r.scores[(0, 0)], 0.0);
        assert_eq!(
            r.skipped,
            vec![SkippedSet {
                name: "tiny".into(),
                size: 2,
                shared: 1
            }]
        );
    }

    #[test]
    fn dense_csr_and_csc_agree_across_row_blocks() {
        // More rows than one block, the last block partial.
        let (rows, cols) = (2 * ROW_BLOCK + 5, 30);
        let v: Vec<f64> = (0..rows * cols)
            .map(|i| if i % 3 == 0 { 0.0 } else { (i % 7) as f64 })
            .collect();
        let x = dense(rows, cols, v.clone());
        let mut indptr = vec![0u64];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                if v[r * cols + c] != 0.0 {
                    indices.push(c as u32);
                    data.push(v[r * cols + c]);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let csr = Matrix::Sparse(
            SparseMatrix::new(
                SparseFormat::Csr,
                (rows, cols),
                indptr,
                indices,
                NumVec::F64(data),
            )
            .unwrap(),
        );
        let mut cindptr = vec![0u64];
        let mut cindices = Vec::new();
        let mut cdata = Vec::new();
        for c in 0..cols {
            for r in 0..rows {
                if v[r * cols + c] != 0.0 {
                    cindices.push(r as u32);
                    cdata.push(v[r * cols + c]);
                }
            }
            cindptr.push(cindices.len() as u64);
        }
        let csc = Matrix::Sparse(
            SparseMatrix::new(
                SparseFormat::Csc,
                (rows, cols),
                cindptr,
                cindices,
                NumVec::F64(cdata),
            )
            .unwrap(),
        );
        let s = sets(&[("a", &["g1", "g4", "g8"]), ("b", &["g2", "g11", "g20"])]);
        for method in [
            SetScore::Reference {
                unit_interval: false,
                temp: 1.0,
            },
            SetScore::Scanpy {
                ctrl_size: 2,
                n_bins: 5,
                seed: 3,
            },
        ] {
            let d = score_gene_sets(&x, &ids(cols), &s, 1, method).unwrap();
            if let SetScore::Reference { .. } = method {
                // Each row's score is its own: the last row scored alone.
                let last = dense(1, cols, v[(rows - 1) * cols..].to_vec());
                let one = score_gene_sets(&last, &ids(cols), &s, 1, method).unwrap();
                assert_eq!(one.scores.row(0), d.scores.row(rows - 1));
            }
            for m in [&csr, &csc] {
                let o = score_gene_sets(m, &ids(cols), &s, 1, method).unwrap();
                assert_eq!(o.names, d.names);
                for (a, b) in o.scores.iter().zip(d.scores.iter()) {
                    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn bins_follow_pandas_min_rank() {
        // means 0,0,1,2,3,4: ranks 1,1,3,4,5,6; n_items = round(6/2) = 3.
        let x = dense(1, 6, vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(expression_cuts(&x, 3).unwrap(), vec![0, 0, 1, 1, 1, 2]);
        // 6 / 24 rounds to 0: one bin.
        assert_eq!(expression_cuts(&x, 25).unwrap(), vec![0; 6]);
    }

    #[test]
    fn float32_means_are_numpys() {
        // Gene 0: 1e8 + 1 rounds to 1e8 in float32, so numpy's mean is 0,
        // below gene 1's 0.1 (in float64 it would be 1/3, above).
        let v = vec![1e8f32, 0.1, 1.0, 0.1, -1e8, 0.1];
        let x = Matrix::Dense(DenseArray::new(vec![3, 2], NumVec::F32(v)).unwrap());
        assert_eq!(expression_cuts(&x, 3).unwrap(), vec![1, 2]);
    }

    #[test]
    fn non_finite_values_are_refused() {
        let x = dense(1, 2, vec![1.0, f64::NAN]);
        let s = sets(&[("a", &["g0"])]);
        assert!(score_gene_sets(&x, &ids(2), &s, 1, SetScore::scanpy(0)).is_err());
    }
}
