//! From run records to the benchmark's tables: mean ± SEM over seeds per
//! (data set, held-out combination, method, metric), the mean over
//! combinations the paper's tables print, and their CSV and Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::runner::RunRecord;

/// The column of a data set's mean over its held-out combinations.
pub const MEAN_COLUMN: &str = "mean";

/// One aggregated number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub suite: String,
    pub dataset: String,
    /// A held-out combination, or [`MEAN_COLUMN`].
    pub held_out: String,
    pub method: String,
    pub label: String,
    pub metric: String,
    /// Seeds behind the number.
    pub n_seeds: usize,
    pub mean: f64,
    /// Standard error of the mean over seeds (sample standard deviation
    /// / √n); `None` with fewer than two seeds.
    pub sem: Option<f64>,
}

/// Mean and standard error of the mean (`None` below two values).
pub fn mean_sem(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    if v.len() < 2 {
        return (mean, None);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some((var / n).sqrt()))
}

/// Every (suite, data set, method, metric) key in first-seen order, with
/// its values per held-out combination (in combination order) and seed.
struct Collected {
    keys: Vec<(String, String, String, String)>,
    labels: BTreeMap<String, String>,
    /// key index → (combination index, held-out name) → seed → value.
    values: Vec<BTreeMap<(usize, String), BTreeMap<u64, f64>>>,
}

fn collect(records: &[RunRecord]) -> Collected {
    let mut c = Collected {
        keys: Vec::new(),
        labels: BTreeMap::new(),
        values: Vec::new(),
    };
    let mut put = |r: &RunRecord, method: &str, metric: &str, value: f64| {
        let key = (
            r.spec.suite.clone(),
            r.spec.dataset.clone(),
            method.to_string(),
            metric.to_string(),
        );
        let i = match c.keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                c.keys.push(key);
                c.values.push(BTreeMap::new());
                c.keys.len() - 1
            }
        };
        c.values[i]
            .entry((r.spec.combination, r.held_out.clone()))
            .or_default()
            .insert(r.spec.seed, value);
    };
    for r in records {
        for s in &r.scores {
            put(r, &s.method, "mse", s.mse);
            put(r, &s.method, "shared_mse", s.shared_mse);
        }
        for (metric, value) in &r.metrics {
            put(r, &r.spec.model, metric, *value);
        }
    }
    for r in records {
        for s in &r.scores {
            c.labels
                .entry(s.method.clone())
                .or_insert_with(|| s.label.clone());
        }
    }
    c
}

/// Mean ± SEM over seeds of every number in `records`: one row per held-out
/// combination, then the [`MEAN_COLUMN`] row, where each seed's mean over
/// the combinations it has is one value (each combination counts once, as
/// in the paper's tables).
pub fn aggregate(records: &[RunRecord]) -> Vec<Aggregate> {
    let c = collect(records);
    let mut out = Vec::new();
    for (key, per_combination) in c.keys.iter().zip(&c.values) {
        let (suite, dataset, method, metric) = key;
        let row = |held_out: &str, v: &[f64]| {
            let (mean, sem) = mean_sem(v);
            Aggregate {
                suite: suite.clone(),
                dataset: dataset.clone(),
                held_out: held_out.to_string(),
                method: method.clone(),
                label: c
                    .labels
                    .get(method)
                    .cloned()
                    .unwrap_or_else(|| method.clone()),
                metric: metric.clone(),
                n_seeds: v.len(),
                mean,
                sem,
            }
        };
        let mut by_seed: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for ((_, held_out), seeds) in per_combination {
            let v: Vec<f64> = seeds.values().copied().collect();
            out.push(row(held_out, &v));
            for (&seed, &value) in seeds {
                by_seed.entry(seed).or_default().push(value);
            }
        }
        let seed_means: Vec<f64> = by_seed
            .values()
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
            .collect();
        out.push(row(MEAN_COLUMN, &seed_means));
    }
    out
}

/// A CSV field, quoted when it must be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The aggregated rows as CSV (a header, then one line per row; an empty
/// `sem` where there is one seed). Numbers are written in full precision.
pub fn to_csv(rows: &[Aggregate]) -> String {
    let mut csv = String::from("suite,dataset,held_out,method,label,metric,n_seeds,mean,sem\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            field(&r.suite),
            field(&r.dataset),
            field(&r.held_out),
            field(&r.method),
            field(&r.label),
            field(&r.metric),
            r.n_seeds,
            r.mean,
            r.sem.map_or(String::new(), |s| s.to_string())
        );
    }
    csv
}

/// `v` with three significant digits (fixed point); `decimals` of another
/// number when given, so a SEM lines up with its mean.
fn format_value(v: f64, decimals: Option<usize>) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let d = decimals.unwrap_or_else(|| significant_decimals(v));
    format!("{v:.d$}")
}

fn significant_decimals(v: f64) -> usize {
    if v == 0.0 {
        return 3;
    }
    (2 - v.abs().log10().floor() as i64).clamp(0, 12) as usize
}

/// `mean ± sem` as the tables print it.
pub fn format_cell(a: &Aggregate) -> String {
    let d = significant_decimals(a.mean);
    match a.sem {
        Some(s) => format!(
            "{} ± {}",
            format_value(a.mean, Some(d)),
            format_value(s, Some(d))
        ),
        None => format_value(a.mean, Some(d)),
    }
}

/// The paper's layout for `metric`: one table per (suite, data set), a row
/// per method (in run order), a column per held-out combination and the
/// mean over them, each cell mean ± SEM over seeds.
pub fn to_markdown(rows: &[Aggregate], metric: &str) -> String {
    let mut tables: Vec<((&str, &str), Vec<&Aggregate>)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        let key = (r.suite.as_str(), r.dataset.as_str());
        match tables.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => tables.push((key, vec![r])),
        }
    }
    let mut md = String::new();
    for ((suite, dataset), cells) in tables {
        let mut columns: Vec<&str> = Vec::new();
        let mut methods: Vec<(&str, &str)> = Vec::new();
        for r in &cells {
            if r.held_out != MEAN_COLUMN && !columns.contains(&r.held_out.as_str()) {
                columns.push(&r.held_out);
            }
            if !methods.iter().any(|(m, _)| *m == r.method) {
                methods.push((&r.method, &r.label));
            }
        }
        columns.push(MEAN_COLUMN);
        let _ = writeln!(
            md,
            "**{dataset}** ({suite} suite), {metric}, mean ± SEM over seeds\n"
        );
        let _ = write!(md, "| method |");
        for c in &columns {
            let _ = write!(md, " {c} |");
        }
        let _ = write!(md, "\n|---|");
        for _ in &columns {
            let _ = write!(md, "---:|");
        }
        let _ = writeln!(md);
        for (method, label) in methods {
            let name = if label == method {
                format!("`{method}`")
            } else {
                format!("{label} (`{method}`)")
            };
            let _ = write!(md, "| {name} |");
            for c in &columns {
                let cell = cells
                    .iter()
                    .find(|r| r.method == method && r.held_out == *c)
                    .map_or(String::new(), |r| format_cell(r));
                let _ = write!(md, " {cell} |");
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::MethodScore;
    use crate::runner::{RunRecord, RunSpec, VERSION};

    fn record(combination: usize, model: &str, seed: u64, mse: f64) -> RunRecord {
        RunRecord {
            spec: RunSpec {
                suite: "quick".into(),
                dataset: "synthetic_1".into(),
                combination,
                model: model.into(),
                seed,
                config: serde_json::Value::Null,
            },
            version: VERSION.into(),
            held_out: format!("celltype_{combination} x concept_0"),
            scores: vec![MethodScore {
                method: model.into(),
                label: if model == "copy" {
                    "unedited cells".into()
                } else {
                    model.into()
                },
                mse,
                shared_mse: mse / 2.0,
            }],
            metrics: if model == "sccbgm" {
                vec![("concept_auroc".into(), 0.5 + mse)]
            } else {
                Vec::new()
            },
            top_genes: None,
            failures: Vec::new(),
            seconds: 1.0,
            timings: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    fn records() -> Vec<RunRecord> {
        vec![
            record(0, "copy", 0, 1.0),
            record(0, "copy", 1, 3.0),
            record(0, "copy", 2, 5.0),
            record(1, "copy", 0, 2.0),
            record(1, "copy", 1, 2.0),
            record(1, "copy", 2, 2.0),
            record(0, "sccbgm", 0, 0.25),
        ]
    }

    fn find<'a>(rows: &'a [Aggregate], method: &str, held: &str, metric: &str) -> &'a Aggregate {
        rows.iter()
            .find(|r| r.method == method && r.held_out == held && r.metric == metric)
            .unwrap()
    }

    #[test]
    fn mean_and_sem_on_known_numbers() {
        // 1, 3, 5: mean 3, sample sd 2, SEM 2/√3.
        let (m, s) = mean_sem(&[1.0, 3.0, 5.0]);
        assert_eq!(m, 3.0);
        assert!((s.unwrap() - 2.0 / 3f64.sqrt()).abs() < 1e-15);
        assert_eq!(mean_sem(&[4.0]), (4.0, None));
        let rows = aggregate(&records());
        let c0 = find(&rows, "copy", "celltype_0 x concept_0", "mse");
        assert_eq!((c0.n_seeds, c0.mean), (3, 3.0));
        assert!((c0.sem.unwrap() - 2.0 / 3f64.sqrt()).abs() < 1e-15);
        assert_eq!(
            find(&rows, "copy", "celltype_1 x concept_0", "mse").sem,
            Some(0.0)
        );
        // The mean column: per seed the mean over combinations (1.5, 2.5, 3.5),
        // then mean ± SEM over seeds: 2.5 ± 1/√3.
        let mean = find(&rows, "copy", MEAN_COLUMN, "mse");
        assert_eq!((mean.n_seeds, mean.mean), (3, 2.5));
        assert!((mean.sem.unwrap() - 1.0 / 3f64.sqrt()).abs() < 1e-15);
        assert_eq!(find(&rows, "copy", MEAN_COLUMN, "shared_mse").mean, 1.25);
        let auroc = find(&rows, "sccbgm", MEAN_COLUMN, "concept_auroc");
        assert_eq!((auroc.mean, auroc.sem), (0.75, None));
    }

    #[test]
    fn csv_has_a_header_and_one_quoted_line_per_row() {
        let mut rows = aggregate(&records());
        rows[0].label = "a, \"b\"".into();
        let csv = to_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "suite,dataset,held_out,method,label,metric,n_seeds,mean,sem"
        );
        assert_eq!(lines.len(), rows.len() + 1);
        assert!(lines[1].starts_with(
            "quick,synthetic_1,celltype_0 x concept_0,copy,\"a, \"\"b\"\"\",mse,3,3,1.1547"
        ));
        let single = csv
            .lines()
            .find(|l| l.contains("sccbgm,sccbgm,concept_auroc"))
            .unwrap();
        assert!(single.ends_with(",1,0.75,"), "{single}");
    }

    #[test]
    fn markdown_lays_out_methods_by_combination_with_the_mean_last() {
        let md = to_markdown(&aggregate(&records()), "mse");
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "**synthetic_1** (quick suite), mse, mean ± SEM over seeds"
        );
        assert_eq!(
            lines[2],
            "| method | celltype_0 x concept_0 | celltype_1 x concept_0 | mean |"
        );
        assert_eq!(lines[3], "|---|---:|---:|---:|");
        assert_eq!(
            lines[4],
            "| unedited cells (`copy`) | 3.00 ± 1.15 | 2.00 ± 0.00 | 2.50 ± 0.58 |"
        );
        assert_eq!(lines[5], "| `sccbgm` | 0.250 |  | 0.250 |");
        // A blank line after each table.
        assert_eq!(lines[6], "");
        assert_eq!(lines.len(), 7);
    }
}
