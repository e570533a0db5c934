//! The ledger the example worker writes when `STINT_LEDGER` is set: one JSON line per start and
//! end of every execution, appended outside the system under test.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// The run.
    pub run_id: String,
    /// The attempt number.
    pub attempt: u32,
    /// The task.
    pub task: String,
    /// The worker process.
    pub pid: u32,
    /// `start` or `end`.
    pub event: String,
}

/// Every entry of the ledger at `path` (none if it does not exist yet). A torn last line, from a
/// worker killed mid-write, is skipped.
pub fn read(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// How many times each run started executing.
pub fn starts_per_run(entries: &[Entry]) -> HashMap<String, usize> {
    let mut starts = HashMap::new();
    for entry in entries.iter().filter(|e| e.event == "start") {
        *starts.entry(entry.run_id.clone()).or_default() += 1;
    }
    starts
}
