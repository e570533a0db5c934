//! Migration 0012 on a database made before worker versions: runs not finished carried their
//! worker's build label in `version`, which names no version, so they are unlocked; finished runs
//! keep it; workers registered before have no versions.

use stint_store::{Lane, StoreExt};
use stint_store_sqlite::{Options, SqliteStore};
use stint_types::{QueueId, RunId, WorkerId};

/// The migrations before worker versions, as an earlier version applied them.
const EARLIER: [&str; 10] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_leases.sql"),
    include_str!("../migrations/0003_idempotency.sql"),
    include_str!("../migrations/0004_queue_order.sql"),
    include_str!("../migrations/0005_queue_controls.sql"),
    include_str!("../migrations/0006_queue_lanes.sql"),
    include_str!("../migrations/0007_tenancy_admin.sql"),
    include_str!("../migrations/0008_limits.sql"),
    include_str!("../migrations/0009_rate_limits.sql"),
    include_str!("../migrations/0010_worker_pools.sql"),
];

#[tokio::test]
async fn runs_in_progress_lose_their_build_label_and_old_workers_have_no_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stint.db");
    let (queued, finished) = (RunId::from_parts(1, 1), RunId::from_parts(2, 1));
    let queue = QueueId::from_parts(3, 1);
    let worker = WorkerId::from_parts(4, 1);
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        for sql in EARLIER {
            connection.execute_batch(sql).unwrap();
        }
        // rusqlite_migration counts applied migrations in `user_version`.
        connection.pragma_update(None, "user_version", EARLIER.len() as i64).unwrap();
        let insert = "INSERT INTO runs (id, env_id, task_id, queue_id, queue_name, status, snapshot_id, \
                      execution_status, attempt_number, payload, payload_type, tags, priority_ms, queue_score, \
                      is_test, version, duration_ms, created_at, updated_at, finished_at) \
                      VALUES (?, 'env_1', 't', ?, 'task/t', ?, ?, ?, 1, '1', 'application/json', '[]', 0, ?, 0, \
                      '1.0.0', 0, 1, 1, ?)";
        let rows = [(&queued, "QUEUED", "QUEUED", Some(5), None), (&finished, "COMPLETED", "FINISHED", None, Some(9))];
        for (n, (id, status, execution, score, finished_at)) in rows.into_iter().enumerate() {
            connection
                .execute(
                    insert,
                    rusqlite::params![
                        id.as_str(),
                        queue.as_str(),
                        status,
                        format!("snapshot_{n}"),
                        execution,
                        score,
                        finished_at
                    ],
                )
                .unwrap();
        }
        connection
            .execute(
                "INSERT INTO workers (id, env_id, version, task_ids, created_at) VALUES (?, 'env_1', '1.0.0', '[\"t\"]', 1)",
                [worker.as_str()],
            )
            .unwrap();
    }
    let store = SqliteStore::open(&Options::new(&path)).unwrap();
    let (queued_now, finished_now, old_worker, taken) = store
        .read(move |tx| {
            Box::pin(async move {
                let taken = tx.queue_take(&queue, Lane::All, &["t".to_string()], None, 10, 10).await?;
                Ok::<_, stint_store::Error>((
                    tx.run_get(&queued).await?.unwrap(),
                    tx.run_get(&finished).await?.unwrap(),
                    tx.worker_get(&worker).await?.unwrap(),
                    taken,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(queued_now.version, None, "a run in progress is no longer locked to a label");
    assert_eq!(finished_now.version.as_deref(), Some("1.0.0"), "a finished run keeps what it ran on");
    assert!(old_worker.versions.is_empty());
    assert_eq!(old_worker.version_in(&old_worker.env_id), None);
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&queued_now.id], "any worker takes it");
}
