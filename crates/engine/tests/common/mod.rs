//! A real engine on a SQLite file, driven by a manual clock; with `STINT_ENGINE_POSTGRES=1`, on a
//! fresh PostgreSQL database instead, so the same tests check both stores.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use stint_engine::{Completed, Config, Engine, Ids, NewKey, Outcome, TaskSpec, TriggerParams};
use stint_store::{EnvironmentRow, RunRow, WorkerRow};
use stint_store_sqlite::{Options, SqliteStore};
use stint_testkit::ManualClock;
use stint_types::{EnvironmentType, RetryOptions, RunId, TaskRunError, Timestamp};

/// An engine with a manual clock, its environments and a registered worker.
pub struct Harness {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    pub prod: EnvironmentRow,
    pub dev: EnvironmentRow,
    /// The store the engine runs on.
    pub store: Arc<dyn stint_store::Store>,
    config: Config,
    _dir: tempfile::TempDir,
    _database: Option<stint_testkit::postgres::TestDatabase>,
}

pub const START: Timestamp = Timestamp(1_800_000_000_000);

/// Retry settings without randomness: 1 s, 2 s, 4 s …
pub fn plain_retry(max_attempts: u32) -> RetryOptions {
    RetryOptions { max_attempts, factor: 2.0, min_timeout_in_ms: 1_000, max_timeout_in_ms: 60_000, randomize: false }
}

pub fn task(id: &str) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        queue: None,
        concurrency_limit: None,
        combined_limit: None,
        rate_limit: None,
        retry: Some(plain_retry(3)),
        max_duration: None,
        ttl_secs: None,
        schedule: None,
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let database = std::env::var("STINT_ENGINE_POSTGRES")
            .is_ok_and(|v| v == "1")
            .then(stint_testkit::postgres::TestDatabase::create);
        let store = open_store(&dir, database.as_ref()).await;
        let clock = Arc::new(ManualClock::new(START));
        let engine = Arc::new(Engine::new(store.clone(), clock.clone(), Ids::seeded(42), config));
        let keys = vec![NewKey { kind: EnvironmentType::Production, hash: "00".repeat(32), prefix: "tr_prod_".into() }];
        assert!(engine.bootstrap(keys).await.unwrap());
        assert!(!engine.bootstrap(Vec::new()).await.unwrap(), "bootstrap runs once");
        let envs = engine.environments().await.unwrap();
        let find = |kind| envs.iter().find(|e| e.kind == kind).unwrap().clone();
        Harness {
            prod: find(EnvironmentType::Production),
            dev: find(EnvironmentType::Development),
            engine,
            clock,
            store,
            config,
            _dir: dir,
            _database: database,
        }
    }

    /// Another engine on the same data, through a store opened anew, with the same clock and ids
    /// from `seed`: the engine after a restart, or a second node.
    pub async fn another_engine(&self, seed: u64) -> Arc<Engine> {
        let store = open_store(&self._dir, self._database.as_ref()).await;
        Arc::new(Engine::new(store, self.clock.clone(), Ids::seeded(seed), self.config))
    }

    pub fn advance(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    pub async fn worker(&self, env: &EnvironmentRow, tasks: Vec<TaskSpec>) -> WorkerRow {
        self.engine.register_worker(env, "1.0.0".into(), tasks).await.unwrap()
    }

    /// Triggers `n` runs of `task` in prod with the concurrency key `key`.
    pub async fn trigger_keyed(&self, task: &str, key: Option<&str>, n: usize) -> Vec<RunRow> {
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            let params = TriggerParams { concurrency_key: key.map(str::to_string), ..TriggerParams::new(task, "1") };
            runs.push(self.engine.trigger(&self.prod, params).await.unwrap().run);
        }
        runs
    }

    pub async fn trigger(&self, env: &EnvironmentRow, task: &str) -> RunRow {
        self.engine.trigger(env, TriggerParams::new(task, "{\"n\":1}")).await.unwrap().run
    }

    pub async fn dequeue(&self, worker: &WorkerRow, max: u32) -> Vec<RunRow> {
        self.engine.dequeue(worker, max, Duration::ZERO).await.unwrap()
    }

    /// Waits until `n` dequeues of the prod environment are waiting for runs.
    pub async fn until_waiting(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.engine.waiting_dequeues(&self.prod) < n {
            assert!(std::time::Instant::now() < deadline, "no dequeue started waiting");
            tokio::task::yield_now().await;
        }
    }

    pub async fn run(&self, env: &EnvironmentRow, id: &RunId) -> RunRow {
        self.engine.run(env, id).await.unwrap()
    }

    pub async fn complete(&self, env: &EnvironmentRow, run: &RunRow, outcome: Outcome) -> Completed {
        let mut results =
            self.engine.complete(env, vec![(run.id.clone(), run.snapshot_id.clone(), outcome)]).await.unwrap();
        results.remove(0)
    }

    pub async fn fail(&self, env: &EnvironmentRow, run: &RunRow, message: &str) -> Completed {
        let error =
            TaskRunError::BuiltInError { name: "Error".into(), message: message.into(), stack_trace: String::new() };
        self.complete(env, run, Outcome::Failure { error, skip_retrying: false }).await
    }

    pub async fn succeed(&self, env: &EnvironmentRow, run: &RunRow, output: &str) -> Completed {
        self.complete(env, run, Outcome::Success(output.into())).await
    }
}

/// The SQLite file in `dir`, or the PostgreSQL `database`.
async fn open_store(
    dir: &tempfile::TempDir,
    database: Option<&stint_testkit::postgres::TestDatabase>,
) -> Arc<dyn stint_store::Store> {
    match database {
        None => Arc::new(SqliteStore::open(&Options::new(dir.path().join("stint.db"))).unwrap()),
        Some(database) => {
            let mut options = stint_store_postgres::Options::new(database.url());
            options.max_connections = 4;
            Arc::new(stint_store_postgres::PostgresStore::open(&options).await.unwrap())
        }
    }
}

/// How many of `runs` each concurrency key has (`-` for none).
pub fn per_key(runs: &[RunRow]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for run in runs {
        *counts.entry(run.concurrency_key.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    counts
}

/// A small seeded generator (xorshift), so generated cases are the same on every run.
pub struct Seeded(pub u64);

impl Seeded {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
