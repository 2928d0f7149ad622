//! The library half of the `conceptlab-cli` package: its layered settings
//! (defaults < TOML < environment < overrides), which the binary and xtask
//! share so that a study run from xtask reads the same configuration keys
//! as the command line.

pub mod settings;
