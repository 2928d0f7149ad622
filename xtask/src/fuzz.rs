//! `cargo xtask fuzz`: a long campaign of the `.h5ad` reader's fuzz harness
//! (crates/conceptlab-io/tests/fuzz). The harness lives in that test binary
//! because its counting allocator is the binary's global allocator; this task
//! runs its ignored long campaign, optimised, with the case count and seed
//! given here, and fails when the campaign finds anything.

use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Mutated files to read.
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// Campaign seed: the same seed and count replay the same files.
    #[arg(long, default_value_t = 20_260_101)]
    seed: u64,
    /// Build the harness without optimisation (slower; what CI runs).
    #[arg(long)]
    debug: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["test", "-p", "conceptlab-io", "--test", "fuzz"]);
    if !args.debug {
        cmd.arg("--release");
    }
    cmd.args(["--", "--ignored", "--exact", "long_campaign", "--nocapture"])
        .env("FUZZ_CASES", args.cases.to_string())
        .env("FUZZ_SEED", args.seed.to_string());
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!(
            "the fuzz campaign (--cases {} --seed {}) failed: see the FAILURE lines above",
            args.cases,
            args.seed
        );
    }
    Ok(())
}
