//! PyTorch's `nn.BatchNorm1d(dim, eps, momentum)` over a (batch × dim)
//! tensor: affine γ, β; in training the batch's own mean and biased
//! variance normalise it (gradients flow through both) and the running
//! statistics move towards the batch's; in evaluation the running
//! statistics normalise.
//!
//! Momentum is PyTorch's convention: the weight of the *new* batch,
//! `running = (1 − momentum)·running + momentum·batch` (0.1 in PyTorch;
//! Keras/TensorFlow use the opposite convention, 0.99). The running
//! variance is updated with the unbiased batch variance, as PyTorch does.
//!
//! The running statistics are held in the [`ParamSet`] as
//! `NAME.running_mean` / `NAME.running_var` (PyTorch's state-dict names), so
//! they are saved in and loaded from checkpoints, and early stopping's
//! snapshot restores them with the weights they belong to. They never
//! receive a gradient, so the optimiser leaves them alone.

use candle_core::{Tensor, Var};

use crate::{NnError, ParamSet};

/// One batch-normalisation layer.
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    momentum: f64,
    eps: f64,
}

fn var_of(params: &ParamSet, name: &str) -> Result<Var, NnError> {
    params
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| NnError::Tensor(format!("parameter `{name}` was not registered")))
}

impl BatchNorm1d {
    /// A layer over `dim` features registered under `name` (γ = 1, β = 0,
    /// running mean 0, running variance 1, as PyTorch initialises them).
    /// `momentum` in (0, 1] is the weight of each new batch; `eps` > 0 is
    /// added to the variance.
    pub fn new(
        params: &mut ParamSet,
        name: &str,
        dim: usize,
        momentum: f64,
        eps: f64,
    ) -> Result<Self, NnError> {
        let valid = momentum > 0.0 && momentum <= 1.0 && eps > 0.0 && eps.is_finite();
        if !valid {
            return Err(NnError::Tensor(format!(
                "batch norm `{name}`: momentum must be in (0, 1] and eps positive, got {momentum} and {eps}"
            )));
        }
        let gamma = params.add(&format!("{name}.weight"), vec![1.0; dim], &[dim])?;
        let beta = params.add(&format!("{name}.bias"), vec![0.0; dim], &[dim])?;
        let mean_name = format!("{name}.running_mean");
        let var_name = format!("{name}.running_var");
        params.add(&mean_name, vec![0.0; dim], &[dim])?;
        params.add(&var_name, vec![1.0; dim], &[dim])?;
        Ok(BatchNorm1d {
            gamma,
            beta,
            running_mean: var_of(params, &mean_name)?,
            running_var: var_of(params, &var_name)?,
            momentum,
            eps,
        })
    }

    /// Normalises `x` (batch × dim): with the batch's statistics (updating
    /// the running ones) when `train`, else with the running statistics.
    /// Training needs at least two rows (PyTorch refuses one as well: its
    /// variance is 0 and its unbiased variance undefined).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, NnError> {
        let (mean, var) = if train {
            let n = x.dim(0)?;
            if n < 2 {
                return Err(NnError::Tensor(format!(
                    "batch norm in training needs at least 2 rows, got {n}"
                )));
            }
            let mean = x.mean_keepdim(0)?;
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
            let m = self.momentum;
            let unbiased = (var.detach() * (n as f64 / (n as f64 - 1.0)))?.squeeze(0)?;
            let new_mean = ((self.running_mean.as_tensor().detach() * (1.0 - m))?
                + (mean.detach().squeeze(0)? * m)?)?;
            let new_var = ((self.running_var.as_tensor().detach() * (1.0 - m))? + (unbiased * m)?)?;
            self.running_mean.set(&new_mean)?;
            self.running_var.set(&new_var)?;
            (mean, var)
        } else {
            (
                self.running_mean.as_tensor().detach().unsqueeze(0)?,
                self.running_var.as_tensor().detach().unsqueeze(0)?,
            )
        };
        let normed = x
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(normed
            .broadcast_mul(&self.gamma.unsqueeze(0)?)?
            .broadcast_add(&self.beta.unsqueeze(0)?)?)
    }

    /// The running mean and variance (for inspection and tests).
    pub fn running_stats(&self) -> (&Tensor, &Tensor) {
        (self.running_mean.as_tensor(), self.running_var.as_tensor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use serde_json::Value;

    fn flat(v: &Value) -> Vec<f32> {
        match v {
            Value::Array(a) => a.iter().flat_map(flat).collect(),
            Value::Number(n) => vec![n.as_f64().unwrap() as f32],
            other => panic!("not numeric: {other}"),
        }
    }

    fn close(what: &str, got: &Tensor, want: &Value) {
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = flat(want);
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 2e-5 * w.abs().max(1.0),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// Training and evaluation outputs, running statistics and gradients
    /// against `scripts/python/golden_batch_norm.py`.
    #[test]
    fn matches_numpy_in_training_and_evaluation() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/batch_norm_golden.json"
        );
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let input = |k: &str, rows: usize| {
            let v = flat(&json["inputs"][k]);
            let cols = v.len() / rows;
            Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
        };
        let mut params = ParamSet::new(&Device::Cpu);
        let bn = BatchNorm1d::new(&mut params, "bn", 4, 0.1, 1e-5).unwrap();
        let bytes = crate::serialize_tensors(vec![
            ("bn.weight".into(), input("gamma", 1).squeeze(0).unwrap()),
            ("bn.bias".into(), input("beta", 1).squeeze(0).unwrap()),
            (
                "bn.running_mean".into(),
                Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
            ),
            (
                "bn.running_var".into(),
                Tensor::ones(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
            ),
        ])
        .unwrap();
        params.load_safetensors(&bytes).unwrap();
        let x1 = Var::from_tensor(&input("x1", 6)).unwrap();
        let y1 = bn.forward(x1.as_tensor(), true).unwrap();
        close("train1 y", &y1, &json["train1"]["y"]);
        close(
            "train1 mean",
            bn.running_stats().0,
            &json["train1"]["running_mean"],
        );
        close(
            "train1 var",
            bn.running_stats().1,
            &json["train1"]["running_var"],
        );
        let grads = y1
            .mul(&input("w", 6))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(
            "grad x",
            grads.get(x1.as_tensor()).unwrap(),
            &json["grad"]["x"],
        );
        close(
            "grad gamma",
            grads.get(params.get("bn.weight").unwrap()).unwrap(),
            &json["grad"]["gamma"],
        );
        close(
            "grad beta",
            grads.get(params.get("bn.bias").unwrap()).unwrap(),
            &json["grad"]["beta"],
        );
        assert!(grads.get(params.get("bn.running_mean").unwrap()).is_none());
        let y2 = bn.forward(&input("x2", 6), true).unwrap();
        close("train2 y", &y2, &json["train2"]["y"]);
        close(
            "train2 var",
            bn.running_stats().1,
            &json["train2"]["running_var"],
        );
        // Evaluation reads the running statistics and leaves them alone.
        let y3 = bn.forward(&input("x3", 6), false).unwrap();
        close("eval y", &y3, &json["eval"]["y"]);
        close(
            "eval var",
            bn.running_stats().1,
            &json["train2"]["running_var"],
        );
        // They travel with the parameters.
        let saved = params.to_safetensors(&[]).unwrap();
        let mut fresh = ParamSet::new(&Device::Cpu);
        let other = BatchNorm1d::new(&mut fresh, "bn", 4, 0.1, 1e-5).unwrap();
        fresh.load_safetensors(&saved).unwrap();
        close(
            "loaded eval",
            &other.forward(&input("x3", 6), false).unwrap(),
            &json["eval"]["y"],
        );
    }

    #[test]
    fn bad_settings_and_one_row_batches_are_refused() {
        let mut params = ParamSet::new(&Device::Cpu);
        assert!(BatchNorm1d::new(&mut params, "a", 3, 0.0, 1e-5).is_err());
        assert!(BatchNorm1d::new(&mut params, "b", 3, 0.1, 0.0).is_err());
        let bn = BatchNorm1d::new(&mut params, "c", 3, 0.1, 1e-5).unwrap();
        let one = Tensor::ones((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(bn.forward(&one, true).is_err());
        assert!(bn.forward(&one, false).is_ok());
    }
}
