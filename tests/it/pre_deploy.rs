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

/// Issue 24.10: a pre-deploy task stopped from outside (StopTask, a Spot interruption, a scale-in)
/// whose process exits 0 on SIGTERM did not finish: only a task that ended on its own with exit 0
/// lets the deploy go on.
#[tokio::test]
async fn a_pre_deploy_task_stopped_from_outside_is_a_failure_even_with_exit_0() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let ecs = stack.ecs().await;
    let mut child = stack
        .action()
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", s(&seeded, "cluster")])
        .args(["--service", "web", "--pre-deploy-command", "migrate --sleep 600 --graceful", "--wait-timeout", "60s"])
        .spawn();
    // The pre-deploy task, once its container runs: stopped as a Spot interruption would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let task = loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its pre-deploy task ran");
        assert!(std::time::Instant::now() < deadline, "no pre-deploy task ran");
        let listed = ecs.list_tasks().cluster("demo").started_by("ecs-deploy-action").send().await.unwrap();
        if let Some(arn) = listed.task_arns().first() {
            let described = ecs.describe_tasks().cluster("demo").tasks(arn).send().await.unwrap();
            if described.tasks()[0].last_status() == Some("RUNNING") {
                break arn.clone();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Its first line is out: the process is past its start and handles SIGTERM.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    ecs.stop_task().cluster("demo").task(&task).reason("Spot interruption").send().await.unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains(
            "the pre-deploy command `migrate --sleep 600 --graceful` exited 0 but did not end on its own: ECS \
             stopped the task (UserInitiated: Spot interruption)"
        ),
        "{run}"
    );
    assert_eq!(revision(&stack).await, s(&seeded, "task_definition_arn"), "no service changed");
}
