//! Which pull request a run's comment goes to, from the event that started the workflow
//! (`GITHUB_EVENT_NAME` and the payload at `GITHUB_EVENT_PATH`). Pure, so each event is a table test.

use serde_json::Value;

/// Where the comment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// This pull request; its head commit when the payload names it.
    PullRequest { number: u64, head: Option<String> },
    /// The open pull requests that contain the run's commit (`GITHUB_SHA`): a push, a manual run.
    PullsOfCommit,
    /// No pull request: a comment on a plain issue, an event without one.
    Nowhere,
}

pub(crate) fn target(event_name: Option<&str>, payload: Option<&Value>) -> Target {
    let Some(event) = payload else {
        return if event_name.is_some_and(|e| e.starts_with("pull_request") || e == "issue_comment") {
            Target::Nowhere
        } else {
            Target::PullsOfCommit
        };
    };
    match event_name {
        Some("pull_request" | "pull_request_target" | "pull_request_review" | "pull_request_review_comment") => {
            let pr = &event["pull_request"];
            match pr["number"].as_u64().or_else(|| event["number"].as_u64()) {
                Some(number) => Target::PullRequest { number, head: pr["head"]["sha"].as_str().map(str::to_string) },
                None => Target::Nowhere,
            }
        }
        // ChatOps from a comment: GITHUB_SHA is the default branch's head here, so the commit's pull
        // requests would be the wrong ones. A comment on a plain issue has no pull request.
        Some("issue_comment") => {
            match (event["issue"]["pull_request"].is_object(), event["issue"]["number"].as_u64()) {
                (true, Some(number)) => Target::PullRequest { number, head: None },
                _ => Target::Nowhere,
            }
        }
        // The merge queue tests a temporary commit on `gh-readonly-queue/<base>/pr-<N>-<sha>`.
        Some("merge_group") => event["merge_group"]["head_ref"]
            .as_str()
            .and_then(|r| r.split("/pr-").nth(1))
            .and_then(|rest| rest.split('-').next())
            .and_then(|n| n.parse().ok())
            .map_or(Target::Nowhere, |number| Target::PullRequest { number, head: None }),
        _ => Target::PullsOfCommit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/github/events").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn each_event_comments_on_the_right_pull_request_or_none() {
        let pr = |number, head: Option<&str>| Target::PullRequest { number, head: head.map(str::to_string) };
        let cases = [
            ("pull_request", "pull_request.json", pr(2, Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821"))),
            (
                "pull_request_target",
                "pull_request_target.json",
                pr(3, Some("34c5c7793cb3b279e22454cb6750c80560547b3a")),
            ),
            ("push", "push.json", Target::PullsOfCommit),
            ("workflow_dispatch", "workflow_dispatch.json", Target::PullsOfCommit),
            ("merge_group", "merge_group.json", pr(42, None)),
            ("issue_comment", "issue_comment_pr.json", pr(7, None)),
            ("issue_comment", "issue_comment_issue.json", Target::Nowhere),
        ];
        for (event, file, want) in cases {
            assert_eq!(target(Some(event), Some(&payload(file))), want, "{event} ({file})");
        }
        assert_eq!(target(Some("issue_comment"), None), Target::Nowhere, "no payload: no guess");
        assert_eq!(target(None, None), Target::PullsOfCommit, "a local run");
    }
}
