//! One module per subcommand.

mod concepts;
mod convert;
mod demo;
mod edit;
mod encode;
mod evaluate;
mod fit;
mod inspect;
mod moa;
mod moa_plot;
mod models;
mod outputs;
mod synth;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::settings::{self, Settings};

/// Resolves settings, configures the thread pool and runs the subcommand.
pub fn run(cli: Cli) -> Result<()> {
    // The model `fit` trains decides what `[train]` defaults to.
    let kind = match &cli.command {
        Command::Fit(args) => match &args.model_type {
            Some(name) => Some(
                conceptlab_models::registry::lookup(name)
                    .map_err(|e| crate::exit::user_error!("{e}"))?
                    .kind,
            ),
            None => None,
        },
        _ => None,
    };
    let mut settings =
        settings::load_for(cli.global.config.as_deref(), &cli.global.overrides, kind)
            .map_err(|e| crate::exit::user_error!("{e:#}"))?;
    if let Some(seed) = cli.global.seed {
        settings.seed = seed;
    }
    if let Some(threads) = cli.global.threads {
        settings.threads = threads;
    }
    if let Some(device) = &cli.global.device {
        settings.device = device
            .parse()
            .map_err(|e| crate::exit::user_error!("--device: {e}"))?;
    }
    if let Some(mode) = cli.global.progress {
        settings.progress.mode = mode;
    }
    settings
        .validate()
        .map_err(|e| crate::exit::user_error!("{e:#}"))?;
    configure_threads(&settings)?;
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Convert(args) => convert::run(&args, &settings),
        Command::Synth(args) => synth::run(&args, &settings),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Fit(args) => fit::run(&args, &settings),
        Command::Encode(args) => encode::run(&args, &settings),
        Command::Concepts(args) => concepts::run(&args, &settings),
        Command::Edit(args) => edit::run(&args, &settings),
        Command::Moa(args) => moa::run(&args),
        Command::Demo(args) => demo::run(&args, &settings),
        Command::Models => models::run(),
        Command::Config => crate::output::emit(&settings::to_toml(&settings)?),
    }
}

/// Maps a model error to exit code 2, naming the data file, when the data
/// caused it.
pub fn data_error(
    path: &std::path::Path,
) -> impl Fn(conceptlab_models::ModelError) -> anyhow::Error + '_ {
    move |e| {
        if e.is_bad_input() {
            crate::exit::user_error!("{}: {e}", path.display())
        } else {
            anyhow::Error::new(e)
        }
    }
}

/// The device the `device` setting names, opened (exit 2 when it cannot be).
pub fn device(settings: &Settings) -> Result<conceptlab_nn::Device> {
    settings
        .device
        .resolve()
        .map_err(|e| crate::exit::user_error!("{e}"))
}

/// Sizes rayon's pool and candle's matrix products alike. candle reads
/// RAYON_NUM_THREADS at every product instead of using the pool, so the
/// variable is set too.
fn configure_threads(settings: &Settings) -> Result<()> {
    // Small products and rows run on one thread (see conceptlab_nn::parallel).
    conceptlab_nn::parallel::configure();
    if settings.threads > 0 {
        // SAFETY: called once from `run` before any thread of ours exists
        // (the pool is built just below), so nothing reads the environment
        // concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RAYON_NUM_THREADS", settings.threads.to_string());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(settings.threads)
            .build_global()
            .context("cannot configure the thread pool")?;
    }
    Ok(())
}
