//! `conceptlab-cli moa`: how much of a perturbation's predicted effect runs
//! through each pathway concept. The analysis (and its estimand) is
//! `conceptlab_models::moa`; this parses the request and renders the result.

use std::fmt::Write as _;

use anyhow::Result;
use conceptlab_io::read_h5ad;
use conceptlab_models::checkpoint;
use conceptlab_models::moa::{self, Levels, Moa, MoaSpec};
use serde_json::json;

use super::data_error;
use super::edit::assignments;
use super::outputs::claim_file;
use crate::cli::MoaArgs;
use crate::exit::user_error;

pub fn run(args: &MoaArgs) -> Result<()> {
    let _lock = args
        .plot
        .as_deref()
        .map(|plot| {
            claim_file(
                plot,
                args.force,
                &[args.data.as_path(), args.model.as_path()],
            )
        })
        .transpose()?;
    let mut perturb = assignments(std::slice::from_ref(&args.perturb), "--perturb")?;
    if perturb.len() != 1 {
        return Err(user_error!(
            "--perturb takes one COLUMN=VALUE (e.g. stim=stim), got {}",
            perturb.len()
        ));
    }
    let pathways: Vec<String> = args
        .pathways
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if pathways.is_empty() {
        return Err(user_error!(
            "name the pathway concepts with --pathways A,B,..."
        ));
    }
    let levels = match &args.levels {
        Some(given) => {
            if !args.reference.is_empty() {
                return Err(user_error!(
                    "--reference chooses the cells the levels are averaged over; with \
                     --levels there are none"
                ));
            }
            Levels::Given(given.iter().map(|v| v.trim().to_string()).collect())
        }
        None => Levels::Reference(assignments(&args.reference, "--reference")?),
    };
    let spec = MoaSpec {
        perturb: perturb.remove(0),
        pathways,
        filter: assignments(&args.r#where, "--where")?,
        levels,
    };
    let loaded = checkpoint::load(&args.model)?;
    let data = read_h5ad(&args.data)?;
    let result = moa::analyse(&loaded, &data, &spec).map_err(data_error(&args.data))?;
    for p in &result.pathways {
        if let Some(r2) = p.in_unknown.filter(|&r| r > moa::WARN_R2) {
            tracing::warn!(
                "{}: the unknown code predicts `{}` (adjusted R² {r2:.2}), so the decoder can read \
                 the pathway from it and its mediated share is likely understated; refit with a \
                 higher model.sccbgm.orthogonality_hp (docs/pathways.md)",
                args.model.display(),
                p.name
            );
        }
    }
    if let Some(plot) = &args.plot {
        let title = format!(
            "{}={}: shares of the predicted effect on {} cells",
            spec.perturb.0, spec.perturb.1, result.n_cells
        );
        conceptlab_fs::write_atomic(
            plot,
            super::moa_plot::shares_svg(&result, &title).as_bytes(),
        )?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&to_json(&result, &spec, args.top))?
    } else {
        table(&result, &spec, args.top)
    };
    crate::output::emit(&text)
}

fn to_json(m: &Moa, spec: &MoaSpec, top: usize) -> serde_json::Value {
    let per_gene = |i: usize| {
        let mut gene = json!({
            "gene": m.genes[i],
            "total": m.total[i],
            "direct": m.direct[i],
            "interaction": m.interaction[i],
        });
        for p in &m.pathways {
            gene[format!("mediated:{}", p.name)] = json!(p.mediated[i]);
        }
        gene
    };
    json!({
        "perturbation": format!("{}={}", spec.perturb.0, spec.perturb.1),
        "n_cells": m.n_cells,
        "n_reference": m.n_reference,
        "estimand": "share(X) = sum_g X_g T_g / sum_g T_g^2 over the model's genes, T the total \
                     effect (perturbation set, pathways at their perturbed levels) minus the \
                     cells' own prediction; direct: pathways held at the cells' own levels; \
                     mediated by a pathway: only it moved, with the perturbation set",
        "direct_share": m.direct_share,
        "interaction_share": m.interaction_share,
        "pathways": m.pathways.iter().map(|p| json!({
            "name": p.name,
            "share": p.share,
            "own_level": p.own_level,
            "perturbed_level": p.perturbed_level,
            "in_unknown_adjusted_r2": p.in_unknown,
        })).collect::<Vec<_>>(),
        "top_genes": m.top_genes(top).into_iter().map(per_gene).collect::<Vec<_>>(),
        "genes": (0..m.genes.len()).map(per_gene).collect::<Vec<_>>(),
    })
}

fn table(m: &Moa, spec: &MoaSpec, top: usize) -> String {
    let mut out = String::new();
    let (column, value) = &spec.perturb;
    let reference = if m.n_reference > 0 {
        format!(
            "levels: mean of up to {} cells with {column}={value}",
            m.n_reference
        )
    } else {
        "levels: given".to_string()
    };
    let _ = writeln!(
        out,
        "{column}={value} on {} cells ({reference}; levels on the model's concept scale)",
        m.n_cells
    );
    let _ = writeln!(
        out,
        "{:<24} {:>8} {:>10} {:>10} {:>12}",
        "part", "share", "own", "perturbed", "R2 from u"
    );
    let _ = writeln!(out, "{:<24} {:>8.3}", "direct", m.direct_share);
    for p in &m.pathways {
        let r2 = p.in_unknown.map_or("-".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "{:<24} {:>8.3} {:>10.3} {:>10.3} {:>12}",
            p.name, p.share, p.own_level, p.perturbed_level, r2
        );
    }
    let _ = writeln!(out, "{:<24} {:>8.3}", "interaction", m.interaction_share);
    let _ = writeln!(
        out,
        "\ntop genes by |total effect| (on the scale of the model's expression: log-normalised when it normalised counts):"
    );
    let mut header = format!("{:<20} {:>9} {:>9}", "gene", "total", "direct");
    for p in &m.pathways {
        let _ = write!(header, " {:>12}", truncate(&p.name, 12));
    }
    let _ = writeln!(out, "{header}");
    for i in m.top_genes(top) {
        let mut line = format!(
            "{:<20} {:>9.4} {:>9.4}",
            truncate(&m.genes[i], 20),
            m.total[i],
            m.direct[i]
        );
        for p in &m.pathways {
            let _ = write!(line, " {:>12.4}", p.mediated[i]);
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
