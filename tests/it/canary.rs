//! Canary deploys against the stack, whose tasks are real containers behind a real load balancer:
//! the weights a user's traffic sees at every step, a good release promoted without one failed
//! request, and each way a canary aborts from a real fault (an alarm and the 5xx rate from the
//! release's own errors, a failing probe, crashed canary tasks, SIGTERM), always ending with traffic
//! on the stable service, the canary at zero tasks and the stable service on its old revision.

use std::process::Child;
use std::time::Duration;

use tokio::time::Instant;

use crate::support::{Run, Stack, Traffic, repo_root, s, stack};

struct Canary {
    stack: Stack,
    seeded: serde_json::Value,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ecs: aws_sdk_ecs::Client,
    url: String,
}

async fn setup(seed: &[&str]) -> Canary {
    let stack = stack().await;
    let mut args = vec!["--canary", "--desired", "4", "--alarms", "api-5xx"];
    args.extend(seed);
    let seeded = stack.seed(&args);
    let sdk = stack.sdk().await;
    let url = stack.listener_url(s(&seeded, "listener_arn")).await;
    Canary {
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        stack,
        seeded,
        url,
    }
}

impl Canary {
    fn action(&self, extra: &[&str]) -> crate::support::Action {
        let mut action = self.stack.action();
        action
            .args([
                "--aws-region",
                &self.stack.region,
                "--image",
                &self.stack.image,
                "--cluster",
                "demo",
                "--service",
                "web",
            ])
            .args(["--strategy", "canary", "--listener-arn", s(&self.seeded, "listener_arn"), "--alarms", "api-5xx"])
            .args(extra);
        action
    }

    /// The forward weights (stable, canary) as the load balancer reads them back.
    async fn weights(&self) -> (i32, i32) {
        let out = self.elb.describe_listeners().listener_arns(s(&self.seeded, "listener_arn")).send().await.unwrap();
        let groups = out.listeners()[0].default_actions()[0].forward_config().unwrap().target_groups().to_vec();
        let weight = |key: &str| {
            groups.iter().find(|g| g.target_group_arn() == Some(s(&self.seeded, key))).and_then(|g| g.weight()).unwrap()
        };
        (weight("stable_target_group_arn"), weight("canary_target_group_arn"))
    }

    async fn wait_for_weights(&self, want: (i32, i32), child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.weights().await != want {
            assert!(child.try_wait().unwrap().is_none(), "the run ended before the weights were {want:?}");
            assert!(Instant::now() < deadline, "the weights never became {want:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn service(&self, name: &str) -> aws_sdk_ecs::types::Service {
        let out = self.ecs.describe_services().cluster("demo").services(name).send().await.unwrap();
        out.services()[0].clone()
    }

    /// The canary target group's targets, each with its state (draining ones included).
    async fn canary_targets(&self) -> Vec<String> {
        let arn = s(&self.seeded, "canary_target_group_arn");
        let out = self.elb.describe_target_health().target_group_arn(arn).send().await.unwrap();
        let state = |d: &aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription| {
            d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default()
        };
        out.target_health_descriptions().iter().map(state).collect()
    }

    /// Tasks of `service` that were told to stop and have not stopped yet (draining ones included).
    async fn tasks_not_stopped(&self, service: &str) -> usize {
        let stopping = aws_sdk_ecs::types::DesiredStatus::Stopped;
        let listed =
            self.ecs.list_tasks().cluster("demo").service_name(service).desired_status(stopping).send().await.unwrap();
        if listed.task_arns().is_empty() {
            return 0;
        }
        let tasks = self.ecs.describe_tasks().cluster("demo").set_tasks(Some(listed.task_arns().to_vec())).send();
        tasks.await.unwrap().tasks().iter().filter(|t| t.last_status() != Some("STOPPED")).count()
    }

    /// The state every abort must leave: traffic on stable, canary idle, stable on its old revision.
    async fn assert_safe(&self) {
        assert_eq!(self.weights().await, (100, 0), "traffic must be back on the stable service");
        assert_eq!(self.service("web-canary").await.desired_count(), 0, "the canary must be scaled to zero");
        self.canary_drained().await;
        let stable = self.service("web").await;
        assert_eq!(stable.task_definition(), Some(s(&self.seeded, "task_definition_arn")), "stable keeps its revision");
    }
}

impl Canary {
    /// ECS stops the canary's tasks once their targets have drained.
    async fn canary_drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.service("web-canary").await.running_count() != 0 {
            assert!(Instant::now() < deadline, "the canary's tasks did not stop within 20 s of its scale-in");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_shift_the_planned_weights_then_promote_and_clean_up_without_a_failed_request() {
    let c = setup(&[]).await;
    let traffic = Traffic::start(format!("{}/version", c.url));
    let dir = tempfile::tempdir().unwrap();
    let (outputs, summary) = (dir.path().join("outputs"), dir.path().join("summary.md"));
    let mut child = c
        .action(&["--canary-steps", "10%:1s, 50%:1s, 100%", "--check-interval", "1s", "--max-error-rate", "1%"])
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .spawn();
    let mut seen = vec![c.weights().await];
    while child.try_wait().unwrap().is_none() {
        let w = c.weights().await;
        if seen.last() != Some(&w) {
            seen.push(w);
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(seen, [(100, 0), (90, 10), (50, 50), (0, 100), (100, 0)], "{run}");
    c.canary_drained().await;
    let statuses = traffic.stop().await;
    let failed: Vec<&u16> = statuses.iter().filter(|s| !(200..300).contains(*s)).collect();
    assert!(statuses.len() > 100, "too little traffic to tell: {} requests", statuses.len());
    assert!(failed.is_empty(), "{} of {} requests failed during the canary: {failed:?}", failed.len(), statuses.len());
    let stable = c.service("web").await;
    assert_ne!(stable.task_definition(), Some(s(&c.seeded, "task_definition_arn")), "stable runs the new revision");
    assert_eq!(stable.desired_count(), 4);
    assert!(run.stdout.contains("step 2/3: 50%, bake 1s: running 2 task(s)"), "{run}");
    // Pipelined: each next step's tasks start while the step before bakes.
    assert!(run.stdout.contains("step 1/3: baking; starting step 2's 2 task(s) of web:2 on web-canary now"), "{run}");
    assert!(run.stdout.contains("step 2/3: baking; starting step 3's 4 task(s)"), "{run}");
    assert!(run.stdout.contains("error-rate 0% of "), "a release without 5xx shows 0%:\n{run}");
    assert!(!run.stdout.contains("-0%"), "{run}");
    assert!(run.stdout.contains("3     100%    0s      4      passed"), "the step table is printed:\n{run}");
    let outputs = std::fs::read_to_string(outputs).unwrap();
    let keys: Vec<&str> = outputs.lines().filter_map(|l| l.split_once("<<").map(|(k, _)| k)).collect();
    assert_eq!(keys, crate::support::OUTPUTS);
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("### ✅ Deploy to `demo/web`: succeeded"), "{summary}");
    assert!(summary.contains("| 3 | 100% | 0s | 4 |"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_on_the_releases_own_errors_aborts_mid_bake_with_its_reason_in_the_step_table() {
    let c = setup(&[]).await;
    let traffic = Traffic::start(format!("{}/version", c.url));
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let mut child = c
        .action(&["--canary-steps", "50%:60s, 100%", "--check-interval", "1s"])
        .args(["--environment-variables", "FAIL_RATE=0.5"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .spawn();
    c.wait_for_weights((50, 50), &mut child).await;
    let shifted = Instant::now();
    while c.weights().await != (100, 0) {
        assert!(shifted.elapsed() < Duration::from_secs(30), "the canary did not abort mid-bake (the bake is 60s)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = finish(child);
    traffic.stop().await;
    assert_eq!(run.code, Some(1), "{run}");
    c.assert_safe().await;
    assert!(
        run.stdout.contains(
            "step 1: alarms gate failed: api-5xx in ALARM (api-5xx: Threshold Crossed: 1 out of the last 1 datapoints"
        ),
        "{run}"
    );
    // An alarm in ALARM does not wait for a second check: the first check that sees it aborts.
    let seen: Vec<&str> =
        run.stdout.lines().filter(|l| l.contains(": gates ") && l.contains("api-5xx in ALARM")).collect();
    assert_eq!(seen.len(), 1, "{run}");
    assert!(seen[0].contains("gates FAIL: "), "{run}");
    let table = std::fs::read_to_string(summary).unwrap();
    assert!(table.contains("| 1 | 50% | 1m | 2 | ` alarms api-5xx in ALARM ✗"), "{table}");
    assert!(table.contains("| FAILED |"), "{table}");
}

#[tokio::test]
async fn a_failing_probe_aborts() {
    let c = setup(&[]).await;
    let port = free_port();
    let _app = KillOnDrop(
        std::process::Command::new(repo_root().join("demo-app/dist/demo-app"))
            .env("PORT", port.to_string())
            .env("HEALTHY", "false")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("demo-app/dist/demo-app: build it with scripts/build-demo-app"),
    );
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(&url).await.is_err() {
        assert!(Instant::now() < deadline, "the demo app did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = c.action(&["--canary-steps", "10%:30s, 100%", "--check-interval", "1s", "--probe-url", &url]).run();
    assert_eq!(run.code, Some(1), "{run}");
    // A probe is a single reading: it fails the step on failure-limit (2) failing checks in a row.
    assert!(run.stdout.contains("step 1: probe gate failed 2 consecutive checks: HTTP 503"), "{run}");
    c.assert_safe().await;
}

/// One failing check is one noisy reading: a probe that answers 503 once and then 200 fails one
/// check, the next passes and resets the count, and the release is promoted (failure-limit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_check_followed_by_passing_ones_does_not_abort() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let c = setup(&[]).await;
    let probe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&probe)
        .await;
    Mock::given(method("GET")).and(path("/health")).respond_with(ResponseTemplate::new(200)).mount(&probe).await;
    let url = format!("{}/health", probe.uri());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let run = c.action(&["--canary-steps", "10%:4s, 100%", "--check-interval", "1s", "--probe-url", &url]).run();
    assert_eq!(run.code, Some(0), "{run}");
    let failing: Vec<&str> = run.stdout.lines().filter(|l| l.contains(": gates failing: ")).collect();
    assert_eq!(failing.len(), 1, "one check failed:\n{run}");
    assert!(failing[0].contains("probe HTTP 503"), "{run}");
    assert!(!run.stdout.contains("probe gate failed"), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answering_5xx_is_rolled_back_by_its_error_rate() {
    let c = setup(&[]).await;
    // The seeded alarm would see the same 5xx, and could fire at a check where the rate still lacks
    // evidence (a race): here only the rate may judge, so the alarm's threshold is out of reach.
    let cw = aws_sdk_cloudwatch::Client::new(&c.stack.sdk().await);
    cw.put_metric_alarm()
        .alarm_name("api-5xx")
        .metric_name("HTTPCode_Target_5XX_Count")
        .namespace("AWS/ApplicationELB")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1e9)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .unwrap();
    let traffic = Traffic::start(format!("{}/version", c.url));
    let run = c
        .action(&["--canary-steps", "10%:60s, 100%", "--check-interval", "1s", "--max-error-rate", "2%"])
        .args(["--environment-variables", "FAIL_RATE=0.3", "--failure-limit", "1"])
        .spawn();
    let run = finish(run);
    traffic.stop().await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("error-rate gate failed: "), "{run}");
    assert!(run.stdout.contains("; limit max-error-rate 2%; above the limit beyond chance at 99%"), "{run}");
    c.assert_safe().await;
}

#[tokio::test]
async fn canary_tasks_crash_looping_mid_bake_abort() {
    let c = setup(&[]).await;
    let mut child = c.action(&["--canary-steps", "10%:60s, 100%", "--check-interval", "1s"]).spawn();
    c.wait_for_weights((90, 10), &mut child).await;
    // ECS replaces a crashed task within a second here: the canary crashes again and again, as a
    // release that cannot stay up does, until a check sees it.
    let crashing = Instant::now();
    let mut crashes = 0;
    while child.try_wait().unwrap().is_none() && crashing.elapsed() < Duration::from_secs(30) {
        crashes += c.stack.kill_tasks("demo", "web-canary").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(crashes >= 1, "no canary container was running to crash");
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("target-health gate failed: 0/1 healthy"), "{run}");
    c.assert_safe().await;
}

#[tokio::test]
async fn sigterm_during_a_bake_takes_the_abort_path_and_exits_non_zero() {
    let c = setup(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut child =
        c.action(&["--canary-steps", "10%:60s, 100%", "--check-interval", "1s"]).env("GITHUB_OUTPUT", &outputs).spawn();
    c.wait_for_weights((90, 10), &mut child).await;
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("cancelled: aborting the canary"), "{run}");
    assert!(run.stdout.contains("step 1: cancelled (SIGINT/SIGTERM)"), "{run}");
    assert!(
        std::fs::read_to_string(outputs).unwrap().contains("status<<ghadelimiter_ecs_deploy_action\nrolled-back\n")
    );
    c.assert_safe().await;
}

#[tokio::test]
async fn split_weights_before_the_run_are_refused_and_nothing_changes() {
    let c = setup(&["--weights", "50,50"]).await;
    let before = c.stack.state().await;
    let run = c.action(&[]).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("traffic is split stable 50 / canary 50, not 100 / 0"), "{run}");
    // The refusal carries the commands that put traffic back, with this listener's and groups' ARNs.
    let restore = format!(
        "aws elbv2 modify-listener --listener-arn {} --default-actions '[{{\"Type\":\"forward\",\"ForwardConfig\":{{\"TargetGroups\":[{{\"TargetGroupArn\":\"{}\",\"Weight\":100}}",
        s(&c.seeded, "listener_arn"),
        s(&c.seeded, "stable_target_group_arn")
    );
    assert!(run.stdout.contains(&restore), "{restore}\nin:\n{run}");
    assert!(
        run.stdout.contains("aws ecs update-service --cluster demo --service web-canary --desired-count 0"),
        "{run}"
    );
    assert_eq!(c.stack.state().await, before, "a refused canary changed something");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A helper process that ends with the test, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM the run once it is at 50/50, with ModifyListener throttled: for good, or twice.
async fn cancel_at_50_with_modify_listener_throttled(c: &Canary, for_good: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut child =
        c.action(&["--canary-steps", "50%:60s, 100%", "--check-interval", "1s"]).env("GITHUB_OUTPUT", &outputs).spawn();
    c.wait_for_weights((50, 50), &mut child).await;
    if for_good {
        c.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 1.0).await;
    } else {
        c.stack.throttle_next("elasticloadbalancing", "ModifyListener", 2).await;
    }
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut run = finish(child);
    c.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 0.0).await;
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    run
}

#[tokio::test]
async fn traffic_that_cannot_be_put_back_leaves_everything_else_and_says_how_to_restore_it() {
    let c = setup(&[]).await;
    let run = cancel_at_50_with_modify_listener_throttled(&c, true).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(crate::support::output(&run, "status"), "failed");
    assert!(
        run.stdout.contains("traffic could not be put back on the stable service, so nothing else was changed"),
        "{run}"
    );
    assert!(run.stdout.contains("traffic is split stable 50 / canary 50"), "{run}");
    let listener = s(&c.seeded, "listener_arn");
    assert!(
        run.stdout.contains(&format!("aws elbv2 modify-listener --listener-arn {listener} --default-actions")),
        "{run}"
    );
    assert!(
        run.stdout.contains("aws ecs update-service --cluster demo --service web-canary --desired-count 0"),
        "{run}"
    );
    // Nothing else was touched: the canary still serves its half, with the 4 tasks it has by then
    // (step 2's started during step 1's bake).
    assert_eq!(c.weights().await, (50, 50));
    assert_eq!(c.service("web-canary").await.desired_count(), 4);
    assert_eq!(c.service("web").await.task_definition(), Some(s(&c.seeded, "task_definition_arn")));
}

#[tokio::test]
async fn traffic_put_back_after_two_failed_calls_lets_the_undo_finish() {
    let c = setup(&[]).await;
    let run = cancel_at_50_with_modify_listener_throttled(&c, false).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(crate::support::output(&run, "status"), "rolled-back");
    c.assert_safe().await;
}

#[tokio::test]
async fn a_failure_after_the_promotion_completed_is_a_warning_not_a_rollback() {
    let c = setup(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    let mut child =
        c.action(&["--canary-steps", "50%:1s, 100%", "--check-interval", "1s"]).env("GITHUB_OUTPUT", &outputs).spawn();
    // The next ModifyListener after the 100% shift is the reset once the promotion completed.
    c.wait_for_weights((0, 100), &mut child).await;
    c.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 1.0).await;
    let mut run = finish(child);
    c.stack.throttle("elasticloadbalancing", Some("ModifyListener"), 0.0).await;
    run.outputs = std::fs::read_to_string(outputs).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(crate::support::output(&run, "status"), "succeeded");
    assert!(
        run.stdout.contains("deployed, but left for you to finish: the weights could not be put back to 100/0"),
        "{run}"
    );
    let stable = c.service("web").await;
    assert_eq!(stable.task_definition(), Some(crate::support::output(&run, "task-definition-arn").as_str()));
    // The canary, which still takes the traffic, keeps its tasks.
    assert_eq!(c.weights().await, (0, 100));
    assert!(c.service("web-canary").await.desired_count() > 0);
}

#[tokio::test]
async fn a_step_that_saw_no_request_says_so_instead_of_passing_silently() {
    let c = setup(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    // No traffic at all: the error-rate gate has nothing to measure.
    let run = c
        .action(&["--canary-steps", "10%:2s, 100%", "--check-interval", "1s", "--max-error-rate", "1%"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("step 1/2: no request reached web-canary during the step, so its error rate was not measured"),
        "{run}"
    );
    let table = std::fs::read_to_string(summary).unwrap();
    assert!(table.contains("error-rate ⚠ no requests in the step"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_requests_a_step_without_enough_traffic_is_inconclusive_and_rolls_back() {
    let c = setup(&[]).await;
    // A trickle: a request every 10 ms at 10% reaches the canary far fewer than 5,000 times in 2 s.
    let traffic = Traffic::start(format!("{}/version", c.url));
    let run = c
        .action(&["--canary-steps", "10%:2s, 100%:2s", "--check-interval", "1s", "--max-error-rate", "1%"])
        .args(["--min-requests", "5000"])
        .run();
    traffic.stop().await;
    assert_eq!(run.code, Some(1), "never a pass on too little evidence:\n{run}");
    assert!(run.stdout.contains("gates inconclusive: "), "{run}");
    assert!(
        run.stdout.contains("inconclusive at the end of the bake: error-rate gate had too little evidence: "),
        "{run}"
    );
    assert!(run.stdout.contains(" of min-requests 5000"), "{run}");
    c.assert_safe().await;
}

/// SIGINT mid-promotion (the stable service's old tasks drain for 10 s, so the promotion is long):
/// within 2 s traffic is back on the stable service, the undo is calls without waits, and the run
/// ends non-zero well inside the 10 s GitHub allows, the stable service sent back to its revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_promotion_puts_traffic_on_stable_within_2s_and_undoes_without_waiting() {
    // 600 AWS seconds of deregistration delay are 10 s on the fast profile.
    let c = setup(&["--deregistration-delay", "600", "--desired", "2"]).await;
    let old = s(&c.seeded, "task_definition_arn").to_string();
    let mut child = c.action(&["--canary-steps", "100%", "--check-interval", "1s"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.service("web").await.task_definition() == Some(old.as_str()) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the promotion");
        assert!(Instant::now() < deadline, "the promotion never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.weights().await, (0, 100), "mid-promotion the canary has the traffic");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    while c.weights().await != (100, 0) {
        assert!(signalled.elapsed() < Duration::from_secs(2), "traffic was not back on stable within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = finish(child);
    assert!(signalled.elapsed() < Duration::from_secs(5), "the undo waited: {:?}\n{run}", signalled.elapsed());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("cancelled: not waiting for web to be back on web:1 (ECS rolls it back)"), "{run}");
    assert_eq!(c.service("web").await.task_definition(), Some(old.as_str()), "stable is sent back to its revision");
    assert_eq!(c.service("web-canary").await.desired_count(), 0);
}

/// After the promotion the canary is scaled in without waiting for its drain (the deregistration
/// delay is 600 s, 10 s on the fast profile): the run ends while its tasks still drain, says so,
/// the tasks stop by themselves afterwards, and the next canary may start meanwhile.
///
/// What drains is read from the target group: ECS takes a draining task out of the service's
/// `runningCount` (it is DEACTIVATING) a moment after the scale-in, so a count read from the service
/// said nothing whenever ECS was quicker than the run's look (CI saw it). Here the look at the
/// service right after the scale-in is also throttled: the count must not depend on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_up_does_not_wait_for_the_drain_and_says_what_still_drains() {
    let c = setup(&["--deregistration-delay", "600", "--desired", "2"]).await;
    let old = s(&c.seeded, "task_definition_arn").to_string();
    let child = c.action(&["--canary-steps", "100%", "--check-interval", "1s"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.service("web").await.task_definition() == Some(old.as_str()) {
        assert!(Instant::now() < deadline, "the promotion never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The promotion's UpdateService went through; the next one is the canary's scale-in.
    c.stack.throttle_after("ecs", "UpdateService", "DescribeServices", Some(1)).await;
    let run = finish(child);
    c.stack.throttle("ecs", Some("DescribeServices"), 0.0).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(
            "web-canary: 2 task(s) drain from web-canary for up to 10m (the target group's deregistration delay), \
             then ECS stops them; not waited for"
        ),
        "{run}"
    );
    // ECS deregisters them within moments of the scale-in, if it had not when the run looked.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.canary_targets().await != ["draining", "draining"] {
        assert!(Instant::now() < deadline, "not draining: {:?}", c.canary_targets().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.tasks_not_stopped("web-canary").await, 2, "its tasks wait for the drain");
    let again = c.action(&["--canary-steps", "100%", "--check-interval", "1s", "--dry-run"]).run();
    assert_eq!(again.code, Some(0), "draining tasks of a finished run do not block the next one:\n{again}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.canary_targets().await.is_empty() || c.tasks_not_stopped("web-canary").await > 0 {
        assert!(Instant::now() < deadline, "ECS did not stop the drained tasks");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 24.9: a signal that arrives once the promotion completed in ECS, before the run's wait
/// looked again, does not roll it back: a completed promotion is a success with clean-up left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_after_the_promotion_completed_does_not_roll_it_back() {
    let c = setup(&[]).await;
    // Looks 4 s apart: the promotion completes in ECS well before the run's wait sees it.
    let mut child = c.action(&["--canary-steps", "100%"]).env("ECS_DEPLOY_POLL_INTERVAL", "4s").spawn();
    let seeded = s(&c.seeded, "task_definition_arn").to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its promotion completed");
        assert!(Instant::now() < deadline, "the promotion never completed");
        let web = c.service("web").await;
        let done = web.deployments().len() == 1
            && web.deployments()[0].rollout_state().map(|s| s.as_str()) == Some("COMPLETED")
            && web.deployments()[0].running_count() == web.desired_count();
        if web.task_definition() != Some(seeded.as_str()) && done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{run}");
    assert_ne!(c.service("web").await.task_definition(), Some(seeded.as_str()), "the promotion stays: {run}");
    assert!(!run.stdout.contains("abort: restoring web"), "{run}");
    assert_eq!(c.weights().await, (100, 0));
}

/// Issue 24.9: after SIGTERM no pull-request comment update stands between the abort's traffic call
/// and the rest of the undo: GitHub kills the job 10 s after its first signal. Here every comment
/// edit after the signal takes GitHub 6 s; the canary is still scaled in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_signal_a_slow_github_does_not_hold_the_undo() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    let c = setup(&[]).await;
    let server = MockServer::start().await;
    let comment: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/resources/github/comment.json")).unwrap(),
    )
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let created = comment.clone();
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(move |_: &Request| ResponseTemplate::new(201).set_body_json(created.clone()))
        .mount(&server)
        .await;
    let slow = Arc::new(AtomicBool::new(false));
    let slow_now = slow.clone();
    Mock::given(method("PATCH"))
        .and(path("/repos/org/app/issues/comments/1"))
        .respond_with(move |_: &Request| {
            let answer = ResponseTemplate::new(200).set_body_json(comment.clone());
            if slow_now.load(Ordering::SeqCst) { answer.set_delay(Duration::from_secs(6)) } else { answer }
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#).unwrap();
    let mut child = c
        .action(&["--canary-steps", "50%:60s, 100%", "--check-interval", "1s"])
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_REPOSITORY", "org/app")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .input("github-token", "ghs_CanaryTestToken0123456789abcdef")
        .spawn();
    c.wait_for_weights((50, 50), &mut child).await;
    slow.store(true, Ordering::SeqCst);
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    while c.service("web-canary").await.desired_count() != 0 {
        assert!(signalled.elapsed() < Duration::from_secs(4), "the canary's scale-in waited on GitHub");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.weights().await, (100, 0));
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{run}");
}
