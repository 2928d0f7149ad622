//! Which compute device a model runs on, as the user names it
//! (`cpu`, `cuda`, `cuda:N`, `auto`), and turning that name into a candle
//! [`Device`].
//!
//! The choice is made once, by the caller (the CLI's `device` setting), and
//! handed to every model's constructor: no model picks a device itself, so
//! a CPU run stays a CPU run even on a machine with a GPU.

use std::fmt;
use std::str::FromStr;

use candle_core::{Device, DeviceLocation};
use serde::{Deserialize, Serialize};

use crate::NnError;

/// Whether this build can run on CUDA devices (the `cuda` feature).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A device as named in settings and on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The CPU (the default: results independent of the machine's GPU).
    #[default]
    Cpu,
    /// CUDA device `N` (`cuda` is `cuda:0`).
    Cuda(usize),
    /// The first CUDA device when the build has CUDA and one is present,
    /// else the CPU (with a log line saying so).
    Auto,
}

/// Largest CUDA ordinal accepted: no machine has more GPUs, and a typo
/// (`cuda:10000`) should be refused as a name, not probed.
pub const MAX_CUDA_ORDINAL: usize = 255;

impl FromStr for DeviceSpec {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self, NnError> {
        let bad = || {
            NnError::Device(format!(
                "`{s}` is not a device: expected cpu, cuda, cuda:N or auto"
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "auto" => Ok(DeviceSpec::Auto),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => {
                let n = other.strip_prefix("cuda:").ok_or_else(bad)?;
                let n: usize = n.parse().map_err(|_| bad())?;
                if n > MAX_CUDA_ORDINAL {
                    return Err(bad());
                }
                Ok(DeviceSpec::Cuda(n))
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Auto => f.write_str("auto"),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = NnError;

    fn try_from(s: String) -> Result<Self, NnError> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl DeviceSpec {
    /// The device to run on. `cuda` in a build without the `cuda` feature
    /// is an error naming the feature; `auto` then falls back to the CPU.
    pub fn resolve(self) -> Result<Device, NnError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !CUDA_BUILT {
                    return Err(NnError::Device(format!(
                        "device cuda:{n} requested, but this build has no CUDA support: \
                         rebuild with `--features cuda` (conceptlab-cli's `cuda` feature), \
                         or use --device cpu"
                    )));
                }
                Device::new_cuda(n)
                    .map_err(|e| NnError::Device(format!("cannot open CUDA device {n}: {e}")))
            }
            DeviceSpec::Auto => {
                if !CUDA_BUILT {
                    tracing::info!(
                        "device auto: this build has no CUDA support, running on the CPU"
                    );
                    return Ok(Device::Cpu);
                }
                match Device::new_cuda(0) {
                    Ok(device) => {
                        tracing::info!("device auto: running on cuda:0");
                        Ok(device)
                    }
                    Err(e) => {
                        tracing::info!(
                            "device auto: no usable CUDA device ({e}), running on the CPU"
                        );
                        Ok(Device::Cpu)
                    }
                }
            }
        }
    }
}

/// A device's name as [`DeviceSpec`] writes it (`cpu`, `cuda:0`): what a
/// checkpoint records as the device it was trained on.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_every_form() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("auto", DeviceSpec::Auto),
            ("cuda:0", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec);
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:256", "", "cpu:0"] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(
                err.contains("expected cpu, cuda, cuda:N or auto"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn serde_uses_the_names() {
        let json = serde_json::to_string(&DeviceSpec::Cuda(1)).unwrap();
        assert_eq!(json, "\"cuda:1\"");
        let back: DeviceSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, DeviceSpec::Cuda(1));
        assert!(serde_json::from_str::<DeviceSpec>("\"tpu\"").is_err());
    }

    #[test]
    fn cpu_and_auto_resolve_without_cuda() {
        assert!(DeviceSpec::Cpu.resolve().unwrap().is_cpu());
        assert_eq!(device_name(&Device::Cpu), "cpu");
        if !CUDA_BUILT {
            assert!(DeviceSpec::Auto.resolve().unwrap().is_cpu());
            let err = DeviceSpec::Cuda(0).resolve().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
