//! The pages' charts: inline SVG drawn from one value per time bucket (no script, no
//! image fetched), styled by the page's CSS variables so dark mode applies.

use std::fmt::Write as _;

use super::html::{date, esc};

/// An SVG chart of one value per bucket: bars, or a line with dots. `max` None = the largest.
pub(super) fn chart(
    points: &[(u64, Option<f64>)],
    bars: bool,
    max: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    label: &str,
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 22.0;
    let values: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let top = max
        .unwrap_or_else(|| values.iter().copied().fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"{H}\">",
        esc(label)
    );
    let plot_h = H - BOTTOM - 8.0;
    for i in 0..=2 {
        let y = 8.0 + plot_h * (i as f64) / 2.0;
        let v = top * (1.0 - i as f64 / 2.0);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            esc(&fmt(v))
        );
    }
    let n = points.len().max(1) as f64;
    let step = (W - LEFT) / n;
    let mut line = String::new();
    for (i, (start, v)) in points.iter().enumerate() {
        let x = LEFT + step * i as f64;
        if let Some(v) = v {
            let h = (v / top).clamp(0.0, 1.0) * plot_h;
            let y = 8.0 + plot_h - h;
            if bars {
                let _ = write!(
                    svg,
                    "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>",
                    x + step * 0.1,
                    (step * 0.8).max(1.0),
                    date(*start, true),
                    esc(&fmt(*v))
                );
            } else {
                let cx = x + step / 2.0;
                let _ = write!(
                    line,
                    "{}{cx:.1},{y:.1}",
                    if line.is_empty() { "" } else { " " }
                );
                if points.len() <= 60 {
                    let _ = write!(
                        svg,
                        "<circle class=\"dot\" cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {}</title></circle>",
                        date(*start, true),
                        esc(&fmt(*v))
                    );
                }
            }
        }
    }
    if !line.is_empty() {
        let _ = write!(svg, "<polyline class=\"line\" points=\"{line}\"/>");
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{W}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - 6.0,
            date(first.0, false),
            H - 6.0,
            date(last.0, false)
        );
    }
    svg.push_str("</svg>");
    svg
}
