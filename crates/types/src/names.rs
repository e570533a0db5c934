//! Rules for the names users choose: task identifiers, queue names and tags.

/// Longest task identifier or queue name.
pub const MAX_NAME_LEN: usize = 128;
/// Most tags a run may carry.
pub const MAX_TAGS: usize = 10;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 128;

/// Checks a task identifier: 1–128 characters from `A-Z a-z 0-9 - _ . : /`.
pub fn check_task_id(id: &str) -> Result<(), String> {
    check_name("task identifier", id, |c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
}

/// Checks a queue name: 1–128 characters from `A-Z a-z 0-9 - _ /` (Trigger.dev's alphabet).
pub fn check_queue_name(name: &str) -> Result<(), String> {
    check_name("queue name", name, |c| c.is_ascii_alphanumeric() || "-_/".contains(c))
}

/// The name of a task's default queue.
pub fn default_queue_name(task_id: &str) -> String {
    format!("task/{task_id}")
}

/// Normalises tags as Trigger.dev does: trims them, drops empty ones and duplicates, and checks
/// the count and length limits.
pub fn normalize_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || out.iter().any(|t| t == tag) {
            continue;
        }
        if tag.chars().count() > MAX_TAG_LEN {
            return Err(format!("tag '{tag}' is longer than {MAX_TAG_LEN} characters"));
        }
        out.push(tag.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(format!("a run can have at most {MAX_TAGS} tags, got {}", out.len()));
    }
    Ok(out)
}

fn check_name(what: &str, name: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("{what} '{name}' is longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Err(format!("{what} '{name}' contains '{bad}', which is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_task_id("hello-world").is_ok());
        assert!(check_queue_name("task/hello-world").is_ok());
        assert!(check_queue_name("has space").unwrap_err().contains("' '"));
        assert!(check_task_id("").is_err());
        assert!(check_task_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn tags_are_normalized() {
        let tags = normalize_tags(vec![" a ".into(), "".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(tags, vec!["a", "b"]);
        let many: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert!(normalize_tags(many).unwrap_err().contains("at most 10"));
    }
}
