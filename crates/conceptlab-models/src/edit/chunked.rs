//! The edit on a matrix read and written a block of rows at a time, so that
//! memory follows the block, not the number of cells.
//!
//! Two passes over the rows: the first checks them as [`super::edit`]
//! checks the whole matrix and decides the output's element type (which
//! depends on every value); the second edits. The model answers the
//! selected cells in fixed global blocks of [`EDIT_BLOCK`] (the `b`-th
//! block of selected cells, whatever the read blocks are) with a seed of
//! its own per block ([`block_sampling`]), so the result does not depend on
//! how the rows are read. Rows wait, already read, until the model has
//! answered the block their selected cells are in; models that are not
//! [`Counterfactual::row_local`] answer every selected cell at once, so
//! with them every row waits.

use std::collections::VecDeque;

use conceptlab_core::preprocess::dense_matrix;
use conceptlab_core::{CellData, DType, Matrix, NumVec, SparseFormat, SparseMatrix};
use ndarray::{Array2, Axis, s};

use super::rows::{self, Replacement};
use super::{Edited, PCA_KEY, Plan, annotations, first_unwritable, record, stored_values};
use crate::ModelError;
use crate::checkpoint::Loaded;
use crate::flow::Sampling;
use crate::input::{EDIT_RECORD, check_genes, check_rows, expression, matrix_name};
use crate::model::{Annotations, Counterfactual, EditRequest, Residual};

/// Selected cells the model answers at once: the flows integrate in chunks
/// of this size too, so a block is one of their chunks.
pub const EDIT_BLOCK: usize = 1024;

/// The sampling of the `block`-th block of selected cells: the first keeps
/// the request's seed (an edit of at most [`EDIT_BLOCK`] cells is what it
/// was before edits were blocked), every later one a seed of its own drawn
/// from it, so no two blocks share noise.
pub fn block_sampling(sampling: Sampling, block: u64) -> Sampling {
    if block == 0 {
        return sampling;
    }
    // SplitMix64's finaliser: distinct blocks give unrelated seeds.
    let mut z = sampling
        .seed
        .wrapping_add(block.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    Sampling {
        seed: z ^ (z >> 31),
        ..sampling
    }
}

/// Rows read and waiting for the model's answers to their selected cells.
struct Waiting {
    start: usize,
    matrix: Matrix,
    features: Array2<f32>,
    /// Rows of the block that are edited (local indices, ascending).
    edited: Vec<usize>,
    /// Ordinal (among all selected cells) of the first of them.
    first: usize,
}

/// The empty CSR matrix of `shape` that stands for a matrix whose rows are
/// written elsewhere.
pub fn placeholder(shape: (usize, usize), dtype: DType) -> Result<Matrix, ModelError> {
    Ok(Matrix::Sparse(SparseMatrix::new(
        SparseFormat::Csr,
        shape,
        vec![0; shape.0 + 1],
        Vec::new(),
        NumVec::empty(dtype),
    )?))
}

/// Edits as [`super::edit`] does, with the model's matrix (X, or the layer
/// it was fitted on; dense or CSR) read through `read(start, count)` and
/// the edited matrix handed to `write` a block of rows at a time, in order.
/// `data` holds everything else (its matrix there is only a placeholder of
/// the right shape and element type). The returned cells are the output
/// without that matrix: a [`placeholder`] with the output's element type
/// stands in its place. The rows `write` gets and the cells returned are
/// the same for every `chunk` (rows read at a time).
pub fn edit_chunked(
    loaded: &Loaded,
    data: &CellData,
    plan: &Plan,
    chunk: usize,
    read: &mut dyn FnMut(usize, usize) -> Result<Matrix, ModelError>,
    write: &mut dyn FnMut(Matrix) -> Result<(), ModelError>,
) -> Result<Edited, ModelError> {
    super::with_editor(loaded, plan.spec, |editor| {
        run(loaded, editor, data, plan, chunk.max(1), read, write)
    })
}

fn run(
    loaded: &Loaded,
    editor: &dyn Counterfactual,
    data: &CellData,
    plan: &Plan,
    chunk: usize,
    read: &mut dyn FnMut(usize, usize) -> Result<Matrix, ModelError>,
    write: &mut dyn FnMut(Matrix) -> Result<(), ModelError>,
) -> Result<Edited, ModelError> {
    let (meta, spec) = (&loaded.meta, plan.spec);
    check_genes(meta, data)?;
    let layer = meta.data.layer.as_deref();
    let name = matrix_name(layer);
    let stand_in = expression(data, layer)?;
    let (n, n_cols) = stand_in.shape();
    let input_dtype = stand_in.dtype();

    // Pass 1: the checks and the output type, which depend on every value.
    let mut exact = true;
    for start in (0..n).step_by(chunk) {
        let block = read(start, chunk.min(n - start))?;
        check_rows(meta, data, &block, start)?;
        exact &= rows::exact_in_f32(&block);
    }
    let dtype = rows::dtype_for(input_dtype, exact);

    let selected = super::selection(data, spec)?;
    let ordinals: Vec<usize> = (0..n).filter(|&i| selected[i]).collect();
    if ordinals.is_empty() {
        return Err(ModelError::Input(
            "no cell matches the where conditions".into(),
        ));
    }
    let n_sel = ordinals.len();
    let pre = &meta.preprocessing;
    let k = meta.dims.n_concepts();
    let resolved = plan.resolve(data)?;
    let (values, mask) = super::targets(&resolved, n_sel, k);
    let mut warnings = Vec::new();
    let own = editor
        .reads_annotations()
        .then(|| annotations(meta, data, &ordinals, &mut warnings))
        .flatten();
    let block_len = if editor.row_local() {
        EDIT_BLOCK
    } else {
        usize::MAX
    };

    // Pass 2.
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut queued: Vec<f32> = Vec::new();
    let (mut n_queued, mut n_asked) = (0usize, 0usize);
    let mut answers: VecDeque<Vec<f32>> = VecDeque::new();
    let mut first_answer = 0usize;
    let mut carry = spec.residual;
    let (mut evaluations, mut n_blocks, mut any_evaluations) = (0.0, 0usize, false);
    let mut scores: Vec<Array2<f32>> = Vec::new();
    let n_features = meta.dims.input_dim;
    let mut ask = |queued: &mut Vec<f32>,
                   n_queued: &mut usize,
                   n_asked: &mut usize,
                   answers: &mut VecDeque<Vec<f32>>,
                   take: usize|
     -> Result<Residual, ModelError> {
        let x = Array2::from_shape_vec((take, n_features), queued[..take * n_features].to_vec())
            .map_err(|e| ModelError::Input(e.to_string()))?;
        queued.drain(..take * n_features);
        let range = *n_asked..*n_asked + take;
        let block = (*n_asked / EDIT_BLOCK) as u64;
        let request = EditRequest {
            x: x.view(),
            annotations: own.as_ref().map(|c| Annotations {
                values: c.values.slice(s![range.clone(), ..]),
                observed: c.observed.slice(s![range.clone(), ..]),
            }),
            values: values.slice(s![range.clone(), ..]),
            mask: mask.slice(s![range.clone(), ..]),
            residual: spec.residual,
            sampling: super::integrates(spec, meta).then_some(block_sampling(spec.sampling, block)),
        };
        let result = editor.counterfactual(&request)?;
        if let Some(e) = result.evaluations {
            evaluations += e;
            any_evaluations = true;
        }
        n_blocks += 1;
        answers.extend(result.x.rows().into_iter().map(|r| r.to_vec()));
        *n_asked += take;
        *n_queued -= take;
        Ok(result.carry)
    };
    let mut flush = |w: Waiting,
                     answers: &mut VecDeque<Vec<f32>>,
                     first_answer: &mut usize,
                     carry: Residual|
     -> Result<(), ModelError> {
        let m = w.edited.len();
        let mut edited_x = Array2::<f32>::zeros((m, n_features));
        for (i, mut row) in edited_x.rows_mut().into_iter().enumerate() {
            debug_assert_eq!(*first_answer, w.first + i);
            let answer = answers.pop_front().unwrap_or_default();
            row.assign(&ndarray::ArrayView1::from(&answer[..]));
            *first_answer += 1;
        }
        if let Some((i, j)) = crate::first_non_finite(edited_x.view()) {
            return Err(ModelError::Input(format!(
                "the model produced a non-finite value (cell {}, feature {j}); nothing was written",
                w.start + w.edited[i]
            )));
        }
        let source = w.features.select(Axis(0), &w.edited);
        let edited_expr = pre.to_expression(edited_x.view())?;
        let change = match carry {
            Residual::Keep => Some(&edited_expr - &pre.to_expression(source.view())?),
            Residual::Discard => None,
        };
        let new_values = stored_values(
            &w.matrix,
            &w.edited,
            &pre.genes,
            pre.target_sum,
            &edited_expr,
            change.as_ref(),
        )?;
        if let Some((i, j)) = first_unwritable(&new_values, dtype) {
            return Err(ModelError::Input(format!(
                "the edit of cell `{}` makes gene `{}` of {name} {} (not a finite {}); nothing \
                 was written",
                data.obs_names()[w.start + w.edited[i]],
                data.var_names()[pre.genes[j]],
                new_values[[i, j]],
                dtype.name()
            )));
        }
        let written = rows::replace(
            &w.matrix,
            &Replacement {
                rows: &w.edited,
                genes: &pre.genes,
                values: &new_values,
            },
            dtype,
        )?;
        if pre.uses_pca() {
            let mut block_scores = pre.unstandardized(w.features.view())?;
            let edited_scores = pre.unstandardized(edited_x.view())?;
            for (i, &r) in w.edited.iter().enumerate() {
                block_scores.row_mut(r).assign(&edited_scores.row(i));
            }
            scores.push(block_scores);
        }
        write(written)
    };

    for start in (0..n).step_by(chunk) {
        let count = chunk.min(n - start);
        let block = read(start, count)?;
        let features = pre.transform(&block)?;
        let edited: Vec<usize> = (0..count).filter(|&i| selected[start + i]).collect();
        for &i in &edited {
            queued.extend(features.row(i).iter());
        }
        let first = n_asked + n_queued;
        n_queued += edited.len();
        waiting.push_back(Waiting {
            start,
            matrix: block,
            features,
            edited,
            first,
        });
        while n_queued >= block_len {
            carry = ask(
                &mut queued,
                &mut n_queued,
                &mut n_asked,
                &mut answers,
                block_len,
            )?;
        }
        while let Some(w) = waiting.front() {
            if w.first + w.edited.len() > n_asked {
                break;
            }
            let w = waiting
                .pop_front()
                .ok_or_else(|| ModelError::Input("empty".into()))?;
            flush(w, &mut answers, &mut first_answer, carry)?;
        }
    }
    while n_queued > 0 {
        let take = n_queued.min(block_len);
        carry = ask(&mut queued, &mut n_queued, &mut n_asked, &mut answers, take)?;
    }
    while let Some(w) = waiting.pop_front() {
        flush(w, &mut answers, &mut first_answer, carry)?;
    }

    if input_dtype != dtype {
        warnings.push(format!(
            "{name} is written as {} (it was {}): the edited cells hold expected counts, which \
             are not integers; every other value is unchanged",
            dtype.name(),
            input_dtype.name()
        ));
    }
    let obs = super::edited_obs(data, spec, &resolved, &ordinals, selected, &mut warnings)?;

    let mut obsm = data.obsm.clone();
    if pre.uses_pca() {
        let views: Vec<_> = scores.iter().map(|a| a.view()).collect();
        let all = ndarray::concatenate(Axis(0), &views)
            .map_err(|e| ModelError::Input(format!("PC scores: {e}")))?;
        obsm.insert(PCA_KEY.into(), dense_matrix(all)?);
    } else if obsm.shift_remove(PCA_KEY).is_some() {
        warnings.push(format!(
            "obsm[\"{PCA_KEY}\"] (an earlier model's PC scores) is dropped: this model works \
             on genes"
        ));
    }
    let stand_in = placeholder((n, n_cols), dtype)?;
    let (x, layers) = match layer {
        None => (stand_in, data.layers.clone()),
        Some(l) => {
            warnings.push(format!(
                "the model reads layers/{l}: the edited cells are written there; X is unchanged"
            ));
            let mut layers = data.layers.clone();
            layers.insert(l.to_string(), stand_in);
            (data.x.clone(), layers)
        }
    };
    let mut uns = data.uns.clone();
    let previous = uns.shift_remove(EDIT_RECORD);
    uns.insert(
        EDIT_RECORD.into(),
        record(spec, loaded, carry, &name, n_sel, previous)?,
    );
    let out = CellData {
        x,
        obs,
        var: data.var.clone(),
        layers,
        obsm,
        varm: data.varm.clone(),
        obsp: data.obsp.clone(),
        varp: data.varp.clone(),
        uns,
        raw: data.raw.clone(),
    };
    out.validate()?;
    Ok(Edited {
        cells: out,
        n_edited: n_sel,
        warnings,
        evaluations: any_evaluations.then(|| evaluations / n_blocks.max(1) as f64),
    })
}
