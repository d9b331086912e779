//! Several services in one run on the stack's real containers: `web` by canary and `worker` rolling
//! at the same time, each on its own new revision of its own task definition with the one image; and
//! a release the worker cannot start, which stops the canary, puts traffic back first, and restores
//! both services.

use std::time::Duration;

use crate::support::{Action, Run, Stack, output, s, stack};

struct Two {
    stack: Stack,
    web: serde_json::Value,
    worker: serde_json::Value,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

/// `web` with its canary service behind the load balancer, and `worker` (no load balancer), whose
/// app crashes at start once `FEATURE_X` is set; ECS's circuit breaker is off for it, so only this
/// action can take it back.
async fn setup() -> Two {
    let stack = stack().await;
    let web = stack.seed(&["--canary", "--desired", "2"]);
    let worker = stack.seed(&[
        "--service",
        "worker",
        "--desired",
        "1",
        "--circuit-breaker",
        "off",
        "--env",
        "CRASH_WHEN_SET=FEATURE_X",
    ]);
    let sdk = stack.sdk().await;
    Two {
        ecs: aws_sdk_ecs::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        stack,
        web,
        worker,
    }
}

impl Two {
    /// `web` by canary and `worker`, its outputs in `outputs` and its summary in `summary`.
    fn action(&self, outputs: &std::path::Path, summary: &std::path::Path, extra: &[&str]) -> Action {
        let mut action = self.stack.action();
        action
            .env("GITHUB_OUTPUT", outputs)
            .env("GITHUB_STEP_SUMMARY", summary)
            .args(["--aws-region", &self.stack.region, "--image", &self.stack.image, "--cluster", "demo"])
            .args(["--service", "web, worker", "--strategy", "canary", "--check-interval", "1s"])
            .args(["--listener-arn", s(&self.web, "listener_arn")])
            .args(extra);
        action
    }

    fn deploy(&self, summary: &std::path::Path, extra: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let mut run = self.action(&outputs, summary, extra).run();
        run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        run
    }

    async fn service(&self, name: &str) -> aws_sdk_ecs::types::Service {
        let out = self.ecs.describe_services().cluster("demo").services(name).send().await.unwrap();
        out.services()[0].clone()
    }

    /// The running revision's container: its image and environment.
    async fn container(&self, service: &str) -> aws_sdk_ecs::types::ContainerDefinition {
        let arn = self.service(service).await.task_definition().unwrap().to_string();
        let out = self.ecs.describe_task_definition().task_definition(arn).send().await.unwrap();
        out.task_definition().unwrap().container_definitions()[0].clone()
    }

    async fn weights(&self) -> (i32, i32) {
        let out = self.elb.describe_listeners().listener_arns(s(&self.web, "listener_arn")).send().await.unwrap();
        let groups = out.listeners()[0].default_actions()[0].forward_config().unwrap().target_groups().to_vec();
        let weight = |key: &str| {
            groups.iter().find(|g| g.target_group_arn() == Some(s(&self.web, key))).and_then(|g| g.weight()).unwrap()
        };
        (weight("stable_target_group_arn"), weight("canary_target_group_arn"))
    }
}

fn env_value(c: &aws_sdk_ecs::types::ContainerDefinition, name: &str) -> Option<String> {
    c.environment().iter().find(|kv| kv.name() == Some(name)).and_then(|kv| kv.value()).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_and_a_rolling_service_deploy_one_image_each_on_its_own_new_revision() {
    let two = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let steps = ["--canary-steps", "50%:2s, 100%", "--environment-variables", "RELEASE=2"];
    let planned = two.deploy(&dir.path().join("plan.md"), &[&steps[..], &["--dry-run", "true"]].concat());
    assert_eq!(planned.code, Some(0), "{planned}");
    assert!(
        planned.stdout.contains("also:     demo/worker (1 desired), now on worker:1: rolling, at the same time as web"),
        "{planned}"
    );
    assert!(
        planned
            .stdout
            .contains("failure:  restore every service that changed to its previous revision (traffic first)")
    );
    assert_eq!(two.service("worker").await.task_definition(), Some(s(&two.worker, "task_definition_arn")));
    let run = two.deploy(&summary, &steps);
    assert_eq!(run.code, Some(0), "{run}");
    for (service, seeded) in [("web", &two.web), ("worker", &two.worker)] {
        let now = two.service(service).await;
        assert_ne!(now.task_definition(), Some(s(seeded, "task_definition_arn")), "{service} has a new revision");
        assert!(now.task_definition().unwrap().contains(&format!("task-definition/{service}:2")), "{now:?}");
        let container = two.container(service).await;
        assert!(container.image().unwrap().contains("@sha256:"), "{service} runs the image by digest: {container:?}");
        assert_eq!(env_value(&container, "RELEASE").as_deref(), Some("2"), "{service}");
        // Each service keeps its own task definition: the worker's knob is still only the worker's.
        assert_eq!(env_value(&container, "CRASH_WHEN_SET").is_some(), service == "worker");
    }
    assert_eq!(two.container("web").await.image(), two.container("worker").await.image(), "one image for both");
    assert_eq!(two.weights().await, (100, 0));
    let services: serde_json::Value = serde_json::from_str(&output(&run, "services")).unwrap();
    assert_eq!(services[0]["service"], "web");
    assert_eq!(services[1]["service"], "worker");
    assert!(services.as_array().unwrap().iter().all(|s| s["status"] == "succeeded"), "{services}");
    assert_eq!(output(&run, "status"), "succeeded");
    assert!(output(&run, "task-definition-arn").contains("task-definition/web:2"), "the first service's revision");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("| `worker` (rolling) | `worker:2` (was `worker:1`) | ` deployed worker:2 ` |"),
        "{summary}"
    );
    assert!(summary.contains("| `web` (canary) | `web:2` (was `web:1`) | ` succeeded ` |"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_the_rolling_service_cannot_start_puts_traffic_back_first_and_restores_both() {
    let two = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    // The canary bakes long enough for the worker's wait to time out in the middle of it.
    let started = std::time::Instant::now();
    let run = two.deploy(
        &summary,
        &["--canary-steps", "50%:5m, 100%", "--wait-timeout", "20s", "--environment-variables", "FEATURE_X=on"],
    );
    assert!(started.elapsed() < Duration::from_secs(150), "the bake was cut short: {run}");
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back");
    // Both services are back on the revisions they ran before, and traffic is on the stable one.
    assert_eq!(two.service("web").await.task_definition(), Some(s(&two.web, "task_definition_arn")));
    assert_eq!(two.service("worker").await.task_definition(), Some(s(&two.worker, "task_definition_arn")));
    assert_eq!(two.weights().await, (100, 0));
    assert_eq!(two.service("web-canary").await.desired_count(), 0);
    // Traffic first: the abort's weights come before the worker's restore.
    let log = &run.stdout;
    let traffic_back = log.find("weights now 100/0").expect("the abort's traffic call");
    let worker_back = log.find("restoring demo/worker to worker:1").expect("the worker's restore");
    assert!(traffic_back < worker_back, "traffic goes back before the worker is restored:\n{log}");
    assert!(log.contains("`worker` failed: the deployment did not become stable within wait-timeout 20s"), "{run}");
    assert!(log.contains("demo/worker is back on worker:1"), "{run}");
    let services: serde_json::Value = serde_json::from_str(&output(&run, "services")).unwrap();
    assert!(services.as_array().unwrap().iter().all(|s| s["status"] == "rolled-back"), "{services}");
    // Why: the worker's own task, its exit code and its last line, in the log and the summary.
    let summary = std::fs::read_to_string(&summary).unwrap();
    for text in [log.as_str(), summary.as_str()] {
        assert!(text.contains("exit code 1"), "{text}");
        assert!(text.contains("worker:2"), "the stopped task names its service's revision: {text}");
        assert!(text.contains("demo-app: fatal: CRASH_ON_START=1, exiting with code 1"), "{text}");
    }
    assert!(
        summary.contains("| `worker` (rolling) | `worker:2` (was `worker:1`) | ` restored to worker:1 ` |"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_first_service_that_fails_has_the_others_restored_while_it_goes_back() {
    // This time `web` crashes once FEATURE_X is set (its circuit breaker off: only the action takes
    // it back) and `worker` takes the release.
    let stack = stack().await;
    let web = stack.seed(&["--desired", "2", "--circuit-breaker", "off", "--env", "CRASH_WHEN_SET=FEATURE_X"]);
    let worker = stack.seed(&["--service", "worker", "--desired", "1"]);
    let ecs = aws_sdk_ecs::Client::new(&stack.sdk().await);
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut run = stack
        .action()
        .env("GITHUB_OUTPUT", &outputs)
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo"])
        .args(["--service", "web, worker", "--strategy", "rolling", "--wait-timeout", "15s"])
        .args(["--environment-variables", "FEATURE_X=on"])
        .run();
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back", "{run}");
    for (service, seeded) in [("web", &web), ("worker", &worker)] {
        let out = ecs.describe_services().cluster("demo").services(service).send().await.unwrap();
        assert_eq!(out.services()[0].task_definition(), Some(s(seeded, "task_definition_arn")), "{service}");
    }
    // The worker is stopped by web's failure and goes back while web does: it does not wait for
    // web's restore to finish (which waits for web:1's new tasks to be healthy). (Web's failure is
    // known to the run as its wait ends, a moment before its own restore says so.)
    let log = &run.stdout;
    let web_failed = log.find("web failed: stopping the other services of this run").expect("web's failure");
    assert!(log.contains("restoring demo/web to web:1"), "web's rollback:\n{log}");
    let worker_back = log.find("restoring demo/worker to worker:1").expect("the worker's restore");
    let web_back = log.find("demo/web is back on web:1").expect("web's restore finished");
    assert!(web_failed < worker_back && worker_back < web_back, "the worker waited for web's restore:\n{log}");
    assert!(log.contains("demo/worker is back on worker:1"), "{run}");
    let services: serde_json::Value = serde_json::from_str(&output(&run, "services")).unwrap();
    assert!(services.as_array().unwrap().iter().all(|s| s["status"] == "rolled-back"), "{services}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_bake_puts_traffic_back_then_sends_every_service_back() {
    let two = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let (outputs, summary) = (dir.path().join("outputs"), dir.path().join("summary.md"));
    let mut child = two.action(&outputs, &summary, &["--canary-steps", "50%:60s, 100%"]).spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while two.weights().await != (50, 50) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the canary took traffic");
        assert!(std::time::Instant::now() < deadline, "the canary never took traffic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut run = Run::from(child.wait_with_output().unwrap());
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back", "{run}");
    // Calls only (the job has seconds left): each service is sent back, ECS finishes it.
    assert_eq!(two.weights().await, (100, 0));
    assert_eq!(two.service("web-canary").await.desired_count(), 0);
    assert_eq!(two.service("web").await.task_definition(), Some(s(&two.web, "task_definition_arn")));
    assert_eq!(two.service("worker").await.task_definition(), Some(s(&two.worker, "task_definition_arn")));
    let log = &run.stdout;
    let traffic_back = log.find("weights now 100/0").expect("the abort's traffic call");
    let worker_back = log.find("restoring demo/worker to worker:1").expect("the worker's restore");
    assert!(traffic_back < worker_back, "traffic goes back before the worker is restored:\n{log}");
    assert!(
        log.contains("demo/web, demo/worker were sent back to their previous revisions, traffic first; ECS finishes"),
        "{run}"
    );
    let services: serde_json::Value = serde_json::from_str(&output(&run, "services")).unwrap();
    assert!(services.as_array().unwrap().iter().all(|s| s["status"] == "rolled-back"), "{services}");
}

/// Issue 24.8: the worker fails, the canary's abort cannot put traffic back (ModifyListener refused
/// for good): while traffic is stuck nothing else changes, so the worker is left on its new
/// revision too, and the run says how to restore it once traffic is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_canarys_traffic_cannot_be_put_back_the_other_services_are_left_alone() {
    let two = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let (outputs, summary) = (dir.path().join("outputs"), dir.path().join("summary.md"));
    let extra = ["--canary-steps", "50%:5m, 100%", "--wait-timeout", "15s", "--environment-variables", "FEATURE_X=on"];
    let mut child = two.action(&outputs, &summary, &extra).spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while two.weights().await != (50, 50) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the canary took traffic");
        assert!(std::time::Instant::now() < deadline, "the canary never took traffic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    two.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 1.0).await;
    let mut run = Run::from(child.wait_with_output().unwrap());
    two.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 0.0).await;
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "failed", "{run}");
    assert_eq!(two.weights().await, (50, 50), "traffic is where the failure left it");
    let worker = two.service("worker").await;
    assert_ne!(worker.task_definition(), Some(s(&two.worker, "task_definition_arn")), "the worker was not restored");
    assert!(!run.stdout.contains("restoring demo/worker"), "{run}");
    assert!(
        run.stdout
            .contains("worker: left on worker:2: the canary's traffic could not be put back on the stable service"),
        "{run}"
    );
    let previous = s(&two.worker, "task_definition_arn");
    assert!(
        run.stdout
            .contains(&format!("aws ecs update-service --cluster demo --service worker --task-definition {previous}")),
        "{run}"
    );
}

/// What the deploy's log says of one service of a run, in order: the action's own lines that name
/// it and no other service, from the registration to the report (ECS's timestamped events, task
/// ids and log groups left out: they vary by run). The plan and the comment are left out too: they
/// are the run's, and name the first service as the one the comment is about.
fn said_of(log: &str, service: &str, other: &str) -> Vec<String> {
    let names = |line: &str, s: &str| line.contains(&format!("demo/{s}")) || line.contains(&format!(" for {s} ("));
    let deploy = log.split("▸ Report").next().unwrap_or_default();
    deploy
        .lines()
        .skip_while(|l| !l.starts_with("registered "))
        .filter(|l| !l.starts_with('▸') && !l.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .filter(|l| names(l, service) && !names(l, other))
        .map(str::to_string)
        .collect()
}

/// How many times the run called `operation` (its own count, from the log's `AWS calls:` lines).
fn calls(log: &str, operation: &str) -> u32 {
    let needle = format!("{operation} ");
    log.lines()
        .filter(|l| l.starts_with("AWS calls: "))
        .flat_map(|l| l.split(['(', ',', ')']))
        .filter_map(|part| part.trim().strip_prefix(&needle)?.parse::<u32>().ok())
        .sum()
}

/// Issue 23.2: the first service named is not special. A rolling run of `web, worker` and one of
/// `worker, web`, where the worker cannot start the release, go through the same steps for each
/// service (registered, updated, completed or stopped, restored), make the same changing calls and
/// end the same way. (Before, the first service had a path of its own: other lines, other undo.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_of_the_services_changes_nothing_of_what_each_goes_through() {
    let mut runs = Vec::new();
    for order in ["web, worker", "worker, web"] {
        let stack = stack().await;
        stack.seed(&["--desired", "1"]);
        stack.seed(&[
            "--service",
            "worker",
            "--desired",
            "1",
            "--circuit-breaker",
            "off",
            "--env",
            "CRASH_WHEN_SET=FEATURE_X",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let mut run = stack
            .action()
            .env("GITHUB_OUTPUT", &outputs)
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo"])
            .args(["--service", order, "--strategy", "rolling", "--wait-timeout", "15s"])
            .args(["--environment-variables", "FEATURE_X=on"])
            .run();
        run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        assert_eq!(run.code, Some(1), "{order}: {run}");
        assert_eq!(output(&run, "status"), "rolled-back", "{order}: {run}");
        let mut statuses: Vec<(String, String)> = serde_json::from_str::<serde_json::Value>(&output(&run, "services"))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["service"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
            .collect();
        statuses.sort();
        let log = run.stdout.clone();
        let changes: Vec<u32> =
            ["RegisterTaskDefinition", "UpdateService", "TagResource"].iter().map(|op| calls(&log, op)).collect();
        runs.push((order, said_of(&log, "web", "worker"), said_of(&log, "worker", "web"), changes, statuses, run));
    }
    let (first, second) = (&runs[0], &runs[1]);
    assert!(first.1.iter().any(|l| l.contains("restoring demo/web to web:1")), "{}", first.5);
    assert!(first.2.iter().any(|l| l.contains("demo/worker is back on worker:1")), "{}", first.5);
    assert_eq!(first.1, second.1, "web went through other steps as the {} service:\n{}", "second", second.5);
    assert_eq!(first.2, second.2, "the worker went through other steps as the {} service:\n{}", "first", second.5);
    assert_eq!(first.3, second.3, "other changing calls (register, update, tag) for {} and {}", first.0, second.0);
    assert_eq!(first.4, second.4);
}
