//! Prometheus text exposition (format 0.0.4), written by hand: a few counters, gauges and
//! histograms do not need a metrics framework, and writing the format here keeps the
//! escaping and the histogram layout (`_bucket{le=..}` cumulative, `+Inf`, `_sum`,
//! `_count`) in one tested place.
//!
//! Values are `f64` in the format; integers above 2^53 (stake in base units) are written as
//! exact decimal integers, which Prometheus reads as the nearest float.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds in milliseconds for durations from a few milliseconds (a task offered at
/// once, a small proof verified) to ten minutes (a large proof on a CPU).
pub const DURATION_BUCKETS_MS: &[u64] = &[
    1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000,
    600_000,
];

/// A duration histogram over fixed millisecond bounds, exposed in seconds (the Prometheus
/// base unit). Plain data: the owner decides how it is shared (a field of a pure core, or
/// behind a mutex in a shell).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationHistogram {
    bounds_ms: Vec<u64>,
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    counts: Vec<u64>,
    sum_ms: u64,
    count: u64,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        DurationHistogram::new(DURATION_BUCKETS_MS)
    }
}

impl DurationHistogram {
    /// A histogram with these upper bounds (ascending).
    pub fn new(bounds_ms: &[u64]) -> Self {
        assert!(
            bounds_ms.windows(2).all(|w| w[0] < w[1]),
            "histogram bounds must ascend"
        );
        DurationHistogram {
            bounds_ms: bounds_ms.to_vec(),
            counts: vec![0; bounds_ms.len() + 1],
            sum_ms: 0,
            count: 0,
        }
    }

    pub fn observe_ms(&mut self, ms: u64) {
        let i = self.bounds_ms.partition_point(|b| *b < ms);
        self.counts[i] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum_ms(&self) -> u64 {
        self.sum_ms
    }

    /// The smallest bucket bound at or below which `q` (0..=1) of the observations fall, in
    /// milliseconds; `None` when empty or when the quantile lies in `+Inf`.
    pub fn quantile_bound_ms(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let target = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return self.bounds_ms.get(i).copied();
            }
        }
        None
    }
}

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Builds one exposition. Declare a family with [`Exposition::family`], then write its
/// samples; every family must be declared once, before its samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample. `value` is anything that prints as a Prometheus number.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one sample, for the common single-gauge case.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: impl std::fmt::Display) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    /// A histogram's samples (declare the family with [`Kind::Histogram`] first). `name`
    /// should end in `_seconds`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &DurationHistogram) {
        let mut cumulative = 0;
        for (i, c) in h.counts.iter().enumerate() {
            cumulative += c;
            let le = match h.bounds_ms.get(i) {
                Some(ms) => seconds(*ms),
                None => "+Inf".to_string(),
            };
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", seconds(h.sum_ms));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Milliseconds as decimal seconds, exactly (no float rounding).
fn seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{frac:03}").trim_end_matches('0').to_string()
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        debug_assert!(valid_name(k), "label name {k:?}");
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(&escape_label_value(v));
        out.push('"');
    }
    out.push('}');
}

/// Label values escape backslash, double quote and newline.
pub fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_inf_sum_and_count() {
        let mut h = DurationHistogram::new(&[10, 100]);
        for ms in [1, 10, 11, 5000] {
            h.observe_ms(ms);
        }
        let mut e = Exposition::new();
        e.family("x_seconds", "Time.", Kind::Histogram);
        e.histogram("x_seconds", &[("agent", "op-a/g1")], &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_seconds Time.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{agent=\"op-a/g1\",le=\"0.01\"} 2\n\
             x_seconds_bucket{agent=\"op-a/g1\",le=\"0.1\"} 3\n\
             x_seconds_bucket{agent=\"op-a/g1\",le=\"+Inf\"} 4\n\
             x_seconds_sum{agent=\"op-a/g1\"} 5.022\n\
             x_seconds_count{agent=\"op-a/g1\"} 4\n"
        );
        assert_eq!(h.quantile_bound_ms(0.5), Some(10));
        assert_eq!(h.quantile_bound_ms(0.75), Some(100));
        assert_eq!(h.quantile_bound_ms(1.0), None);
        assert_eq!(DurationHistogram::default().quantile_bound_ms(0.5), None);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.family("y_total", "Line one\nback\\slash", Kind::Counter);
        e.sample("y_total", &[("reason", "a \"quoted\"\nline \\ end")], 3);
        assert_eq!(
            e.finish(),
            "# HELP y_total Line one\\nback\\\\slash\n# TYPE y_total counter\n\
             y_total{reason=\"a \\\"quoted\\\"\\nline \\\\ end\"} 3\n"
        );
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(60_000), "60");
        assert!(valid_name("proofrack_tasks"));
        assert!(!valid_name("9x"));
        assert!(!valid_name("a-b"));
    }
}
