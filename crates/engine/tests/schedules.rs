//! Schedules: imperative and declarative, fired once per nominal time by the due-work pass, one
//! catch-up run after downtime, inactive ones keeping their chain.

mod common;

use common::{Harness, START, task};
use stint_engine::{DeclaredSchedule, Error, ScheduleParams, TaskSpec};
use stint_store::{RunListParams, RunRow, StoreExt};
use stint_types::Timestamp;

/// A schedule of `t` in prod (`START` is 2027-01-15T08:00:00Z, on the hour).
fn params(cron: &str) -> ScheduleParams {
    ScheduleParams {
        task_id: "t".into(),
        cron: cron.into(),
        timezone: None,
        external_id: Some("customer-1".into()),
        dedup_key: Some("every-minute".into()),
    }
}

async fn runs(h: &Harness) -> Vec<RunRow> {
    let mut runs = h.engine.runs(&h.prod, RunListParams { limit: 100, ..RunListParams::default() }).await.unwrap();
    runs.reverse();
    runs
}

fn payload(run: &RunRow) -> serde_json::Value {
    serde_json::from_str(&run.payload).unwrap()
}

/// The time `ms` after the next whole minute after `START`.
fn minute(n: i64) -> Timestamp {
    let first = (START.millis() / 60_000 + 1) * 60_000;
    Timestamp(first + (n - 1) * 60_000)
}

fn advance_to(h: &Harness, at: Timestamp) {
    let now = h.engine.now();
    h.advance(u64::try_from(at.millis() - now.millis()).unwrap());
}

#[tokio::test]
async fn a_schedule_fires_once_per_time_with_trigger_dev_payload() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let made = h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap().schedule;
    assert_eq!(made.next_run, Some(minute(1)));
    h.engine.run_due().await.unwrap();
    assert!(runs(&h).await.is_empty(), "not due yet");

    advance_to(&h, minute(1));
    assert_eq!(h.engine.run_due().await.unwrap().fired, 1);
    // Looking again at the same time fires nothing more.
    assert_eq!(h.engine.run_due().await.unwrap().fired, 0);
    advance_to(&h, minute(2));
    h.engine.run_due().await.unwrap();
    let fired = runs(&h).await;
    assert_eq!(fired.len(), 2);
    let first = payload(&fired[0]);
    assert_eq!(first["scheduleId"], made.id.to_string());
    assert_eq!(first["type"], "IMPERATIVE");
    assert_eq!(first["timestamp"], minute(1).to_rfc3339());
    assert_eq!(first["externalId"], "customer-1");
    assert_eq!(first["timezone"], "UTC");
    assert!(first.get("lastTimestamp").is_none());
    assert_eq!(first["upcoming"].as_array().unwrap().len(), 10);
    assert_eq!(first["upcoming"][0], minute(2).to_rfc3339());
    let second = payload(&fired[1]);
    assert_eq!(
        (second["timestamp"].clone(), second["lastTimestamp"].clone()),
        (serde_json::json!(minute(2).to_rfc3339()), serde_json::json!(minute(1).to_rfc3339()))
    );
    let (schedule, at) = h.engine.schedule_of_run(&h.prod, &fired[1].id).await.unwrap().unwrap();
    assert_eq!((schedule.id, at), (made.id, minute(2)));
}

#[tokio::test]
async fn a_stop_spanning_three_fire_times_gives_one_catch_up_run() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap();
    advance_to(&h, minute(3));
    h.advance(30_000);
    h.engine.run_due().await.unwrap();
    let fired = runs(&h).await;
    assert_eq!(fired.len(), 1, "one catch-up run, not a burst");
    assert_eq!(payload(&fired[0])["timestamp"], minute(3).to_rfc3339(), "the latest missed time");
    let schedule = h.engine.schedules(&h.prod, None, 1, 10).await.unwrap().0.remove(0).schedule;
    assert_eq!(schedule.next_run, Some(minute(4)));
}

#[tokio::test]
async fn an_inactive_schedule_keeps_its_chain_and_triggers_nothing() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let id = h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap().schedule.id;
    h.engine.set_schedule_active(&h.prod, &id, false).await.unwrap();
    advance_to(&h, minute(1));
    h.engine.run_due().await.unwrap();
    assert!(runs(&h).await.is_empty());
    assert_eq!(h.engine.schedule(&h.prod, &id).await.unwrap().schedule.next_run, Some(minute(2)));
    h.engine.set_schedule_active(&h.prod, &id, true).await.unwrap();
    advance_to(&h, minute(2));
    h.engine.run_due().await.unwrap();
    let fired = runs(&h).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(payload(&fired[0])["timestamp"], minute(2).to_rfc3339());
}

#[tokio::test]
async fn a_dedup_key_makes_create_an_upsert() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let first = h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap().schedule;
    let again = h.engine.create_schedule(&h.prod, params("0 * * * *")).await.unwrap().schedule;
    assert_eq!(first.id, again.id);
    assert_eq!(again.cron, "0 * * * *");
    let hour = Timestamp((START.millis() / 3_600_000 + 1) * 3_600_000);
    assert_eq!(again.next_run, Some(hour));
    assert_eq!(h.engine.schedules(&h.prod, None, 1, 10).await.unwrap().1, 1);
    let other = ScheduleParams { dedup_key: Some("other".into()), ..params("* * * * *") };
    assert_ne!(h.engine.create_schedule(&h.prod, other).await.unwrap().schedule.id, first.id);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let cases = [
        (params("* * * *"), "cron"),
        (ScheduleParams { timezone: Some("Mars/Olympus".into()), ..params("* * * * *") }, "timezone"),
        (ScheduleParams { task_id: "nope".into(), ..params("* * * * *") }, "task"),
    ];
    for (params, field) in cases {
        let Err(Error::Invalid(message)) = h.engine.create_schedule(&h.prod, params).await else {
            panic!("expected a refusal naming {field}")
        };
        assert!(message.starts_with(field), "{message}");
    }
    // Another environment's schedule is not found.
    let id = h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap().schedule.id;
    assert!(matches!(h.engine.schedule(&h.dev, &id).await, Err(Error::NotFound(_))));
    assert!(matches!(h.engine.delete_schedule(&h.dev, &id).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn a_declared_schedule_follows_the_current_version() {
    let h = Harness::new().await;
    let declared = |cron: &str| TaskSpec {
        schedule: Some(DeclaredSchedule {
            cron: cron.into(),
            timezone: Some("Europe/London".into()),
            environments: vec![],
        }),
        ..task("t")
    };
    h.worker(&h.prod, vec![declared("0 3 * * *")]).await;
    let (listed, count) = h.engine.schedules(&h.prod, Some("t".into()), 1, 10).await.unwrap();
    assert_eq!(count, 1);
    let schedule = &listed[0].schedule;
    assert_eq!((schedule.kind.as_str(), schedule.timezone.as_str()), ("DECLARATIVE", "Europe/London"));
    let Err(Error::Invalid(_)) = h.engine.delete_schedule(&h.prod, &schedule.id).await else {
        panic!("a declared schedule is changed by its code only")
    };
    // The same declaration again changes nothing; a new expression changes the schedule.
    h.worker(&h.prod, vec![declared("0 3 * * *")]).await;
    h.worker(&h.prod, vec![declared("0 4 * * *")]).await;
    let (listed, _) = h.engine.schedules(&h.prod, None, 1, 10).await.unwrap();
    assert_eq!((listed.len(), listed[0].schedule.cron.as_str()), (1, "0 4 * * *"));
    assert_eq!(listed[0].schedule.id, schedule.id);
    // A version whose task declares none removes it; dev never had it (it was declared for all
    // environments, but no dev worker registered).
    h.worker(&h.prod, vec![task("t")]).await;
    assert_eq!(h.engine.schedules(&h.prod, None, 1, 10).await.unwrap().1, 0);
    assert_eq!(h.engine.schedules(&h.dev, None, 1, 10).await.unwrap().1, 0);
    // A bad declaration refuses the registration.
    let error = h.engine.register_worker(&h.prod, "2".into(), vec![declared("nope")]).await.unwrap_err();
    assert!(error.to_string().contains("task 't': schedule cron"), "{error}");
}

#[tokio::test]
async fn one_run_per_fire_time_across_a_restart() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    let id = h.engine.create_schedule(&h.prod, params("* * * * *")).await.unwrap().schedule.id;
    advance_to(&h, minute(1));
    assert_eq!(h.engine.run_due().await.unwrap().fired, 1);

    // The server restarts within the minute: the restarted engine fires nothing for it.
    let restarted = h.another_engine(43).await;
    h.advance(10_000);
    assert_eq!(restarted.run_due().await.unwrap().fired, 0);
    // Even a chain set back to a time that fired already (a schedule row written from a stale
    // read) does not fire that time twice: it moves on without a run.
    let mut row = restarted.schedule(&h.prod, &id).await.unwrap().schedule;
    row.next_run = Some(minute(1));
    row.due_at = Some(minute(1));
    h.store.write(move |tx| Box::pin(async move { tx.schedule_update(&row).await })).await.unwrap();
    restarted.run_due().await.unwrap();
    assert_eq!(runs(&h).await.len(), 1, "minute 1 fired once");
    assert_eq!(restarted.schedule(&h.prod, &id).await.unwrap().schedule.next_run, Some(minute(2)));

    // A restart before a fire time: that time fires once, on the restarted engine.
    let again = h.another_engine(44).await;
    advance_to(&h, minute(2));
    assert_eq!(again.run_due().await.unwrap().fired, 1);
    assert_eq!(restarted.run_due().await.unwrap().fired, 0);
    let fired: Vec<_> = runs(&h).await.iter().map(|run| payload(run)["timestamp"].clone()).collect();
    assert_eq!(fired, [minute(1).to_rfc3339(), minute(2).to_rfc3339()]);
}

#[tokio::test]
async fn two_nodes_firing_at_once_make_one_run_per_schedule_and_time() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    const SCHEDULES: usize = 60;
    for i in 0..SCHEDULES {
        let params = ScheduleParams { dedup_key: Some(format!("s{i}")), ..params("* * * * *") };
        h.engine.create_schedule(&h.prod, params).await.unwrap();
    }
    let other = h.another_engine(43).await;
    for n in 1..=2 {
        advance_to(&h, minute(n));
        let (a, b) = tokio::join!(h.engine.run_due(), other.run_due());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.fired + b.fired >= SCHEDULES, "every schedule was looked at: {} + {}", a.fired, b.fired);
    }
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .engine
            .runs(&h.prod, RunListParams { limit: 100, after: after.clone(), ..RunListParams::default() })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        all.extend(page);
    }
    assert_eq!(all.len(), 2 * SCHEDULES, "one run per schedule and minute");
    let fires: std::collections::HashSet<_> = all
        .iter()
        .map(|run| {
            let payload = payload(run);
            (payload["scheduleId"].to_string(), payload["timestamp"].to_string())
        })
        .collect();
    assert_eq!(fires.len(), 2 * SCHEDULES);
}

#[tokio::test]
async fn runs_are_made_ahead_spread_over_half_a_minute_and_start_at_their_time() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    const SCHEDULES: usize = 50;
    for i in 0..SCHEDULES {
        let params = ScheduleParams { dedup_key: Some(format!("s{i}")), ..params("* * * * *") };
        h.engine.create_schedule(&h.prod, params).await.unwrap();
    }
    let (listed, _) = h.engine.schedules(&h.prod, None, 1, 100).await.unwrap();
    let due: std::collections::HashSet<_> = listed.iter().map(|s| s.schedule.due_at.unwrap()).collect();
    for at in &due {
        assert!(
            *at >= minute(1).plus_millis(-30_000) && *at <= minute(1).plus_millis(-1_000),
            "{at:?} from 30 s to 1 s before"
        );
    }
    assert!(due.len() > SCHEDULES / 2, "spread out: {} distinct times", due.len());

    // Half a minute before, nothing is made yet; then the runs come as their due times pass.
    advance_to(&h, minute(1).plus_millis(-30_001));
    h.engine.run_due().await.unwrap();
    assert!(runs(&h).await.is_empty());
    let mut made = Vec::new();
    while h.engine.now() < minute(1) {
        h.advance(1_000);
        h.engine.run_due().await.unwrap();
        made.push(runs(&h).await.len());
    }
    assert_eq!(made.last(), Some(&SCHEDULES), "all made by their time");
    assert!(made.iter().filter(|n| **n > 0 && **n < SCHEDULES).count() >= 10, "made over time: {made:?}");

    // Made ahead, each is queued as of its time and starts no earlier.
    h.clock.set(minute(1).plus_millis(-1));
    for run in runs(&h).await {
        assert_eq!((run.created_at, run.queue_score), (minute(1), Some(minute(1).millis())));
        assert_eq!(payload(&run)["timestamp"], minute(1).to_rfc3339());
    }
    assert!(h.dequeue(&worker, 100).await.is_empty(), "not before its time");
    h.advance(1);
    assert_eq!(h.dequeue(&worker, 100).await.len(), SCHEDULES);
}

#[tokio::test]
async fn a_run_made_ahead_is_withdrawn_when_its_schedule_changes_before_its_time() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t"), task("u")]).await;
    let make = |key: &str| ScheduleParams { dedup_key: Some(key.into()), ..params("* * * * *") };
    let a = h.engine.create_schedule(&h.prod, make("a")).await.unwrap().schedule.id;
    let b = h.engine.create_schedule(&h.prod, make("b")).await.unwrap().schedule.id;
    let c = h.engine.create_schedule(&h.prod, make("c")).await.unwrap().schedule.id;
    let d = h.engine.create_schedule(&h.prod, make("d")).await.unwrap().schedule.id;
    advance_to(&h, minute(1).plus_millis(-1));
    h.engine.run_due().await.unwrap();
    let ahead = runs(&h).await;
    assert_eq!(ahead.len(), 4, "made ahead");

    // Deactivated, changed and deleted before their time: each run is withdrawn.
    h.engine.set_schedule_active(&h.prod, &a, false).await.unwrap();
    let inactive = h.engine.schedule(&h.prod, &a).await.unwrap().schedule;
    assert_eq!((inactive.next_run, inactive.due_at), (Some(minute(1)), Some(minute(1))), "its time is next again");
    h.engine.update_schedule(&h.prod, &b, ScheduleParams { dedup_key: None, ..params("*/2 * * * *") }).await.unwrap();
    h.engine.delete_schedule(&h.prod, &c).await.unwrap();
    let to_u = ScheduleParams { task_id: "u".into(), dedup_key: None, ..params("* * * * *") };
    h.engine.update_schedule(&h.prod, &d, to_u).await.unwrap();
    for run in runs(&h).await {
        assert_eq!(run.status, stint_types::RunStatus::Canceled, "{}", payload(&run)["scheduleId"]);
        assert!(h.engine.schedule_of_run(&h.prod, &run.id).await.unwrap().is_none(), "its fire is forgotten");
    }
    // Inactive, it is left alone until its time; activated again in time, it fires that time
    // after all, with a new run. The schedule given another task fires its time for that task.
    h.engine.run_due().await.unwrap();
    h.engine.set_schedule_active(&h.prod, &a, true).await.unwrap();
    h.engine.run_due().await.unwrap();
    h.advance(1);
    h.engine.run_due().await.unwrap();
    let mut started = h.dequeue(&worker, 10).await;
    assert_eq!(started.len(), 2);
    started.sort_by_key(|run| run.task_id.clone());
    let (schedule, at) = h.engine.schedule_of_run(&h.prod, &started[0].id).await.unwrap().unwrap();
    assert_eq!((&schedule.id, at), (&a, minute(1)));
    let (schedule, at) = h.engine.schedule_of_run(&h.prod, &started[1].id).await.unwrap().unwrap();
    assert_eq!((&schedule.id, at, started[1].task_id.as_str()), (&d, minute(1), "u"));
    assert_eq!(runs(&h).await.len(), 6);
    // A run whose time has come is not withdrawn.
    assert!(!h.engine.set_schedule_active(&h.prod, &a, false).await.unwrap().schedule.active);
    assert_eq!(h.run(&h.prod, &started[0].id).await.status, stint_types::RunStatus::Executing);
}
