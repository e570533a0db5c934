//! `stint schedules`: create (the same command twice makes one schedule), list by task, show,
//! deactivate and delete, against a `stint server` process; a bad expression is refused with the
//! server's message naming the field.

use std::process::{Command, Output};

use serde_json::{Value, json};
use stint_testkit::Api;
use stint_testkit::process::{PROD_KEY, ServerProcess, binary};

fn stint(url: &str, args: &[&str]) -> Output {
    Command::new(binary("stint"))
        .args(args)
        .env("STINT_API_URL", url)
        .env("STINT_SECRET_KEY", PROD_KEY)
        .output()
        .expect("running stint")
}

/// Runs `stint` and returns what it printed, failing the test if it failed.
fn printed(url: &str, args: &[&str]) -> String {
    let output = stint(url, args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "stint {args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test]
async fn schedules_are_made_listed_switched_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let url = server.url();
    let api = Api::new(&url, PROD_KEY);
    api.post("/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "tick"}, {"id": "other"}]}))
        .await
        .unwrap();

    let create = ["schedules", "create", "--task", "tick", "--cron", "0 3 * * *", "--timezone", "Europe/London"];
    let made: Value = serde_json::from_str(&printed(&url, &[&create[..], &["--json"]].concat())).unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sched_"), "{made}");
    assert_eq!((made["task"].as_str(), made["timezone"].as_str()), (Some("tick"), Some("Europe/London")));
    let again = printed(&url, &create);
    assert!(again.starts_with(&format!("{id} tick \"0 3 * * *\" in Europe/London")), "{again}");
    printed(&url, &["schedules", "create", "--task", "other", "--cron", "*/5 * * * *", "--external-id", "user-1"]);

    let listed: Value =
        serde_json::from_str(&printed(&url, &["schedules", "list", "--task", "tick", "--json"])).unwrap();
    assert_eq!(listed["pagination"]["count"], 1, "the same command twice made one schedule: {listed}");
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let table = printed(&url, &["schedules", "list"]);
    assert!(table.contains(&id) && table.contains("user-1") && table.contains("(2 schedules)"), "{table}");

    let off = printed(&url, &["schedules", "deactivate", &id]);
    assert!(off.trim_end().ends_with("inactive"), "{off}");
    let shown: Value = serde_json::from_str(&printed(&url, &["schedules", "get", &id])).unwrap();
    assert_eq!(shown["active"], false, "{shown}");
    assert_eq!(printed(&url, &["schedules", "delete", &id]).trim(), id);
    let gone = stint(&url, &["schedules", "get", &id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));

    let refused = stint(&url, &["schedules", "create", "--task", "tick", "--cron", "61 * * * *"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("cron"), "{message}");
}
