//! Scan charts as SVG drawn on the server: one stacked bar a day, one
//! layer a client class. Each class has its own pattern as well as its own
//! colour, and the legend names them, so the chart reads without colour;
//! every bar carries a `<title>` with its numbers, and the pages put the
//! same numbers in a table under the chart.

use super::text::Text;
use crate::edge::api::DayCounts;
use crate::replication::stats::{date_string, parse_date};
use std::fmt::Write;

/// The classes drawn, bottom to top: the ones that count in totals.
const LAYERS: [(&str, &str); 6] = [
    ("ios", "#2f6fdf"),
    ("android", "#2a9d4b"),
    ("wechat", "#07a05a"),
    ("wechat-scan", "#0b5d3b"),
    ("inapp", "#c77c11"),
    ("desktop", "#7a4fc4"),
];

/// One day's numbers in layer order.
fn layers(day: &DayCounts) -> [u64; 6] {
    [
        day.ios,
        day.android,
        day.wechat,
        day.wechat_scan,
        day.inapp,
        day.desktop,
    ]
}

/// The label of a layer.
pub fn label(text: &Text, class: &str) -> &'static str {
    match class {
        "ios" => text.class_ios,
        "android" => text.class_android,
        "wechat" => text.class_wechat,
        "wechat-scan" => text.class_wechat_scan,
        "inapp" => text.class_inapp,
        "desktop" => text.class_desktop,
        _ => text.class_other,
    }
}

/// Every day from `from` to `to` (`2026-11-24`), with the counts of the
/// days that had scans and zeros for the others.
pub fn every_day(from: &str, to: &str, days: &[DayCounts]) -> Vec<DayCounts> {
    let (Some(from), Some(to)) = (parse_date(from), parse_date(to)) else {
        return days.to_vec();
    };
    (from..=to)
        .map(|day| {
            let name = date_string(day);
            days.iter()
                .find(|d| d.day.as_deref() == Some(name.as_str()))
                .cloned()
                .unwrap_or_else(|| DayCounts {
                    day: Some(name),
                    ..DayCounts::default()
                })
        })
        .collect()
}

/// The chart of `days` (every day of the range, in order) as an SVG
/// element; `id` keeps pattern names apart when a page has two charts.
pub fn bars(text: &Text, id: &str, days: &[DayCounts]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 48.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 40.0;
    let plot_h = H - TOP - BOTTOM;
    let plot_w = W - LEFT - 8.0;
    let max = days
        .iter()
        .map(|d| layers(d).iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::with_capacity(4096 + days.len() * 400);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><defs>"#,
        escape(text.by_class)
    );
    // Patterns: solid, diagonal, dots, vertical, horizontal, cross-hatch.
    for (i, (class, colour)) in LAYERS.iter().enumerate() {
        let mark = match i {
            0 => String::new(),
            1 => r##"<path d="M0,6 L6,0" stroke="#fff" stroke-width="1.6"/>"##.to_string(),
            2 => r##"<circle cx="3" cy="3" r="1.3" fill="#fff"/>"##.to_string(),
            3 => r##"<path d="M3,0 L3,6" stroke="#fff" stroke-width="1.4"/>"##.to_string(),
            4 => r##"<path d="M0,3 L6,3" stroke="#fff" stroke-width="1.4"/>"##.to_string(),
            _ => r##"<path d="M0,0 L6,6 M6,0 L0,6" stroke="#fff" stroke-width="1.2"/>"##.to_string(),
        };
        let _ = write!(
            svg,
            r#"<pattern id="{id}-{class}" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="{colour}"/>{mark}</pattern>"#
        );
    }
    svg.push_str("</defs>");
    // Legend.
    let mut x = LEFT;
    for (class, _) in LAYERS {
        let name = label(text, class);
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="6" width="14" height="14" fill="url(#{id}-{class})" stroke="#333" stroke-width=".5"/><text x="{}" y="18" font-size="12" fill="#222">{}</text>"##,
            x + 18.0,
            escape(name)
        );
        x += 26.0 + 7.5 * name.chars().map(|c| if c.is_ascii() { 1.0 } else { 1.8 }).sum::<f64>();
    }
    // Axis: zero and the maximum.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#888"/><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#444">0</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#444">{max}</text><line x1="{LEFT}" y1="{TOP}" x2="{}" y2="{TOP}" stroke="#ddd" stroke-dasharray="3 3"/>"##,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        LEFT - 6.0,
        TOP + plot_h + 4.0,
        LEFT - 6.0,
        TOP + 4.0,
        LEFT + plot_w,
    );
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.75).max(1.0);
    for (i, day) in days.iter().enumerate() {
        let counts = layers(day);
        let total: u64 = counts.iter().sum();
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        let name = day.day.as_deref().unwrap_or("");
        let mut title = format!("{name}: {} {total}", text.total);
        for ((class, _), count) in LAYERS.iter().zip(counts) {
            if count > 0 {
                let _ = write!(title, ", {} {count}", label(text, class));
            }
        }
        let _ = write!(svg, r#"<g class="day"><title>{}</title>"#, escape(&title));
        for ((class, _), count) in LAYERS.iter().zip(counts) {
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="url(#{id}-{class})" data-class="{class}" data-count="{count}"/>"##
            );
        }
        if total > 0 && days.len() <= 31 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#222">{total}</text>"##,
                x + bar / 2.0,
                y - 3.0
            );
        }
        svg.push_str("</g>");
        // Dates under the first, the middle and the last bar.
        if i == 0 || i + 1 == days.len() || i == days.len() / 2 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#444">{}</text>"##,
                x + bar / 2.0,
                TOP + plot_h + 16.0,
                escape(name.get(5..).unwrap_or(name))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text for SVG and HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_range_has_a_bar_and_every_count_a_title() {
        let days = every_day(
            "2026-11-01",
            "2026-11-03",
            &[DayCounts {
                day: Some("2026-11-02".into()),
                ios: 3,
                android: 2,
                total: 5,
                ..DayCounts::default()
            }],
        );
        assert_eq!(days.len(), 3);
        assert_eq!(days[1].ios, 3);
        let svg = bars(&super::super::text::EN, "c", &days);
        assert_eq!(svg.matches(r#"<g class="day">"#).count(), 3);
        assert!(svg.contains("2026-11-02: Total 5, iPhone 3, Android 2"), "{svg}");
        assert!(svg.contains(r#"data-class="ios" data-count="3""#));
        assert!(
            svg.contains(">iPhone<") && svg.contains(">Desktop<"),
            "the legend names every class"
        );
    }
}
