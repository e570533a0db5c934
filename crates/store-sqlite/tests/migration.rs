//! Migration 0007 on a database made by an earlier version: keys made before it get ids that parse
//! as key ids, carry their creation time and are unique, and the store opens the database.

use stint_store::StoreExt;
use stint_store_sqlite::{Options, SqliteStore};
use stint_types::KeyId;

/// The migrations before 0007, as an earlier version applied them.
const EARLIER: [&str; 6] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_leases.sql"),
    include_str!("../migrations/0003_idempotency.sql"),
    include_str!("../migrations/0004_queue_order.sql"),
    include_str!("../migrations/0005_queue_controls.sql"),
    include_str!("../migrations/0006_queue_lanes.sql"),
];

#[tokio::test]
async fn keys_made_before_0007_get_ids_from_their_creation_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stint.db");
    let created = [1_700_000_000_123_i64, 1_700_000_000_123, 1_700_000_999_000];
    let hashes = ["0a".repeat(32), "0b".repeat(32), "fc".repeat(32)];
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        for sql in EARLIER {
            connection.execute_batch(sql).unwrap();
        }
        // rusqlite_migration counts applied migrations in `user_version`.
        connection.pragma_update(None, "user_version", EARLIER.len() as i64).unwrap();
        connection
            .execute_batch(
                "INSERT INTO organizations VALUES ('org_1', 'Default', 'default', 1);
                 INSERT INTO projects VALUES ('proj_1', 'org_1', 'Default', 'proj_1', 1);
                 INSERT INTO environments VALUES ('env_1', 'proj_1', 'org_1', 'PRODUCTION', 1);",
            )
            .unwrap();
        for (hash, at) in hashes.iter().zip(created) {
            connection
                .execute(
                    "INSERT INTO api_keys (key_hash, key_prefix, env_id, created_at) VALUES (?, 'tr_prod_abcd', 'env_1', ?)",
                    rusqlite::params![hash, at],
                )
                .unwrap();
        }
    }
    let store = SqliteStore::open(&Options::new(&path)).unwrap();
    let keys = store.read(|tx| Box::pin(async move { tx.api_key_list().await })).await.unwrap();
    assert_eq!(keys.len(), 3);
    for (key, (hash, at)) in keys.iter().zip(hashes.iter().zip(created)) {
        assert_eq!(&key.key_hash, hash);
        let parsed = KeyId::parse(key.id.as_str()).unwrap_or_else(|e| panic!("{e}"));
        // The first ten characters of a ULID body are its time.
        let expected = KeyId::from_parts(u64::try_from(at).unwrap(), 0);
        let time_part = &expected.as_str()[..14];
        assert_eq!(&parsed.as_str()[..14], time_part, "{}", key.id);
        assert_eq!(&parsed.as_str()[14..], &hash[..16]);
        assert_eq!((key.name.as_deref(), key.revoked_at), (None, None));
    }
    let mut ids: Vec<_> = keys.iter().map(|k| k.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are unique, even within one millisecond");
    let found = store.read(|tx| Box::pin(async move { tx.api_key_by_hash(&"fc".repeat(32)).await })).await.unwrap();
    assert_eq!(found.map(|k| k.created_at.0), Some(1_700_000_999_000));
}
