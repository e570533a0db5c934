//! Migration 0007 on a schema made by an earlier version: keys made before it get ids that parse
//! as key ids, carry their creation time and are unique.

mod support;

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
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
const TENANCY_ADMIN: &str = include_str!("../migrations/0007_tenancy_admin.sql");

async fn run(connection: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut *connection).await.unwrap();
}

#[tokio::test]
async fn keys_made_before_0007_get_ids_from_their_creation_time() {
    let schema = support::new_schema();
    let mut connection = PgConnection::connect(&support::url())
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL tests need a server at {}: {e}", support::url()));
    run(&mut connection, &format!("CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\"")).await;
    for sql in EARLIER {
        run(&mut connection, sql).await;
    }
    run(
        &mut connection,
        "INSERT INTO organizations VALUES ('org_1', 'Default', 'default', 1);
         INSERT INTO projects VALUES ('proj_1', 'org_1', 'Default', 'proj_1', 1);
         INSERT INTO environments VALUES ('env_1', 'proj_1', 'org_1', 'PRODUCTION', 1);
         INSERT INTO api_keys VALUES (repeat('0a', 32), 'tr_prod_abcd', 'env_1', 1700000000123);
         INSERT INTO api_keys VALUES (repeat('0b', 32), 'tr_prod_efgh', 'env_1', 1700000000123);
         INSERT INTO api_keys VALUES (repeat('fc', 32), 'tr_prod_ijkl', 'env_1', 1700000999000);",
    )
    .await;
    run(&mut connection, TENANCY_ADMIN).await;
    let rows = sqlx::query("SELECT id, key_hash, created_at, name, revoked_at FROM api_keys ORDER BY key_hash")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    let _ = connection.close().await;
    support::drop_schema(&schema).unwrap();
    assert_eq!(rows.len(), 3);
    let mut ids = Vec::new();
    for row in &rows {
        let (id, hash, at): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        let parsed = KeyId::parse(&id).unwrap_or_else(|e| panic!("{e}"));
        // The first ten characters of a ULID body are its time.
        let expected = KeyId::from_parts(u64::try_from(at).unwrap(), 0);
        let time_part = &expected.as_str()[..14];
        assert_eq!(&parsed.as_str()[..14], time_part, "{id}");
        assert_eq!(&id[14..], &hash[..16]);
        assert_eq!(row.get::<Option<String>, _>(3), None);
        assert_eq!(row.get::<Option<i64>, _>(4), None);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are unique, even within one millisecond");
}
