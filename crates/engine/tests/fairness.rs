//! Fair selection across the concurrency keys of a queue: keys take turns, so a key with a few
//! runs is not stuck behind another key's backlog.

mod common;

use common::{Harness, Seeded, task};
use stint_engine::{TaskSpec, TriggerParams};
use stint_store::{EnvLimits, RunRow};
fn keys(runs: &[RunRow]) -> Vec<&str> {
    runs.iter().map(|r| r.concurrency_key.as_deref().unwrap_or("-")).collect()
}

#[tokio::test]
async fn a_key_with_one_run_is_not_stuck_behind_another_keys_backlog() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger_keyed("t", Some("tenant-a"), 10_000).await;
    h.advance(1);
    h.trigger_keyed("t", Some("tenant-b"), 1).await;
    // The bound: with two lanes ready, tenant-b's run starts within one turn, the next two starts.
    let first = h.dequeue(&worker, 2).await;
    let mut seen = keys(&first);
    seen.sort();
    assert_eq!(seen, vec!["tenant-a", "tenant-b"], "one run of each lane in the first turn");
    let next = h.dequeue(&worker, 10).await;
    assert!(keys(&next).iter().all(|k| *k == "tenant-a"));
}

#[tokio::test]
async fn keys_take_turns_one_run_each_and_runs_without_a_key_are_a_lane() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    for key in ["c", "a", "b"] {
        h.trigger_keyed("t", Some(key), 5).await;
    }
    h.trigger_keyed("t", None, 2).await;
    let mut order = Vec::new();
    for _ in 0..17 {
        let runs = h.dequeue(&worker, 1).await;
        assert_eq!(runs.len(), 1);
        order.push(keys(&runs)[0].to_string());
    }
    assert_eq!(order.join(""), "-abc-abcabcabcabc");
    assert!(h.dequeue(&worker, 1).await.is_empty());
}

#[tokio::test]
async fn backlogged_keys_share_every_dequeue_evenly() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger_keyed("t", Some("a"), 100).await;
    h.trigger_keyed("t", Some("b"), 100).await;
    for _ in 0..4 {
        let runs = h.dequeue(&worker, 10).await;
        let a = keys(&runs).iter().filter(|k| **k == "a").count();
        assert_eq!((runs.len(), a), (10, 5), "{:?}", keys(&runs));
    }
}

#[tokio::test]
async fn within_a_key_runs_come_out_by_score_and_limits_still_hold() {
    let h = Harness::new().await;
    let spec = TaskSpec { concurrency_limit: Some(3), combined_limit: Some(3), ..task("t") };
    let worker = h.worker(&h.prod, vec![spec]).await;
    h.trigger_keyed("t", Some("a"), 3).await;
    h.advance(1);
    let urgent =
        TriggerParams { concurrency_key: Some("a".into()), priority_ms: 60_000, ..TriggerParams::new("t", "1") };
    let urgent = h.engine.trigger(&h.prod, urgent).await.unwrap().run;
    h.trigger_keyed("t", Some("b"), 3).await;
    let runs = h.dequeue(&worker, 10).await;
    assert_eq!(runs.len(), 3, "the queue's combined limit caps the dequeue");
    assert_eq!(runs[0].id, urgent.id, "priority moves a run ahead within its key");
    assert!(h.dequeue(&worker, 10).await.is_empty());
}
#[tokio::test]
async fn over_generated_backlogs_no_key_waits_more_than_one_turn() {
    let mut random = Seeded(0x5eed_f00d);
    for case in 0..12 {
        let h = Harness::new().await;
        let worker = h.worker(&h.prod, vec![task("t")]).await;
        let lanes = 1 + random.below(6) as usize;
        let mut left: Vec<(Option<String>, usize)> = Vec::new();
        for lane in 0..lanes {
            let key = (lane > 0 || random.below(2) == 0).then(|| format!("k{lane}"));
            let runs = 1 + random.below(30) as usize;
            h.trigger_keyed("t", key.as_deref(), runs).await;
            left.push((key, runs));
        }
        let total: usize = left.iter().map(|(_, n)| n).sum();
        let mut starts: Vec<Option<String>> = Vec::new();
        while starts.len() < total {
            let runs = h.dequeue(&worker, 1 + random.below(12) as u32).await;
            assert!(!runs.is_empty(), "case {case}: runs are left but none was taken");
            starts.extend(runs.iter().map(|r| r.concurrency_key.clone()));
        }
        assert!(h.dequeue(&worker, 10).await.is_empty());
        // Between two starts of a lane that still has runs, every other lane with runs starts
        // at most once: no lane waits more than one turn of the others.
        for (at, lane) in starts.iter().enumerate() {
            let remaining = |upto: usize, of: &Option<String>| {
                left.iter().find(|(k, _)| k == of).unwrap().1 - starts[..upto].iter().filter(|s| *s == of).count()
            };
            if remaining(at + 1, lane) == 0 {
                continue;
            }
            let active = left.iter().filter(|(k, _)| remaining(at + 1, k) > 0).count();
            let next = starts[at + 1..].iter().position(|s| s == lane).unwrap();
            assert!(
                next < active,
                "case {case}: lane {lane:?} started at {at} waited {next} starts with {active} lanes active: {starts:?}"
            );
        }
    }
}

#[tokio::test]
async fn over_generated_backlogs_and_completions_no_limit_is_exceeded_and_every_run_starts_once() {
    let mut random = Seeded(0x0dd_ba11);
    for case in 0..12 {
        let h = Harness::new().await;
        let limit = 1 + random.below(6) as u32;
        let combined = (random.below(2) == 0).then(|| limit + random.below(6) as u32);
        let env_limit = (random.below(2) == 0).then(|| 1 + random.below(8) as u32);
        let burst_factor = 1.0 + random.below(3) as f64 / 2.0;
        if env_limit.is_some() {
            let limits = EnvLimits { concurrency_limit: env_limit, burst_factor, paused: false };
            h.engine.set_environment_limits(&h.prod.id, limits).await.unwrap();
        }
        let spec = TaskSpec { concurrency_limit: Some(limit), combined_limit: combined, ..task("t") };
        let worker = h.worker(&h.prod, vec![spec]).await;
        let lane_limit = env_limit.map_or(limit, |base| base.min(limit)) as usize;
        let total_limit = [combined, env_limit.map(|l| (f64::from(l) * burst_factor) as u32)]
            .into_iter()
            .flatten()
            .min()
            .map_or(usize::MAX, |l| l as usize);
        let mut total = 0;
        for lane in 0..1 + random.below(5) {
            let runs = 1 + random.below(20) as usize;
            let key = format!("k{lane}");
            h.trigger_keyed("t", (lane > 0).then_some(key.as_str()), runs).await;
            total += runs;
        }
        let mut executing: Vec<RunRow> = Vec::new();
        let mut started = std::collections::HashSet::new();
        while started.len() < total || !executing.is_empty() {
            let taken = h.dequeue(&worker, 1 + random.below(10) as u32).await;
            assert!(!taken.is_empty() || !executing.is_empty(), "case {case}: runs are left but none was taken");
            for run in taken {
                assert!(started.insert(run.id.clone()), "case {case}: {} started twice", run.id);
                executing.push(run);
            }
            let mut per_lane = std::collections::HashMap::new();
            for run in &executing {
                *per_lane.entry(run.concurrency_key.clone()).or_insert(0) += 1;
            }
            let busiest = per_lane.values().copied().max().unwrap_or(0);
            assert!(busiest <= lane_limit, "case {case}: a lane runs {busiest}, its limit is {lane_limit}");
            assert!(executing.len() <= total_limit, "case {case}: {} executing, cap {total_limit}", executing.len());
            for _ in 0..random.below(executing.len() as u64 + 1) {
                let at = random.below(executing.len() as u64) as usize;
                let run = executing.swap_remove(at);
                h.succeed(&h.prod, &run, "1").await;
            }
        }
        assert_eq!(started.len(), total);
    }
}
