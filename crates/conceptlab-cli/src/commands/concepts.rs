//! `conceptlab-cli concepts`: gene-set (pathway-activity) scores as float obs
//! columns, so that `fit --soft` can use them as concepts.

use anyhow::Result;
use conceptlab_core::preprocess::{SetScore, score_gene_sets};
use conceptlab_core::{Column, DenseArray, Frame, NumVec, UnsValue, Values};
use conceptlab_io::{GeneSetFormat, read_gene_sets, read_h5ad, write_h5ad};
use indexmap::IndexMap;

use super::outputs::claim_file;
use crate::cli::ConceptsArgs;
use crate::exit::user_error;
use crate::settings::Settings;

/// Skipped sets named in the log line (the uns record has them all).
const SKIPPED_SHOWN: usize = 10;

pub fn run(args: &ConceptsArgs, settings: &Settings) -> Result<()> {
    let _lock = claim_file(
        &args.output,
        args.force,
        &[args.data.as_path(), args.gene_sets.as_path()],
    )?;
    let format = match &args.format {
        Some(name) => GeneSetFormat::parse(name)
            .ok_or_else(|| user_error!("--format {name}: expected one of gmt, reactome, go"))?,
        None => GeneSetFormat::from_extension(&args.gene_sets).ok_or_else(|| {
            user_error!(
                "{}: cannot tell the format from the file name; pass --format gmt|reactome|go",
                args.gene_sets.display()
            )
        })?,
    };
    let method = match args.method.as_str() {
        "reference" => SetScore::Reference {
            unit_interval: args.unit_interval,
            temp: args.temp,
        },
        "scanpy" if args.unit_interval => {
            return Err(user_error!(
                "--unit-interval applies to --method reference only"
            ));
        }
        "scanpy" => SetScore::scanpy(settings.seed),
        other => {
            return Err(user_error!(
                "--method {other}: expected `reference` or `scanpy`"
            ));
        }
    };
    if !args.temp.is_finite() || args.temp <= 0.0 {
        return Err(user_error!("--temp {}: must be a number > 0", args.temp));
    }
    let sets = read_gene_sets(&args.gene_sets, format, args.organism_prefix.as_deref())?;
    let mut data = read_h5ad(&args.data)?;
    let (x, var) = match (&args.layer, &data.raw) {
        (Some(layer), _) => (
            data.layers.get(layer).ok_or_else(|| {
                user_error!(
                    "{}: no layer `{layer}`; layers: {}",
                    args.data.display(),
                    data.layers.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?,
            &data.var,
        ),
        (None, Some(raw)) if args.raw => (&raw.x, &raw.var),
        (None, None) if args.raw => {
            return Err(user_error!(
                "{}: --raw: the file has no .raw",
                args.data.display()
            ));
        }
        (None, _) => (&data.x, &data.var),
    };
    let ids = gene_ids(var, args.gene_column.as_deref())
        .map_err(|e| user_error!("{}: {e}", args.data.display()))?;
    // The scores and their obs columns are cells x sets f64 each: refused
    // before scoring when the machine cannot hold them (GO has ~15,000 sets).
    let known: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let scored = sets
        .iter()
        .filter(|(_, genes)| genes.iter().filter(|g| known.contains(*g)).count() >= args.min_genes)
        .count();
    conceptlab_fs::memory::check(
        (data.n_obs() as u64)
            .checked_mul(scored as u64)
            .and_then(|v| v.checked_mul(16)),
        &format!("scores of {scored} gene sets x {} cells", data.n_obs()),
    )?;
    let scores = score_gene_sets(x, &ids, &sets, args.min_genes, method)
        .map_err(|e| user_error!("{}: {e}", args.data.display()))?;
    if scores.names.is_empty() {
        let matched = args.gene_column.as_deref().unwrap_or("var_names");
        return Err(user_error!(
            "{}: no gene set of {} has {} or more genes in {matched} of {} (Ensembl ids? try --gene-column)",
            args.gene_sets.display(),
            sets.len(),
            args.min_genes,
            args.data.display()
        ));
    }
    // One obs column per set. A '/' would open an HDF5 group, so it becomes '_'.
    let columns: Vec<String> = scores
        .names
        .iter()
        .map(|n| format!("{}{}", args.prefix, n.replace('/', "_")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for c in &columns {
        if !seen.insert(c) {
            return Err(user_error!(
                "{}: two sets give obs column `{c}`",
                args.gene_sets.display()
            ));
        }
        if data.obs.columns.contains_key(c) && !args.force {
            return Err(user_error!(
                "{}: obs already has a column `{c}`; pass --prefix or --force to replace it",
                args.data.display()
            ));
        }
    }
    for (p, name) in columns.iter().enumerate() {
        let values = scores.scores.column(p).to_vec();
        data.obs
            .insert(name.clone(), Column::Numeric(NumVec::F64(values)))?;
    }
    let key = if args.prefix.is_empty() {
        "conceptlab_gene_sets".to_owned()
    } else {
        format!("conceptlab_gene_sets_{}", args.prefix.trim_end_matches('_'))
    };
    data.uns
        .insert(key.clone(), record(args, &scores, &columns)?);
    if !scores.skipped.is_empty() {
        let shown: Vec<String> = scores
            .skipped
            .iter()
            .take(SKIPPED_SHOWN)
            .map(|s| format!("{} ({} of {})", s.name, s.shared, s.size))
            .collect();
        let more = scores.skipped.len().saturating_sub(SKIPPED_SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        tracing::warn!(
            "skipped {} gene sets with fewer than {} genes in the data: {}{more} (all listed in uns[\"{key}\"][\"skipped\"])",
            scores.skipped.len(),
            args.min_genes,
            shown.join(", ")
        );
    }
    write_h5ad(&data, &args.output, &settings.io.write_options())?;
    tracing::info!(
        sets = columns.len(),
        skipped = scores.skipped.len(),
        "wrote {} gene-set scores ({}) to obs of {}",
        columns.len(),
        args.method,
        args.output.display()
    );
    Ok(())
}

/// The identifiers of each gene: var_names, or the string values of a var
/// column.
fn gene_ids(var: &Frame, column: Option<&str>) -> Result<Vec<String>, String> {
    let Some(name) = column else {
        return Ok(var.index.clone());
    };
    let col = var.columns.get(name).ok_or_else(|| {
        format!(
            "var has no column `{name}`; var columns: {}",
            var.columns.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let missing = String::new;
    match col {
        Column::Strings(v) => Ok(v.clone()),
        Column::Categorical(c) => Ok((0..c.codes.len())
            .map(|i| c.label(i).unwrap_or_else(missing))
            .collect()),
        Column::Nullable {
            values: Values::Strings(v),
            mask,
        } => Ok(v
            .iter()
            .zip(mask)
            .map(|(s, &m)| if m { missing() } else { s.clone() })
            .collect()),
        other => Err(format!(
            "var column `{name}` is {}, not gene identifiers (strings)",
            other.describe()
        )),
    }
}

fn strings(values: Vec<String>) -> UnsValue {
    UnsValue::StringArray {
        shape: vec![values.len()],
        values,
    }
}

fn counts(values: impl Iterator<Item = usize>) -> Result<UnsValue> {
    let v: Vec<i64> = values.map(|n| n as i64).collect();
    Ok(UnsValue::Array(DenseArray::new(
        vec![v.len()],
        NumVec::I64(v),
    )?))
}

/// What was scored, how, and what was skipped (uns).
fn record(
    args: &ConceptsArgs,
    scores: &conceptlab_core::preprocess::SetScores,
    columns: &[String],
) -> Result<UnsValue> {
    let mut m = IndexMap::new();
    let text = |s: &str| UnsValue::String(s.to_owned());
    m.insert(
        "gene_sets_file".into(),
        text(&args.gene_sets.display().to_string()),
    );
    m.insert("method".into(), text(&args.method));
    if args.method == "reference" {
        m.insert(
            "unit_interval".into(),
            text(if args.unit_interval { "true" } else { "false" }),
        );
        m.insert(
            "temp".into(),
            UnsValue::Array(DenseArray::scalar(NumVec::F64(vec![args.temp]))?),
        );
    }
    let matrix = match &args.layer {
        Some(layer) => format!("layers/{layer}"),
        None if args.raw => "raw/X".to_owned(),
        None => "X".to_owned(),
    };
    m.insert("matrix".into(), text(&matrix));
    m.insert(
        "gene_column".into(),
        text(args.gene_column.as_deref().unwrap_or("var_names")),
    );
    m.insert(
        "min_genes".into(),
        UnsValue::Array(DenseArray::scalar(NumVec::I64(vec![
            args.min_genes as i64,
        ]))?),
    );
    m.insert("sets".into(), strings(scores.names.clone()));
    m.insert("columns".into(), strings(columns.to_vec()));
    m.insert(
        "shared_genes".into(),
        counts(scores.shared.iter().copied())?,
    );
    m.insert(
        "skipped".into(),
        strings(scores.skipped.iter().map(|s| s.name.clone()).collect()),
    );
    m.insert(
        "skipped_shared_genes".into(),
        counts(scores.skipped.iter().map(|s| s.shared))?,
    );
    m.insert(
        "skipped_size".into(),
        counts(scores.skipped.iter().map(|s| s.size))?,
    );
    Ok(UnsValue::Mapping(m))
}
