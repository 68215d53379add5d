//! Latencies and the tables a run prints.

use std::fmt::Write;
use std::time::Duration;

/// Latencies of one kind of operation.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Records one.
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    /// Adds another set.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0.5 for the median), in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let index = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[index].as_secs_f64() * 1000.0
    }
}

/// One scenario's figures: rows of (what, value, unit), then its baseline and the ratio.
pub struct Table {
    title: String,
    rows: Vec<(String, f64, &'static str)>,
    ratios: Vec<(String, f64, String)>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            rows: Vec::new(),
            ratios: Vec::new(),
        }
    }

    /// A measured figure.
    pub fn row(&mut self, what: &str, value: f64, unit: &'static str) {
        self.rows.push((what.to_owned(), value, unit));
    }

    /// A ratio of a figure to its same-run baseline, with what the baseline was.
    pub fn ratio(&mut self, what: &str, ratio: f64, baseline: String) {
        self.ratios.push((what.to_owned(), ratio, baseline));
    }

    /// The table as Markdown.
    pub fn render(&self) -> String {
        let mut out = format!("### {}\n\n| figure | value |\n|---|---:|\n", self.title);
        for (what, value, unit) in &self.rows {
            let _ = writeln!(out, "| {what} | {} {unit} |", format_value(*value));
        }
        for (what, ratio, baseline) in &self.ratios {
            let _ = writeln!(out, "| **{what}** | **{ratio:.2} ×** ({baseline}) |");
        }
        out
    }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
