//! `stint projects`, `stint keys` and `stint tokens` against a `stint server` process, with the
//! admin token the server generated and wrote to its data directory at its first start.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use stint_testkit::process::binary;

/// A `stint server` started on a data directory with no credential given, so it generates them.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(binary("stint"))
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("STINT_ADMIN_TOKEN")
            .env_remove("STINT_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting stint server");
        let stdout = child.stdout.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Stint is listening on ") {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let url = address.recv_timeout(Duration::from_secs(60)).expect("the server did not start");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `stint` with `args` against `url` with `token` as the admin token.
fn stint(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(binary("stint"));
    command.args(args).env("STINT_API_URL", url).env_remove("STINT_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("STINT_ADMIN_TOKEN", token);
    }
    command.output().expect("running stint")
}

/// The standard output of a run that must succeed.
fn succeeds(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "stint failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The line of `text` that starts with `prefix`: a revealed key or token.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line starting with {prefix} in {text}"))
}

/// The first word starting with `prefix` in `text`.
fn word<'a>(text: &'a str, prefix: &str) -> &'a str {
    let start = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} in {text}"));
    text[start..].split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap()
}

#[test]
fn projects_keys_tokens_and_environment_limits_are_administered_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let url = server.url.clone();
    let keys_file = std::fs::read_to_string(dir.path().join("secret-keys.env")).unwrap();
    let token = keys_file
        .lines()
        .find_map(|line| line.strip_prefix("STINT_ADMIN_TOKEN="))
        .unwrap_or_else(|| panic!("no admin token in {keys_file}"))
        .to_string();

    let created = succeeds(stint(&url, Some(&token), &["projects", "create", "Billing", "--organization", "acme"]));
    assert!(created.contains("Created project Billing"), "{created}");
    assert!(created.contains("shown only now"), "{created}");
    for prefix in ["tr_dev_", "tr_stg_", "tr_prod_", "tr_preview_"] {
        assert!(created.contains(prefix), "{created}");
    }
    let project = word(&created, "proj_").to_string();

    let listed = succeeds(stint(&url, Some(&token), &["projects", "list"]));
    assert!(listed.contains(&project) && listed.contains("acme") && listed.contains("Default"), "{listed}");

    let key = succeeds(stint(
        &url,
        Some(&token),
        &["keys", "create", "--project", &project, "--env", "prod", "--name", "ci"],
    ));
    assert!(key.contains("shown only now"), "{key}");
    let secret = line(&key, "tr_prod_sk_");
    let id = word(&key, "key_").to_string();
    let keys = succeeds(stint(
        &url,
        Some(&token),
        &["keys", "list", "--project", &project, "--env", "prod", "--prefix", "tr_prod_sk_"],
    ));
    assert!(keys.contains(&id) && keys.contains("ci") && !keys.contains(secret), "{keys}");
    let revoked = succeeds(stint(&url, Some(&token), &["keys", "revoke", "--project", &project, &id]));
    assert!(revoked.contains(&format!("Revoked key {id}")), "{revoked}");

    let made = succeeds(stint(&url, Some(&token), &["tokens", "create", "--project", &project, "--name", "laptop"]));
    assert_eq!(line(&made, "tr_pat_").len(), "tr_pat_".len() + 40, "{made}");
    let token_id = word(&made, "pat_").to_string();
    let tokens = succeeds(stint(&url, Some(&token), &["tokens", "list", "--project", &project]));
    assert!(tokens.contains(&token_id) && tokens.contains("laptop"), "{tokens}");
    succeeds(stint(&url, Some(&token), &["tokens", "revoke", "--project", &project, &token_id]));

    let env = ["--project", project.as_str(), "--env", "prod"];
    let fresh = succeeds(stint(&url, Some(&token), &[&["environments", "get"][..], &env].concat()));
    assert!(fresh.contains("concurrency      none"), "{fresh}");
    let set = [&["environments", "set"][..], &env, &["--concurrency-limit", "10", "--burst-factor", "1.5", "--pause"]];
    let limited = succeeds(stint(&url, Some(&token), &set.concat()));
    assert!(
        limited.contains("10 (burst factor 1.5, 15 in all)") && limited.contains("paused           true"),
        "{limited}"
    );
    let unset = [&["environments", "set"][..], &env, &["--concurrency-limit", "none", "--resume"]];
    let unlimited = succeeds(stint(&url, Some(&token), &unset.concat()));
    assert!(unlimited.contains("concurrency      none") && unlimited.contains("paused           false"), "{unlimited}");
    let bad = stint(&url, Some(&token), &[&["environments", "set"][..], &env, &["--burst-factor", "0.5"]].concat());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("burstFactor"), "{bad:?}");

    // Without the admin token, or with a wrong one, nothing is done and the reason is said.
    let refused = stint(&url, None, &["projects", "list"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("STINT_ADMIN_TOKEN"));
    let refused = stint(&url, Some("stint_admin_0123456789abcdefghijABCDEFGHIJ01"), &["projects", "list"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{refused:?}");
    let unknown = stint(&url, Some(&token), &["keys", "list", "--project", "proj_missing"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"), "{unknown:?}");
}
