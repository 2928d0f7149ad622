//! Claiming a command's outputs before it reads or computes anything (the
//! rules are `conceptlab_fs`'s): the returned locks are held until the
//! command has written them.

use std::path::Path;

use anyhow::Result;
use conceptlab_fs::{Claim, OutputKind, OutputLock};

use crate::exit::user_error;

/// Claims the file `output`, which must not be any of `inputs`.
pub fn claim_file(output: &Path, force: bool, inputs: &[&Path]) -> Result<OutputLock> {
    claim(output, OutputKind::File, force, inputs)
}

/// Claims the model directory `output`.
pub fn claim_dir(output: &Path, force: bool, inputs: &[&Path]) -> Result<OutputLock> {
    claim(output, OutputKind::Directory, force, inputs)
}

fn claim(output: &Path, kind: OutputKind, force: bool, inputs: &[&Path]) -> Result<OutputLock> {
    let claim = inputs
        .iter()
        .fold(Claim::new(output, kind).force(force), |c, i| c.input(i));
    Ok(claim.acquire()?)
}

/// Two outputs of one command must be two files.
pub fn distinct(a: &Path, b: &Path, what: &str) -> Result<()> {
    let same = match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    if same {
        return Err(user_error!(
            "{}: {what} must be a different file",
            b.display()
        ));
    }
    Ok(())
}
