//! The one training loop every trainable model uses ([`fit`]): a validation
//! split (stratified by concept pattern, or shuffled), Adam with per-epoch
//! exponential learning-rate decay, shuffled minibatches from our seeded
//! generator, an observer that sees every epoch, and early stopping that
//! restores the best weights. A model supplies only its [`Objective`]: the
//! loss of one batch and its validation score.
//!
//! The reference trains for a fixed 200 epochs with no validation; its
//! 13 M-parameter real-data model overfits data sets of a few hundred cells.
//! Here the validation loss decides when to stop, and small data sets get
//! smaller batches so an epoch is never a single optimiser step.

use std::time::Instant;

use candle_core::Tensor;
use conceptlab_core::preprocess::stratified_split;
use conceptlab_core::random::{Rng, stream_rng, streams};
use conceptlab_nn::{Adam, AdamConfig, ParamSet};
use rand::seq::SliceRandom;
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
        use crate::limits::{MAX_BATCH, MAX_EPOCHS, count};
        count("batch_size", self.batch_size, 2..=MAX_BATCH)?;
        count("max_epochs", self.max_epochs, 1..=MAX_EPOCHS)?;
        count("patience", self.patience, 0..=MAX_EPOCHS)?;
        count(
            "min_steps_per_epoch",
            self.min_steps_per_epoch,
            0..=MAX_BATCH,
        )?;
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

/// Minibatches of a shuffled order. A final batch of one cell joins the
/// previous batch: a one-cell batch has no covariance (the reference gets NaN).
fn batches(order: &[usize], batch_size: usize) -> Vec<&[usize]> {
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
struct EarlyStopping {
    patience: Option<usize>,
    best: Option<(f64, Vec<candle_core::Tensor>)>,
    best_epoch: usize,
    since_best: usize,
}

impl EarlyStopping {
    fn new(patience: Option<usize>) -> Self {
        EarlyStopping {
            patience,
            best: None,
            best_epoch: 0,
            since_best: 0,
        }
    }

    /// Records epoch `epoch`'s score (lower is better), snapshotting the
    /// weights when it is the best so far. Returns whether to stop.
    fn observe(&mut self, epoch: usize, score: f64, params: &ParamSet) -> Result<bool, ModelError> {
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
    fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Puts the best epoch's weights back.
    fn restore(self, params: &ParamSet) -> Result<(), ModelError> {
        if let Some((_, weights)) = self.best {
            params.restore(&weights)?;
        }
        Ok(())
    }
}

/// Data sets with fewer cells train on all of them: a split would leave
/// too few to score.
const MIN_CELLS_FOR_VALIDATION: usize = 20;

/// How the validation cells are chosen.
pub enum Split {
    /// Stratified by a key per cell (scCBGM: the hard-concept pattern), with
    /// the preprocessing module's per-stratum streams.
    Stratified(Vec<String>),
    /// A seeded shuffle; the first cells are held out.
    Shuffled,
}

impl Split {
    /// (training, validation) cell indices of `n` cells.
    fn indices(self, n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        let enough = n >= MIN_CELLS_FOR_VALIDATION;
        match self {
            Split::Stratified(strata) if enough => stratified_split(&strata, fraction, seed),
            Split::Stratified(_) => ((0..n).collect(), Vec::new()),
            Split::Shuffled => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut stream_rng(
                    seed ^ streams::SHUFFLED_SPLIT_SALT,
                    streams::SHUFFLED_SPLIT,
                ));
                let n_val = if enough {
                    (n as f64 * fraction).round() as usize
                } else {
                    0
                };
                let validation = order[..n_val].to_vec();
                order.drain(..n_val);
                (order, validation)
            }
        }
    }
}

/// A training set the loop can split and batch.
pub trait Rows: Sized {
    fn n_rows(&self) -> usize;
    /// The rows at `rows`, in that order.
    fn select(&self, rows: &[usize]) -> Self;
}

/// What one pass over cells measured.
pub trait Summary: Clone {
    /// The loss early stopping compares (lower is better).
    fn total(&self) -> f64;
    /// The first loss term that is NaN or infinite: training diverged.
    fn non_finite(&self) -> Option<(&'static str, f64)>;
    /// Further scores for progress displays (e.g. concept F1).
    fn scores(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

/// What a model supplies to the training loop.
pub trait Objective {
    type Data: Rows;
    type Summary: Summary;
    /// Running totals over an epoch's batches.
    type Accumulator: Default;
    /// The trainable parameters.
    fn params(&self) -> &ParamSet;
    /// The loss of the training cells `rows` of `data` (drawing noise and
    /// dropout from `rng` in step order); adds what it measured to `acc`.
    fn batch_loss(
        &self,
        data: &Self::Data,
        rows: &[usize],
        rng: &mut Rng,
        acc: &mut Self::Accumulator,
    ) -> Result<Tensor, ModelError>;
    /// The epoch's summary from its totals over `n_cells` cells.
    fn summarize(acc: Self::Accumulator, n_cells: usize) -> Self::Summary;
    /// Scores held-out cells (deterministically: no dropout, fixed noise).
    fn validate(&self, data: &Self::Data, seed: u64) -> Result<Self::Summary, ModelError>;
}

/// One finished epoch, as every observer sees it (progress bars, logs).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub validation_loss: Option<f64>,
    /// Named scores of the epoch (validation where there is a split).
    pub scores: Vec<(&'static str, f64)>,
    pub seconds: f64,
    /// Training cells the epoch passed over (throughput = cells / seconds).
    pub cells: usize,
}

/// The observer of a training run.
pub type Observer<'a> = dyn FnMut(&EpochReport) + 'a;

/// One epoch in a model's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch<S> {
    pub epoch: usize,
    pub lr: f64,
    pub train: S,
    pub validation: Option<S>,
    pub seconds: f64,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRun<S> {
    pub epochs: Vec<Epoch<S>>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub n_train: usize,
    pub n_validation: usize,
    pub batch_size: usize,
}

/// Trains `model` on `data`: splits off validation cells (`split`), runs up
/// to `max_epochs` epochs of shuffled minibatches under a decaying learning
/// rate, reports each epoch to `observer`, stops when the validation loss
/// has not improved for `patience` epochs and puts the best epoch's weights
/// back. Randomness: epoch `e` draws from [`streams::EPOCH_BASE`]` + e` of
/// `seed`, so a seed fixes every weight on a given thread count.
pub fn fit<M: Objective>(
    model: &M,
    data: &M::Data,
    split: Split,
    train: &TrainConfig,
    seed: u64,
    observer: &mut Observer,
) -> Result<TrainingRun<M::Summary>, ModelError> {
    train.validate()?;
    let (train_idx, val_idx) = split.indices(data.n_rows(), train.validation_fraction, seed);
    if train_idx.len() < 2 {
        return Err(ModelError::Input(format!(
            "need at least 2 training cells, have {}",
            train_idx.len()
        )));
    }
    let train_set = data.select(&train_idx);
    let val_set = (!val_idx.is_empty()).then(|| data.select(&val_idx));
    let batch_size = train.effective_batch_size(train_idx.len());
    let params = model.params();
    let mut adam = Adam::new(
        params,
        AdamConfig {
            lr: train.lr,
            ..AdamConfig::default()
        },
    )?;
    let mut run = TrainingRun {
        epochs: Vec::new(),
        best_epoch: 0,
        stopped_early: false,
        n_train: train_idx.len(),
        n_validation: val_idx.len(),
        batch_size,
    };
    let mut stopping = EarlyStopping::new(val_set.is_some().then_some(train.patience));
    for epoch in 0..train.max_epochs {
        let started = Instant::now();
        let lr = train.lr * train.lr_gamma.powi(epoch as i32);
        adam.set_lr(lr);
        let mut rng = stream_rng(seed, streams::EPOCH_BASE + epoch as u64);
        let mut order: Vec<usize> = (0..train_set.n_rows()).collect();
        order.shuffle(&mut rng);
        let mut acc = M::Accumulator::default();
        for batch in batches(&order, batch_size) {
            let loss = model.batch_loss(&train_set, batch, &mut rng, &mut acc)?;
            adam.step(params, &loss.backward()?)?;
        }
        let summary = M::summarize(acc, train_set.n_rows());
        if let Some((term, value)) = summary.non_finite() {
            return Err(ModelError::Diverged { epoch, term, value });
        }
        let validation = match &val_set {
            Some(v) => Some(model.validate(v, seed)?),
            None => None,
        };
        let record = Epoch {
            epoch,
            lr,
            train: summary,
            validation,
            seconds: started.elapsed().as_secs_f64(),
        };
        let shown = record.validation.as_ref().unwrap_or(&record.train);
        observer(&EpochReport {
            epoch,
            lr,
            train_loss: record.train.total(),
            validation_loss: record.validation.as_ref().map(Summary::total),
            scores: shown.scores(),
            seconds: record.seconds,
            cells: train_set.n_rows(),
        });
        let score = shown.total();
        run.epochs.push(record);
        if stopping.observe(epoch, score, params)? {
            run.stopped_early = true;
            break;
        }
    }
    run.best_epoch = stopping.best_epoch();
    stopping.restore(params)?;
    Ok(run)
}
