//! A named, ordered set of trainable parameters.
//!
//! Names follow the reference's PyTorch state-dict paths (`_encoder.fc_mu.weight`,
//! …) so checkpoints can be compared with, or converted from, the reference.
//! Insertion order is creation order, which fixes the order in which the
//! seeded generator initialises parameters and the optimiser visits them.

use candle_core::{DType, Device, Tensor, Var};
use indexmap::IndexMap;

use super::layers::{LayerNorm, Linear};
use crate::NnError;
use conceptlab_core::CoreError;
use conceptlab_core::random::Rng;

/// Trainable parameters by name.
#[derive(Debug)]
pub struct ParamSet {
    device: Device,
    vars: IndexMap<String, Var>,
    /// Linear weights, held as Wᵀ but exchanged as W (PyTorch's layout).
    transposed: std::collections::HashSet<String>,
}

impl ParamSet {
    /// An empty set whose parameters live on `device`.
    pub fn new(device: &Device) -> Self {
        ParamSet {
            device: device.clone(),
            vars: IndexMap::new(),
            transposed: Default::default(),
        }
    }

    /// The device parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Registers a parameter with the given initial values.
    pub fn add(
        &mut self,
        name: &str,
        values: Vec<f32>,
        shape: &[usize],
    ) -> Result<Tensor, NnError> {
        if self.vars.contains_key(name) {
            return Err(NnError::Tensor(format!("parameter `{name}` defined twice")));
        }
        let n: usize = shape.iter().product();
        if values.len() != n {
            return Err(CoreError::ShapeMismatch {
                what: format!("initial values of `{name}`"),
                expected: format!("{n}"),
                found: format!("{}", values.len()),
            }
            .into());
        }
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        let tensor = var.as_tensor().clone();
        self.vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    /// A `fan_in → fan_out` linear layer under `prefix` (`prefix.weight`,
    /// `prefix.bias`), PyTorch-default initialised.
    pub fn linear(
        &mut self,
        prefix: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Result<Linear, NnError> {
        let (w, b) = super::init::linear_init(rng, fan_in, fan_out);
        self.linear_with(prefix, fan_in, fan_out, w, b)
    }

    /// A linear layer with explicit initial weight (out × in, row-major) and bias.
    pub fn linear_with(
        &mut self,
        prefix: &str,
        fan_in: usize,
        fan_out: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Linear, NnError> {
        let name = format!("{prefix}.weight");
        if weight.len() != fan_in * fan_out {
            return Err(CoreError::ShapeMismatch {
                what: format!("initial values of `{name}`"),
                expected: format!("{}", fan_in * fan_out),
                found: format!("{}", weight.len()),
            }
            .into());
        }
        // Stored transposed (in × out); see `Linear`.
        let mut transposed = vec![0f32; weight.len()];
        for o in 0..fan_out {
            for i in 0..fan_in {
                transposed[i * fan_out + o] = weight[o * fan_in + i];
            }
        }
        let weight_t = self.add(&name, transposed, &[fan_in, fan_out])?;
        self.transposed.insert(name);
        let bias = self.add(&format!("{prefix}.bias"), bias, &[fan_out])?;
        Ok(Linear::new(weight_t, bias))
    }

    /// A layer norm over `dim` features (γ = 1, β = 0).
    pub fn layer_norm(&mut self, prefix: &str, dim: usize) -> Result<LayerNorm, NnError> {
        let gamma = self.add(&format!("{prefix}.weight"), vec![1.0; dim], &[dim])?;
        let beta = self.add(&format!("{prefix}.bias"), vec![0.0; dim], &[dim])?;
        Ok(LayerNorm::new(gamma, beta))
    }

    /// Moves every parameter of `other` into this set under `prefix.`
    /// (`prefix.x_embedder.weight`), keeping creation order and layouts: a
    /// model built from parts trains them under one optimiser and one file.
    /// The layers built on `other` keep working (they share the storage).
    pub fn absorb(&mut self, prefix: &str, other: ParamSet) -> Result<(), NnError> {
        for (name, var) in other.vars {
            let full = format!("{prefix}.{name}");
            if self.vars.contains_key(&full) {
                return Err(NnError::Tensor(format!("parameter `{full}` defined twice")));
            }
            if other.transposed.contains(&name) {
                self.transposed.insert(full.clone());
            }
            self.vars.insert(full, var);
        }
        Ok(())
    }

    /// Parameters in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of named tensors.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no parameter is registered.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn numel(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// A parameter by name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.vars.get(name).map(|v| v.as_tensor())
    }

    /// All parameters in the safetensors format (plus `extra` tensors, e.g.
    /// fixed buffers). The layout is a function of names, shapes and values
    /// only, so the same weights always give the same bytes.
    pub fn to_safetensors(&self, extra: &[(String, Tensor)]) -> Result<Vec<u8>, NnError> {
        let mut all: Vec<(String, Tensor)> = self
            .vars
            .iter()
            .map(|(k, v)| self.to_reference(k, v.as_tensor()).map(|t| (k.clone(), t)))
            .collect::<Result<_, _>>()?;
        all.extend(extra.iter().cloned());
        serialize_tensors(all)
    }

    /// Overwrites every parameter with the same-named tensor of a safetensors
    /// buffer. Every parameter must be present with its exact shape; tensors
    /// that are not parameters are returned (fixed buffers live there).
    /// Non-finite values are refused.
    pub fn load_safetensors(&self, bytes: &[u8]) -> Result<IndexMap<String, Tensor>, NnError> {
        let mut tensors: IndexMap<String, Tensor> =
            candle_core::safetensors::load_buffer(bytes, &self.device)?
                .into_iter()
                .collect();
        tensors.sort_keys();
        for (name, var) in &self.vars {
            let Some(t) = tensors.shift_remove(name) else {
                return Err(NnError::Tensor(format!(
                    "weights file lacks parameter `{name}`"
                )));
            };
            let t = if self.transposed.contains(name) {
                t.t()?.contiguous()?
            } else {
                t
            };
            if t.dims() != var.dims() {
                let reference = |d: &[usize]| {
                    let mut d = d.to_vec();
                    if self.transposed.contains(name) {
                        d.reverse();
                    }
                    format!("{d:?}")
                };
                return Err(CoreError::ShapeMismatch {
                    what: format!("parameter `{name}`"),
                    expected: reference(var.dims()),
                    found: reference(t.dims()),
                }
                .into());
            }
            let t = t.to_dtype(DType::F32)?;
            // A NaN weight would make every output NaN: refuse it here, at
            // the file, rather than write NaN cells later.
            let values = t.flatten_all()?.to_vec1::<f32>()?;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(CoreError::NonFinite {
                    what: format!("parameter `{name}` (flattened)"),
                    row: i,
                    col: 0,
                    value: values[i] as f64,
                }
                .into());
            }
            var.set(&t)?;
        }
        Ok(tensors)
    }

    /// `value` (this parameter's, or its gradient) in the reference's
    /// layout, on the CPU: linear weights as W (out × in).
    pub fn to_reference(&self, name: &str, value: &Tensor) -> Result<Tensor, NnError> {
        let t = value.to_device(&Device::Cpu)?;
        Ok(if self.transposed.contains(name) {
            t.t()?.contiguous()?
        } else {
            t
        })
    }

    /// A copy of every parameter's current values.
    pub fn snapshot(&self) -> Result<Vec<Tensor>, NnError> {
        Ok(self
            .vars
            .values()
            .map(|v| v.as_tensor().copy())
            .collect::<Result<_, _>>()?)
    }

    /// Restores values taken by [`ParamSet::snapshot`].
    pub fn restore(&self, snapshot: &[Tensor]) -> Result<(), NnError> {
        if snapshot.len() != self.vars.len() {
            return Err(NnError::Tensor(
                "snapshot does not match the parameter set".into(),
            ));
        }
        for (var, t) in self.vars.values().zip(snapshot) {
            var.set(t)?;
        }
        Ok(())
    }
}

/// Named tensors in the safetensors format, in name order: the bytes are a
/// function of names, shapes and values only.
pub fn serialize_tensors(tensors: Vec<(String, Tensor)>) -> Result<Vec<u8>, NnError> {
    // Copied to host memory here, where a failed copy is an error: candle's
    // own device-to-host copy inside the serialiser would panic instead.
    let mut tensors = tensors
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_device(&Device::Cpu)?)))
        .collect::<Result<Vec<_>, NnError>>()?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(tensors, None).map_err(|e| NnError::Tensor(e.to_string()))
}

#[cfg(test)]
mod finite_tests {
    use super::*;
    use conceptlab_core::random::stream_rng;

    #[test]
    fn weights_with_a_nan_are_refused_naming_the_parameter() {
        let mut params = ParamSet::new(&Device::Cpu);
        params.linear("layer", 3, 2, &mut stream_rng(0, 0)).unwrap();
        let good = params.to_safetensors(&[]).unwrap();
        assert!(params.load_safetensors(&good).is_ok());
        let mut tensors = candle_core::safetensors::load_buffer(&good, &Device::Cpu).unwrap();
        let name = tensors.keys().next().unwrap().clone();
        let t = &tensors[&name];
        let mut values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[1] = f32::NAN;
        let bad = Tensor::from_vec(values, t.dims(), &Device::Cpu).unwrap();
        tensors.insert(name.clone(), bad);
        let bytes = serialize_tensors(tensors.into_iter().collect()).unwrap();
        let err = params.load_safetensors(&bytes).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("non-finite"), "{err}");
    }
}
