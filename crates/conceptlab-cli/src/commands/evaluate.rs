use std::path::Path;

use anyhow::Result;
use conceptlab_core::{CellData, Column, Matrix};
use conceptlab_eval::{self as eval, EvalError, Points};
use serde_json::{Map, Value, json};

use crate::cli::EvaluateArgs;
use crate::exit::user_error;
use crate::output::emit;

/// One input file, reduced to the chosen representation.
struct Cells {
    path: String,
    data: CellData,
    values: Vec<f64>,
    cols: usize,
}

impl Cells {
    fn load(path: &Path, rep: &str) -> Result<Self> {
        let data = conceptlab_io::read_h5ad(path)?;
        let shown = path.display().to_string();
        let matrix = match rep.split_once(':') {
            None if rep == "X" => &data.x,
            Some(("obsm", key)) => data.obsm.get(key).ok_or_else(|| {
                user_error!("{shown}: no `obsm/{key}` (available: {})", keys(&data.obsm))
            })?,
            Some(("layers", key)) => data.layers.get(key).ok_or_else(|| {
                user_error!(
                    "{shown}: no `layers/{key}` (available: {})",
                    keys(&data.layers)
                )
            })?,
            _ => {
                return Err(user_error!(
                    "--rep `{rep}`: expected X, obsm:KEY or layers:KEY"
                ));
            }
        };
        let (_, cols) = matrix.shape();
        let values = match matrix {
            Matrix::Dense(d) => d.data.to_f64(),
            Matrix::Sparse(s) => s.to_dense().data.to_f64(),
        };
        Ok(Self {
            path: shown,
            data,
            values,
            cols,
        })
    }

    fn points(&self) -> Result<Points<'_>> {
        Points::new(&self.path, &self.values, self.cols)
            .map_err(|e| user_error!("{}: {e}", self.path))
    }

    /// An obs column as one label per cell.
    fn labels(&self, column: &str) -> Result<Vec<String>> {
        let col = self.data.obs.columns.get(column).ok_or_else(|| {
            let names: Vec<&str> = self.data.obs.columns.keys().map(String::as_str).collect();
            user_error!(
                "{}: no obs column `{column}` (available: {})",
                self.path,
                names.join(", ")
            )
        })?;
        Ok(match col {
            Column::Strings(s) => s.clone(),
            Column::Categorical(c) => (0..c.codes.len())
                .map(|i| c.label(i).unwrap_or_default())
                .collect(),
            Column::Numeric(v) => v.to_f64().iter().map(|x| x.to_string()).collect(),
            Column::Nullable { .. } => {
                return Err(user_error!(
                    "{}: obs column `{column}` has missing values",
                    self.path
                ));
            }
        })
    }
}

fn keys(map: &indexmap::IndexMap<String, Matrix>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A metric's value, or why it was not computed (never a NaN).
fn entry(result: Result<f64, EvalError>) -> Value {
    match result {
        Ok(v) => json!(v),
        Err(e) => json!({ "skipped": e.to_string() }),
    }
}

type Metric = fn(&Points, &Points) -> Result<f64, EvalError>;

fn sinkhorn(x: &Points, y: &Points) -> Result<f64, EvalError> {
    eval::sinkhorn_divergence(x, y, 0.1)
}

fn distances(target: &Points, pred: &Points, ot_max: usize) -> Vec<(&'static str, Metric, bool)> {
    let ot_ok = target.rows() <= ot_max && pred.rows() <= ot_max;
    vec![
        ("mmd2_rbf", eval::mmd2_rbf_default as Metric, true),
        ("e_distance", eval::e_distance as Metric, true),
        ("frechet", eval::frechet_distance as Metric, true),
        ("w2_squared", eval::w2_squared as Metric, ot_ok),
        ("sinkhorn_divergence", sinkhorn as Metric, ot_ok),
    ]
}

pub fn run(args: &EvaluateArgs) -> Result<()> {
    let pred = Cells::load(&args.pred, &args.rep)?;
    let target = Cells::load(&args.target, &args.rep)?;
    let source = args
        .source
        .as_deref()
        .map(|p| Cells::load(p, &args.rep))
        .transpose()?;
    let train = args
        .train
        .as_deref()
        .map(|p| Cells::load(p, &args.rep))
        .transpose()?;
    for other in [Some(&target), source.as_ref(), train.as_ref()]
        .into_iter()
        .flatten()
    {
        if other.cols != pred.cols {
            return Err(user_error!(
                "{} has {} features in `{}` but {} has {}",
                other.path,
                other.cols,
                args.rep,
                pred.path,
                pred.cols
            ));
        }
    }
    let (p, t) = (pred.points()?, target.points()?);
    let mut report = Map::new();
    report.insert("representation".into(), json!(args.rep));
    report.insert(
        "cells".into(),
        json!({ "prediction": p.rows(), "target": t.rows() }),
    );

    let mut dist = Map::new();
    for (name, metric, allowed) in distances(&t, &p, args.ot_max_cells) {
        let value = if allowed {
            entry(metric(&t, &p))
        } else {
            json!({ "skipped": format!("more than --ot-max-cells {} cells", args.ot_max_cells) })
        };
        dist.insert(name.into(), value);
    }
    report.insert("distance_to_target".into(), Value::Object(dist));

    if let (Some(train), Some(column)) = (&train, &args.group_by) {
        let labels = train.labels(column)?;
        let tr = train.points()?;
        let mut ratios = Map::new();
        for (name, metric, allowed) in distances(&t, &p, args.ot_max_cells) {
            if !allowed {
                continue;
            }
            let value =
                match eval::nearest_group_ratio(metric, &t, &p, &tr, &labels, eval::MIN_GROUP_SIZE)
                {
                    Ok(r) => json!({
                        "ratio": r.ratio,
                        "nearest_group": r.nearest_group,
                        "nearest_group_distance": r.nearest_group_distance,
                    }),
                    Err(e) => json!({ "skipped": e.to_string() }),
                };
            ratios.insert(name.into(), value);
        }
        report.insert(format!("ratio_to_nearest_{column}"), Value::Object(ratios));
    }

    if let Some(source) = &source {
        let s = source.points()?;
        let means = match eval::mean_metrics(&t, &p, &s) {
            Ok(m) => json!({
                "r2_pearson_means": m.r2_pearson_means,
                "r2_score_means": m.r2_score_means,
                "pearson_delta": m.pearson_delta,
                "mse_means": m.mse_means,
                "mae_means": m.mae_means,
                "mse_delta": m.mse_delta,
                "mae_delta": m.mae_delta,
            }),
            Err(e) => json!({ "skipped": e.to_string() }),
        };
        report.insert("means".into(), means);
        let k = args.top_k.min(t.cols());
        let top = eval::top_de_genes(&t, &s, k)
            .and_then(|genes| eval::mean_metrics_on_genes(&t, &p, &s, &genes));
        let top = match top {
            Ok(m) => {
                json!({ "r2_pearson_means": m.r2_pearson_means, "r2_score_means": m.r2_score_means })
            }
            Err(e) => json!({ "skipped": e.to_string() }),
        };
        report.insert(format!("means_top_{k}_de_genes"), top);
        let mut copy = Map::new();
        for (name, metric, allowed) in distances(&t, &s, args.ot_max_cells) {
            if allowed {
                copy.insert(name.into(), entry(metric(&t, &s)));
            }
        }
        report.insert(
            "baseline_copy_source_distance_to_target".into(),
            Value::Object(copy),
        );
    }

    if args.rep == "X" {
        let background = train.as_ref().or(source.as_ref());
        if let Some(base) = background {
            let b = base.points()?;
            let de = match eval::de_recall(&b, &t, &p, eval::DeThresholds::default()) {
                Ok(r) => json!({
                    "background": base.path,
                    "recall_up": r.recall_up,
                    "recall_down": r.recall_down,
                    "n_true_up": r.n_true_up,
                    "n_true_down": r.n_true_down,
                    "n_predicted_up": r.n_predicted_up,
                    "n_predicted_down": r.n_predicted_down,
                }),
                Err(e) => json!({ "skipped": e.to_string() }),
            };
            report.insert("de_recall".into(), de);
        }
    }

    if let Some(column) = &args.paired_by {
        let (pk, tk) = (pred.labels(column)?, target.labels(column)?);
        report.insert(
            "cell_level_mse".into(),
            entry(eval::cell_level_mse(&p, &pk, &t, &tk)),
        );
    }

    let report = Value::Object(report);
    if args.json {
        emit(&(serde_json::to_string_pretty(&report)? + "\n"))
    } else {
        let mut text = String::new();
        table(&report, "", &mut text);
        emit(&text)
    }
}

/// Flattens the report into `key value` lines.
fn table(value: &Value, prefix: &str, out: &mut String) {
    use std::fmt::Write as _;
    let Value::Object(map) = value else { return };
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let _ = match v {
            Value::Object(inner) if !inner.contains_key("skipped") => {
                table(v, &key, out);
                Ok(())
            }
            Value::Object(inner) => {
                writeln!(
                    out,
                    "{key:<60} n/a ({})",
                    inner["skipped"].as_str().unwrap_or("")
                )
            }
            Value::Number(n) if n.is_f64() => {
                writeln!(out, "{key:<60} {:.6}", n.as_f64().unwrap_or(f64::NAN))
            }
            Value::Number(n) => writeln!(out, "{key:<60} {n}"),
            Value::Null => writeln!(out, "{key:<60} n/a"),
            Value::String(text) => writeln!(out, "{key:<60} {text}"),
            other => writeln!(out, "{key:<60} {other}"),
        };
    }
}
