//! Approvals that outlive the job, on the stack's emulation of ECS's own strategies: a deploy stops
//! at ECS's pause and the job ends `paused` with the lease kept; a second run continues it after the
//! gates judged the paused window, or rolls it back; a pause nobody answers times out into ECS's
//! rollback, and the next deploy starts clean.

use std::time::Duration;

use tokio::time::Instant;

use crate::native::{Native, setup};
use crate::support::{Run, Traffic, output, s};

/// What the approval tests read besides the native tests' own (`Native`).
impl Native {
    /// A run of the action on `web` (`image`: a deploy; none: a run that answers a pause).
    fn run_with(&self, image: bool, extra: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let mut action = self.stack.action();
        action.args(["--aws-region", &self.stack.region, "--cluster", "demo", "--service", "web"]);
        if image {
            action.args(["--image", &self.stack.image]);
        }
        let mut run = action.args(extra).env("GITHUB_OUTPUT", &outputs).run();
        run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        run
    }

    async fn lease(&self) -> Option<String> {
        let arn = self.service().await.service_arn().unwrap().to_string();
        let tags = self.ecs.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
        tags.tags()
            .iter()
            .find(|t| t.key() == Some("ecs-deploy-action:lease"))
            .and_then(|t| t.value())
            .map(str::to_string)
    }

    async fn deployment_status(&self, arn: &str) -> String {
        let out = self.ecs.describe_service_deployments().service_deployment_arns(arn).send().await.unwrap();
        out.service_deployments()[0].status().unwrap().as_str().to_string()
    }
}

fn hooks_left(service: &aws_sdk_ecs::types::Service) -> usize {
    service.deployment_configuration().map_or(0, |c| c.lifecycle_hooks().len())
}

fn assert_paused(run: &Run) -> (String, String) {
    assert_eq!(run.code, Some(0), "a pause for approval fails nothing:\n{run}");
    assert_eq!(output(run, "status"), "paused", "{run}");
    let (arn, hook) = (output(run, "service-deployment-arn"), output(run, "hook-id"));
    assert!(arn.contains(":service-deployment/demo/web/") && hook.starts_with("ecs-pause-"), "{run}");
    assert!(!output(run, "paused-until").is_empty(), "{run}");
    assert!(run.stdout.contains("`resume: continue`") && run.stdout.contains("`resume: rollback`"), "{run}");
    assert!(run.stdout.contains("stays taken until"), "the lease is kept:\n{run}");
    (arn, hook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_pause_ends_the_job_paused_and_a_second_run_judges_the_window_and_continues() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "2", "--bake", "1"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    let gates = ["--max-error-rate", "stable + 5%", "--check-interval", "1s"];
    let first = [&["--environment-variables", "APP_VERSION=v2", "--approval", "after-first-shift"], &gates[..]];
    // A pause of 60 ECS minutes: seconds on the stack's clock, long enough for the second run.
    let run = n.run_with(true, &[&first.concat()[..], &["--wait-timeout", "60m"]].concat());
    let (arn, hook) = assert_paused(&run);
    assert!(run.stdout.contains("approval: the job ends `paused` after green's first production shift"), "{run}");
    assert!(run.stdout.contains("gates pass; waiting for approval"), "the gates judged the shift first:\n{run}");
    assert_eq!(n.green_share().await, 50, "ECS holds green on its first share while people look");
    assert!(n.lease().await.unwrap().contains("(paused for approval)"), "the lease stays taken");

    // Another deploy meanwhile is refused, and changes nothing.
    let other = n.run_with(true, &["--environment-variables", "APP_VERSION=v3", "--wait-timeout", "60m"]);
    assert_eq!(other.code, Some(1), "{other}");
    assert!(other.stdout.contains("`web` waits for approval of a deploy by"), "{other}");
    assert!(other.stdout.contains("answer it first with `resume: continue` or `resume: rollback`"), "{other}");
    assert_eq!(n.deployment_status(&arn).await, "IN_PROGRESS", "{other}");
    assert_eq!(n.green_share().await, 50, "{other}");

    let resumed = n.run_with(false, &[&["--resume", "continue"], &gates[..]].concat());
    let statuses = traffic.stop().await;
    assert_eq!(resumed.code, Some(0), "{resumed}");
    assert_eq!(output(&resumed, "status"), "succeeded", "{resumed}");
    assert!(resumed.stdout.contains("taking over the deploy lease"), "{resumed}");
    assert!(resumed.stdout.contains(&format!("answering the pause {hook} of service deployment {arn}")), "{resumed}");
    assert!(resumed.stdout.contains("error-rate"), "the relative gate judged the paused window:\n{resumed}");
    assert!(
        resumed.stdout.contains("approved (resume: continue), gates pass over the paused window: ECS continues"),
        "{resumed}"
    );
    assert!(resumed.stdout.contains("green has 100% of production"), "{resumed}");
    assert_eq!(n.deployment_status(&arn).await, "SUCCESSFUL");
    assert!(n.production_versions().await.iter().all(|v| v.contains("\"v2\"")), "production runs the release");
    assert!(statuses.len() > 50 && statuses.iter().all(|&c| c == 200), "a user saw a failure: {statuses:?}");
    let service = n.service().await;
    assert_eq!(hooks_left(&service), 0, "the pauses were for that deploy only");
    assert_eq!(n.lease().await, None, "the lease is released at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_while_it_waited_is_rolled_back_by_the_gates_of_the_run_that_approves_it() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "2", "--bake", "1"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    // No gate while it deploys: only people stop it, and the errors go on while they look.
    let release = ["--environment-variables", "APP_VERSION=v2\nFAIL_RATE=0.5", "--wait-timeout", "60m"];
    let run = n.run_with(true, &[&release[..], &["--approval", "after-first-shift"]].concat());
    let (arn, _) = assert_paused(&run);
    let resumed =
        n.run_with(false, &["--resume", "continue", "--max-error-rate", "stable + 5%", "--check-interval", "1s"]);
    traffic.stop().await;
    assert_eq!(resumed.code, Some(1), "{resumed}");
    assert_eq!(output(&resumed, "status"), "rolled-back", "{resumed}");
    assert!(resumed.stdout.contains("error-rate gate failed"), "the paused window was judged:\n{resumed}");
    assert!(!resumed.stdout.contains("ECS continues"), "an approval never overrides the gates:\n{resumed}");
    assert_eq!(n.deployment_status(&arn).await, "ROLLBACK_SUCCESSFUL");
    assert_eq!(n.green_share().await, 0, "production is back on blue");
    assert_eq!(n.lease().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_can_roll_back_a_deploy_paused_before_production() {
    let n = setup(&["--native", "blue-green", "--bake", "1"]).await;
    let run = n.run_with(
        true,
        &["--environment-variables", "APP_VERSION=v2", "--approval", "before-production", "--wait-timeout", "60m"],
    );
    let (arn, _) = assert_paused(&run);
    assert!(run.stdout.contains("POST_TEST_TRAFFIC_SHIFT: no gates configured; waiting for approval"), "{run}");
    assert_eq!(n.green_share().await, 0, "no production traffic before the approval");

    let resumed = n.run_with(false, &["--resume", "rollback", "--service-deployment-arn", &arn]);
    assert_eq!(resumed.code, Some(1), "{resumed}");
    assert_eq!(output(&resumed, "status"), "rolled-back", "{resumed}");
    assert!(resumed.stdout.contains("rolled back at the approval pause at POST_TEST_TRAFFIC_SHIFT"), "{resumed}");
    assert_eq!(n.deployment_status(&arn).await, "ROLLBACK_SUCCESSFUL");
    assert_eq!(n.green_share().await, 0);
    assert!(n.production_versions().await.iter().all(|v| !v.contains("\"v2\"")), "production never saw the release");
    let service = n.service().await;
    assert_eq!(service.task_definition(), Some(s(&n.seeded, "task_definition_arn")), "blue keeps its revision");
    assert_eq!(hooks_left(&service), 0);
    assert_eq!(n.lease().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_nobody_answers_times_out_into_ecs_rollback_and_the_next_deploy_starts_clean() {
    let n = setup(&["--native", "blue-green", "--bake", "1"]).await;
    // One ECS minute: a second on the stack's clock.
    let run = n.run_with(
        true,
        &["--environment-variables", "APP_VERSION=v2", "--approval", "before-production", "--wait-timeout", "1m"],
    );
    let (arn, _) = assert_paused(&run);
    let deadline = Instant::now() + Duration::from_secs(60);
    while n.deployment_status(&arn).await != "ROLLBACK_SUCCESSFUL" {
        assert!(Instant::now() < deadline, "ECS never rolled back the unanswered pause");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(n.green_share().await, 0);
    let late = n.run_with(false, &["--resume", "continue"]);
    assert_eq!(late.code, Some(1), "{late}");
    assert!(late.stdout.contains("no deployment of `web` is waiting for approval"), "{late}");
    assert!(late.stdout.contains("ended ROLLBACK_SUCCESSFUL"), "{late}");
    assert!(late.stdout.contains("timed out"), "ECS's reason is quoted:\n{late}");

    // The hooks that paused run left are the action's: the next deploy removes them and succeeds.
    assert_eq!(hooks_left(&n.service().await), 1);
    let next = n.run_with(true, &["--environment-variables", "APP_VERSION=v3"]);
    assert_eq!(next.code, Some(0), "{next}");
    assert!(next.stdout.contains("still has the PAUSE hooks an earlier run of this action added"), "{next}");
    assert_eq!(hooks_left(&n.service().await), 0, "{next}");
    assert!(n.production_versions().await.iter().all(|v| v.contains("\"v3\"")));
}
