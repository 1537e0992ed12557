//! The loss curve as a self-contained SVG (no plotting crate: a polyline, axes and
//! a few labels are all it takes, and any browser or image viewer shows it).

use std::fmt::Write;

/// An SVG line chart of `points` (step, loss).
pub fn loss_svg(points: &[(u64, f64)], title: &str) -> String {
    let (w, h) = (640.0, 400.0);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0);
    let finite: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, l)| l.is_finite())
        .map(|&(s, l)| (s as f64, l))
        .collect();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    let (x0, x1) = bounds(finite.iter().map(|p| p.0));
    let (_, y1) = bounds(finite.iter().map(|p| p.1));
    let y0 = 0.0f64.min(finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min));
    let (pw, ph) = (w - left - right, h - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0).max(1e-12) * pw;
    let sy = |y: f64| top + ph - (y - y0) / (y1 - y0).max(1e-12) * ph;
    let _ = writeln!(
        svg,
        r##"<path d="M{left},{top} V{} H{}" fill="none" stroke="#333"/>"##,
        top + ph,
        left + pw
    );
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        let (tx, ty, gy, gx) = (left - 6.0, sy(y) + 4.0, sy(y), left + pw);
        let _ = writeln!(
            svg,
            r##"<text x="{tx}" y="{ty}" text-anchor="end">{y:.3}</text><line x1="{left}" x2="{gx}" y1="{gy}" y2="{gy}" stroke="#ddd"/>"##
        );
        let x = x0 + (x1 - x0) * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            sx(x),
            top + ph + 18.0,
            x.round()
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text><text x="16" y="{}" transform="rotate(-90 16 {3})" text-anchor="middle">loss</text>"#,
        left + pw / 2.0,
        h - 10.0,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let line: Vec<String> = finite
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        line.join(" ")
    );
    svg.push_str("</svg>\n");
    svg
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_has_one_point_per_step_and_escapes_the_title() {
        let svg = loss_svg(&[(1, 5.0), (2, 3.0), (3, 1.0)], "a < b");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("a &lt; b"));
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 3);
    }
}
