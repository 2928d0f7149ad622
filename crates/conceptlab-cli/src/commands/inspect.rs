use std::fmt::Write as _;

use anyhow::Result;
use conceptlab_io::{ColumnSummary, H5ad, MatrixInfo, Summary};
use serde_json::{Value, json};

use crate::cli::InspectArgs;
use crate::output::emit;

/// Categories listed in the text output before the rest are elided.
const MAX_LISTED_CATEGORIES: usize = 30;

pub fn run(args: &InspectArgs) -> Result<()> {
    let summary = H5ad::open(&args.file)?.summary()?;
    if args.json {
        emit(&(serde_json::to_string_pretty(&to_json(&summary))? + "\n"))
    } else {
        emit(&to_text(&summary))
    }
}

fn storage(info: &MatrixInfo) -> String {
    let kind = match info.encoding {
        "array" => "dense",
        other => other,
    };
    format!("{} x {} {kind} {}", info.shape.0, info.shape.1, info.dtype)
}

fn matrix_json(info: &MatrixInfo) -> Value {
    json!({
        "shape": [info.shape.0, info.shape.1],
        "storage": info.encoding,
        "dtype": info.dtype.name(),
        "stored_values": info.stored,
    })
}

fn named_matrices_json(items: &[(String, MatrixInfo)]) -> Value {
    Value::Object(
        items
            .iter()
            .map(|(k, i)| (k.clone(), matrix_json(i)))
            .collect(),
    )
}

fn columns_json(columns: &[ColumnSummary]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|c| {
                let mut v = json!({ "name": c.name, "dtype": c.kind, "missing": c.missing });
                if let Some(cats) = &c.categories {
                    v["n_categories"] = json!(cats.len());
                    v["categories"] = Value::Array(
                        cats.iter()
                            .map(|(label, count)| json!({ "name": label, "count": count }))
                            .collect(),
                    );
                }
                v
            })
            .collect(),
    )
}

fn to_json(s: &Summary) -> Value {
    json!({
        "file": s.path,
        "layout": if s.legacy_layout { "anndata<0.7" } else { "anndata>=0.8" },
        "n_obs": s.n_obs,
        "n_vars": s.n_vars,
        "X": matrix_json(&s.x),
        "layers": named_matrices_json(&s.layers),
        "obs": columns_json(&s.obs),
        "var": columns_json(&s.var),
        "obsm": named_matrices_json(&s.obsm),
        "varm": named_matrices_json(&s.varm),
        "obsp": named_matrices_json(&s.obsp),
        "varp": named_matrices_json(&s.varp),
        "uns": Value::Object(s.uns.iter().map(|(k, d)| (k.clone(), json!(d))).collect()),
        "raw": s.raw.as_ref().map(matrix_json),
    })
}

fn to_text(s: &Summary) -> String {
    let mut out = String::new();
    let layout = if s.legacy_layout {
        " (legacy anndata < 0.7 layout)"
    } else {
        ""
    };
    let _ = writeln!(out, "file    {}{layout}", s.path);
    let _ = writeln!(out, "shape   {} obs x {} vars", s.n_obs, s.n_vars);
    let _ = writeln!(
        out,
        "X       {} ({} stored values)",
        storage(&s.x),
        s.x.stored
    );
    if let Some(raw) = &s.raw {
        let _ = writeln!(
            out,
            "raw.X   {} ({} stored values)",
            storage(raw),
            raw.stored
        );
    }
    write_matrices(&mut out, "layers", &s.layers);
    write_columns(&mut out, "obs", &s.obs);
    write_columns(&mut out, "var", &s.var);
    write_matrices(&mut out, "obsm", &s.obsm);
    write_matrices(&mut out, "varm", &s.varm);
    write_matrices(&mut out, "obsp", &s.obsp);
    write_matrices(&mut out, "varp", &s.varp);
    if s.uns.is_empty() {
        let _ = writeln!(out, "uns     (none)");
    } else {
        let _ = writeln!(out, "uns     {} keys", s.uns.len());
        let width = s.uns.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, desc) in &s.uns {
            let _ = writeln!(out, "  {key:<width$}  {desc}");
        }
    }
    out
}

fn write_matrices(out: &mut String, title: &str, items: &[(String, MatrixInfo)]) {
    if items.is_empty() {
        let _ = writeln!(out, "{title:<7} (none)");
        return;
    }
    let _ = writeln!(out, "{title:<7} {} entries", items.len());
    let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, info) in items {
        let _ = writeln!(out, "  {key:<width$}  {}", storage(info));
    }
}

fn write_columns(out: &mut String, title: &str, columns: &[ColumnSummary]) {
    if columns.is_empty() {
        let _ = writeln!(out, "{title:<7} (no columns)");
        return;
    }
    let _ = writeln!(out, "{title:<7} {} columns", columns.len());
    let width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in columns {
        let missing = if c.missing > 0 {
            format!(", {} missing", c.missing)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {:<width$}  {}{missing}", c.name, c.kind);
        if let Some(cats) = &c.categories {
            for (label, count) in cats.iter().take(MAX_LISTED_CATEGORIES) {
                let _ = writeln!(out, "  {:<width$}    {label} ({count})", "");
            }
            if cats.len() > MAX_LISTED_CATEGORIES {
                let _ = writeln!(
                    out,
                    "  {:<width$}    ... {} more",
                    "",
                    cats.len() - MAX_LISTED_CATEGORIES
                );
            }
        }
    }
}
