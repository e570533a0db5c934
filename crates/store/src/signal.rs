//! Signals between nodes sharing a database.

use stint_types::{EnvId, RunId, WorkerId};

/// A change other nodes should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Runs of the environment may have become ready: waiting workers should look again.
    Work(EnvId),
    /// The worker is shutting down: its waiting dequeue should end now.
    Disconnect(WorkerId),
    /// The run's waits completed while its attempt was alive: the worker's continue call should
    /// look again.
    Continued(RunId),
}

impl Signal {
    /// The signal as text, for transports that carry text (PostgreSQL's NOTIFY).
    pub fn encode(&self) -> String {
        match self {
            Signal::Work(env) => format!("work {env}"),
            Signal::Disconnect(worker) => format!("disconnect {worker}"),
            Signal::Continued(run) => format!("continued {run}"),
        }
    }

    /// A signal from [`Signal::encode`]'s text; `None` for text that is not one.
    pub fn decode(text: &str) -> Option<Signal> {
        let (kind, id) = text.split_once(' ')?;
        match kind {
            "work" => EnvId::parse(id).ok().map(Signal::Work),
            "disconnect" => stint_types::WorkerId::parse(id).ok().map(Signal::Disconnect),
            "continued" => RunId::parse(id).ok().map(Signal::Continued),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_through_text() {
        for signal in [
            Signal::Work(EnvId::from_parts(1, 2)),
            Signal::Disconnect(WorkerId::from_parts(3, 4)),
            Signal::Continued(RunId::from_parts(5, 6)),
        ] {
            assert_eq!(Signal::decode(&signal.encode()), Some(signal));
        }
        assert_eq!(Signal::decode("work nonsense"), None);
        assert_eq!(Signal::decode("hello"), None);
    }
}
