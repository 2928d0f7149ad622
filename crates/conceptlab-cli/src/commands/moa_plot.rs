//! The per-pathway shares of a mechanism-of-action analysis as an SVG bar
//! chart: one horizontal bar per part (direct, each pathway, interaction),
//! signed around a zero line, with its value written beside it. Plain SVG
//! text (no plotting dependency): every browser and vector editor opens it.

use std::fmt::Write as _;

use conceptlab_models::moa::Moa;

const WIDTH: f64 = 640.0;
const ROW: f64 = 28.0;
const LABEL: f64 = 220.0;
const MARGIN: f64 = 16.0;

/// Escapes the five characters XML gives meaning to.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The chart of `m`'s shares under `title`.
pub fn shares_svg(m: &Moa, title: &str) -> String {
    let mut parts: Vec<(String, f64, &str)> = vec![("direct".into(), m.direct_share, "#4c72b0")];
    parts.extend(
        m.pathways
            .iter()
            .map(|p| (p.name.clone(), p.share, "#dd8452")),
    );
    parts.push(("interaction".into(), m.interaction_share, "#8c8c8c"));
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let low = parts.iter().map(|p| finite(p.1)).fold(0.0, f64::min);
    let high = parts.iter().map(|p| finite(p.1)).fold(0.0, f64::max);
    let span = (high - low).max(1e-9);
    let plot = WIDTH - LABEL - 2.0 * MARGIN - 60.0;
    let x_of = |v: f64| LABEL + MARGIN + (v - low) / span * plot;
    let top = 2.0 * MARGIN + 12.0;
    let height = top + ROW * parts.len() as f64 + MARGIN;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN}" y="{}" font-weight="bold">{}</text>"#,
        MARGIN + 8.0,
        xml(title)
    );
    for (i, (name, share, colour)) in parts.iter().enumerate() {
        let y = top + ROW * i as f64;
        let (a, b) = (x_of(0.0), x_of(finite(*share)));
        let (x, w) = (a.min(b), (a - b).abs());
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{}">{share:.3}</text>"#,
            LABEL,
            y + ROW * 0.6,
            xml(name),
            y + 4.0,
            ROW - 8.0,
            a.max(b) + 6.0,
            y + ROW * 0.6,
        );
    }
    let zero = x_of(0.0);
    let _ = writeln!(
        svg,
        r#"<line x1="{zero:.1}" y1="{}" x2="{zero:.1}" y2="{}" stroke="black"/>"#,
        top - 2.0,
        top + ROW * parts.len() as f64
    );
    svg.push_str("</svg>\n");
    svg
}
