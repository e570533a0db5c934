//! The journal cursor: which durable call of an attempt is at which position, and what a replay
//! answers there. Pure: no IO, so the replay rules are tested on their own.
//!
//! A run's durable calls are numbered in call order from 0. An attempt starts with the journal its
//! run was dequeued with and walks it call by call: at position n, a completed entry of the same
//! call is the result (the call is not made again); an entry of another call means the task is
//! not deterministic; an entry not completed yet, or no entry, means the call is made.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use stint_protocol::durable::JournalEntry;
use stint_protocol::types::JournalKind;

/// A durable call as the task makes it: its kind and what identifies it (see [`JournalEntry::name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    kind: JournalKind,
    name: String,
}

impl Call {
    /// `ctx.step(name, …)`.
    pub(crate) fn step(name: &str) -> Call {
        Call { kind: JournalKind::Step, name: name.to_string() }
    }

    /// `ctx.wait_for` / `ctx.wait_until`, until `until` (RFC 3339).
    pub(crate) fn wait(until: String) -> Call {
        Call { kind: JournalKind::Wait, name: until }
    }

    /// `ctx.wait_for_token(id)`.
    pub(crate) fn token(id: &str) -> Call {
        Call { kind: JournalKind::Token, name: id.to_string() }
    }

    /// `ctx.trigger_and_wait(task, …)`.
    pub(crate) fn run(task: &str) -> Call {
        Call { kind: JournalKind::Run, name: task.to_string() }
    }

    /// `ctx.batch_trigger_and_wait(items)` with this many items.
    pub(crate) fn batch(items: usize) -> Call {
        Call { kind: JournalKind::Batch, name: items.to_string() }
    }

    /// Whether a journal entry records this call. A wait's time is not compared: `wait_for`
    /// computes a new time on every replay.
    fn matches(&self, entry: &JournalEntry) -> bool {
        entry.kind == self.kind && (self.kind == JournalKind::Wait || entry.name == self.name)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, self.kind, &self.name)
    }
}

/// A call or an entry as a person reads it: `step "charge"`, `wait for token "waitpoint_…"`.
fn describe(f: &mut fmt::Formatter<'_>, kind: JournalKind, name: &str) -> fmt::Result {
    match kind {
        JournalKind::Step => write!(f, "step {name:?}"),
        JournalKind::Wait => write!(f, "wait until {name}"),
        JournalKind::Token => write!(f, "wait for token {name:?}"),
        JournalKind::Run => write!(f, "trigger and wait for a run of task {name:?}"),
        JournalKind::Batch => write!(f, "batch trigger and wait for {name} runs"),
    }
}

/// What the journal says about the call at the next position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Replay {
    /// The call completed in an earlier attempt: this is its result; do not make it again.
    Recorded {
        /// The call's position.
        seq: u32,
        /// Its recorded result.
        output: Value,
        /// Whether the result is an error (a token that timed out).
        is_error: bool,
    },
    /// Make the call at this position: the journal has no entry there, or one whose result is not
    /// known yet (the server answers a call at such a position from its journal).
    Call {
        /// The call's position.
        seq: u32,
    },
}

/// The task called something other than what the journal recorded at a position: replaying it
/// would not reproduce the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    message: String,
}

impl Mismatch {
    /// A mismatch the server found, with its explanation.
    pub(crate) fn reported(seq: u32, called: &Call, explanation: Option<String>) -> Mismatch {
        let recorded = explanation.unwrap_or_else(|| "another call".into());
        Mismatch { message: format!("at position {seq} the task called {called}, but the journal says: {recorded}") }
    }

    /// The explanation: the position, what was recorded and what was called.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// An attempt's walk through its run's journal.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: BTreeMap<u32, JournalEntry>,
    next: u32,
}

impl Journal {
    /// A cursor at position 0 of the journal a run was dequeued with.
    pub(crate) fn new(entries: Vec<JournalEntry>) -> Journal {
        Journal { entries: entries.into_iter().map(|entry| (entry.seq, entry)).collect(), next: 0 }
    }

    /// Takes the next position for `call` and says whether its result is recorded. Every call
    /// takes a position, whatever becomes of it: a step that fails or a call the server refuses
    /// leaves its position without an entry, and a later attempt making the same calls finds the
    /// same positions.
    pub(crate) fn next(&mut self, call: &Call) -> Result<Replay, Mismatch> {
        let seq = self.next;
        self.next += 1;
        let Some(entry) = self.entries.get(&seq) else { return Ok(Replay::Call { seq }) };
        if !call.matches(entry) {
            let recorded = Recorded(entry);
            return Err(Mismatch {
                message: format!(
                    "at position {seq} the journal recorded {recorded}, but the task called {call}: the task's \
                     durable calls must be made in the same order with the same names on every replay"
                ),
            });
        }
        if !entry.completed {
            return Ok(Replay::Call { seq });
        }
        Ok(Replay::Recorded { seq, output: entry.output.clone().unwrap_or(Value::Null), is_error: entry.is_error })
    }
}

/// An entry as a person reads it.
struct Recorded<'a>(&'a JournalEntry);

impl fmt::Display for Recorded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, self.0.kind, &self.0.name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(seq: u32, kind: JournalKind, name: &str, output: Option<Value>) -> JournalEntry {
        JournalEntry {
            seq,
            kind,
            name: name.into(),
            completed: output.is_some(),
            output,
            is_error: false,
            waitpoint_id: (kind != JournalKind::Step).then(|| format!("waitpoint_{seq}")),
        }
    }

    #[test]
    fn a_replay_gets_the_recorded_results_in_order_then_makes_new_calls() {
        let mut journal = Journal::new(vec![
            entry(0, JournalKind::Step, "fetch", Some(json!({"rows": 3}))),
            entry(1, JournalKind::Wait, "2026-01-01T00:00:00.000Z", Some(Value::Null)),
            entry(2, JournalKind::Token, "waitpoint_t", Some(json!("approved"))),
            entry(3, JournalKind::Run, "child", Some(json!({"ok": true}))),
            entry(4, JournalKind::Batch, "2", Some(json!({"runs": []}))),
        ]);
        let recorded = |seq, output| Ok(Replay::Recorded { seq, output, is_error: false });
        assert_eq!(journal.next(&Call::step("fetch")), recorded(0, json!({"rows": 3})));
        // The time of a wait is computed anew on a replay, so only its kind is compared.
        assert_eq!(journal.next(&Call::wait("2026-05-05T10:00:00.000Z".into())), recorded(1, Value::Null));
        assert_eq!(journal.next(&Call::token("waitpoint_t")), recorded(2, json!("approved")));
        assert_eq!(journal.next(&Call::run("child")), recorded(3, json!({"ok": true})));
        assert_eq!(journal.next(&Call::batch(2)), recorded(4, json!({"runs": []})));
        assert_eq!(journal.next(&Call::step("after")), Ok(Replay::Call { seq: 5 }));
        assert_eq!(journal.next(&Call::step("after")), Ok(Replay::Call { seq: 6 }), "names may repeat");
    }

    #[test]
    fn a_timed_out_token_is_recorded_as_an_error() {
        let mut timed_out =
            entry(0, JournalKind::Token, "waitpoint_t", Some(json!({"code": "TRIGGER_WAITPOINT_TIMEOUT"})));
        timed_out.is_error = true;
        let mut journal = Journal::new(vec![timed_out]);
        let Ok(Replay::Recorded { is_error, .. }) = journal.next(&Call::token("waitpoint_t")) else { panic!() };
        assert!(is_error);
    }

    #[test]
    fn another_call_at_a_recorded_position_is_a_mismatch_saying_what_and_where() {
        let journal = || {
            Journal::new(vec![
                entry(0, JournalKind::Step, "fetch", Some(json!(1))),
                entry(1, JournalKind::Step, "charge", Some(json!(2))),
            ])
        };
        let mut renamed = journal();
        renamed.next(&Call::step("fetch")).unwrap();
        let mismatch = renamed.next(&Call::step("refund")).unwrap_err();
        assert!(
            mismatch
                .message()
                .starts_with("at position 1 the journal recorded step \"charge\", but the task called step \"refund\""),
            "{}",
            mismatch.message()
        );
        let mut other_kind = journal();
        let mismatch = other_kind.next(&Call::token("waitpoint_x")).unwrap_err();
        assert!(mismatch.message().contains("position 0"), "{}", mismatch.message());
        assert!(mismatch.message().contains("called wait for token \"waitpoint_x\""), "{}", mismatch.message());
        let mut resized = Journal::new(vec![entry(0, JournalKind::Batch, "3", Some(json!({})))]);
        let mismatch = resized.next(&Call::batch(4)).unwrap_err();
        assert!(mismatch.message().contains("recorded batch trigger and wait for 3 runs"), "{}", mismatch.message());
        let mut child = Journal::new(vec![entry(0, JournalKind::Run, "a", Some(json!({})))]);
        assert!(child.next(&Call::run("b")).is_err(), "a child of another task");
    }

    #[test]
    fn an_entry_not_completed_is_called_again_at_its_position() {
        let mut journal = Journal::new(vec![
            entry(0, JournalKind::Step, "fetch", Some(json!(1))),
            entry(1, JournalKind::Token, "waitpoint_t", None),
        ]);
        journal.next(&Call::step("fetch")).unwrap();
        assert_eq!(journal.next(&Call::token("waitpoint_t")), Ok(Replay::Call { seq: 1 }));
        // A different call is still a mismatch, completed or not.
        let mut journal = Journal::new(vec![entry(0, JournalKind::Token, "waitpoint_t", None)]);
        assert!(journal.next(&Call::token("waitpoint_u")).is_err());
    }

    #[test]
    fn positions_left_without_an_entry_are_called_again() {
        // A step that failed in the first attempt took position 0 and recorded nothing; the calls
        // after it were recorded at their own positions.
        let mut journal = Journal::new(vec![entry(1, JournalKind::Step, "next", Some(json!("n")))]);
        assert_eq!(journal.next(&Call::step("flaky")), Ok(Replay::Call { seq: 0 }));
        assert_eq!(
            journal.next(&Call::step("next")),
            Ok(Replay::Recorded { seq: 1, output: json!("n"), is_error: false })
        );
    }

    #[test]
    fn a_mismatch_the_server_reports_names_the_call() {
        let mismatch = Mismatch::reported(4, &Call::run("child"), Some("position 4 holds step \"x\"".into()));
        assert_eq!(
            mismatch.message(),
            "at position 4 the task called trigger and wait for a run of task \"child\", but the journal says: \
             position 4 holds step \"x\""
        );
    }
}
