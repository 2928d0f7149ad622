//! Writing results to stdout.

use std::io::Write;

/// Writes `text` to stdout, ending with a newline. A closed pipe (`conceptlab-cli inspect f | head`)
/// ends the output quietly instead of panicking as `print!` would.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let newline: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
    match out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(newline))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
