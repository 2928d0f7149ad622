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

/// What one child process took: wall time, its own peak resident memory
/// (from `wait4`, so not the largest of all children so far) and its output.
#[derive(Debug)]
pub struct Measured {
    pub seconds: f64,
    pub peak_rss_mib: f64,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, measuring its wall time and peak RSS. Output
/// goes through temporary files so that a chatty child never blocks on a
/// full pipe while we wait for it.
pub fn run_measured(cmd: &mut Command) -> Result<Measured> {
    let dir = std::env::temp_dir();
    let tag = format!("xtask-measured-{}", std::process::id());
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let started = std::time::Instant::now();
    let child = cmd
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills; the pid is our own
    // child, not reaped elsewhere (std's `Child` only reaps when waited on).
    #[allow(unsafe_code)]
    let (reaped, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let reaped = libc::wait4(pid, &mut status, 0, &mut usage);
        (reaped, usage)
    };
    let seconds = started.elapsed().as_secs_f64();
    if reaped != pid {
        bail!(
            "waiting for {cmd:?} failed: {}",
            std::io::Error::last_os_error()
        );
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let read = |p: &std::path::Path| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        text
    };
    Ok(Measured {
        seconds,
        // Linux reports ru_maxrss in KiB.
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        success,
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}
