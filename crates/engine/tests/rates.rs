//! Rate limits on a queue's starts, for the whole queue or per concurrency key: a burst of the
//! limit, then one start per `period / limit`; runs over the limit stay queued and start later.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Harness, Seeded, per_key, task};
use stint_engine::{Error, QueueRef, TaskSpec};
use stint_store::{RateLimit, RunRow};
use stint_types::RunStatus;

fn rated(id: &str, limit: u32, period_ms: u64, per_key: bool) -> TaskSpec {
    TaskSpec { rate_limit: Some(RateLimit { limit, period_ms, per_key }), ..task(id) }
}

/// Any `n > limit` consecutive starts of a lane span at least `(n − limit)·period / limit`
/// (checked in integers): a burst of `limit`, then no faster than the rate.
fn assert_within_rate(starts: &[i64], limit: u32, period_ms: u64, what: &str) {
    let mut starts = starts.to_vec();
    starts.sort_unstable();
    let (limit, period) = (i128::from(limit), i128::from(period_ms));
    for i in 0..starts.len() {
        for j in i..starts.len() {
            let n = (j - i + 1) as i128;
            let span = i128::from(starts[j] - starts[i]);
            assert!((n - limit) * period <= span * limit, "{what}: {n} starts within {span} ms: {starts:?}");
        }
    }
}

fn by_task(name: &str) -> QueueRef {
    QueueRef::Task(name.into())
}

#[tokio::test]
async fn a_queue_starts_its_burst_then_nothing_until_the_clock_allows_the_next() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![rated("t", 3, 10_000, false)]).await;
    h.trigger_keyed("t", None, 10).await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 3, "the whole burst at once");
    assert!(h.dequeue(&worker, 50).await.is_empty());
    // 3 per 10 s: one every 3,333.34 ms.
    h.advance(3_333);
    assert!(h.dequeue(&worker, 50).await.is_empty(), "not before one interval");
    h.advance(1);
    assert_eq!(h.dequeue(&worker, 50).await.len(), 1);
    assert!(h.dequeue(&worker, 50).await.is_empty());
    h.advance(60_000);
    assert_eq!(h.dequeue(&worker, 50).await.len(), 3, "a quiet spell gives back the burst, no more");
    let view = h.engine.queue(&h.prod, by_task("t")).await.unwrap();
    assert_eq!(view.waiting, 3);
}

#[tokio::test]
async fn a_key_at_its_rate_does_not_hold_back_other_keys() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![rated("t", 2, 60_000, true)]).await;
    h.trigger_keyed("t", Some("a"), 5).await;
    h.trigger_keyed("t", Some("b"), 5).await;
    h.trigger_keyed("t", None, 5).await;
    let taken = h.dequeue(&worker, 50).await;
    assert_eq!(per_key(&taken), HashMap::from([("a".into(), 2), ("b".into(), 2), ("-".into(), 2)]));
    assert!(h.dequeue(&worker, 50).await.is_empty(), "every lane is at its rate");
    h.trigger_keyed("t", Some("c"), 3).await;
    let next = h.dequeue(&worker, 50).await;
    assert_eq!(per_key(&next), HashMap::from([("c".into(), 2)]), "a new key has its own rate");
    h.advance(30_000);
    let later = h.dequeue(&worker, 50).await;
    assert_eq!(per_key(&later), HashMap::from([("a".into(), 1), ("b".into(), 1), ("-".into(), 1), ("c".into(), 1)]));
}

#[tokio::test]
async fn keys_further_along_start_while_the_first_keys_wait_for_their_rate() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![rated("t", 1, 60_000, true)]).await;
    for n in 0..30 {
        h.trigger_keyed("t", Some(&format!("k{n:02}")), 2).await;
    }
    assert_eq!(h.dequeue(&worker, 30).await.len(), 30, "one run of each key");
    // A key sorting among the others: the dequeue's turn order reaches it past the keys that
    // may start nothing, one run at a time.
    h.trigger_keyed("t", Some("k15x"), 2).await;
    let next = h.dequeue(&worker, 1).await;
    assert_eq!(per_key(&next), HashMap::from([("k15x".into(), 1)]));
    assert!(h.dequeue(&worker, 1).await.is_empty());
}

#[tokio::test]
async fn a_held_back_run_stays_queued_and_starts_later_without_failing() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![rated("t", 1, 1_000, false)]).await;
    let runs = h.trigger_keyed("t", None, 3).await;
    let first = h.dequeue(&worker, 10).await;
    assert_eq!(first.len(), 1);
    for run in &runs[1..] {
        assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Queued);
    }
    h.succeed(&h.prod, &first[0], "1").await;
    for _ in 0..2 {
        assert!(h.dequeue(&worker, 10).await.is_empty());
        h.advance(1_000);
        let next = h.dequeue(&worker, 10).await;
        assert_eq!(next.len(), 1);
        h.succeed(&h.prod, &next[0], "1").await;
    }
    for run in &runs {
        assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Completed);
    }
}

#[tokio::test]
async fn a_retry_is_a_start_too() {
    let h = Harness::new().await;
    // One start per 5 s; the retry is due 1 s after the failure.
    let worker = h.worker(&h.prod, vec![rated("t", 1, 5_000, false)]).await;
    h.trigger_keyed("t", None, 1).await;
    let first = h.dequeue(&worker, 10).await;
    h.fail(&h.prod, &first[0], "boom").await;
    h.advance(1_000);
    assert!(h.dequeue(&worker, 10).await.is_empty(), "the retry is due but the rate holds it back");
    h.advance(4_000);
    let retried = h.dequeue(&worker, 10).await;
    assert_eq!((retried.len(), retried[0].attempt_number), (1, 2));
}

#[tokio::test]
async fn a_waiting_dequeue_looks_again_when_the_rate_allows() {
    let h = Harness::new().await;
    // 10 per second: one every 100 ms after the burst.
    let worker = h.worker(&h.prod, vec![rated("t", 10, 1_000, false)]).await;
    h.trigger_keyed("t", None, 11).await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 10);
    let engine = h.engine.clone();
    let waiting = tokio::spawn(async move {
        let asked = Instant::now();
        let runs = engine.dequeue(&worker, 50, Duration::from_secs(10)).await.unwrap();
        (runs.len(), asked.elapsed())
    });
    h.until_waiting(1).await;
    h.advance(100);
    let (count, took) = waiting.await.unwrap();
    assert_eq!(count, 1);
    // Waiting dequeues look again every 2 s anyway; this one looked when the rate allowed.
    assert!(took < Duration::from_millis(1_500), "the dequeue waited {took:?}");
}

#[tokio::test]
async fn a_trigger_is_not_handed_past_the_rate_to_a_waiting_worker() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![rated("t", 1, 60_000, false)]).await;
    h.trigger_keyed("t", None, 1).await;
    assert_eq!(h.dequeue(&worker, 10).await.len(), 1);
    let engine = h.engine.clone();
    let waiting = tokio::spawn(async move { engine.dequeue(&worker, 10, Duration::from_millis(500)).await.unwrap() });
    h.until_waiting(1).await;
    let run = h.trigger_keyed("t", None, 1).await.remove(0);
    assert!(waiting.await.unwrap().is_empty());
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Queued);
}

#[tokio::test]
async fn an_override_replaces_the_declared_rate_until_reset() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let plain = h.engine.queue(&h.prod, by_task("t")).await.unwrap();
    assert_eq!(plain.queue.rate(), None);
    let rate = RateLimit { limit: 2, period_ms: 60_000, per_key: false };
    let overridden = h.engine.override_queue_rate(&h.prod, by_task("t"), rate).await.unwrap();
    assert_eq!(overridden.queue.rate(), Some(rate));
    assert_eq!(overridden.queue.rate_override.map(|o| o.at), Some(h.engine.now()));
    h.trigger_keyed("t", None, 5).await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 2);
    assert!(h.dequeue(&worker, 50).await.is_empty());

    // Declaring the queue again changes the declared rate, not the override.
    let worker = h.worker(&h.prod, vec![rated("t", 50, 1_000, false)]).await;
    let view = h.engine.queue(&h.prod, by_task("t")).await.unwrap();
    assert_eq!((view.queue.rate(), view.queue.rate_limit.map(|r| r.limit)), (Some(rate), Some(50)));
    assert!(h.dequeue(&worker, 50).await.is_empty());

    let reset = h.engine.reset_queue_rate(&h.prod, by_task("t")).await.unwrap();
    assert_eq!(reset.queue.rate().map(|r| r.limit), Some(50));
    // The lane's time carries over, brought within one period of the declared rate: the slow
    // override holds the next starts back for a second, not for the rest of its minute.
    assert!(h.dequeue(&worker, 50).await.is_empty());
    h.advance(1_000);
    assert_eq!(h.dequeue(&worker, 50).await.len(), 3, "the declared rate is back in force");
}

#[tokio::test]
async fn bad_rates_are_refused_naming_the_field() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let cases = [
        (RateLimit { limit: 0, period_ms: 1_000, per_key: false }, "rateLimit.limit"),
        (RateLimit { limit: 100_001, period_ms: 1_000, per_key: false }, "rateLimit.limit"),
        (RateLimit { limit: 1, period_ms: 999, per_key: false }, "rateLimit.periodMs"),
        (RateLimit { limit: 1, period_ms: 86_400_001, per_key: true }, "rateLimit.periodMs"),
    ];
    for (rate, field) in cases {
        match h.engine.override_queue_rate(&h.prod, by_task("t"), rate).await {
            Err(Error::Invalid(message)) => assert!(message.contains(field), "{message}"),
            other => panic!("{rate:?}: {other:?}"),
        }
        let declared =
            h.engine.register_worker(&h.prod, "1.0.0".into(), vec![rated("u", rate.limit, rate.period_ms, true)]);
        match declared.await {
            Err(Error::Invalid(message)) => assert!(message.contains(&format!("queue 'task/u': {field}")), "{message}"),
            other => panic!("{rate:?}: {other:?}"),
        }
    }
    assert_eq!(h.engine.queue(&h.prod, by_task("t")).await.unwrap().queue.rate(), None, "nothing was stored");
    let shared = vec![
        TaskSpec { queue: Some("api".into()), ..rated("a", 5, 1_000, false) },
        TaskSpec { queue: Some("api".into()), ..rated("b", 6, 1_000, false) },
    ];
    match h.engine.register_worker(&h.prod, "1.0.0".into(), shared).await {
        Err(Error::Invalid(message)) => assert!(message.contains("different rate limits"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// A generated run of the engine: a rate for the whole queue or per key, runs under a few keys,
/// dequeues of random sizes at random times, completions and failures (whose retries start again).
/// No lane ever starts faster than its rate, and every run finishes.
#[tokio::test]
async fn over_generated_traffic_no_lane_starts_faster_than_its_rate() {
    let mut random = Seeded(0x5eed_7a7e);
    for case in 0..10 {
        let h = Harness::new().await;
        let limit = 1 + random.below(5) as u32;
        let period = 1_000 + random.below(9_000);
        let per_key = random.below(2) == 0;
        let worker = h.worker(&h.prod, vec![rated("t", limit, period, per_key)]).await;
        let mut total = 0;
        for lane in 0..1 + random.below(4) {
            let key = format!("k{lane}");
            let runs = 1 + random.below(8) as usize;
            h.trigger_keyed("t", (lane > 0).then_some(key.as_str()), runs).await;
            total += runs;
        }
        let mut starts: HashMap<Option<String>, Vec<i64>> = HashMap::new();
        let mut executing: Vec<RunRow> = Vec::new();
        let mut finished = 0;
        let mut rounds = 0;
        while finished < total {
            rounds += 1;
            assert!(rounds < 10_000, "case {case}: runs never finished");
            for run in h.dequeue(&worker, 1 + random.below(6) as u32).await {
                let lane = if per_key { run.concurrency_key.clone() } else { None };
                starts.entry(lane).or_default().push(run.attempt_started_at.unwrap().millis());
                executing.push(run);
            }
            for _ in 0..random.below(executing.len() as u64 + 1) {
                let run = executing.swap_remove(random.below(executing.len() as u64) as usize);
                if random.below(4) == 0 && run.attempt_number < 3 {
                    h.fail(&h.prod, &run, "boom").await;
                } else {
                    h.succeed(&h.prod, &run, "1").await;
                    finished += 1;
                }
            }
            h.advance(random.below(period / 2));
        }
        for (lane, times) in &starts {
            assert_within_rate(times, limit, period, &format!("case {case}, lane {lane:?}, {limit} per {period} ms"));
        }
    }
}
