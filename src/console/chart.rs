//! The 24-hour delivery chart of a product's page, drawn on the server as SVG: an hour a
//! column, attempts answered 2xx stacked under the others, and the hour's mean latency as
//! a line. Only numbers and fixed text go into it. The same figures are given as a table
//! for screen readers.

use crate::domain::time::Timestamp;
use crate::storage::DeliveryHour;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;

/// One hour of the chart, for the table beside it.
pub struct HourRow {
    pub hour: String,
    pub delivered: i64,
    pub failed: i64,
    pub mean_ms: i64,
    pub max_ms: i64,
}

/// The last 24 hours up to `now`, every hour present (zero when nothing was attempted).
pub fn hours(now: Timestamp, stored: &[DeliveryHour]) -> Vec<HourRow> {
    (0..24)
        .rev()
        .map(|back| {
            let hour = (now - chrono::Duration::hours(back))
                .format("%Y-%m-%dT%H")
                .to_string();
            let found = stored.iter().find(|h| h.hour == hour);
            let (delivered, failed, sum, max) = found.map_or((0, 0, 0, 0), |h| {
                (h.delivered, h.failed, h.latency_sum_ms, h.latency_max_ms)
            });
            let attempts = delivered + failed;
            HourRow {
                hour,
                delivered,
                failed,
                mean_ms: if attempts > 0 { sum / attempts } else { 0 },
                max_ms: max,
            }
        })
        .collect()
}

/// The SVG of `rows` (24 of them).
pub fn svg(rows: &[HourRow]) -> String {
    let top_count = rows
        .iter()
        .map(|r| r.delivered + r.failed)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top_ms = rows.iter().map(|r| r.mean_ms).max().unwrap_or(0).max(1) as f64;
    let plot_h = HEIGHT - BOTTOM - 10.0;
    let slot = (WIDTH - LEFT - 10.0) / rows.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Delivery attempts per hour, last 24 hours</title>\
         <line x1=\"{LEFT}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" class=\"axis\"/>\
         <text x=\"{tx}\" y=\"14\" class=\"tick\" text-anchor=\"end\">{top}</text>\
         <text x=\"{tx}\" y=\"{y0}\" class=\"tick\" text-anchor=\"end\">0</text>",
        y0 = HEIGHT - BOTTOM,
        x1 = WIDTH - 10.0,
        tx = LEFT - 6.0,
        top = top_count as i64,
    );
    let mut line = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let x = LEFT + i as f64 * slot + slot * 0.15;
        let w = slot * 0.7;
        let ok_h = row.delivered as f64 / top_count * plot_h;
        let failed_h = row.failed as f64 / top_count * plot_h;
        let base = HEIGHT - BOTTOM;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{ok_h:.1}\" class=\"ok\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{failed_h:.1}\" class=\"failed\"/>",
            base - ok_h,
            base - ok_h - failed_h,
        );
        if row.delivered + row.failed > 0 {
            let y = base - row.mean_ms as f64 / top_ms * plot_h;
            line.push(format!("{:.1},{y:.1}", x + w / 2.0));
        }
        if i % 6 == 0 {
            let label = row.hour.get(11..13).unwrap_or_default();
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{label}:00</text>",
                x + w / 2.0,
                HEIGHT - 6.0,
            );
        }
    }
    if line.len() > 1 {
        let _ = write!(
            out,
            "<polyline points=\"{}\" class=\"latency\"/>",
            line.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hour_is_drawn_and_counts_scale() {
        let now = crate::domain::time::now();
        let hour = now.format("%Y-%m-%dT%H").to_string();
        let stored = vec![DeliveryHour {
            hour,
            delivered: 3,
            failed: 1,
            latency_sum_ms: 400,
            latency_max_ms: 250,
        }];
        let rows = hours(now, &stored);
        assert_eq!(rows.len(), 24);
        let last = rows.last().unwrap();
        assert_eq!((last.delivered, last.failed, last.mean_ms), (3, 1, 100));
        let svg = svg(&rows);
        assert_eq!(svg.matches("class=\"ok\"").count(), 24);
        assert!(
            svg.contains(">4</text>"),
            "the scale tops at the busiest hour"
        );
    }
}
