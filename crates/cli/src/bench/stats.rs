//! Figures computed from the workers' records, shared by the workloads.

use std::collections::HashSet;

use super::worker::Record;

/// Checks that the records hold `n` executions of `n` distinct runs: each run executed once.
pub fn ensure_each_once(records: &[Record], n: usize) -> anyhow::Result<()> {
    let distinct: HashSet<i64> = records.iter().map(|r| r.2).collect();
    anyhow::ensure!(
        records.len() == n && distinct.len() == n,
        "{} executions of {} distinct runs, expected {n}",
        records.len(),
        distinct.len()
    );
    Ok(())
}

/// The drain rate in runs/s: (N − 1) / (last start − first start).
pub fn drain_rate(records: &[Record]) -> f64 {
    let first = records.iter().map(|r| r.1).min().unwrap_or(0);
    let last = records.iter().map(|r| r.1).max().unwrap_or(0);
    let span_s = (last - first) as f64 / 1e6;
    (records.len().saturating_sub(1)) as f64 / span_s
}

/// A record's trigger-to-start latency in ms.
pub fn trigger_to_start_ms(record: &Record) -> f64 {
    (record.1 - record.0) as f64 / 1000.0
}

/// Latencies sorted, for their percentiles.
pub struct Percentiles(Vec<f64>);

impl Percentiles {
    /// Sorts `values`, which must not be empty.
    pub fn new(mut values: Vec<f64>) -> anyhow::Result<Percentiles> {
        anyhow::ensure!(!values.is_empty(), "no latencies to take percentiles of");
        values.sort_by(f64::total_cmp);
        Ok(Percentiles(values))
    }

    /// The `q` quantile (0 < q ≤ 1), by nearest rank.
    pub fn at(&self, q: f64) -> f64 {
        let n = self.0.len();
        self.0[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
    }

    /// The largest value.
    pub fn max(&self) -> f64 {
        self.0[self.0.len() - 1]
    }
}
