//! Writing results to stdout.

use std::io::Write;

/// Writes `text` to stdout. A closed pipe (`conceptlab-cli inspect f | head`)
/// ends the output quietly instead of panicking as `print!` would.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
