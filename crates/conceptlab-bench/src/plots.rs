//! The benchmark's figures, drawn with `plotters` into memory (the caller
//! writes the files): per-model error bars per held-out combination, and
//! edited-vs-true mean expression of the top DE genes.
//!
//! Each figure comes as SVG and PNG. plotters draws bitmap text only
//! through system fonts (its `ttf` feature: font-kit, fontconfig), which
//! this crate does not take on: the SVG carries every label (as SVG
//! `<text>`, which the viewer renders), the PNG the same marks without any
//! text (docs/results.md).

use plotters::backend::DrawingBackend;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::BenchError;
use crate::aggregate::{Aggregate, MEAN_COLUMN};
use crate::runner::RunRecord;

/// A figure in both formats.
#[derive(Debug, Clone)]
pub struct Figure {
    pub svg: String,
    pub png: Vec<u8>,
}

const SIZE: (u32, u32) = (960, 540);

fn failed<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError::Plot(format!("{what}: {e}"))
}

type Svg<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Bitmap<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws a figure on an SVG canvas (`svg_draw`, with text) and on a PNG one
/// (`png_draw`, without): one generic drawing function called twice.
fn both(
    what: &'static str,
    svg_draw: impl Fn(&Svg) -> Result<(), BenchError>,
    png_draw: impl Fn(&Bitmap) -> Result<(), BenchError>,
) -> Result<Figure, BenchError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        svg_draw(&root)?;
        root.present().map_err(failed(what))?;
    }
    let (w, h) = SIZE;
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        png_draw(&root)?;
        root.present().map_err(failed(what))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(failed(what))?;
        writer.write_image_data(&pixels).map_err(failed(what))?;
    }
    Ok(Figure {
        svg,
        png: png_bytes,
    })
}

/// The colour of the `k`-th method.
fn colour(k: usize) -> RGBColor {
    let c = Palette99::pick(k).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Per-method mean ± SEM of `metric` for each held-out combination of
/// `dataset` (and the mean over them, last), on a log10 axis.
pub fn error_bars(rows: &[Aggregate], dataset: &str, metric: &str) -> Result<Figure, BenchError> {
    let cells: Vec<&Aggregate> = rows
        .iter()
        .filter(|r| r.dataset == dataset && r.metric == metric && r.mean > 0.0)
        .collect();
    let mut columns: Vec<String> = Vec::new();
    let mut methods: Vec<String> = Vec::new();
    for r in &cells {
        if r.held_out != MEAN_COLUMN && !columns.contains(&r.held_out) {
            columns.push(r.held_out.clone());
        }
        if !methods.contains(&r.method) {
            methods.push(r.method.clone());
        }
    }
    columns.push(MEAN_COLUMN.to_string());
    if cells.is_empty() {
        return Err(BenchError::Plot(format!(
            "error bars: no positive {metric} of {dataset}"
        )));
    }
    // (column, method index, log10 low, log10 mean, log10 high).
    let bars: Vec<(usize, usize, f64, f64, f64)> = cells
        .iter()
        .filter_map(|r| {
            let col = columns.iter().position(|c| *c == r.held_out)?;
            let k = methods.iter().position(|m| *m == r.method)?;
            let sem = r.sem.unwrap_or(0.0);
            let low = if r.mean - sem > 0.0 {
                r.mean - sem
            } else {
                r.mean
            };
            Some((col, k, low.log10(), r.mean.log10(), (r.mean + sem).log10()))
        })
        .collect();
    let lo = bars.iter().map(|b| b.2).fold(f64::INFINITY, f64::min) - 0.2;
    let hi = bars.iter().map(|b| b.4).fold(f64::NEG_INFINITY, f64::max) + 0.2;
    let m = methods.len();
    let x = move |col: usize, k: usize| {
        col as f64 + (k as f64 - (m as f64 - 1.0) / 2.0) * 0.8 / m as f64
    };
    let title = format!("{dataset}: {metric} per held-out combination (mean ± SEM over seeds)");
    let args = (&title[..], &columns[..], &methods[..], &bars[..], (lo, hi));
    both(
        "error bars",
        |root| draw_bars(root, true, args, &x, metric),
        |root| draw_bars(root, false, args, &x, metric),
    )
}

/// (title, columns, methods, bars, y range) of an error-bar figure.
type BarArgs<'a> = (
    &'a str,
    &'a [String],
    &'a [String],
    &'a [(usize, usize, f64, f64, f64)],
    (f64, f64),
);

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: bool,
    (title, columns, methods, bars, (lo, hi)): BarArgs,
    x: &dyn Fn(usize, usize) -> f64,
    metric: &str,
) -> Result<(), BenchError> {
    let err = failed("error bars");
    root.fill(&WHITE).map_err(&err)?;
    let mut builder = ChartBuilder::on(root);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(-0.5f64..(columns.len() as f64 - 0.5), lo..hi)
        .map_err(&err)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh().x_labels(0);
    if text {
        mesh.y_desc(format!("{metric} (log scale)"))
            .y_label_formatter(&|v| format!("{:.1e}", 10f64.powf(*v)));
    } else {
        mesh.y_labels(0);
    }
    mesh.draw().map_err(&err)?;
    for (k, method) in methods.iter().enumerate() {
        let c = colour(k);
        let mine: Vec<&(usize, usize, f64, f64, f64)> = bars.iter().filter(|b| b.1 == k).collect();
        chart
            .draw_series(mine.iter().map(|b| {
                PathElement::new(vec![(x(b.0, k), b.2), (x(b.0, k), b.4)], c.stroke_width(2))
            }))
            .map_err(&err)?;
        let anno = chart
            .draw_series(
                mine.iter()
                    .map(|b| Circle::new((x(b.0, k), b.3), 4, c.filled())),
            )
            .map_err(&err)?;
        if text {
            anno.label(method.as_str())
                .legend(move |(px, py)| Circle::new((px + 5, py), 4, c.filled()));
        }
    }
    // Column separators, so each combination's bars read as a group.
    chart
        .draw_series((1..columns.len()).map(|i| {
            PathElement::new(
                vec![(i as f64 - 0.5, lo), (i as f64 - 0.5, hi)],
                BLACK.mix(0.2),
            )
        }))
        .map_err(&err)?;
    if text {
        chart
            .draw_series(columns.iter().enumerate().map(|(i, name)| {
                Text::new(
                    name.clone(),
                    (i as f64 - 0.4, lo + 0.03 * (hi - lo)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(&err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
    }
    Ok(())
}

/// Edited against true mean expression of the top DE genes of every run of
/// `dataset` (each point one gene of one run), one colour per method of
/// `methods`, with the identity line: a perfect edit lies on it, the
/// unedited cells (`copy`) show how far the truth moved.
pub fn expression_scatter(
    records: &[RunRecord],
    dataset: &str,
    methods: &[String],
) -> Result<Figure, BenchError> {
    let mut points: Vec<(usize, f64, f64)> = Vec::new();
    for r in records.iter().filter(|r| r.spec.dataset == dataset) {
        let Some(top) = &r.top_genes else { continue };
        for (method, edited) in &top.methods {
            // A run also reports rows of other models (its trivial ones);
            // only each model's own run counts.
            if !r.scores.iter().any(|s| s.method == *method) {
                continue;
            }
            let Some(k) = methods.iter().position(|m| m == method) else {
                continue;
            };
            points.extend(
                top.truth
                    .iter()
                    .zip(edited)
                    .filter(|(t, e)| t.is_finite() && e.is_finite())
                    .map(|(&t, &e)| (k, t, e)),
            );
        }
    }
    if points.is_empty() {
        return Err(BenchError::Plot(format!(
            "expression scatter: no top-gene means for {dataset}"
        )));
    }
    let lo = points
        .iter()
        .map(|p| p.1.min(p.2))
        .fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .map(|p| p.1.max(p.2))
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.05 * (hi - lo).max(1e-6);
    let range = (lo - pad, hi + pad);
    let title = format!("{dataset}: mean expression of the top DE genes, edited vs true");
    both(
        "expression scatter",
        |root| draw_scatter(root, true, &title, methods, &points, range),
        |root| draw_scatter(root, false, &title, methods, &points, range),
    )
}

fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: bool,
    title: &str,
    methods: &[String],
    points: &[(usize, f64, f64)],
    (lo, hi): (f64, f64),
) -> Result<(), BenchError> {
    let err = failed("expression scatter");
    root.fill(&WHITE).map_err(&err)?;
    let mut builder = ChartBuilder::on(root);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(50)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(lo..hi, lo..hi).map_err(&err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("true mean log-normalised expression (twins)")
            .y_desc("edited cells' mean");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(&err)?;
    chart
        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.5)))
        .map_err(&err)?;
    for (k, method) in methods.iter().enumerate() {
        let c = colour(k);
        let anno = chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.0 == k)
                    .map(|p| Circle::new((p.1, p.2), 3, c.mix(0.7).filled())),
            )
            .map_err(&err)?;
        if text {
            anno.label(method.as_str())
                .legend(move |(px, py)| Circle::new((px + 5, py), 4, c.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::aggregate;
    use crate::protocol::TopGenes;
    use crate::report::MethodScore;
    use crate::runner::{RunSpec, VERSION};

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
                label: model.into(),
                mse,
                shared_mse: mse / 2.0,
            }],
            metrics: Vec::new(),
            top_genes: Some(TopGenes {
                genes: vec![0, 1, 2],
                source: vec![0.1, 0.2, 0.3],
                truth: vec![0.5, 0.1, 0.9],
                methods: vec![(model.into(), vec![0.4, 0.15, 0.8 * mse])],
            }),
            failures: Vec::new(),
            seconds: 1.0,
            timings: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    fn records() -> Vec<RunRecord> {
        let mut v = Vec::new();
        for seed in 0..3 {
            for c in 0..2 {
                v.push(record(c, "copy", seed, 0.01 + seed as f64 * 0.001));
                v.push(record(c, "sccbgm", seed, 0.002 + c as f64 * 0.001));
            }
        }
        v
    }

    /// A PNG decodes to the figure's size; an SVG is one document with the
    /// method names as text.
    fn check(figure: &Figure, names: &[&str]) {
        let decoder = png::Decoder::new(figure.png.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        // Something besides the white background was drawn.
        assert!(buf.iter().any(|&b| b < 200));
        assert!(figure.svg.starts_with("<svg"));
        assert!(figure.svg.trim_end().ends_with("</svg>"));
        for n in names {
            // plotters writes a label on a line of its own inside <text>.
            assert!(
                figure.svg.contains(&format!(">\n{n}\n</text>")),
                "{n} missing"
            );
        }
    }

    #[test]
    fn error_bars_are_valid_png_and_svg() {
        let fig = error_bars(&aggregate(&records()), "synthetic_1", "mse").unwrap();
        check(&fig, &["copy", "sccbgm", "celltype_1 x concept_0", "mean"]);
        assert!(error_bars(&aggregate(&records()), "synthetic_9", "mse").is_err());
    }

    #[test]
    fn expression_scatter_is_valid_png_and_svg() {
        let methods = vec!["copy".to_string(), "sccbgm".to_string()];
        let fig = expression_scatter(&records(), "synthetic_1", &methods).unwrap();
        check(&fig, &["copy", "sccbgm"]);
        assert!(expression_scatter(&records(), "synthetic_1", &[]).is_err());
    }
}
