//! `conceptlab-cli models`: the registry's model kinds, one line each.

use anyhow::Result;
use conceptlab_models::KINDS;

pub fn run() -> Result<()> {
    let width = KINDS.iter().map(|k| k.name.len()).max().unwrap_or(0);
    let lines: Vec<String> = KINDS
        .iter()
        .map(|k| format!("{:<width$}  {}", k.name, k.summary))
        .collect();
    crate::output::emit(&lines.join("\n"))
}
