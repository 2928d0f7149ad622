//! Measuring a task in a child process (its JSON report, wall time, peak
//! RSS) and writing results.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Peak and current resident memory of this process, in MiB.
pub fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

pub fn run_json(cmd: &mut Command) -> Result<Value> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON output")?;
    Ok(serde_json::from_str(line)?)
}

pub fn best_of(repeats: usize, mut f: impl FnMut() -> Result<Value>) -> Result<Value> {
    let mut best: Option<Value> = None;
    for _ in 0..repeats.max(1) {
        let v = f()?;
        let better = match &best {
            None => true,
            Some(b) => v["seconds"].as_f64() < b["seconds"].as_f64(),
        };
        if better {
            best = Some(v);
        }
    }
    best.context("no measurement")
}

/// Writes `value` as pretty JSON to `relative` (from the workspace root) and
/// says where.
pub fn write_result(relative: &str, value: &Value) -> Result<()> {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::write(&out, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
