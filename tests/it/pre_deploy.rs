//! The pre-deploy task (migrations) on the stack's real containers: the new revision runs once with
//! the command, its lines stream into the log, and its exit code decides whether any service changes.

use crate::support::{Run, Stack, s, stack};

fn deploy(stack: &Stack, seeded: &serde_json::Value, command: &str, extra: &[&str]) -> (Run, String) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let run = Run::from(
        stack
            .action()
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", s(seeded, "cluster")])
            .args(["--service", "web", "--pre-deploy-command", command])
            .args(extra)
            .spawn()
            .wait_with_output()
            .unwrap(),
    );
    (run, std::fs::read_to_string(summary).unwrap_or_default())
}

async fn revision(stack: &Stack) -> String {
    let out = stack.ecs().await.describe_services().cluster("demo").services("web").send().await.unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

#[tokio::test]
async fn a_failing_pre_deploy_command_changes_no_service_and_shows_its_lines_and_exit_code() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let (run, summary) = deploy(&stack, &seeded, "migrate --exit 3", &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("first:    run `migrate --exit 3` once in container web"), "the plan says so:\n{run}");
    assert!(run.stdout.contains("▸ Pre-deploy: migrate --exit 3 (task "), "{run}");
    assert!(run.stdout.contains("demo-app migrate: applying 2 migrations"), "its lines stream into the log:\n{run}");
    assert!(
        run.stdout.contains("the pre-deploy command `migrate --exit 3` exited 3, so no service was changed"),
        "{run}"
    );
    assert_eq!(revision(&stack).await, s(&seeded, "task_definition_arn"), "no service changed");
    assert!(summary.contains("` exit code 3 `"), "{summary}");
    // Its own words; stdout and stderr reach CloudWatch Logs in either order.
    assert!(summary.contains("```text\n"), "{summary}");
    assert!(
        summary.contains("demo-app migrate: 0002_orders failed: relation \"orders\" already exists (exit 3)\n"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_pre_deploy_command_that_exits_0_lets_the_deploy_go_on() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let (run, _) = deploy(&stack, &seeded, r#"["migrate", "--exit", "0"]"#, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("pre-deploy command `migrate --exit 0` exited 0: the deploy goes on"), "{run}");
    assert!(run.stdout.contains("demo-app migrate: applied 0002_orders; done"), "{run}");
    assert_ne!(revision(&stack).await, s(&seeded, "task_definition_arn"), "the service runs the new revision");
}

#[tokio::test]
async fn a_pre_deploy_command_that_never_ends_is_stopped_at_wait_timeout() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let (run, _) = deploy(&stack, &seeded, "migrate --sleep 600", &["--wait-timeout", "5s"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains(
            "the pre-deploy command `migrate --sleep 600` did not end within wait-timeout 5s; it was stopped"
        ),
        "{run}"
    );
    assert_eq!(revision(&stack).await, s(&seeded, "task_definition_arn"), "no service changed");
}
