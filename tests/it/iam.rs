//! `iam-policy` against the calls runs really make: for a canary with alarms, error-rate and latency
//! gates under traffic, a rolling deploy with a pre-deploy task, a release that fails (its stopped
//! tasks and their logs read), several services in one run and a build-and-push, every AWS operation
//! the run sent (its own `AWS calls:` count, taken from the SDK's requests) is an action of the
//! policy `iam-policy` prints for the same inputs, scoped to the resources the run touched.
//!
//! The emulator checks signatures and actions but evaluates every statement against the resource
//! `*` (moto's IAMRequest has no per-operation resource for ECS, ELB, CloudWatch or Logs), so a
//! resource-scoped policy cannot be enforced there; what is proven here is that no call is missing
//! from the policy, and the scoping is asserted on the printed document.

use std::collections::BTreeSet;

use crate::support::{Run, Stack, Traffic, s, stack};

/// `ecs:DescribeServices`, … from the run's `AWS calls: ECS 12 (DescribeServices 9, …)` lines.
fn actions_called(run: &Run) -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    for line in run.stdout.lines().filter_map(|l| l.strip_prefix("AWS calls: ")) {
        let (service, ops) = line.split_once(" (").expect("AWS calls: <service> <n> (<operation> <n>, …)");
        let service = service.rsplit_once(' ').unwrap().0;
        let prefix = match service {
            "ECS" => "ecs",
            "ECR" => "ecr",
            "Elastic Load Balancing v2" => "elasticloadbalancing",
            "CloudWatch" => "cloudwatch",
            "CloudWatch Logs" => "logs",
            "STS" => "sts",
            "EventBridge" => "events",
            other => panic!("a call to a service the policy does not know: {other}"),
        };
        for op in ops.trim_end_matches(')').split(", ") {
            called.insert(format!("{prefix}:{}", op.rsplit_once(' ').unwrap().0));
        }
    }
    // Needs no permission: AWS answers it for any valid credentials.
    called.remove("sts:GetCallerIdentity");
    called
}

/// The policy `iam-policy` prints for `inputs` (asked with the stack's own keys).
pub fn policy(stack: &Stack, inputs: &[&str]) -> serde_json::Value {
    let run = stack.action().args(["iam-policy", "--aws-region", &stack.region]).args(inputs).run();
    assert_eq!(run.code, Some(0), "{run}");
    let policy =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is the policy alone ({e}):\n{run}"));
    assert_iam_accepts(&policy);
    policy
}

/// What IAM checks before it accepts a policy document: every statement has a Sid of its own,
/// actions, and at least one resource, each `*` or a well-formed ARN.
pub fn assert_iam_accepts(policy: &serde_json::Value) {
    assert_eq!(policy["Version"], "2012-10-17", "{policy:#}");
    let mut sids = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        let sid = statement["Sid"].as_str().expect("a Sid");
        assert!(sids.insert(sid.to_string()), "Sid {sid} twice in {policy:#}");
        assert!(!actions_of(statement).is_empty(), "{sid} has no action: {policy:#}");
        let resources: Vec<&str> = match &statement["Resource"] {
            serde_json::Value::String(r) => vec![r.as_str()],
            serde_json::Value::Array(list) => list.iter().map(|r| r.as_str().expect("a string resource")).collect(),
            other => panic!("{sid}: Resource is {other}"),
        };
        assert!(
            !resources.is_empty(),
            "{sid} has no resource: IAM refuses the document (\"Policy statement must contain resources\")"
        );
        for r in resources {
            let parts: Vec<&str> = r.splitn(6, ':').collect();
            let well_formed = r == "*"
                || (parts.len() == 6
                    && parts[0] == "arn"
                    && !parts[1].is_empty()
                    && !parts[2].is_empty()
                    && !parts[5].is_empty());
            assert!(well_formed, "{sid}: `{r}` is not an ARN");
        }
    }
}

/// Issue 24.14: a service whose containers do not log through awslogs gets a policy IAM accepts:
/// no ReadTaskLogs statement with nothing to grant.
#[tokio::test]
async fn a_service_without_awslogs_gets_a_policy_iam_accepts() {
    let stack = stack().await;
    stack.seed(&["--no-logs"]);
    let inputs = ["--image", &stack.image, "--cluster", "demo", "--service", "web", "--pre-deploy-command", "migrate"];
    let printed = policy(&stack, &inputs);
    let sids: Vec<&str> = printed["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert!(!sids.contains(&"ReadTaskLogs"), "{printed:#}");
    assert!(sids.contains(&"EcsServices"), "{printed:#}");
}

/// A statement's actions (`Action` is a string or a list).
pub fn actions_of(statement: &serde_json::Value) -> Vec<String> {
    match &statement["Action"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("Action is {other}"),
    }
}

fn allowed(policy: &serde_json::Value) -> BTreeSet<String> {
    policy["Statement"].as_array().unwrap().iter().flat_map(actions_of).collect()
}

fn statement<'a>(policy: &'a serde_json::Value, sid: &str) -> &'a serde_json::Value {
    let all = policy["Statement"].as_array().unwrap();
    all.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no statement {sid} in {policy:#}"))
}

/// Runs the deploy, then asserts the policy for the same inputs allows every call it made.
fn deploy_within_policy(stack: &Stack, inputs: &[&str], expect_code: i32) -> (Run, serde_json::Value) {
    let run = stack.action().args(["--aws-region", &stack.region]).args(inputs).run();
    assert_eq!(run.code, Some(expect_code), "{run}");
    let called = actions_called(&run);
    assert!(!called.is_empty(), "the run's calls were counted: {run}");
    let policy = policy(stack, inputs);
    let allowed = allowed(&policy);
    let missing: Vec<&String> = called.difference(&allowed).collect();
    assert!(missing.is_empty(), "called but not in the policy: {missing:?}\n{policy:#}\n{run}");
    (run, policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_every_gate_calls_nothing_its_policy_lacks() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "2", "--alarms", "api-5xx"]);
    let listener = s(&seeded, "listener_arn");
    let traffic = Traffic::start(format!("{}/version", stack.listener_url(listener).await));
    let inputs = [
        "--image",
        &stack.image,
        "--cluster",
        "demo",
        "--service",
        "web",
        "--strategy",
        "canary",
        "--listener-arn",
        listener,
        "--canary-steps",
        "50%:3s, 100%",
        "--check-interval",
        "1s",
        "--alarms",
        "api-5xx",
        "--max-error-rate",
        "5%",
        "--max-latency",
        "p99 < 5s",
    ];
    let (run, policy) = deploy_within_policy(&stack, &inputs, 0);
    traffic.stop().await;
    let called = actions_called(&run);
    for action in ["elasticloadbalancing:ModifyListener", "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"] {
        assert!(called.contains(action), "the run exercised {action}:\n{run}");
    }
    // Scoped to this deploy's resources, with the account the credentials belong to.
    assert_eq!(statement(&policy, "ElbShiftTraffic")["Resource"], listener);
    assert_eq!(
        statement(&policy, "EcsServices")["Resource"],
        serde_json::json!([
            "arn:aws:ecs:us-east-1:123456789012:service/demo/web",
            "arn:aws:ecs:us-east-1:123456789012:service/demo/web-canary"
        ])
    );
    assert_eq!(statement(&policy, "EcsDeployLease")["Resource"], "arn:aws:ecs:us-east-1:123456789012:service/demo/web");
    assert_eq!(
        statement(&policy, "CloudWatchAlarms")["Resource"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx"
    );
    assert_eq!(
        statement(&policy, "ReadTaskLogs")["Resource"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:log-stream:*"
    );
    assert_eq!(statement(&policy, "PassTaskRoles")["Resource"], "arn:aws:iam::123456789012:role/ecsTaskExecutionRole");
    assert_eq!(
        statement(&policy, "PassTaskRoles")["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
}

#[tokio::test]
async fn a_rolling_deploy_with_a_pre_deploy_task_and_a_failed_release_call_nothing_their_policy_lacks() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let base = ["--image", &stack.image, "--cluster", "demo", "--service", "web"];
    let (run, policy) = deploy_within_policy(&stack, &[&base[..], &["--pre-deploy-command", "migrate"]].concat(), 0);
    let called = actions_called(&run);
    assert!(called.contains("ecs:RunTask") && called.contains("logs:GetLogEvents"), "{run}");
    assert_eq!(
        statement(&policy, "EcsRunPreDeployTask")["Resource"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:*"
    );
    // A release that cannot start: its stopped tasks, exit codes and log lines are read too.
    let crash = ["--environment-variables", "CRASH_ON_START=3", "--wait-timeout", "20s"];
    let (run, _) = deploy_within_policy(&stack, &[&base[..], &crash].concat(), 1);
    assert!(actions_called(&run).contains("ecs:DescribeTasks"), "{run}");
    assert!(run.stdout.contains("exit code 3"), "{run}");
}

#[tokio::test]
async fn several_services_and_a_build_and_push_call_nothing_their_policy_lacks() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    stack.seed(&["--service", "worker", "--desired", "1"]);
    let inputs = ["--image", &stack.image, "--cluster", "demo", "--service", "web, worker", "--keep-revisions", "1"];
    let (run, policy) = deploy_within_policy(&stack, &inputs, 0);
    // Pruning too: the revisions listed and deregistered, every service and schedule read.
    let called = actions_called(&run);
    for action in ["ecs:DeregisterTaskDefinition", "ecs:ListServices", "events:ListRules"] {
        assert!(called.contains(action), "{action} in {called:?}\n{run}");
    }
    let lease = &statement(&policy, "EcsDeployLease")["Resource"];
    assert_eq!(
        *lease,
        serde_json::json!([
            "arn:aws:ecs:us-east-1:123456789012:service/demo/web",
            "arn:aws:ecs:us-east-1:123456789012:service/demo/worker"
        ])
    );
    let logs = &statement(&policy, "ReadTaskLogs")["Resource"];
    assert!(logs.to_string().contains("log-group:/ecs/worker:"), "{logs}");

    let context = crate::support::repo_root().join("demo-app");
    let repo = crate::support::unique("iam-build");
    let build = ["--ecr-repository", &repo, "--registry", &stack.registry, "--context", context.to_str().unwrap()];
    let (run, policy) = deploy_within_policy(&stack, &[&build[..], &["--tags", "v1"]].concat(), 0);
    assert!(actions_called(&run).contains("ecr:GetAuthorizationToken"), "{run}");
    let push = statement(&policy, "EcrPush");
    assert_eq!(push["Resource"], format!("arn:aws:ecr:us-east-1:123456789012:repository/{repo}"));
    assert!(push["Action"].to_string().contains("ecr:PutImage"), "{push}");
}
