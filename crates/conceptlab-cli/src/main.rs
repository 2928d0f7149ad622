//! `conceptlab-cli`: counterfactual editing of single cells from the command line.

mod cli;
mod commands;
mod exit;
mod output;
mod progress;

use conceptlab_cli::settings;

use std::process::ExitCode;

use clap::Parser;

// candle and the h5ad layer allocate many short-lived buffers; mimalloc is
// markedly faster than the system allocator for that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.global.verbose, args.global.quiet);
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, the whole cause chain, no backtrace.
            eprintln!("error: {err:#}");
            ExitCode::from(exit::code_for(&err))
        }
    }
}
