//! `stint trigger --batch`: a file of items sent through the batch API, printing the batch's id
//! and its runs' ids; a bad item refuses the batch with the server's message.

use std::process::{Command, Output};

use stint_testkit::process::{PROD_KEY, ServerProcess, binary};

fn stint(url: &str, args: &[&str]) -> Output {
    Command::new(binary("stint"))
        .args(args)
        .env("STINT_API_URL", url)
        .env("STINT_SECRET_KEY", PROD_KEY)
        .output()
        .expect("running stint")
}

#[test]
fn a_file_of_items_becomes_a_batch_and_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let file = dir.path().join("items.ndjson");
    std::fs::write(
        &file,
        "{\"task\": \"noop\", \"payload\": {\"i\": 0}}\n\n{\"task\": \"hello-world\", \"payload\": {\"name\": \"Ada\"}, \
         \"options\": {\"tags\": [\"cli\"]}}\n{\"task\": \"noop\"}\n",
    )
    .unwrap();
    let output = stint(&server.url(), &["trigger", "--batch", file.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{printed}{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{printed}");
    assert!(lines[0].starts_with("batch_"), "{printed}");
    assert!(lines[1..].iter().all(|line| line.starts_with("run_")), "{printed}");
    let shown = stint(&server.url(), &["runs", "get", lines[2]]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(run["taskIdentifier"], "hello-world");
    assert_eq!(run["batchId"], lines[0]);
    assert_eq!(run["tags"], serde_json::json!(["cli"]));

    std::fs::write(&file, "{\"task\": \"noop\"}\n{\"task\": \"noop\", \"options\": {\"maxAttempts\": 0}}\n").unwrap();
    let refused = stint(&server.url(), &["trigger", "--batch", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("items[1]: maxAttempts"), "{message}");
}
