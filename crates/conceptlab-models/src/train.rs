//! Training schedule shared by the models: Adam with per-epoch exponential
//! learning-rate decay, shuffled minibatches from our seeded generator, a
//! stratified validation split and early stopping that restores the best
//! weights.
//!
//! The reference trains for a fixed 200 epochs with no validation; its
//! 13 M-parameter real-data model overfits data sets of a few hundred cells.
//! Here the validation loss decides when to stop, and small data sets get
//! smaller batches so an epoch is never a single optimiser step.

use conceptlab_core::random::{Rng, stream_rng};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub lr: f64,
    /// Learning rate during epoch e is lr·γᵉ (PyTorch's `ExponentialLR`).
    pub lr_gamma: f64,
    /// Largest minibatch.
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Share of cells held out (stratified by concept pattern) to decide when
    /// to stop; 0 trains for `max_epochs` on everything.
    pub validation_fraction: f64,
    /// Batches shrink (down to 32 cells) until an epoch has at least this many
    /// optimiser steps.
    pub min_steps_per_epoch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 5e-4,
            lr_gamma: 0.997,
            batch_size: 512,
            max_epochs: 200,
            patience: 20,
            validation_fraction: 0.1,
            min_steps_per_epoch: 8,
        }
    }
}

impl TrainConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ModelError::Config(format!(
                "lr must be positive, got {}",
                self.lr
            )));
        }
        if !(self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return Err(ModelError::Config(format!(
                "lr_gamma must be in (0, 1], got {}",
                self.lr_gamma
            )));
        }
        if self.batch_size < 2 {
            return Err(ModelError::Config("batch_size must be at least 2".into()));
        }
        if self.max_epochs == 0 {
            return Err(ModelError::Config("max_epochs must be at least 1".into()));
        }
        if !(0.0..0.5).contains(&self.validation_fraction) {
            return Err(ModelError::Config(format!(
                "validation_fraction must be in [0, 0.5), got {}",
                self.validation_fraction
            )));
        }
        Ok(())
    }

    /// The batch size used for `n_train` cells.
    pub fn effective_batch_size(&self, n_train: usize) -> usize {
        let per_step = n_train.div_ceil(self.min_steps_per_epoch.max(1));
        self.batch_size.min(per_step.max(32)).max(2)
    }
}

/// Random-stream layout under one seed: weights, then one stream per
/// epoch (the validation split uses the preprocessing module's own streams) (shuffling, noise and dropout drawn in step order).
pub(crate) const INIT_STREAM: u64 = 0;
const EPOCH_STREAM_BASE: u64 = 1 << 20;

/// The generator for epoch `epoch`'s shuffling and noise.
pub(crate) fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    stream_rng(seed, EPOCH_STREAM_BASE + epoch as u64)
}

/// Minibatches of a shuffled order. A final batch of one cell joins the
/// previous batch: a one-cell batch has no covariance (the reference gets NaN).
pub(crate) fn batches(order: &[usize], batch_size: usize) -> Vec<&[usize]> {
    let mut out: Vec<&[usize]> = order.chunks(batch_size).collect();
    if out.len() >= 2 && out.last().is_some_and(|b| b.len() == 1) {
        out.pop();
        let start = (out.len() - 1) * batch_size;
        out.pop();
        out.push(&order[start..]);
    }
    out
}

/// Counts for a concept F1 score (ĉ > 0.5 on observed hard concepts).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct F1Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl F1Counts {
    pub fn add(&mut self, pred: &[f32], target: &[f32], observed: &[f32]) {
        for ((&p, &t), &o) in pred.iter().zip(target).zip(observed) {
            if o == 0.0 {
                continue;
            }
            match (p > 0.5, t > 0.5) {
                (true, true) => self.tp += 1,
                (true, false) => self.fp += 1,
                (false, true) => self.fn_ += 1,
                (false, false) => {}
            }
        }
    }

    /// Counts the first `n_hard` (hard) columns of predicted concepts
    /// against targets, where observed.
    pub fn add_hard(
        &mut self,
        pred: &candle_core::Tensor,
        target: &candle_core::Tensor,
        observed: &candle_core::Tensor,
        n_hard: usize,
    ) -> Result<(), ModelError> {
        if n_hard == 0 {
            return Ok(());
        }
        let values = |t: &candle_core::Tensor| -> Result<Vec<f32>, ModelError> {
            Ok(t.narrow(1, 0, n_hard)?.flatten_all()?.to_vec1::<f32>()?)
        };
        self.add(&values(pred)?, &values(target)?, &values(observed)?);
        Ok(())
    }

    pub fn f1(&self) -> f64 {
        let denom = 2 * self.tp + self.fp + self.fn_;
        if denom == 0 {
            1.0
        } else {
            2.0 * self.tp as f64 / denom as f64
        }
    }
}

/// Keeps the best epoch's weights and says when patience has run out.
/// Without a validation split (`patience` = `None`) training never stops
/// early, but the lowest training loss still picks the weights kept.
pub(crate) struct EarlyStopping {
    patience: Option<usize>,
    best: Option<(f64, Vec<candle_core::Tensor>)>,
    best_epoch: usize,
    since_best: usize,
}

impl EarlyStopping {
    pub fn new(patience: Option<usize>) -> Self {
        EarlyStopping {
            patience,
            best: None,
            best_epoch: 0,
            since_best: 0,
        }
    }

    /// Records epoch `epoch`'s score (lower is better), snapshotting the
    /// weights when it is the best so far. Returns whether to stop.
    pub fn observe(
        &mut self,
        epoch: usize,
        score: f64,
        params: &conceptlab_core::nn::ParamSet,
    ) -> Result<bool, ModelError> {
        if self.best.as_ref().is_none_or(|(b, _)| score < *b) {
            self.best = Some((score, params.snapshot()?));
            self.best_epoch = epoch;
            self.since_best = 0;
            return Ok(false);
        }
        self.since_best += 1;
        Ok(self.patience.is_some_and(|p| self.since_best >= p))
    }

    /// The epoch whose weights are kept.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Puts the best epoch's weights back.
    pub fn restore(self, params: &conceptlab_core::nn::ParamSet) -> Result<(), ModelError> {
        if let Some((_, weights)) = self.best {
            params.restore(&weights)?;
        }
        Ok(())
    }
}
