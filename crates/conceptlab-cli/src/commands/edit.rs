//! `conceptlab-cli edit`: counterfactual cells by abduction → action →
//! prediction. The output holds every input cell (obs kept, var restricted
//! to the model's genes), with the edited cells' expression in X
//! (log-normalised when the model normalised), their PC scores in
//! obsm["X_pca"] when the model works on PCs, the edited concept values
//! written into obs and obs["conceptlab_edited"] marking them.

use anyhow::Result;
use conceptlab_core::preprocess::{ConceptGroup, Concepts, encode_with, select_rows};
use conceptlab_core::{CellData, Column, Frame, NumVec, UnsValue, Values};
use conceptlab_io::{read_h5ad, write_h5ad};
use conceptlab_models::checkpoint::{self, Meta};
use conceptlab_models::flow::cbm::{self, ConceptSource};
use conceptlab_models::flow::{FlowMode, Sampling};
use conceptlab_models::{ConceptModel, Residual};
use indexmap::IndexMap;
use ndarray::{Array2, Axis};

use super::convert::guard_output;
use super::encode::dense;
use super::model_data::{check_genes, expression};
use crate::cli::{EditArgs, EditGenerator, FlowModeArg, ResidualArg};
use crate::exit::user_error;
use crate::settings::Settings;

/// `column=value` pairs from repeated and comma-separated arguments.
fn assignments(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    raw.iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    user_error!("{flag} `{item}`: expected COLUMN=VALUE, e.g. stim=stimulated")
                })
        })
        .collect()
}

fn find_group<'a>(meta: &'a Meta, column: &str) -> Result<&'a ConceptGroup> {
    meta.data.concept_groups.iter().find(|g| g.column == column).ok_or_else(|| {
        let known: Vec<&str> = meta.data.concept_groups.iter().map(|g| g.column.as_str()).collect();
        user_error!(
            "--set {column}=...: `{column}` is not a concept of this model (its concepts come from: {})",
            known.join(", ")
        )
    })
}

/// Writes `value` into obs column `column` for the edited cells, so obs
/// describes the counterfactual. Returns false when the column's storage
/// cannot hold it (left unchanged).
fn set_obs(obs: &mut Frame, column: &str, value: &str, rows: &[usize]) -> bool {
    let Some(col) = obs.columns.get_mut(column) else {
        return false;
    };
    match col {
        Column::Categorical(cat) => {
            let position = match &cat.categories {
                Values::Strings(s) => s.iter().position(|c| c == value),
                Values::Numbers(n) => {
                    let target: Option<f64> = value.parse().ok();
                    n.to_f64().iter().position(|&c| Some(c) == target)
                }
            };
            let Some(code) = position else { return false };
            for &r in rows {
                cat.codes[r] = code as i32;
            }
            true
        }
        Column::Strings(s) => {
            for &r in rows {
                s[r] = value.to_string();
            }
            true
        }
        Column::Numeric(values) => set_numbers(values, value, rows),
        Column::Nullable { values, mask } => {
            let written = match values {
                Values::Strings(s) => {
                    for &r in rows {
                        s[r] = value.to_string();
                    }
                    true
                }
                Values::Numbers(n) => set_numbers(n, value, rows),
            };
            if written {
                for &r in rows {
                    mask[r] = false;
                }
            }
            written
        }
    }
}

/// Writes a number (or, for boolean columns, true/false) into `rows`,
/// keeping the column's dtype where the value fits it.
fn set_numbers(values: &mut NumVec, value: &str, rows: &[usize]) -> bool {
    if let NumVec::Bool(b) = values {
        let v = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return false,
        };
        for &r in rows {
            b[r] = v;
        }
        return true;
    }
    let Ok(v) = value.parse::<f64>() else {
        return false;
    };
    let integral = v.fract() == 0.0;
    match values {
        NumVec::F64(x) => rows.iter().for_each(|&r| x[r] = v),
        NumVec::F32(x) => rows.iter().for_each(|&r| x[r] = v as f32),
        NumVec::I64(x) if integral && v.abs() < 9e15 => rows.iter().for_each(|&r| x[r] = v as i64),
        NumVec::I32(x) if integral && v.abs() <= i32::MAX as f64 => {
            rows.iter().for_each(|&r| x[r] = v as i32)
        }
        // Other widths (or a fraction in an integer column): widen to f64.
        other => {
            let mut all = other.to_f64();
            for &r in rows {
                all[r] = v;
            }
            *other = NumVec::F64(all);
        }
    }
    true
}

/// The edited cells' concept annotations, when the flow was trained on
/// annotations. Cells without them (observed 0) fall back to the concept
/// head's predictions, as in training; so does everything when the obs
/// columns cannot be read.
fn flow_annotations(
    meta: &Meta,
    data: &CellData,
    rows: &[usize],
    path: &std::path::Path,
) -> Option<Concepts> {
    let source = meta.generator.as_ref()?.concepts;
    if source != ConceptSource::Annotated {
        return None;
    }
    match encode_with(&meta.data.concept_groups, &data.obs) {
        Ok(c) => Some(Concepts {
            values: c.values.select(Axis(0), rows),
            observed: c.observed.select(Axis(0), rows),
            ..c
        }),
        Err(e) => {
            tracing::warn!(
                "{}: the concept annotations cannot be read ({e}); the flow's condition uses \
                 the concept head's predictions instead",
                path.display()
            );
            None
        }
    }
}

pub fn run(args: &EditArgs, settings: &Settings) -> Result<()> {
    guard_output(&args.output, args.force, &[args.data.as_path()])?;
    let sets = assignments(&args.set, "--set")?;
    if sets.is_empty() {
        return Err(user_error!("say what to change with --set COLUMN=VALUE"));
    }
    let wheres = assignments(&args.r#where, "--where")?;
    let (meta, model) = checkpoint::load(&args.model)?;
    let flow = match args.generator {
        EditGenerator::ScCbgm => None,
        EditGenerator::Fm => Some(checkpoint::load_flow(&args.model, &meta)?.ok_or_else(|| {
            user_error!(
                "{}: this model has no flow generator (train one with `fit --generator fm`, \
                 or on this scCBGM with `fit DATA --generator fm --from {}`)",
                args.model.display(),
                args.model.display()
            )
        })?),
    };
    let sampling = Sampling {
        mode: match args.mode {
            FlowModeArg::Edit => FlowMode::Edit {
                t_edit: args.t_edit,
            },
            FlowModeArg::Decode => FlowMode::Decode,
        },
        solver: args.ode.solver(),
        steps: args.ode.steps,
        seed: settings.seed,
    };
    // Validate the requested edit before reading a possibly large file.
    let mut actions = Vec::new();
    for (column, value) in &sets {
        let group = find_group(&meta, column)?;
        let values = group
            .encode_value(value)
            .map_err(|e| user_error!("--set {column}={value}: {e}"))?;
        actions.push((group.columns.clone(), values));
    }
    let data: CellData = read_h5ad(&args.data)?;
    check_genes(&meta, &data, &args.data, &args.model)?;
    let mut selected = vec![true; data.n_obs()];
    for (column, value) in &wheres {
        let mask = select_rows(&data.obs, column, value)
            .map_err(|e| user_error!("{}: --where {column}={value}: {e}", args.data.display()))?;
        for (s, m) in selected.iter_mut().zip(mask) {
            *s &= m;
        }
    }
    let rows: Vec<usize> = (0..data.n_obs()).filter(|&i| selected[i]).collect();
    if rows.is_empty() {
        return Err(user_error!(
            "{}: no cell matches the --where conditions",
            args.data.display()
        ));
    }

    let pre = &meta.preprocessing;
    let matrix = expression(&data, meta.data.layer.as_deref(), &args.data)?;
    let bad_data = |e: conceptlab_models::ModelError| {
        if e.is_bad_input() {
            user_error!("{}: {e}", args.data.display())
        } else {
            anyhow::Error::new(e)
        }
    };
    let mut expr = pre.expression(matrix).map_err(bad_data)?;
    let features = pre
        .features_from_expression(expr.view())
        .map_err(bad_data)?;
    let source = features.select(Axis(0), &rows);
    let k = model.n_concepts();
    let mut values = Array2::<f32>::zeros((rows.len(), k));
    let mut mask = Array2::<f32>::zeros((rows.len(), k));
    for (range, v) in &actions {
        for r in 0..rows.len() {
            for (j, &value) in range.clone().zip(v) {
                values[[r, j]] = value;
                mask[[r, j]] = 1.0;
            }
        }
    }
    let (edited, residual) = match &flow {
        None => {
            let residual = match args.residual {
                ResidualArg::Keep => Residual::Keep,
                ResidualArg::Discard => Residual::Discard,
            };
            let edited = model.edit(source.view(), values.view(), mask.view(), residual)?;
            (edited, residual)
        }
        Some(flow) => {
            let annotations = flow_annotations(&meta, &data, &rows, &args.data);
            let (edited, evaluations) = cbm::counterfactual(
                &model,
                flow,
                source.view(),
                annotations.as_ref().map(cbm::Annotations::from),
                values.view(),
                mask.view(),
                &sampling,
            )?;
            tracing::debug!(evaluations, "flow counterfactuals");
            // An inverted-and-regenerated cell is still that cell: its
            // change is carried to the genes like a residual-keeping edit.
            // A decoded one is a new cell.
            let residual = match args.mode {
                FlowModeArg::Edit => Residual::Keep,
                FlowModeArg::Decode => Residual::Discard,
            };
            (edited, residual)
        }
    };

    // Back to genes. Keeping the residual applies the predicted change to the
    // cell's own expression, so detail outside the PCs survives too.
    let edited_expr = pre.to_expression(edited.view())?;
    let source_expr = pre.to_expression(source.view())?;
    for (i, &r) in rows.iter().enumerate() {
        let mut row = expr.row_mut(r);
        match residual {
            Residual::Keep => row += &(&edited_expr.row(i) - &source_expr.row(i)),
            Residual::Discard => row.assign(&edited_expr.row(i)),
        }
    }
    let mut scores = pre.unstandardized(features.view())?;
    let edited_scores = pre.unstandardized(edited.view())?;
    for (i, &r) in rows.iter().enumerate() {
        scores.row_mut(r).assign(&edited_scores.row(i));
    }

    let mut obs = data.obs.clone();
    for (column, value) in &sets {
        if !set_obs(&mut obs, column, value, &rows) {
            tracing::warn!(
                "obs column `{column}` could not be updated to `{value}`; obs keeps the original values"
            );
        }
    }
    obs.insert("conceptlab_edited", Column::Numeric(NumVec::Bool(selected)))?;
    let var = data.var.select(&pre.genes)?;
    let mut out = CellData::new(dense(expr)?, data.obs_names().to_vec(), var.index.clone())?;
    out.obs = obs;
    out.var = var;
    if pre.uses_pca() {
        out.obsm.insert("X_pca".into(), dense(scores)?);
    }
    out.uns = data.uns.clone();
    let strings = |v: &[(String, String)]| UnsValue::StringArray {
        shape: vec![v.len()],
        values: v.iter().map(|(k, x)| format!("{k}={x}")).collect(),
    };
    let mut record = IndexMap::new();
    record.insert(
        "model".to_string(),
        UnsValue::String(args.model.display().to_string()),
    );
    record.insert("set".to_string(), strings(&sets));
    record.insert("where".to_string(), strings(&wheres));
    record.insert(
        "residual".to_string(),
        UnsValue::String(
            if residual == Residual::Keep {
                "keep"
            } else {
                "discard"
            }
            .into(),
        ),
    );
    if flow.is_some() {
        record.insert("generator".to_string(), UnsValue::String("fm".into()));
        record.insert(
            "sampling".to_string(),
            UnsValue::String(serde_json::to_string(&sampling)?),
        );
    }
    out.uns
        .insert("conceptlab_edit".into(), UnsValue::Mapping(record));
    out.validate()?;
    write_h5ad(&out, &args.output, &settings.io.write_options())?;
    tracing::info!(
        edited = rows.len(),
        cells = out.n_obs(),
        genes = out.n_vars(),
        "wrote counterfactual cells to {}",
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_core::Categorical;

    #[test]
    fn obs_columns_of_every_storage_take_the_new_value() {
        let mut obs = Frame::with_index(vec!["a".into(), "b".into(), "c".into()]);
        let columns = [
            (
                "cat",
                Column::Categorical(Categorical::from_labels(&["x", "y", "x"])),
            ),
            (
                "str",
                Column::Strings(vec!["x".into(), "y".into(), "z".into()]),
            ),
            ("int", Column::Numeric(NumVec::I32(vec![1, 2, 3]))),
            ("flag", Column::Numeric(NumVec::Bool(vec![false; 3]))),
            (
                "nstr",
                Column::Nullable {
                    values: Values::Strings(vec!["x".into(), String::new(), "z".into()]),
                    mask: vec![false, true, false],
                },
            ),
            (
                "nint",
                Column::Nullable {
                    values: Values::Numbers(NumVec::I64(vec![1, 0, 3])),
                    mask: vec![false, true, false],
                },
            ),
        ];
        for (name, column) in columns {
            obs.insert(name, column).unwrap();
        }
        let rows = [1];
        assert!(set_obs(&mut obs, "cat", "x", &rows));
        assert!(!set_obs(&mut obs, "cat", "w", &rows), "not a category");
        assert!(set_obs(&mut obs, "str", "w", &rows));
        assert!(set_obs(&mut obs, "int", "7", &rows));
        assert!(set_obs(&mut obs, "flag", "true", &rows));
        assert!(!set_obs(&mut obs, "flag", "maybe", &rows));
        assert!(set_obs(&mut obs, "nstr", "w", &rows));
        assert!(set_obs(&mut obs, "nint", "5", &rows));
        assert!(!set_obs(&mut obs, "missing", "5", &rows));
        let col = |name: &str| obs.columns[name].clone();
        let Column::Categorical(cat) = col("cat") else {
            panic!()
        };
        assert_eq!(cat.label(1).as_deref(), Some("x"));
        assert_eq!(
            col("str"),
            Column::Strings(vec!["x".into(), "w".into(), "z".into()])
        );
        assert_eq!(
            col("int"),
            Column::Numeric(NumVec::I32(vec![1, 7, 3])),
            "dtype kept"
        );
        assert_eq!(
            col("flag"),
            Column::Numeric(NumVec::Bool(vec![false, true, false]))
        );
        assert_eq!(
            col("nstr"),
            Column::Nullable {
                values: Values::Strings(vec!["x".into(), "w".into(), "z".into()]),
                mask: vec![false; 3],
            }
        );
        assert_eq!(
            col("nint"),
            Column::Nullable {
                values: Values::Numbers(NumVec::I64(vec![1, 5, 3])),
                mask: vec![false; 3],
            }
        );
        // A fraction in an integer column widens it rather than truncating.
        assert!(set_obs(&mut obs, "int", "2.5", &rows));
        assert_eq!(
            obs.columns["int"],
            Column::Numeric(NumVec::F64(vec![1.0, 2.5, 3.0]))
        );
    }
}
