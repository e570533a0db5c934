//! A worker pool: one worker serving several environments takes their runs in turn.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, Seeded, task};
use stint_engine::{Completed, Error, Outcome, TriggerParams};
use stint_store::{EnvLimits, EnvironmentRow, RunRow, WorkerRow};
use stint_types::{EnvId, EnvironmentType, RunStatus};

async fn env(h: &Harness, kind: EnvironmentType) -> EnvironmentRow {
    h.engine.environments().await.unwrap().into_iter().find(|e| e.kind == kind).unwrap()
}

async fn pool(h: &Harness, envs: &[&EnvironmentRow]) -> WorkerRow {
    let envs = envs.iter().map(|e| (*e).clone()).collect();
    h.engine.register_pool(envs, "1".into(), vec![task("t")]).await.unwrap()
}

async fn trigger_n(h: &Harness, env: &EnvironmentRow, n: usize) {
    for _ in 0..n {
        h.engine.trigger(env, TriggerParams::new("t", "1")).await.unwrap();
    }
}

fn per_env(runs: &[RunRow]) -> HashMap<EnvId, usize> {
    let mut counts = HashMap::new();
    for run in runs {
        *counts.entry(run.env_id.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn equally_backlogged_environments_each_get_an_even_share() {
    let h = Harness::new().await;
    let staging = env(&h, EnvironmentType::Staging).await;
    let worker = pool(&h, &[&h.dev, &staging, &h.prod]).await;
    for env in [&h.dev, &staging, &h.prod] {
        trigger_n(&h, env, 120).await;
    }
    let mut taken = Vec::new();
    for _ in 0..6 {
        let runs = h.dequeue(&worker, 50).await;
        let counts = per_env(&runs);
        assert!(counts.values().all(|n| (16..=17).contains(n)), "one dequeue's shares: {counts:?}");
        taken.extend(runs);
    }
    for (env, n) in per_env(&taken) {
        assert_eq!(n, 100, "{env}: over six dequeues of 50 each environment got a third");
    }
}

#[tokio::test]
async fn a_flood_in_one_environment_does_not_delay_another() {
    let h = Harness::new().await;
    let staging = env(&h, EnvironmentType::Staging).await;
    let worker = pool(&h, &[&staging, &h.prod]).await;
    trigger_n(&h, &staging, 1_000).await;
    assert_eq!(per_env(&h.dequeue(&worker, 50).await).get(&staging.id), Some(&50));
    trigger_n(&h, &h.prod, 60).await;
    let mut prod_started = 0;
    let mut dequeues = 0;
    while prod_started < 60 {
        let runs = h.dequeue(&worker, 50).await;
        let counts = per_env(&runs);
        assert!(counts.get(&staging.id).copied().unwrap_or(0) >= 25, "staging keeps its share: {counts:?}");
        prod_started += counts.get(&h.prod.id).copied().unwrap_or(0);
        dequeues += 1;
    }
    assert_eq!(dequeues, 3, "prod's 60 runs start in the first three dequeues, 25 + 25 + 10");
}

#[tokio::test]
async fn an_environment_without_work_leaves_its_share_to_the_others() {
    let h = Harness::new().await;
    let worker = pool(&h, &[&h.dev, &h.prod]).await;
    trigger_n(&h, &h.prod, 80).await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 50);
}

#[tokio::test]
async fn each_environment_keeps_its_limits_in_a_pool() {
    let h = Harness::new().await;
    let worker = pool(&h, &[&h.dev, &h.prod]).await;
    let limits = EnvLimits { concurrency_limit: Some(2), burst_factor: 1.0, paused: false };
    h.engine.set_environment_limits(&h.prod.id, limits).await.unwrap();
    trigger_n(&h, &h.prod, 10).await;
    trigger_n(&h, &h.dev, 10).await;
    let counts = per_env(&h.dequeue(&worker, 50).await);
    assert_eq!((counts.get(&h.prod.id), counts.get(&h.dev.id)), (Some(&2), Some(&10)));
}

#[tokio::test]
async fn heartbeats_and_completions_reach_runs_of_every_environment_of_the_pool_only() {
    let h = Harness::new().await;
    let worker = pool(&h, &[&h.dev, &h.prod]).await;
    trigger_n(&h, &h.prod, 1).await;
    trigger_n(&h, &h.dev, 1).await;
    let runs = h.dequeue(&worker, 10).await;
    assert_eq!(runs.len(), 2);
    let beats = runs.iter().map(|r| (r.id.clone(), r.snapshot_id.clone())).collect();
    let verdicts = h.engine.heartbeat(&worker, beats).await.unwrap();
    assert!(verdicts.iter().all(|v| *v == stint_engine::HeartbeatVerdict::Continue), "{verdicts:?}");
    let reports: Vec<_> =
        runs.iter().map(|r| (r.id.clone(), r.snapshot_id.clone(), Outcome::Success("1".into()))).collect();
    let only_prod = h.engine.complete_in(vec![h.prod.clone()], reports.clone()).await.unwrap();
    let dev_at = runs.iter().position(|r| r.env_id == h.dev.id).unwrap();
    assert_eq!(only_prod[dev_at], Completed::NotFound, "a run outside the environments given is not found");
    let both = h.engine.complete_in(vec![h.dev.clone(), h.prod.clone()], reports).await.unwrap();
    assert_eq!(both[dev_at], Completed::Finished(RunStatus::Completed));
    let single = h.engine.worker(&h.prod, &worker.id).await.unwrap_err();
    assert!(matches!(single, Error::NotFound(_)), "a pool is not one environment's worker");
    assert_eq!(h.engine.pool_worker(&[h.dev.clone(), h.prod.clone()], &worker.id).await.unwrap().id, worker.id);
    let elsewhere = h.engine.pool_worker(std::slice::from_ref(&h.prod), &worker.id).await.unwrap_err();
    assert!(matches!(elsewhere, Error::NotFound(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_in_any_environment_is_handed_to_a_waiting_pool_worker() {
    let h = std::sync::Arc::new(Harness::new().await);
    let worker = pool(&h, &[&h.dev, &h.prod]).await;
    for env in [h.dev.clone(), h.prod.clone()] {
        let waiting = {
            let (h, worker) = (h.clone(), worker.clone());
            tokio::spawn(async move { h.engine.dequeue(&worker, 10, Duration::from_secs(30)).await.unwrap() })
        };
        h.until_waiting(1).await;
        let run = h.engine.trigger(&env, TriggerParams::new("t", "1")).await.unwrap().run;
        assert_eq!(run.status, RunStatus::Executing, "handed over in the trigger's transaction");
        let handed = waiting.await.unwrap();
        assert_eq!(handed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![run.id]);
        assert_eq!(h.engine.waiting_dequeues(&h.dev) + h.engine.waiting_dequeues(&h.prod), 0);
    }
}

#[tokio::test]
async fn a_pool_names_each_environment_once() {
    let h = Harness::new().await;
    let twice = vec![h.prod.clone(), h.prod.clone()];
    let refused = h.engine.register_pool(twice, "1".into(), vec![task("t")]).await.unwrap_err();
    assert!(matches!(refused, Error::Invalid(_)), "{refused:?}");
}
/// Generated pools: two or three environments with generated limits, a queue limit per key and
/// keyed and unkeyed backlogs, drained by generated dequeue sizes and completions. After every
/// dequeue (over a thousand in all) no environment runs more than its limit × burst factor, no key
/// of a queue more than its limit, a dequeue takes something whenever nothing is executing, and
/// every run starts once.
#[tokio::test]
async fn over_generated_pools_no_limit_is_exceeded_and_every_run_starts_once() {
    let mut random = Seeded(0x9e37_79b9);
    let mut steps = 0;
    for case in 0..36 {
        let h = Harness::new().await;
        let all = h.engine.environments().await.unwrap();
        let envs: Vec<EnvironmentRow> = all.into_iter().take(2 + random.below(2) as usize).collect();
        let limit = 1 + random.below(4) as u32;
        let spec = stint_engine::TaskSpec { concurrency_limit: Some(limit), ..task("t") };
        let worker = h.engine.register_pool(envs.clone(), "1".into(), vec![spec]).await.unwrap();
        let mut caps = HashMap::new();
        let mut total = 0;
        for env in &envs {
            let env_limit = (random.below(2) == 0).then(|| 1 + random.below(6) as u32);
            let burst_factor = 1.0 + random.below(3) as f64 / 2.0;
            let limits = EnvLimits { concurrency_limit: env_limit, burst_factor, paused: false };
            h.engine.set_environment_limits(&env.id, limits).await.unwrap();
            let cap = env_limit.map_or(usize::MAX, |l| (f64::from(l) * burst_factor) as usize);
            caps.insert(env.id.clone(), (cap, env_limit.map_or(limit, |base| base.min(limit)) as usize));
            for lane in 0..1 + random.below(3) {
                let key = (lane > 0).then(|| format!("k{lane}"));
                for _ in 0..random.below(25) {
                    let params = TriggerParams { concurrency_key: key.clone(), ..TriggerParams::new("t", "1") };
                    h.engine.trigger(env, params).await.unwrap();
                    total += 1;
                }
            }
        }
        let mut executing: Vec<RunRow> = Vec::new();
        let mut started = std::collections::HashSet::new();
        while started.len() < total || !executing.is_empty() {
            let want = 1 + random.below(12) as u32;
            let taken = h.dequeue(&worker, want).await;
            steps += 1;
            assert!(!taken.is_empty() || !executing.is_empty(), "case {case}: runs are left but none was taken");
            for run in taken {
                assert!(started.insert(run.id.clone()), "case {case}: {} started twice", run.id);
                executing.push(run);
            }
            for env in &envs {
                let (cap, lane_cap) = caps[&env.id];
                let mine: Vec<&RunRow> = executing.iter().filter(|r| r.env_id == env.id).collect();
                assert!(mine.len() <= cap, "case {case}: {} runs {}, cap {cap}", env.id, mine.len());
                let mut lanes: HashMap<Option<String>, usize> = HashMap::new();
                for run in mine {
                    *lanes.entry(run.concurrency_key.clone()).or_default() += 1;
                }
                let busiest = lanes.values().copied().max().unwrap_or(0);
                assert!(busiest <= lane_cap, "case {case}: a lane of {} runs {busiest}, limit {lane_cap}", env.id);
            }
            for _ in 0..random.below(executing.len() as u64 + 1) {
                let at = random.below(executing.len() as u64) as usize;
                let run = executing.swap_remove(at);
                let env = envs.iter().find(|e| e.id == run.env_id).unwrap();
                h.succeed(env, &run, "1").await;
            }
        }
        assert_eq!(started.len(), total);
    }
    assert!(steps > 1_000, "{steps} dequeues");
}
