//! ECS's own strategies driven and judged by the action, on the stack's emulation of them (green tasks
//! as real containers in the alternate target group, the production and test rules served by HAProxy,
//! PAUSE hooks, ECS's rollback): a good BLUE_GREEN release continued after the probe on the test route,
//! a bad release that never reaches production, a LINEAR release with 5xx rolled back by the relative
//! error-rate gate, ECS's own alarm rollback reported with the alarm, SIGTERM, and the controllers and
//! strategy combinations the action refuses with nothing changed.

use std::process::Child;
use std::time::Duration;

use tokio::time::Instant;

use crate::support::{Run, Stack, Traffic, output, s, stack};

/// A service set up for ECS's own strategy on the stack, with its load balancer's two routes.
pub(crate) struct Native {
    pub(crate) stack: Stack,
    pub(crate) seeded: serde_json::Value,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) production: String,
    pub(crate) test: String,
}

pub(crate) async fn setup(seed: &[&str]) -> Native {
    let stack = stack().await;
    let mut args = vec!["--desired", "2"];
    args.extend(seed);
    let seeded = stack.seed(&args);
    let sdk = stack.sdk().await;
    let production = stack.listener_url(s(&seeded, "production_listener_arn")).await;
    let test = stack.listener_url(s(&seeded, "test_listener_arn")).await;
    Native {
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        stack,
        seeded,
        production,
        test,
    }
}

impl Native {
    fn action(&self, extra: &[&str]) -> crate::support::Action {
        let mut action = self.stack.action();
        action
            .args(["--aws-region", &self.stack.region, "--image", &self.stack.image])
            .args(["--cluster", "demo", "--service", "web"])
            .args(extra);
        action
    }

    /// Runs the action to its end, with its outputs read.
    fn run(&self, extra: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let mut run = self.action(extra).env("GITHUB_OUTPUT", &outputs).run();
        run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        run
    }

    /// Green's share of production on the production rule, as the load balancer reads it back.
    pub(crate) async fn green_share(&self) -> i32 {
        let out = self.elb.describe_rules().rule_arns(s(&self.seeded, "production_rule_arn")).send().await.unwrap();
        let groups = out.rules()[0].actions()[0].forward_config().unwrap().target_groups().to_vec();
        let green = s(&self.seeded, "green_target_group_arn");
        groups.iter().find(|g| g.target_group_arn() == Some(green)).and_then(|g| g.weight()).unwrap_or(0)
    }

    async fn wait_for_green_share(&self, want: i32, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.green_share().await != want {
            assert!(child.try_wait().unwrap().is_none(), "the run ended before green had {want}%");
            assert!(Instant::now() < deadline, "green never had {want}% of production");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn service(&self) -> aws_sdk_ecs::types::Service {
        let out = self.ecs.describe_services().cluster("demo").services("web").send().await.unwrap();
        out.services()[0].clone()
    }

    /// The versions production answers with, over a few requests.
    pub(crate) async fn production_versions(&self) -> Vec<String> {
        let client = reqwest::Client::new();
        let mut versions = Vec::new();
        for _ in 0..10 {
            let body = client.get(format!("{}/version", self.production)).send().await.unwrap().text().await.unwrap();
            versions.push(body);
        }
        versions
    }

    /// What every rollback must leave: production all on blue (the old revision), the service on its
    /// old revision, and its configuration without the run's pauses.
    async fn assert_back_on_blue(&self) {
        assert_eq!(self.green_share().await, 0, "production traffic must be back on blue");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.production_versions().await.iter().any(|v| v.contains("\"v2\"")) {
            assert!(Instant::now() < deadline, "production still reaches the new revision");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let service = self.service().await;
        assert_eq!(service.task_definition(), Some(s(&self.seeded, "task_definition_arn")), "blue keeps its revision");
        assert!(no_pauses_left(&service), "the run's PAUSE hooks must not stay on the service");
    }
}

fn no_pauses_left(service: &aws_sdk_ecs::types::Service) -> bool {
    service.deployment_configuration().is_none_or(|c| c.lifecycle_hooks().is_empty())
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_blue_green_release_is_probed_on_the_test_route_then_continued_without_a_failed_request() {
    let n = setup(&["--native", "blue-green", "--bake", "2"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    let probe = format!("{}/health", n.test);
    let run = n.run(&["--environment-variables", "APP_VERSION=v2", "--probe-url", &probe, "--check-interval", "1s"]);
    let statuses = traffic.stop().await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("strategy: ECS's own BLUE_GREEN"), "the plan names ECS's strategy:\n{run}");
    assert!(run.stdout.contains("pauses: POST_TEST_TRAFFIC_SHIFT"), "{run}");
    assert!(
        run.stdout.contains("pause at POST_TEST_TRAFFIC_SHIFT: gates pass: target-health 2/2 healthy, probe HTTP 200"),
        "{run}"
    );
    assert!(run.stdout.contains("POST_TEST_TRAFFIC_SHIFT: gates pass: ECS continues"), "{run}");
    assert!(run.stdout.contains("green has 100% of production"), "{run}");
    assert!(statuses.len() > 100 && statuses.iter().all(|&code| code == 200), "a user saw a failure: {statuses:?}");
    assert!(n.production_versions().await.iter().all(|v| v.contains("\"v2\"")), "production runs the release");
    let service = n.service().await;
    assert_eq!(service.task_definition(), Some(output(&run, "task-definition-arn").as_str()));
    assert!(no_pauses_left(&service), "the pause was for this run only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_on_the_test_route_is_rolled_back_before_production_sees_it() {
    let n = setup(&["--native", "blue-green", "--bake", "2"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    let probe = format!("{}/", n.test);
    let args =
        ["--environment-variables", "APP_VERSION=v2\nFAIL_RATE=1", "--probe-url", &probe, "--check-interval", "1s"];
    let run = n.run(&args);
    let statuses = traffic.stop().await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back", "{run}");
    assert!(run.stdout.contains("probe gate failed"), "{run}");
    // The probe went through the test rule to green: production, on blue, never failed.
    assert!(statuses.iter().all(|&code| code == 200), "production saw the release's failures: {statuses:?}");
    n.assert_back_on_blue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_release_with_5xx_is_rolled_back_at_a_pause_by_the_relative_error_rate_gate() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "6", "--bake", "1"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    // Checks further apart than ECS's step bake: the first judgement of the shift is at the pause
    // ECS makes before the next one.
    let args = [
        "--environment-variables",
        "APP_VERSION=v2\nFAIL_RATE=0.5",
        "--max-error-rate",
        "stable + 5%",
        "--check-interval",
        "30s",
    ];
    let run = n.run(&args);
    traffic.stop().await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(output(&run, "status"), "rolled-back", "{run}");
    assert!(run.stdout.contains("PRE_PRODUCTION_TRAFFIC_SHIFT (each times out"), "{run}");
    assert!(run.stdout.contains("green has 50% of production"), "the release took its first share:\n{run}");
    // At the pause: a rate ten times the limit fails at once (FAIL), else after two failing checks.
    let at_pause = run.stdout.lines().any(|l| {
        l.starts_with("pause after shift 1/2: gates FAIL") || l.starts_with("pause after shift 1/2: gates failing")
    });
    assert!(at_pause, "judged at the pause:\n{run}");
    assert!(run.stdout.contains("error-rate gate failed"), "{run}");
    assert!(!run.stdout.contains("green has 100% of production"), "the release never took all of production:\n{run}");
    n.assert_back_on_blue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_during_a_shift_are_caught_before_ecs_next_pause() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "60"]).await;
    let traffic = Traffic::start(format!("{}/", n.production));
    let args = [
        "--environment-variables",
        "APP_VERSION=v2\nFAIL_RATE=0.5",
        "--max-error-rate",
        "stable + 5%",
        "--check-interval",
        "1s",
    ];
    let started = Instant::now();
    let run = n.run(&args);
    traffic.stop().await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("shift 1/2: gates failing"), "judged while ECS baked the shift:\n{run}");
    assert!(run.stdout.contains("error-rate gate failed 2 consecutive checks"), "{run}");
    assert!(started.elapsed() < Duration::from_secs(50), "the 60 s step bake was not waited out:\n{run}");
    n.assert_back_on_blue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_own_alarm_rollback_is_reported_as_rolled_back_with_the_alarm() {
    let n = setup(&[
        "--native",
        "canary",
        "--canary-percent",
        "50",
        "--canary-bake",
        "60",
        "--alarms",
        "web-5xx",
        "--native-alarms",
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut child = n.action(&["--environment-variables", "APP_VERSION=v2"]).env("GITHUB_OUTPUT", &outputs).spawn();
    n.wait_for_green_share(50, &mut child).await;
    let cw = aws_sdk_cloudwatch::Client::new(&n.stack.sdk().await);
    cw.set_alarm_state()
        .alarm_name("web-5xx")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("ECS rolled back CANARY"), "{run}");
    assert!(run.stdout.contains("web-5xx"), "the alarm is named:\n{run}");
    assert!(
        std::fs::read_to_string(outputs).unwrap().contains("status<<ghadelimiter_ecs_deploy_action\nrolled-back\n")
    );
    n.assert_back_on_blue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_native_deployment_leaves_production_on_blue() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "60"]).await;
    let mut child = n.action(&["--environment-variables", "APP_VERSION=v2"]).spawn();
    n.wait_for_green_share(50, &mut child).await;
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("cancelled"), "{run}");
    n.assert_back_on_blue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_that_can_no_longer_be_read_is_rolled_back_and_the_run_ends_saying_where_to_look() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "60"]).await;
    let mut child = n.action(&["--environment-variables", "APP_VERSION=v2"]).spawn();
    n.wait_for_green_share(50, &mut child).await;
    n.stack.throttle("ecs", Some("DescribeServiceDeployments"), 1.0).await;
    let run = finish(child);
    n.stack.throttle("ecs", Some("DescribeServiceDeployments"), 0.0).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("could not be read 4 times in a row"), "{run}");
    assert!(run.stdout.contains("aws ecs describe-service-deployments --service-deployment-arns"), "{run}");
    n.assert_back_on_blue().await;
}

#[tokio::test]
async fn code_deploy_and_external_services_are_refused_with_nothing_changed() {
    for controller in ["CODE_DEPLOY", "EXTERNAL"] {
        let stack = stack().await;
        stack.seed(&["--desired", "1", "--controller", controller]);
        let before = stack.state().await;
        let run = stack
            .action()
            .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
            .run();
        assert_eq!(run.code, Some(1), "{run}");
        assert!(
            run.stdout.contains(&format!("is deployed by the {controller} deployment controller, not ECS")),
            "{run}"
        );
        assert_eq!(stack.state().await, before, "a refused deploy changed something");
    }
}

#[tokio::test]
async fn the_action_canary_and_rolling_are_refused_on_a_native_service_and_the_dry_run_shows_ecs_plan() {
    let n = setup(&["--native", "linear", "--step-percent", "50", "--step-bake", "1"]).await;
    let before = n.stack.state().await;
    let listener = s(&n.seeded, "production_listener_arn").to_string();
    let canary = n.action(&["--strategy", "canary", "--listener-arn", &listener]).run();
    assert_eq!(canary.code, Some(1), "{canary}");
    assert!(canary.stdout.contains("set up for ECS's own LINEAR strategy"), "{canary}");
    assert!(canary.stdout.contains("Use `strategy: ecs`"), "{canary}");
    let rolling = n.action(&["--strategy", "rolling"]).run();
    assert_eq!(rolling.code, Some(1), "{rolling}");
    assert!(rolling.stdout.contains("ECS deploys `web` with its LINEAR strategy"), "{rolling}");
    let dry = n.action(&["--dry-run", "--max-error-rate", "stable + 1%"]).run();
    assert_eq!(dry.code, Some(0), "{dry}");
    for line in [
        "strategy: ECS's own LINEAR",
        "  blue:   web on target group web-blue (production now)",
        "  green:  2 task(s) of the new revision on target group web-green",
        "  shift 1: green takes 50% of production, then 1m",
        "  shift 2: green takes 100% of production, then bake 1m before blue's tasks go",
        "  pauses: POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT",
    ] {
        assert!(dry.stdout.contains(line), "missing `{line}` in:\n{dry}");
    }
    assert_eq!(n.stack.state().await, before, "refusals and the dry run changed something");
}
