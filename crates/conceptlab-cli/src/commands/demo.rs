//! `conceptlab-cli demo`: the whole product on built-in synthetic data —
//! generate cells with known counterfactuals, train scCBGM without the
//! held-out combination, edit, and score the edit against the truth and
//! against two trivial predictors.

use anyhow::Result;
use conceptlab_synth::{Amount, Corruption, SynthConfig, benchmark_split, generate};

use crate::cli::{CorruptionArg, DemoArgs};
use crate::exit::user_error;
use crate::progress::TrainingProgress;
use crate::protocol::{self, Setup};
use crate::settings::Settings;

pub fn run(args: &DemoArgs, settings: &Settings) -> Result<()> {
    let mut config = SynthConfig::preset(&args.preset).map_err(|e| user_error!("{e}"))?;
    if let Some(n) = args.cells {
        config.n_obs = n;
    }
    if let Some(g) = args.genes {
        config.n_vars = g;
    }
    config.validate().map_err(|e| user_error!("{e}"))?;
    let started = std::time::Instant::now();
    let data = generate(&config, settings.seed)?;
    let interventions = benchmark_split(&data).map_err(|e| user_error!("{e}"))?;
    if args.intervention >= interventions.len() {
        return Err(user_error!(
            "--intervention {} does not exist: the split holds out {} combinations (0..{})",
            args.intervention,
            interventions.len(),
            interventions.len()
        ));
    }
    tracing::info!(
        cells = config.n_obs,
        genes = config.n_vars,
        concepts = config.n_concepts,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "generated synthetic data ({})",
        args.preset
    );
    let corruption = args.corrupt.map(|kind| {
        let kind = match kind {
            CorruptionArg::Drop => Corruption::Drop,
            CorruptionArg::Add => Corruption::Add { p_active: 0.5 },
            CorruptionArg::Noise => Corruption::Noise { p_noise: 0.5 },
            CorruptionArg::Duplicate => Corruption::Duplicate { n_replica: 1 },
        };
        (kind, Amount::Count(args.n_mod))
    });
    let mut train = settings.train.clone();
    if let Some(e) = args.epochs {
        train.max_epochs = e;
    }
    // The paper's synthetic benchmark scales every cell to 1214 counts
    // (Kang's median library size) and models 128 PCs.
    let mut preprocess = settings.preprocess.clone();
    preprocess.target_sum = preprocess.target_sum.or(Some(1214.0));
    let setup = Setup {
        intervention: args.intervention,
        corruption,
        cell_type_concepts: args.cell_type_concept,
        preprocess,
        model: settings.model.clone(),
        flow: args.flow.then(|| protocol::FlowSetup {
            concepts: settings.flow.concepts,
            config: settings.flow.network.clone(),
            train: settings.flow.train.clone(),
            solver: args.ode.solver(),
            steps: args.ode.steps,
            solver_study: args.solver_study,
        }),
        train,
        seed: settings.seed,
    };
    let progress = TrainingProgress::new(setup.train.max_epochs, "scCBGM");
    let (outcome, _) = protocol::run(&data, &interventions, &setup, &mut |r| progress.epoch(r))?;
    progress.finish();
    if args.json {
        return crate::output::emit(&serde_json::to_string_pretty(&outcome)?);
    }
    let auroc = |v: Option<f64>| v.map_or("n/a".to_string(), |a| format!("{a:.3}"));
    let text = format!(
        "held out: {} x {} ({} cells edited, never seen with the concept on)\n\
         trained scCBGM ({} parameters) on {} cells x {} PCs: {} epochs (best {}), {:.1} s, {:.0} cells/s\n\
         \n\
         counterfactual error (MSE to the true twins, PC space)\n\
         {:<34} {:>10.5}\n\
         {:<34} {:>10.5}\n\
         {:<34} {:>10.5}\n\
         {:<34} {:>10.5}\n\
         {:<34} {:>10.5}\n\
         \n\
         concept recovery on unseen cells: mean AUROC {}, held-out concept AUROC {}\n",
        outcome.cell_type,
        outcome.concept,
        outcome.n_edited,
        outcome.n_parameters,
        outcome.n_train,
        outcome.n_features,
        outcome.epochs,
        outcome.best_epoch,
        outcome.train_seconds,
        outcome.cells_per_second,
        "scCBGM edit (residual kept)",
        outcome.edited_residual_mse,
        "scCBGM edit (decoder output)",
        outcome.edited_mse,
        "unedited cells",
        outcome.unedited_mse,
        "shift by training mean difference",
        outcome.mean_shift_mse,
        "oracle: true mean effect (bound)",
        outcome.oracle_shift_mse,
        auroc(outcome.concept_auroc),
        auroc(outcome.target_auroc),
    );
    let mut text = text.trim_end().to_string();
    if let Some(f) = &outcome.flow {
        text.push_str(&format!(
            "\n\nflow matching ({:.0} s, {:.0} velocity evaluations per edited cell)\n\
             {:<34} {:>10.5}\n{:<34} {:>10.5}\n{:<34} {:>10.5}",
            f.train_seconds,
            f.evaluations_per_cell,
            "scCBGM-FM edit",
            f.cbm_fm_edit_mse,
            "scCBGM-FM decode",
            f.cbm_fm_decode_mse,
            "vanilla FM edit (observed concepts)",
            f.vanilla_fm_edit_mse
        ));
        if !f.solvers.is_empty() {
            text.push_str(&format!(
                "\n\nsolvers (CBM-FM edit)\n{:<22} {:>6} {:>12} {:>12} {:>12} {:>12}",
                "solver", "steps", "evals/cell", "MSE truth", "vs Euler1000", "round trip"
            ));
            for p in &f.solvers {
                text.push_str(&format!(
                    "\n{:<22} {:>6} {:>12.0} {:>12.6} {:>12.2e} {:>12.2e}",
                    solver_name(&p.solver),
                    p.steps,
                    p.evaluations_per_cell,
                    p.mse_to_truth,
                    p.mse_to_euler_1000,
                    p.round_trip_mse
                ));
            }
        }
    }
    crate::output::emit(&text)
}

fn solver_name(solver: &conceptlab_core::ode::Solver) -> String {
    use conceptlab_core::ode::Solver;
    match solver {
        Solver::Euler => "euler".into(),
        Solver::Midpoint => "midpoint".into(),
        Solver::Rk4 => "rk4".into(),
        Solver::DormandPrince { rtol, .. } => format!("dopri5 tol {rtol:.0e}"),
    }
}
