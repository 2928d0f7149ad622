//! Mechanism of action by joint edits: how much of a perturbation's
//! predicted effect on the selected cells runs through each pathway-activity
//! concept, and how much is direct.
//!
//! # Estimand
//!
//! Let `S` be the selected cells, `p = v` the perturbation (a hard concept
//! set to a value) and `P_1..P_k` the pathways (soft concepts). Write
//! `E(A)` for the model's predicted expression of the cells of `S` (the
//! model's genes, normalised log expression, as [`crate::edit`] reports it)
//! after the joint edit `A`, averaged over `S`, and `E(∅)` for the cells'
//! own prediction. The perturbation and every pathway not named in `A` are
//! *held* at the cell's own level, its annotation in obs (the encoder's
//! prediction where the cell has none: a bottleneck's soft-concept head is
//! trained with a low weight and can sit far off the annotated scale, which
//! would make "holding" a pathway move it). Every other concept keeps the
//! encoder's value and the unknown code stays the cell's (abduction). With
//! `p̄_j` the *perturbed level* of pathway `j`:
//!
//! - total effect `T = E(p = v, P_1 = p̄_1, …, P_k = p̄_k) − E(∅)`:
//!   the perturbation set and every pathway moved;
//! - direct effect `D = E(p = v) − E(∅)`: the perturbation set, every pathway
//!   held at the cells' own levels;
//! - effect mediated by pathway `j`, `M_j = E(p = v, P_j = p̄_j) − E(p = v)`:
//!   the perturbation set, only pathway `j` moved, the other pathways held;
//! - interaction `I = T − D − Σ_j M_j`: what moving the pathways together
//!   adds beyond moving each alone (0 for a decoder additive in its concepts).
//!
//! These are per-gene vectors and add up to `T` exactly. Each part's *share*
//! summarises it over genes as its least-squares projection onto the total,
//! `share(X) = Σ_g X_g·T_g / Σ_g T_g²`, so the shares of `D`, every `M_j` and
//! `I` sum to 1, genes with a large total effect weigh most, and a gene with
//! no total effect cannot blow a ratio up. A share can be negative (a part
//! acting against the total) or above 1.
//!
//! # Perturbed levels
//!
//! A concept bottleneck predicts each concept from expression; it has no
//! causal graph from the perturbation to the pathways, so "the pathway level
//! the perturbation would cause" is not a model output. It is taken from
//! data instead: by default `p̄_j` is the mean annotated value of pathway `j`
//! among the *reference cells*, every cell of the data set carrying `p = v`
//! (e.g. the stimulated cells), or the caller gives the values.
//!
//! # Assumptions
//!
//! The decomposition is the model's, and means what a mediation analysis
//! means only when (1) the pathways named are the mediators and no other
//! concept is moved by the perturbation (others are held, so what they would
//! mediate lands in the direct effect); (2) the reference cells' pathway
//! levels are what the perturbation causes in the selected cells (no
//! confounding between the reference and selected cells beyond the
//! perturbation: when the selected cells differ in type, the reference should
//! be the same type, chosen with [`Levels::Reference`]); (3) the decoder has
//! learnt the pathways' effects *given* the perturbation, which a joint model
//! (scCBGM) can and a marginal one (mean shift, whose perturbation effect
//! already includes the pathways') cannot: `moa` therefore needs a bottleneck
//! model; (4) the unknown code carries no pathway information. Where it
//! does, the decoder reads the pathway from the cell's own code, which is
//! held, so moving the concept moves less: the mediated shares shrink and
//! the direct share grows (on the synthetic mediation data an scCBGM with
//! the default orthogonality weight credited half of the mediated effect to
//! the perturbation on 2,000 cells; ten times that weight removed it; raise
//! `orthogonality_hp` when fitting a model for this analysis). Noisy pathway
//! annotations likewise attenuate the learnt pathway effects, moving part of
//! the mediated share into the direct one.

use conceptlab_core::CellData;
use conceptlab_core::preprocess::{ConceptGroup, ConceptKind, encode_with, select_rows};
use ndarray::{Array1, Array2, Axis};

use crate::ModelError;
use crate::checkpoint::{Loaded, Meta};
use crate::input::model_input;
use crate::model::{Annotations, EditRequest, Residual};

/// Where the perturbed pathway levels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Levels {
    /// The mean annotated value among the cells carrying the perturbation
    /// that also match these (obs column, value) pairs (empty: all of them).
    Reference(Vec<(String, String)>),
    /// One value per pathway, as written in obs.
    Given(Vec<String>),
}

/// What to analyse.
#[derive(Debug, Clone)]
pub struct MoaSpec {
    /// The perturbation: (hard concept column, value).
    pub perturb: (String, String),
    /// Pathway soft-concept columns.
    pub pathways: Vec<String>,
    /// (obs column, value) pairs the analysed cells must all match.
    pub filter: Vec<(String, String)>,
    pub levels: Levels,
}

/// One pathway's part of the effect.
#[derive(Debug, Clone)]
pub struct PathwayEffect {
    pub name: String,
    /// Mean level the encoder reads from the selected cells (the model's
    /// concept scale: soft concepts are min-max scaled to the training range).
    pub own_level: f64,
    /// The level it is moved to (same scale).
    pub perturbed_level: f64,
    /// `M_j` per gene.
    pub mediated: Array1<f32>,
    /// `share(M_j)`.
    pub share: f64,
    /// Adjusted R² of the pathway's annotated level on the unknown code
    /// over every annotated cell (the check of assumption 4; above
    /// [`WARN_R2`] the mediated share is likely understated). None where
    /// too few cells or no variation make it meaningless.
    pub in_unknown: Option<f64>,
}

/// The decomposition of the perturbation's effect on the selected cells.
#[derive(Debug, Clone)]
pub struct Moa {
    /// The model's genes (names from var).
    pub genes: Vec<String>,
    pub n_cells: usize,
    /// Reference cells the levels were averaged over (0 when given).
    pub n_reference: usize,
    /// `T`, `D` and `I` per gene.
    pub total: Array1<f32>,
    pub direct: Array1<f32>,
    pub interaction: Array1<f32>,
    pub direct_share: f64,
    pub interaction_share: f64,
    pub pathways: Vec<PathwayEffect>,
}

impl Moa {
    /// Indices of the `n` genes with the largest absolute total effect.
    pub fn top_genes(&self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.total.len()).collect();
        order.sort_by(|&a, &b| self.total[b].abs().total_cmp(&self.total[a].abs()));
        order.truncate(n);
        order
    }
}

fn find_group<'a>(meta: &'a Meta, column: &str) -> Result<&'a ConceptGroup, ModelError> {
    let groups = &meta.data.concept_groups;
    groups.iter().find(|g| g.column == column).ok_or_else(|| {
        let known: Vec<&str> = groups.iter().map(|g| g.column.as_str()).collect();
        ModelError::Input(format!(
            "`{column}`: not a concept of this model (its concepts come from: {})",
            known.join(", ")
        ))
    })
}

fn matching(data: &CellData, pairs: &[(String, String)]) -> Result<Vec<bool>, ModelError> {
    let mut selected = vec![true; data.n_obs()];
    for (column, value) in pairs {
        let mask = select_rows(&data.obs, column, value)
            .map_err(|e| ModelError::Input(format!("where {column}={value}: {e}")))?;
        for (s, m) in selected.iter_mut().zip(mask) {
            *s &= m;
        }
    }
    Ok(selected)
}

/// `share(part) = Σ part·T / Σ T²` (0 when the total is 0 everywhere).
fn share(part: &Array1<f32>, total: &Array1<f32>) -> f64 {
    let norm: f64 = total.iter().map(|&t| f64::from(t) * f64::from(t)).sum();
    if norm <= 0.0 {
        return 0.0;
    }
    let dot: f64 = part
        .iter()
        .zip(total)
        .map(|(&p, &t)| f64::from(p) * f64::from(t))
        .sum();
    dot / norm
}

/// Runs the analysis of `spec` on `data` with the model of `loaded`.
pub fn analyse(loaded: &Loaded, data: &CellData, spec: &MoaSpec) -> Result<Moa, ModelError> {
    let meta = &loaded.meta;
    // Only a bottleneck's decoder models expression given the perturbation
    // and the pathways jointly (see "Assumptions").
    if loaded.model.as_concept_model().is_none() {
        return Err(ModelError::Input(format!(
            "mechanism-of-action analysis needs a concept-bottleneck model (scCBGM): a {} \
             model has no joint decoder of perturbation and pathways",
            loaded.model.kind().name()
        )));
    }
    if spec.pathways.is_empty() {
        return Err(ModelError::Input("name at least one pathway".into()));
    }
    let (p_column, p_value) = &spec.perturb;
    let p_group = find_group(meta, p_column)?;
    if p_group.kind() != ConceptKind::Hard {
        return Err(ModelError::Input(format!(
            "the perturbation `{p_column}` must be a hard concept (it is soft)"
        )));
    }
    let p_values = p_group
        .encode_value(p_value)
        .map_err(|e| ModelError::Input(format!("`{p_column}={p_value}`: {e}")))?;
    let mut pathway_columns = Vec::with_capacity(spec.pathways.len());
    for name in &spec.pathways {
        if name == p_column || spec.pathways.iter().filter(|n| *n == name).count() > 1 {
            return Err(ModelError::Input(format!(
                "`{name}` is named twice among the perturbation and pathways"
            )));
        }
        let group = find_group(meta, name)?;
        if group.kind() != ConceptKind::Soft {
            return Err(ModelError::Input(format!(
                "pathway `{name}` must be a soft concept (it is hard)"
            )));
        }
        pathway_columns.push((group, group.columns.start));
    }

    let matrix = model_input(meta, data)?;
    let selected = matching(data, &spec.filter)?;
    let rows: Vec<usize> = (0..data.n_obs()).filter(|&i| selected[i]).collect();
    if rows.is_empty() {
        return Err(ModelError::Input(
            "no cell matches the where conditions".into(),
        ));
    }

    let concepts = encode_with(&meta.data.concept_groups, &data.obs)
        .map_err(|e| ModelError::Input(format!("the cells' concepts: {e}")))?;
    // Perturbed levels, on the model's concept scale.
    let (levels, n_reference) = match &spec.levels {
        Levels::Given(values) => {
            if values.len() != spec.pathways.len() {
                return Err(ModelError::Input(format!(
                    "{} pathway levels given for {} pathways",
                    values.len(),
                    spec.pathways.len()
                )));
            }
            let mut levels = Vec::with_capacity(values.len());
            for ((group, _), value) in pathway_columns.iter().zip(values) {
                let v = group
                    .encode_value(value)
                    .map_err(|e| ModelError::Input(format!("`{}={value}`: {e}", group.column)))?;
                levels.push(f64::from(v.first().copied().unwrap_or(0.0)));
            }
            (levels, 0)
        }
        Levels::Reference(extra) => {
            let mut pairs = vec![spec.perturb.clone()];
            pairs.extend(extra.iter().cloned());
            let reference = matching(data, &pairs)?;
            let mut levels = Vec::with_capacity(pathway_columns.len());
            let mut n_reference = 0;
            for (group, j) in &pathway_columns {
                let (mut sum, mut n) = (0.0f64, 0usize);
                for i in (0..data.n_obs()).filter(|&i| reference[i]) {
                    if concepts.observed[[i, *j]] > 0.0 {
                        sum += f64::from(concepts.values[[i, *j]]);
                        n += 1;
                    }
                }
                if n == 0 {
                    return Err(ModelError::Input(format!(
                        "no cell with {p_column}={p_value} has `{}` annotated: its perturbed \
                         level is unknown (give the levels instead)",
                        group.column
                    )));
                }
                n_reference = n_reference.max(n);
                levels.push(sum / n as f64);
            }
            (levels, n_reference)
        }
    };

    let pre = &meta.preprocessing;
    let features = pre.transform(matrix)?;
    let source = features.select(Axis(0), &rows);
    let unknown = match loaded.model.as_concept_model() {
        Some(model) => Some(model.encode(features.view())?.unknown),
        None => None,
    };
    let n = rows.len();
    let k = meta.dims.n_concepts();
    // The cells' own levels are their annotations: a bottleneck encoder's
    // soft-concept predictions can be far off the annotated scale (its
    // concept loss is weighted low), and a held pathway must stay where the
    // cell is. Where a cell lacks an annotation, the encoder's value stands.
    let own_values = concepts.values.select(Axis(0), &rows);
    let own_observed = concepts.observed.select(Axis(0), &rows);
    let mut held = vec![p_group.columns.clone()];
    held.extend(pathway_columns.iter().map(|(_, j)| *j..*j + 1));
    let mut own_mask = Array2::<f32>::zeros((n, k));
    for range in &held {
        for j in range.clone() {
            own_mask.column_mut(j).assign(&own_observed.column(j));
        }
    }
    // The mean predicted expression over the cells, every named concept at
    // the cell's own level except: the perturbation set (`perturbed`) and
    // the pathways in `moved` at their perturbed levels.
    let predict = |perturbed: bool, moved: &[usize]| -> Result<Array1<f32>, ModelError> {
        let mut values = own_values.clone();
        let mut mask = own_mask.clone();
        if perturbed {
            for (j, &v) in p_group.columns.clone().zip(&p_values) {
                values.column_mut(j).fill(v);
                mask.column_mut(j).fill(1.0);
            }
        }
        for &m in moved {
            let j = pathway_columns[m].1;
            values.column_mut(j).fill(levels[m] as f32);
            mask.column_mut(j).fill(1.0);
        }
        let request = EditRequest {
            x: source.view(),
            annotations: Some(Annotations {
                values: own_values.view(),
                observed: own_observed.view(),
            }),
            values: values.view(),
            mask: mask.view(),
            // Only differences between predictions are reported, and the
            // kept residual cancels in them.
            residual: Residual::Keep,
            sampling: None,
        };
        let result = loaded.model.counterfactual(&request)?;
        if let Some((i, j)) = crate::first_non_finite(result.x.view()) {
            return Err(ModelError::Input(format!(
                "the model produced a non-finite value (cell {}, feature {j})",
                rows[i]
            )));
        }
        pre.to_expression(result.x.view())?
            .mean_axis(Axis(0))
            .ok_or_else(|| ModelError::Input("no cell to average over".into()))
    };

    let all: Vec<usize> = (0..pathway_columns.len()).collect();
    let own = predict(false, &[])?;
    let perturbed_only = predict(true, &[])?;
    let total = predict(true, &all)? - &own;
    let direct = &perturbed_only - &own;
    let mut interaction = &total - &direct;
    let mut pathways = Vec::with_capacity(all.len());
    for &m in &all {
        let mediated = predict(true, &[m])? - &perturbed_only;
        interaction -= &mediated;
        let j = pathway_columns[m].1;
        let annotated: Vec<f32> = (0..n)
            .filter(|&i| own_observed[[i, j]] > 0.0)
            .map(|i| own_values[[i, j]])
            .collect();
        let in_unknown = unknown.as_ref().and_then(|u| {
            let keep: Vec<bool> = concepts
                .observed
                .column(j)
                .iter()
                .map(|&o| o > 0.0)
                .collect();
            leakage::explained(u.view(), concepts.values.column(j), &keep)
        });
        pathways.push(PathwayEffect {
            in_unknown,
            name: spec.pathways[m].clone(),
            own_level: annotated.iter().map(|&v| f64::from(v)).sum::<f64>()
                / annotated.len().max(1) as f64,
            perturbed_level: levels[m],
            share: share(&mediated, &total),
            mediated,
        });
    }
    let names = data.var_names();
    let genes = pre
        .genes
        .iter()
        .map(|&g| names.get(g).cloned().unwrap_or_else(|| format!("gene {g}")))
        .collect();
    Ok(Moa {
        genes,
        n_cells: n,
        n_reference,
        direct_share: share(&direct, &total),
        interaction_share: share(&interaction, &total),
        total,
        direct,
        interaction,
        pathways,
    })
}

mod leakage;
#[cfg(test)]
mod tests;

pub use leakage::WARN_R2;
