//! `cargo xtask check-cuda`: type-checks the workspace with the `cuda`
//! feature on a machine without a CUDA toolkit (docs/gpu.md).
//!
//! candle's `cuda` feature needs nvcc even under `cargo check`: cudarc's
//! build script asks nvcc for the toolkit version and candle-kernels'
//! compiles its kernels to PTX. PyPI ships nvcc, so this task keeps a venv
//! under the target directory with the three pinned packages (nvcc, NVVM and
//! the CRT headers must share a minor version: a mixed set fails in ptxas),
//! points the CUDA variables at it and runs `cargo check`. About 17 minutes
//! on one core, almost all of it nvcc: never part of CPU CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// CUDA minor release of the pip packages (cudarc 0.19 supports ≤ 13.4).
    #[arg(long, default_value = "13.2")]
    cuda: String,
    /// GPU architecture the kernels are compiled for (no nvidia-smi here to
    /// ask): 90 is the H100/H200.
    #[arg(long, default_value = "90")]
    compute_cap: String,
    /// Python that creates the venv.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Install the packages and print the environment, but do not check.
    #[arg(long)]
    setup_only: bool,
}

/// The pip packages of one CUDA minor release: the compiler, its NVVM
/// back end and CRT headers, and the runtime headers and libraries.
fn packages(cuda: &str) -> Vec<String> {
    [
        "nvidia-cuda-nvcc",
        "nvidia-nvvm",
        "nvidia-cuda-crt",
        "nvidia-cuda-runtime",
        "nvidia-cuda-cccl",
    ]
    .iter()
    .map(|p| format!("{p}=={cuda}.*"))
    .collect()
}

fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

/// The toolkit root pip made: `site-packages/nvidia/cu<major>`.
fn toolkit_root(venv: &Path, major: &str) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(&lib).with_context(|| format!("{}", lib.display()))? {
        let root = entry?
            .path()
            .join("site-packages/nvidia")
            .join(format!("cu{major}"));
        if root.join("bin/nvcc").is_file() {
            return Ok(root);
        }
    }
    bail!(
        "no nvidia/cu{major}/bin/nvcc under {}: the pip install did not provide nvcc",
        lib.display()
    )
}

pub fn run(args: &Args) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv = target.join("cuda-venv");
    let major = args
        .cuda
        .split('.')
        .next()
        .filter(|m| !m.is_empty())
        .context("--cuda: expected MAJOR.MINOR, e.g. 13.2")?;
    if !venv.join("bin/pip").is_file() {
        println!("creating {}", venv.display());
        status(Command::new(&args.python).arg("-m").arg("venv").arg(&venv))?;
    }
    println!("installing {}", packages(&args.cuda).join(" "));
    status(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages(&args.cuda)),
    )?;
    let cu = toolkit_root(&venv, major)?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(cu.join("bin")).chain(std::env::split_paths(&path)))?;
    println!(
        "PATH={}/bin:$PATH CUDA_ROOT={0} CUDA_HOME={0} CUDA_PATH={0} CUDA_COMPUTE_CAP={}",
        cu.display(),
        args.compute_cap
    );
    if args.setup_only {
        return Ok(());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = std::time::Instant::now();
    status(
        Command::new(cargo)
            .current_dir(&root)
            .env("PATH", path)
            .env("CUDA_ROOT", &cu)
            .env("CUDA_HOME", &cu)
            .env("CUDA_PATH", &cu)
            .env("CUDA_COMPUTE_CAP", &args.compute_cap)
            .args(["check", "--workspace", "--all-targets"])
            .args(["--features", "conceptlab-cli/cuda,xtask/cuda"]),
    )?;
    println!(
        "cargo check --features cuda passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
