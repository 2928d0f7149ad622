//! CBM-FM (spec-models §7.2): flow matching conditioned on a trained
//! concept model's embedding [ĉ ‖ u], computed deterministically from the
//! encoder mean. The flow moves cells in the concept model's feature space;
//! the embedding only conditions the velocity field, so an edit changes the
//! known part of the condition and keeps u.

use ndarray::{Array2, ArrayView2, Axis, concatenate};

use super::model::{FlowHistory, FlowMatcher, Sampling};
use crate::ModelError;
use crate::model::{ConceptModel, Encoding, intervene_on};
use crate::train::TrainConfig;

/// [ĉ ‖ u] of encoded cells.
pub fn condition(encoding: &Encoding) -> Result<Array2<f32>, ModelError> {
    concatenate(Axis(1), &[encoding.known.view(), encoding.unknown.view()])
        .map_err(|e| ModelError::Input(format!("concepts and unknown code do not line up: {e}")))
}

/// [c' ‖ u]: the known concepts overwritten with `values` where `mask` is 1.
pub fn edited_condition(
    encoding: &Encoding,
    values: ArrayView2<f32>,
    mask: ArrayView2<f32>,
) -> Result<Array2<f32>, ModelError> {
    let known = intervene_on(&encoding.known, values, mask)?;
    condition(&Encoding {
        known,
        unknown: encoding.unknown.clone(),
    })
}

/// Trains `flow` on cells `x` under the frozen `model`'s embedding.
pub fn fit(
    model: &dyn ConceptModel,
    flow: &mut FlowMatcher,
    x: &Array2<f32>,
    train: &TrainConfig,
    seed: u64,
    observer: &mut dyn FnMut(usize, f64, Option<f64>),
) -> Result<FlowHistory, ModelError> {
    check(model, flow)?;
    let cond = condition(&model.encode(x.view())?)?;
    flow.fit(x, &cond, train, seed, observer)
}

/// Refuses a flow that was not built for `model`'s features and embedding.
fn check(model: &dyn ConceptModel, flow: &FlowMatcher) -> Result<(), ModelError> {
    let dims = flow.dims();
    if dims.x_dim != model.input_dim() {
        return Err(ModelError::Input(format!(
            "the flow moves {}-dimensional cells but the concept model reads {}",
            dims.x_dim,
            model.input_dim()
        )));
    }
    let c_dim = model.embedding_dim();
    if dims.c_dim != c_dim {
        return Err(ModelError::Input(format!(
            "the flow expects {}-dimensional conditions but the concept model's embedding has {c_dim}",
            dims.c_dim
        )));
    }
    Ok(())
}

/// Counterfactuals of cells `x`: encode them, set the concepts where `mask`
/// is 1 to `values`, and integrate the flow ([`Sampling`] says whether from
/// each cell's inverted noise or from fresh noise). Returns the cells and
/// the network evaluations per cell.
pub fn counterfactual(
    model: &dyn ConceptModel,
    flow: &FlowMatcher,
    x: ArrayView2<f32>,
    values: ArrayView2<f32>,
    mask: ArrayView2<f32>,
    sampling: &Sampling,
) -> Result<(Array2<f32>, f64), ModelError> {
    check(model, flow)?;
    let encoding = model.encode(x)?;
    let cond = condition(&encoding)?;
    let new_cond = edited_condition(&encoding, values, mask)?;
    flow.counterfactual(x, cond.view(), new_cond.view(), sampling)
}
