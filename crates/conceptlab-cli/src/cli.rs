//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{CompressionSetting, ProgressMode};

/// Counterfactual editing of single cells with concept-bottleneck generative models.
///
/// Reads and writes .h5ad files (AnnData). Settings come from built-in defaults,
/// then a TOML file (--config), then CONCEPTLAB_* environment variables
/// (CONCEPTLAB_IO__COMPRESSION=none), then --override KEY=VALUE, then flags.
#[derive(Debug, Parser)]
#[command(
    name = "conceptlab-cli",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Seed for every random number drawn (overrides the `seed` setting).
    #[arg(long, global = true, value_name = "N")]
    pub seed: Option<u64>,
    /// Worker threads; 0 uses one per core (overrides the `threads` setting).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Compute device: cpu, cuda, cuda:N or auto (overrides the `device` setting).
    #[arg(long, global = true, value_name = "DEVICE")]
    pub device: Option<String>,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides both -v and -q.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long jobs show progress: auto (a bar on a terminal, log lines
    /// otherwise), bar, log (INFO lines at most every `progress.log_interval_s`
    /// seconds) or none (overrides the `progress.mode` setting).
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub progress: Option<ProgressMode>,
    /// Set one configuration key, e.g. `--override io.gzip_level=6` (repeatable).
    #[arg(long = "override", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe an .h5ad file: shape, storage of X, obs/var columns with their
    /// categories, layers, obsm/varm/obsp shapes and uns keys.
    ///
    /// Reads metadata and the obs/var tables only, never the whole matrix.
    Inspect(InspectArgs),
    /// Read an .h5ad file and write it back in anndata's current encoding.
    ///
    /// Upgrades pre-0.7 files (such as scanpy's pbmc68k_reduced) and changes
    /// compression. The output is written to a temporary file and renamed, and
    /// the input is never overwritten.
    Convert(ConvertArgs),
    /// Generate a synthetic data set with exact ground-truth counterfactuals.
    ///
    /// Writes counts (X and layers/counts), obs (cell_type, tissue, batch, one
    /// boolean column per concept, intervention_<k> split labels, original_index),
    /// obsm["concepts"], uns["concept_names"], the true concept effects in
    /// varm["concept_coef"] and the seed, configuration and parameters in uns["synth"].
    /// The same seed always gives the same file.
    Synth(SynthArgs),
    /// Score predicted cells against target cells with every metric the
    /// inputs allow: distances (MMD², E-distance, Fréchet, exact W2², Sinkhorn),
    /// their ratios to the nearest training population (--train, --group-by;
    /// MMD's is scCBGM's rMMD), mean metrics and DE recall against source cells
    /// (--source), and cell-level MSE to paired ground truth (--paired-by).
    /// Works on any tool's predictions.
    Evaluate(EvaluateArgs),
    /// Train a model (scCBGM by default; `models` lists every kind) on an
    /// .h5ad file and save the model directory (weights.safetensors,
    /// preprocess.safetensors, meta.json with every file's size and sha256,
    /// history.csv), replacing an old one as a whole.
    ///
    /// Counts (non-negative integers) are normalised to the median library
    /// size and log-transformed; 128 PCs fitted on the data are modelled
    /// (see `config` for every setting: [preprocess], [model], [train]).
    /// Categorical obs columns become one-hot concepts, boolean and 0/1 ones
    /// single concepts, --soft numeric ones min-max scaled soft concepts;
    /// missing values are left out of the concept loss.
    Fit(FitArgs),
    /// Add each cell's predicted concepts and unknown code to obsm
    /// ("<key>_known_concepts", "<key>_unknown") of a copy of the data.
    Encode(EncodeArgs),
    /// Score gene sets (pathway activity) per cell and write one float obs
    /// column per set, usable as `fit --soft` concepts.
    ///
    /// Reads GMT (MSigDB), Reactome TSV or GO GAF files; genes are matched
    /// against var_names or --gene-column. `reference`: the reference's
    /// dispersion score (mean squared deviation of the set's genes from the
    /// cell's mean over all genes of the file's sets, in units of that
    /// variance; --unit-interval maps it to 1 − exp(−temp·C)). `scanpy`:
    /// scanpy's score_genes (set mean minus the mean of control genes from
    /// the same expression bins; controls drawn from --seed). Sets with fewer
    /// than --min-genes genes in the data are skipped; uns["conceptlab_gene_sets"]
    /// records what was scored and what was skipped.
    Concepts(ConceptsArgs),
    /// Counterfactual cells: encode, set concepts, decode (abduction, action,
    /// prediction). Writes the input with only the edited cells changed.
    ///
    /// Every gene, layer, obsm, varm, obsp, varp, raw and uns entry is kept,
    /// and every value outside the edited cells is the input's. The edited
    /// cells are written into the matrix the model was fitted on (X, or the
    /// layer of `fit --layer`; X is then left alone) on that matrix's scale:
    /// counts when the model normalised them (expected counts, from the
    /// cell's own library size, so integer matrices become float32), the
    /// matrix's values otherwise; genes the model does not use keep their
    /// values. obs gets the new concept values and obs["conceptlab_edited"]
    /// (the cells this or an earlier edit changed), obsm["X_conceptlab_pca"]
    /// the model's PC scores of every cell (X_pca is the user's and stays),
    /// uns["conceptlab_edit"] the request and which matrix holds the edit on
    /// what scale. An edit's output can be edited again. A model fitted on
    /// counts refuses a matrix that looks transformed since (negative, or
    /// fractional outside cells an edit changed). Never overwrites its input.
    Edit(EditArgs),
    /// Mechanism of action: split a perturbation's predicted effect on the
    /// selected cells into a direct part and the parts mediated by pathway
    /// (soft) concepts, by joint edits of a bottleneck model (scCBGM).
    ///
    /// Total: the perturbation set and every pathway moved to its perturbed
    /// level (by default its mean among the cells carrying the perturbation,
    /// --reference narrows them, --levels gives them); direct: the pathways
    /// held at the cells' own levels; mediated by a pathway: the
    /// perturbation set and only that pathway moved. Each part's share is its
    /// projection onto the total over the model's genes (the shares, with the
    /// interaction of the pathways, sum to 1). See docs of
    /// conceptlab_models::moa for the estimand and its assumptions.
    Moa(MoaArgs),
    /// Run the whole method on built-in synthetic data: generate cells with
    /// exact counterfactuals, train scCBGM without one (cell type, concept)
    /// combination, edit that combination and print the error against the
    /// truth next to the "unedited" and "mean shift" predictors.
    Demo(DemoArgs),
    /// Print the effective configuration (all layers applied) as TOML.
    Config,
    /// List the model kinds `fit --model-type` takes, one line each.
    Models,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Training data (.h5ad).
    pub data: PathBuf,
    /// obs columns to use as hard concepts (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub concepts: Vec<String>,
    /// Numeric obs columns to use as soft concepts (scaled to [0, 1]).
    #[arg(long, value_delimiter = ',')]
    pub soft: Vec<String>,
    /// Read this layer instead of X (e.g. counts).
    #[arg(long)]
    pub layer: Option<String>,
    /// Model directory to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The kind of model to train (see `conceptlab-cli models`; default:
    /// the `model.kind` setting, scCBGM). `cbm-fm` is scCBGM with the flow
    /// generator on top (= `--generator fm`).
    #[arg(long, value_name = "KIND")]
    pub model_type: Option<String>,
    /// Also train a generator on top of scCBGM: `fm` is flow matching
    /// conditioned on scCBGM's embedding [concepts, unknown] (CBM-FM; its
    /// settings are [flow] in `config`).
    #[arg(long, value_enum)]
    pub generator: Option<GeneratorArg>,
    /// Train only the generator, on the scCBGM of this model directory
    /// (its genes, preprocessing and concepts are used).
    #[arg(
        long,
        value_name = "DIR",
        requires = "generator",
        conflicts_with_all = ["concepts", "soft", "layer", "model_type"]
    )]
    pub from: Option<PathBuf>,
    /// Replace a model already in the output directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratorArg {
    /// Flow matching on scCBGM's embedding (CBM-FM).
    Fm,
}

/// How the flow's ODEs are integrated. Every flag is optional so that a
/// command can refuse one given where no flow runs (instead of ignoring it).
#[derive(Debug, Clone, Args)]
pub struct SolverArgs {
    /// ODE solver of the flow: euler (1 network evaluation per step),
    /// midpoint (2), rk4 (4; default) or dopri5 (adaptive Dormand-Prince 5(4)).
    #[arg(long, value_enum)]
    pub solver: Option<SolverArg>,
    /// Steps of each integration (default 12; dopri5: only sets the first step).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Relative tolerance of dopri5 (default 1e-3).
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Absolute tolerance of dopri5 (default 1e-3).
    #[arg(long)]
    pub atol: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SolverArg {
    Euler,
    Midpoint,
    Rk4,
    Dopri5,
}

/// Steps of each integration when `--steps` is not given.
pub const DEFAULT_STEPS: usize = 12;
const DEFAULT_TOLERANCE: f64 = 1e-3;

impl SolverArgs {
    pub fn solver(&self) -> conceptlab_nn::ode::Solver {
        use conceptlab_nn::ode::Solver;
        match self.solver.unwrap_or(SolverArg::Rk4) {
            SolverArg::Euler => Solver::Euler,
            SolverArg::Midpoint => Solver::Midpoint,
            SolverArg::Rk4 => Solver::Rk4,
            SolverArg::Dopri5 => Solver::DormandPrince {
                rtol: self.rtol.unwrap_or(DEFAULT_TOLERANCE),
                atol: self.atol.unwrap_or(DEFAULT_TOLERANCE),
            },
        }
    }

    pub fn steps(&self) -> usize {
        self.steps.unwrap_or(DEFAULT_STEPS)
    }

    /// The first flag given, for refusing them where no flow integrates.
    pub fn given(&self) -> Option<&'static str> {
        [
            (self.solver.is_some(), "--solver"),
            (self.steps.is_some(), "--steps"),
            (self.rtol.is_some(), "--rtol"),
            (self.atol.is_some(), "--atol"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// The tolerances only steer dopri5.
    pub fn tolerance_without_dopri5(&self) -> Option<&'static str> {
        if self.solver == Some(SolverArg::Dopri5) {
            return None;
        }
        [
            (self.rtol.is_some(), "--rtol"),
            (self.atol.is_some(), "--atol"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Cells to encode (.h5ad), with the genes the model was trained on.
    pub data: PathBuf,
    /// Model directory written by `fit`.
    #[arg(long)]
    pub model: PathBuf,
    /// Prefix of the obsm keys written.
    #[arg(long, default_value = "concepts")]
    pub key: String,
    /// Where to write the annotated copy.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConceptsArgs {
    /// Cells to score (.h5ad), log-normalised expression in X (or --layer).
    pub data: PathBuf,
    /// Gene-set file: GMT, Reactome TSV or GO GAF.
    #[arg(long)]
    pub gene_sets: PathBuf,
    /// Format of --gene-sets (gmt, reactome, go); default: from its
    /// extension (.gmt, .gaf, .txt/.tsv = reactome).
    #[arg(long)]
    pub format: Option<String>,
    /// Score: `reference` (the reference's dispersion score) or `scanpy`
    /// (score_genes, ctrl_size 50, 25 bins).
    #[arg(long, default_value = "reference")]
    pub method: String,
    /// Map the reference score into [0, 1) as 1 − exp(−temp·C).
    #[arg(long)]
    pub unit_interval: bool,
    /// The temperature of --unit-interval.
    #[arg(long, default_value_t = 1.0, requires = "unit_interval")]
    pub temp: f64,
    /// Skip sets with fewer genes than this in the data.
    #[arg(long, default_value_t = 5)]
    pub min_genes: usize,
    /// var column holding the identifiers the sets use (e.g. gene_ids for
    /// Ensembl ids); default: var_names.
    #[arg(long)]
    pub gene_column: Option<String>,
    /// Reactome only: keep genes starting with this (ENSG human, ENSMUSG mouse).
    #[arg(long)]
    pub organism_prefix: Option<String>,
    /// Read this layer instead of X.
    #[arg(long, conflicts_with = "raw")]
    pub layer: Option<String>,
    /// Score .raw (raw.X, genes of raw.var) instead of X, as scanpy's
    /// score_genes does by default when .raw exists (use_raw=None).
    #[arg(long)]
    pub raw: bool,
    /// Prefix of the obs columns written (column = PREFIX + set name).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Where to write the annotated copy.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace OUTPUT if it exists; also replace obs columns of the same name.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MoaArgs {
    /// Cells (.h5ad), with the genes the model was trained on and the
    /// pathway columns in obs.
    pub data: PathBuf,
    /// Model directory written by `fit` (an scCBGM with the perturbation as a
    /// hard concept and the pathways as --soft ones).
    #[arg(long)]
    pub model: PathBuf,
    /// The perturbation, as hard-concept obs column=value (e.g. stim=stim).
    #[arg(long)]
    pub perturb: String,
    /// Pathway soft-concept obs columns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pathways: Vec<String>,
    /// Analyse only cells whose obs column equals the value; repeatable.
    #[arg(long = "where")]
    pub r#where: Vec<String>,
    /// Average the perturbed pathway levels only over perturbed cells that
    /// also match column=value (e.g. the same cell type); repeatable.
    #[arg(long)]
    pub reference: Vec<String>,
    /// Perturbed pathway levels, one per pathway in obs units, comma-separated
    /// (instead of the reference cells' means).
    #[arg(long, value_delimiter = ',')]
    pub levels: Option<Vec<String>>,
    /// Genes listed by largest total effect.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Also draw the shares as an SVG bar chart here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Replace the plot file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print JSON (shares, levels, every gene's effects) instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Cells to edit (.h5ad), with the genes the model was trained on.
    pub data: PathBuf,
    /// Model directory written by `fit`.
    #[arg(long)]
    pub model: PathBuf,
    /// Concept to set, as obs column=value (a category, true/false, or a
    /// number for soft concepts); repeatable, hard and soft together. A soft
    /// concept can take its mean level in a reference group of cells:
    /// `--set IFN_score=from:stim=stimulated`.
    #[arg(long, required = true)]
    pub set: Vec<String>,
    /// Edit only cells whose obs column equals the value; repeatable (all must hold).
    #[arg(long = "where")]
    pub r#where: Vec<String>,
    /// `keep` adds each cell's reconstruction residual back, so only the
    /// predicted concept effect changes the cell; `discard` returns the
    /// decoder's output (the reference's behaviour).
    #[arg(long, value_enum, default_value = "keep")]
    pub residual: ResidualArg,
    /// What produces the edited cells: the model itself (default; for
    /// scCBGM its decoder, also spelled `sccbgm`) or `fm` (the flow trained
    /// with `fit --generator fm`).
    #[arg(long, value_enum)]
    pub generator: Option<EditGenerator>,
    /// With `--generator fm` or a flow model (raw-fm, conceptflow): `edit`
    /// (default) integrates each cell back to noise under its own concepts
    /// and forward under the new ones (the cell stays itself); `decode`
    /// integrates fresh noise under the new concepts (ConceptFlow: from its
    /// learned prior).
    #[arg(long, value_enum)]
    pub mode: Option<FlowModeArg>,
    /// With `--mode edit`: the time in [0, 1) the cell is inverted to (0 =
    /// noise, the reference and the default; larger keeps more of the cell).
    #[arg(long)]
    pub t_edit: Option<f64>,
    #[command(flatten)]
    pub ode: SolverArgs,
    /// Cells read, edited and written at a time (memory grows with it, the
    /// output does not change with it).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_rows: u64,
    /// Where to write the edited cells.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResidualArg {
    Keep,
    Discard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EditGenerator {
    #[value(name = "sccbgm")]
    ScCbgm,
    Fm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowModeArg {
    Edit,
    Decode,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Synthetic preset (see `synth --help`).
    #[arg(long, default_value = "synthetic_1")]
    pub preset: String,
    /// Number of cells to generate (default: the preset's).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Number of genes to generate (default: the preset's).
    #[arg(long)]
    pub genes: Option<usize>,
    /// Edit only this held-out combination of the benchmark split (0-based;
    /// default: every one, each with its own model).
    #[arg(long)]
    pub intervention: Option<usize>,
    /// Maximum training epochs (early stopping usually ends sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Corrupt the training concepts (never the edited one) to test robustness.
    #[arg(long, value_enum)]
    pub corrupt: Option<CorruptionArg>,
    /// Number of concept columns the corruption touches.
    #[arg(long, default_value_t = 1, requires = "corrupt")]
    pub n_mod: usize,
    /// Give the models only the generator's concepts, not each cell's type
    /// (the paper's benchmark). By default the cell type is a concept too
    /// (one-hot, never edited), as `fit --concepts stim,cell_type` would
    /// make it on real data; without it, concepts that are common in some
    /// cell types absorb those types' expression (docs/decisions/sccbgm.md).
    #[arg(long)]
    pub no_cell_type: bool,
    /// Also train flow matching on scCBGM's embedding (and on the observed
    /// concepts alone) and edit with it.
    #[arg(long)]
    pub flow: bool,
    #[command(flatten)]
    pub ode: SolverArgs,
    /// With --flow: also edit with every solver from 10-step Euler to the
    /// reference's 1000-step Euler and report error and cost of each.
    #[arg(long, requires = "flow")]
    pub solver_study: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Noisy-annotation scenarios of the paper's robustness study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CorruptionArg {
    /// Missing: remove concept columns.
    Drop,
    /// Irrelevant: add random columns.
    Add,
    /// Incorrect: flip entries of columns at random.
    Noise,
    /// Duplicated: copy columns.
    Duplicate,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Predicted cells (.h5ad).
    #[arg(long)]
    pub pred: PathBuf,
    /// True target cells (.h5ad).
    #[arg(long)]
    pub target: PathBuf,
    /// The unedited source cells (.h5ad): control for mean metrics and DE.
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Training cells (.h5ad) for ratio metrics and as DE background.
    #[arg(long, requires = "group_by")]
    pub train: Option<PathBuf>,
    /// obs column of --train that defines the training populations.
    #[arg(long, requires = "train")]
    pub group_by: Option<String>,
    /// Representation to compare: `X`, `obsm:KEY` (e.g. obsm:X_pca) or `layers:KEY`.
    #[arg(long, default_value = "X")]
    pub rep: String,
    /// obs column pairing each predicted cell with its true counterfactual
    /// (e.g. original_index) for the cell-level MSE.
    #[arg(long)]
    pub paired_by: Option<String>,
    /// Number of top differentially expressed genes (Wilcoxon, target vs
    /// source) for the top-k R² metrics.
    #[arg(long, default_value_t = 100)]
    pub top_k: usize,
    /// Exact W2 and Sinkhorn are skipped when a population exceeds this many cells.
    #[arg(long, default_value_t = 3000)]
    pub ot_max_cells: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// A built-in preset (synthetic_1, synthetic_2, synthetic_3,
    /// concept_size_{8,20,50,100,250}) or a TOML file with generator settings.
    #[arg(long, default_value = "synthetic_1")]
    pub preset: String,
    /// Number of cells (overrides the preset).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Number of genes (overrides the preset).
    #[arg(long)]
    pub genes: Option<usize>,
    /// Number of concepts (overrides the preset).
    #[arg(long)]
    pub concepts: Option<usize>,
    /// Number of held-out (cell type, concept) combinations (overrides the preset).
    #[arg(long)]
    pub hold_out: Option<usize>,
    /// Where to write the generated cells.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write the ground-truth counterfactual twins of the benchmark's
    /// edited cells here, paired with their sources by obs["original_index"].
    #[arg(long, value_name = "FILE")]
    pub counterfactuals: Option<PathBuf>,
    /// Replace output files that exist.
    #[arg(long)]
    pub force: bool,
    /// Also write the counts as an int32 `counts` layer (X already holds
    /// them, as CSR float32; the layer doubles the file).
    #[arg(long)]
    pub counts_layer: bool,
    /// Write X dense instead of CSR.
    #[arg(long)]
    pub dense: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .h5ad file.
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The .h5ad file to read.
    pub input: PathBuf,
    /// Where to write; refused if it is the input.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Compression of the written datasets (overrides `io.compression`).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionSetting>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Logs go to stderr; the level comes from RUST_LOG or from -v / -q.
pub fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
