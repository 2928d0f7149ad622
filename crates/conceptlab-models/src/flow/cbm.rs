//! CBM-FM: flow matching conditioned on a trained
//! concept model's embedding [c ‖ u], computed deterministically from the
//! encoder mean. The flow moves cells in the concept model's feature space;
//! the embedding only conditions the velocity field, so an edit changes the
//! known part of the condition and keeps u.
//!
//! The reference conditions on the *predicted* concepts ĉ. We default to
//! the annotated ones where a cell has them ([`ConceptSource::Annotated`]),
//! ĉ elsewhere: predicted probabilities are soft and carry cell-type
//! information (a concept's probability is higher in the cell types where
//! it is common), so the flow learns to read the concept slot as "looks like
//! those cell types", and setting it to 1 in a cell type where the concept
//! was never seen moved cells far too much (synthetic_1, 3 seeds: error
//! 0.0035 → 0.0010 with annotations; docs/decisions/flow.md).

use ndarray::{Array2, ArrayView2, Axis, concatenate};
use serde::{Deserialize, Serialize};

use super::model::{FlowHistory, FlowMatcher, FlowMode, Sampling};
use crate::ModelError;
use crate::model::{
    Annotations, ConceptModel, Counterfactual, Counterfactuals, EditRequest, Encoding, Residual,
    intervene_on,
};
use crate::train::{Observer, TrainConfig};

/// Where the known part of the condition comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConceptSource {
    /// The concept head's probabilities ĉ (the reference).
    Predicted,
    /// The cells' annotations where present, ĉ where missing.
    #[default]
    Annotated,
}

/// The known part of the condition: annotations where observed (when given),
/// the concept head's prediction elsewhere.
fn known_concepts(
    encoding: &Encoding,
    annotations: Option<Annotations>,
) -> Result<Array2<f32>, ModelError> {
    match annotations {
        None => Ok(encoding.known.clone()),
        Some(a) => intervene_on(&encoding.known, a.values, a.observed),
    }
}

/// [c ‖ u] of encoded cells (c as [`known_concepts`] says).
pub fn condition(
    encoding: &Encoding,
    annotations: Option<Annotations>,
) -> Result<Array2<f32>, ModelError> {
    let known = known_concepts(encoding, annotations)?;
    join(&known, encoding)
}

fn join(known: &Array2<f32>, encoding: &Encoding) -> Result<Array2<f32>, ModelError> {
    concatenate(Axis(1), &[known.view(), encoding.unknown.view()])
        .map_err(|e| ModelError::Input(format!("concepts and unknown code do not line up: {e}")))
}

/// [c' ‖ u]: the known concepts overwritten with `values` where `mask` is 1.
pub fn edited_condition(
    encoding: &Encoding,
    annotations: Option<Annotations>,
    values: ArrayView2<f32>,
    mask: ArrayView2<f32>,
) -> Result<Array2<f32>, ModelError> {
    let known = intervene_on(&known_concepts(encoding, annotations)?, values, mask)?;
    join(&known, encoding)
}

/// Trains `flow` on cells `x` under the frozen `model`'s embedding (with the
/// cells' concept annotations, if given, in place of the predictions).
pub fn fit(
    model: &dyn ConceptModel,
    flow: &mut FlowMatcher,
    x: &Array2<f32>,
    annotations: Option<Annotations>,
    train: &TrainConfig,
    seed: u64,
    observer: &mut Observer,
) -> Result<FlowHistory, ModelError> {
    check(model, flow)?;
    let cond = condition(&model.encode(x.view())?, annotations)?;
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

/// Counterfactuals of cells `x`: encode them (replacing predicted concepts
/// with `annotations` where given, as in training), set the concepts where
/// `mask` is 1 to `values`, and integrate the flow ([`Sampling`] says whether from
/// each cell's inverted noise or from fresh noise). Returns the cells and
/// the network evaluations per cell.
pub fn counterfactual(
    model: &dyn ConceptModel,
    flow: &FlowMatcher,
    x: ArrayView2<f32>,
    annotations: Option<Annotations>,
    values: ArrayView2<f32>,
    mask: ArrayView2<f32>,
    sampling: &Sampling,
) -> Result<(Array2<f32>, f64), ModelError> {
    check(model, flow)?;
    let encoding = model.encode(x)?;
    let cond = condition(&encoding, annotations)?;
    let new_cond = edited_condition(&encoding, annotations, values, mask)?;
    flow.counterfactual(x, cond.view(), new_cond.view(), sampling)
}

/// CBM-FM as an editor: a trained concept model and the flow trained on its
/// embedding.
#[derive(Clone, Copy)]
pub struct CbmFm<'a> {
    pub model: &'a dyn ConceptModel,
    pub flow: &'a FlowMatcher,
    /// What the flow was trained to read in the known part of its condition.
    pub concepts: ConceptSource,
}

impl Counterfactual for CbmFm<'_> {
    fn reads_annotations(&self) -> bool {
        self.concepts == ConceptSource::Annotated
    }

    /// [`counterfactual`] with the request's sampling (required). An edit
    /// (inverted, then regenerated) is still its cell, so its change is
    /// carried to the cell's expression; a decode is a new cell.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        let sampling = request.sampling.ok_or_else(|| {
            ModelError::Config("a flow's counterfactual needs sampling settings".into())
        })?;
        request.check(self.model.n_concepts())?;
        let annotations = match self.concepts {
            ConceptSource::Predicted => None,
            ConceptSource::Annotated => request.annotations,
        };
        let (x, evaluations) = counterfactual(
            self.model,
            self.flow,
            request.x,
            annotations,
            request.values,
            request.mask,
            &sampling,
        )?;
        Ok(Counterfactuals {
            x,
            carry: match sampling.mode {
                FlowMode::Edit { .. } => Residual::Keep,
                FlowMode::Decode => Residual::Discard,
            },
            evaluations: Some(evaluations),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn encoding() -> Encoding {
        Encoding {
            known: array![[0.2, 0.9], [0.6, 0.1]],
            unknown: array![[3.0], [4.0]],
        }
    }

    #[test]
    fn annotations_replace_predictions_only_where_observed() {
        let values = array![[1.0, 0.0], [0.0, 1.0]];
        let observed = array![[1.0, 1.0], [0.0, 1.0]];
        let a = Annotations {
            values: values.view(),
            observed: observed.view(),
        };
        let c = condition(&encoding(), Some(a)).unwrap();
        assert_eq!(c, array![[1.0, 0.0, 3.0], [0.6, 1.0, 4.0]]);
        assert_eq!(
            condition(&encoding(), None).unwrap(),
            array![[0.2, 0.9, 3.0], [0.6, 0.1, 4.0]]
        );
        // The edit overrides annotations and predictions alike; u stays.
        let set = array![[0.0, 1.0], [1.0, 0.0]];
        let mask = array![[0.0, 1.0], [1.0, 0.0]];
        let e = edited_condition(&encoding(), Some(a), set.view(), mask.view()).unwrap();
        assert_eq!(e, array![[1.0, 1.0, 3.0], [1.0, 1.0, 4.0]]);
    }

    #[test]
    fn misshapen_annotations_are_refused() {
        let values = array![[1.0, 0.0]];
        let a = Annotations {
            values: values.view(),
            observed: values.view(),
        };
        assert!(condition(&encoding(), Some(a)).is_err());
    }
}
