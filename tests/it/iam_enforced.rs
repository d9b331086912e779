//! Deploys as a role that has exactly the policy `iam-policy` prints, assumed with the job's OIDC
//! token as in a workflow, on the emulator with IAM enforcement on (every call signed by the role's
//! session and authorized against the resources AWS names for it: scripts/localaws/iam/resources.py), and
//! again with each statement taken out: the run then fails at the first call that needs it, naming
//! the missing action, and leaves nothing half-changed.
//!
//! The stack also makes the authorizations AWS adds to a call and moto does not: a new revision's
//! registration passes its roles (iam:PassRole) and, tagged, tags it (ecs:TagResource), so
//! `PassTaskRoles` and `EcsTagNewRevisions` are taken out too. Not evaluated, so not taken out:
//! `EcrPush` (the registry standing in for ECR's is not behind IAM). Conditions are moto's:
//! StringEquals on the keys it knows, the others not evaluated.

use serde_json::Value;

use crate::iam::{actions_of, policy as printed_policy};
use crate::support::{Run, Stack, oidc_token_server, s, stack};

/// Statements the emulator cannot check (see the header).
const UNCHECKED: &[&str] = &["EcrPush"];

/// Reads that only add to what the log and the report say (the stopped tasks' reasons while a wait
/// runs, a task's log lines): without them the deploy goes on, and a warning names the permission.
const BEST_EFFORT: &[&str] = &["EcsListTasks", "ReadTaskLogs"];

fn without(policy: &Value, sid: &str) -> Value {
    let mut p = policy.clone();
    p["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != sid);
    p
}

/// The printed policy for `inputs`, after a deploy as `role` with exactly it succeeded without one
/// refused call, not even a best-effort one.
async fn runs_with_exactly_its_policy(stack: &Stack, role: &str, inputs: &[&str]) -> Value {
    let policy = printed_policy(stack, inputs);
    let run = deploy_as(stack, role, &policy, inputs).await;
    assert_eq!(run.code, Some(0), "with exactly the printed policy:\n{run}");
    assert!(!run.stdout.contains("not authorized"), "no call was refused:\n{run}");
    policy
}

/// Runs the deploy as a workflow does: the job's OIDC token exchanged for a new role that has
/// exactly `policy`, enforcement on for the run only. No other key is in its environment: every call
/// is signed by the role's session.
async fn deploy_as(stack: &Stack, role: &str, policy: &Value, inputs: &[&str]) -> Run {
    let role = stack.iam_role(role, policy);
    let token = oidc_token_server("sts.amazonaws.com", 1..).await;
    stack.enforce_iam(true).await;
    let run = stack
        .action()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .with_oidc(&token, &role)
        .args(["--aws-region", &stack.region])
        .args(inputs)
        .run();
    stack.enforce_iam(false).await;
    assert!(run.stdout.contains(&format!("sts:AssumeRoleWithWebIdentity {role}")), "the run assumed the role:\n{run}");
    run
}

async fn revision(stack: &Stack, service: &str) -> String {
    let out = stack.ecs().await.describe_services().cluster("demo").services(service).send().await.unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

/// Every statement of `policy` the emulator can check (of `only`, when given), taken out one at a
/// time: each run fails naming one of its actions, and the services run what they ran before.
async fn each_statement_is_needed(stack: &Stack, policy: &Value, inputs: &[&str], services: &[&str], only: &[&str]) {
    let mut taken_out = 0;
    for statement in policy["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap();
        if UNCHECKED.contains(&sid) || !(only.is_empty() || only.contains(&sid)) {
            continue;
        }
        taken_out += 1;
        let before: Vec<String> = futures_util::future::join_all(services.iter().map(|s| revision(stack, s))).await;
        let role = format!("without-{}", sid.to_ascii_lowercase());
        let run = deploy_as(stack, &role, &without(policy, sid), inputs).await;
        let expected = if BEST_EFFORT.contains(&sid) { 0 } else { 1 };
        assert_eq!(run.code, Some(expected), "without {sid}:\n{run}");
        let named = actions_of(statement).into_iter().any(|a| run.stdout.contains(&format!("perform: {a}")));
        // A wait asks for stopped tasks only once a count says one stopped (issue 30.1): a healthy
        // release may never call ListTasks, and then nothing is refused.
        let uncalled = sid == "EcsListTasks" && !run.stdout.contains("not authorized");
        assert!(named || uncalled, "without {sid} the log names one of {:?}:\n{run}", actions_of(statement));
        if expected == 1 {
            assert!(
                run.stdout.contains("hint: ") && run.stdout.contains("`ecs-deploy-action iam-policy`"),
                "without {sid} the error points at iam-policy:\n{run}"
            );
            let after: Vec<String> = futures_util::future::join_all(services.iter().map(|s| revision(stack, s))).await;
            assert_eq!(before, after, "without {sid} the services run what they ran before:\n{run}");
        }
    }
    assert!(taken_out >= only.len().max(1), "the statements to take out are in the policy: {only:?}\n{policy:#}");
}

#[tokio::test]
async fn a_rolling_deploy_with_a_pre_deploy_task_runs_with_exactly_its_policy_and_needs_all_of_it() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let inputs = [
        "--image",
        &stack.image,
        "--cluster",
        "demo",
        "--service",
        "web",
        "--pre-deploy-command",
        "migrate",
        "--wait-timeout",
        "60s",
    ];
    let policy = runs_with_exactly_its_policy(&stack, "deployer", &inputs).await;
    assert_ne!(revision(&stack, "web").await, s(&seeded, "task_definition_arn"));
    each_statement_is_needed(&stack, &policy, &inputs, &["web"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_alarms_and_an_error_rate_gate_runs_with_exactly_its_policy_and_needs_all_of_it() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "2", "--alarms", "api-5xx"]);
    let listener = s(&seeded, "listener_arn").to_string();
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
        &listener,
        "--canary-steps",
        "50%:2s, 100%",
        "--check-interval",
        "1s",
        "--alarms",
        "api-5xx",
        "--max-error-rate",
        "5%",
        "--wait-timeout",
        "60s",
    ];
    let policy = runs_with_exactly_its_policy(&stack, "deployer", &inputs).await;
    // What a canary adds to the rolling deploy's statements; the rest are proven there. Without the
    // traffic call the abort finds the weights where they must be, and undoes the rest.
    let canary = ["ElbRead", "ElbShiftTraffic", "CloudWatchAlarms", "CloudWatchMetrics"];
    each_statement_is_needed(&stack, &policy, &inputs, &["web"], &canary).await;
    let idle = stack.ecs().await.describe_services().cluster("demo").services("web-canary").send().await.unwrap();
    assert_eq!(idle.services()[0].desired_count(), 0, "the canary is idle after every refused run");
}

#[tokio::test]
async fn a_build_and_push_runs_with_exactly_its_policy_and_needs_its_ecr_login() {
    let stack = stack().await;
    let context = crate::support::repo_root().join("demo-app");
    let tag = crate::support::unique("iam");
    let inputs = ["--ecr-repository", "demo-app", "--registry", &stack.registry, "--tags", &tag];
    let inputs = [&inputs[..], &["--context", context.to_str().unwrap()]].concat();
    let policy = runs_with_exactly_its_policy(&stack, "builder", &inputs).await;
    each_statement_is_needed(&stack, &policy, &inputs, &[], &["EcrLogin"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_linear_deploy_judged_at_its_pauses_runs_with_exactly_its_policy_and_needs_all_of_it() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "2", "--native", "linear", "--step-percent", "50", "--step-bake", "1"]);
    let inputs = [
        "--image",
        &stack.image,
        "--cluster",
        "demo",
        "--service",
        "web",
        "--max-error-rate",
        "stable + 5%",
        "--check-interval",
        "1s",
        // ECS's minutes are seconds on the stack's clock: pauses that outlast a check.
        "--wait-timeout",
        "30m",
    ];
    let policy = runs_with_exactly_its_policy(&stack, "deployer", &inputs).await;
    assert_ne!(revision(&stack, "web").await, s(&seeded, "task_definition_arn"));
    // What ECS's own strategy adds: following and answering its service deployments (checked by the
    // plan before any change), its rules and target groups, the gates' metrics (without them a
    // check cannot read, and ECS is asked to roll back).
    let native = ["EcsListServiceDeployments", "EcsServiceDeployments", "ElbRead", "CloudWatchMetrics"];
    each_statement_is_needed(&stack, &policy, &inputs, &["web"], &native).await;
}
