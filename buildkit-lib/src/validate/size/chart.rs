//! The size history as an SVG line chart, written by hand (no plotting dependency).

use super::budget::{SizeBudget, SizeOutcome};
use super::history::SizeRecord;
use crate::units::human_bytes;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG line chart of `records` (one image, in build order) with the budget's target and
/// maximum as dashed lines: readable in a browser or a CI artifact viewer, no dependency.
pub(crate) fn svg_chart(image: &str, records: &[SizeRecord], budget: &SizeBudget) -> String {
    const W: f64 = 760.0;
    const H: f64 = 380.0;
    const LEFT: f64 = 90.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 70.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let highest = records
        .iter()
        .map(|r| r.bytes)
        .chain([budget.max_bytes])
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.08;
    // Round ticks: 1, 2, 2.5 or 5 times a power of ten.
    let raw_step = highest / 5.0;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let tick = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|t| *t >= raw_step)
        .unwrap_or(10.0 * magnitude);
    let ticks = (highest / tick).ceil().max(1.0) as u32;
    let top_value = tick * ticks as f64;
    let y = |bytes: u64| TOP + plot_h - (bytes as f64 / top_value) * plot_h;
    let n = records.len();
    const INSET: f64 = 40.0;
    let x = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + INSET + (plot_w - 2.0 * INSET) * i as f64 / (n - 1) as f64
        }
    };
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!(
        "<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    ));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"28\" font-size=\"16\" font-weight=\"bold\">Image size ({}): {} \
         ({} builds)</text>\n",
        LEFT,
        budget.measure,
        xml_escape(image),
        n
    ));
    // Grid and y labels.
    for step in 0..=ticks {
        let value = (tick * step as f64) as u64;
        let yy = y(value);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/>\n",
            LEFT + plot_w
        ));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>\n",
            LEFT - 8.0,
            yy + 4.0,
            human_bytes(value)
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{:.1}\" stroke=\"#333\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\n",
        TOP + plot_h,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    ));
    // Budget lines.
    for (value, colour, name, anchor, label_x) in [
        (
            budget.target_bytes,
            "#d98c00",
            "target",
            "start",
            LEFT + 6.0,
        ),
        (
            budget.max_bytes,
            "#c62828",
            "max",
            "end",
            LEFT + plot_w - 4.0,
        ),
    ] {
        let yy = y(value);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{colour}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
            LEFT + plot_w
        ));
        s.push_str(&format!(
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{colour}\">{name} {}</text>\n",
            yy - 5.0,
            human_bytes(value)
        ));
    }
    // The series.
    if n > 1 {
        let points: Vec<String> = records
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(r.bytes)))
            .collect();
        s.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>\n",
            points.join(" ")
        ));
    }
    let label_every = n.div_ceil(8).max(1);
    for (i, r) in records.iter().enumerate() {
        let colour = match budget.check(r.bytes) {
            SizeOutcome::Pass => "#1565c0",
            SizeOutcome::Warn => "#d98c00",
            SizeOutcome::Fail | SizeOutcome::NotChecked => "#c62828",
        };
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{} {} {}</title></circle>\n",
            x(i),
            y(r.bytes),
            xml_escape(&r.time),
            xml_escape(&r.tag),
            human_bytes(r.bytes)
        ));
        let last = i + 1 == n;
        let periodic = i % label_every == 0 && (last || i + label_every < n);
        if periodic || last {
            // `MM-DD` and the short commit under the build number.
            let date = r.time.get(5..10).unwrap_or(&r.time);
            let commit: String = r.git_commit.chars().take(7).collect();
            for (dy, size, colour, text) in [
                (18.0, 12, "#555", format!("#{}", i + 1)),
                (32.0, 10, "#888", date.to_string()),
                (44.0, 10, "#888", commit),
            ] {
                s.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{colour}\" \
                     font-size=\"{size}\">{}</text>\n",
                    x(i),
                    TOP + plot_h + dy,
                    xml_escape(&text)
                ));
            }
        }
    }
    if let Some(last) = records.last() {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"28\" text-anchor=\"end\" fill=\"#333\">latest: {} ({})</text>\n",
            LEFT + plot_w,
            human_bytes(last.bytes),
            xml_escape(&last.tag)
        ));
    }
    s.push_str("</svg>\n");
    s
}
