//! mixed CBM-FM (`mixed-cbm-fm`): CBM-FM on scCBGM with a hard and a soft
//! (dose-like) concept, edited to a dose no cell of its type had.

use super::cbm::{self, CbmFm, ConceptSource};
use super::testkit::dose;
use super::{FlowConfig, FlowMatcher};
use crate::model::{ConceptModel, Counterfactual};
use crate::registry::{self, GeneratorKind, ModelKind};
use crate::sccbgm::{ScCbgm, ScCbgmConfig};
use crate::train::TrainConfig;

#[test]
fn mixed_cbm_fm_edits_a_soft_concept_to_an_unseen_level() {
    let entry = registry::lookup("mixed-cbm-fm").unwrap();
    assert_eq!(entry.kind, ModelKind::ScCbgm);
    assert_eq!(entry.generator, Some(GeneratorKind::CbmFm));

    let held = dose();
    let train = TrainConfig {
        lr: 3e-3,
        max_epochs: 40,
        batch_size: 64,
        ..TrainConfig::default()
    };
    let config = ScCbgmConfig {
        hidden_dim: 32,
        latent_dim: 16,
        n_unknown: 8,
        dropout: 0.0,
        ..ScCbgmConfig::default()
    };
    let mut model = ScCbgm::new(config, held.train.dims(), 2, &candle_core::Device::Cpu).unwrap();
    model.fit(&held.train, &train, 2, &mut |_| {}).unwrap();
    // The soft column is a level, not a probability: no sigmoid on it, so
    // its predictions follow the dose (low for dose-0 cells).
    let enc = model.encode(held.source.view()).unwrap();
    let mean_dose = enc.known.column(1).mean().unwrap();
    assert!(
        mean_dose < 0.3,
        "predicted dose of dose-0 cells {mean_dose}"
    );

    let mut flow = FlowMatcher::new(
        FlowConfig {
            emb_dim: 32,
            n_layers: 2,
            dropout: 0.0,
            ..FlowConfig::default()
        },
        held.train.x.ncols(),
        model.embedding_dim(),
        2,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let annotations = crate::model::Annotations {
        values: held.train.concepts.view(),
        observed: held.train.observed.view(),
    };
    cbm::fit(
        &model,
        &mut flow,
        &held.train.x,
        Some(annotations),
        &train,
        2,
        &mut |_| {},
    )
    .unwrap();
    let editor = CbmFm {
        model: &model,
        flow: &flow,
        concepts: ConceptSource::Annotated,
    };
    let request = crate::model::EditRequest {
        sampling: Some(super::Sampling::default()),
        ..held.request()
    };
    let edited = editor.counterfactual(&request).unwrap();
    let (err, copy) = (held.error(&edited.x), held.copy_error());
    eprintln!("mixed CBM-FM, dose 0 -> 1: edit {err:.4}, copying {copy:.4}");
    assert!(err < 0.5 * copy, "edit {err:.4} vs copying {copy:.4}");
}
