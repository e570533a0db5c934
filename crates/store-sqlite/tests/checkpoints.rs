//! Checkpoints run on a thread of their own: once the WAL has grown by 1,000 pages, committed
//! pages reach the database file without the writer checkpointing (its commits checkpoint only
//! from 16,384 pages on).

use std::time::{Duration, Instant};

use stint_store::{NewRun, StoreExt};
use stint_store_conformance::fixtures;
use stint_store_sqlite::{Options, SqliteStore};

#[tokio::test]
async fn committed_pages_are_copied_into_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stint.db");
    let store = SqliteStore::open(&Options::new(&path)).unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    // 300 runs of 20 KB: about 1,500 pages.
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    for chunk in 0..10 {
        let runs: Vec<NewRun> = (0..30)
            .map(|i| {
                let (mut run, snapshot) = fixtures::queued_run(&queue, "t", chunk * 30 + i);
                run.payload = "x".repeat(20_000);
                NewRun { run, snapshot }
            })
            .collect();
        store.write(move |tx| Box::pin(async move { tx.run_insert_many(&runs).await })).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while size() < before + 1_000_000 {
        assert!(Instant::now() < deadline, "no checkpoint copied the commits into the database file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
