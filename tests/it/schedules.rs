//! `scheduled-tasks` on the stack (EventBridge rules with ECS targets): a rule's target in the
//! cluster that runs the deployed family follows a successful deploy, with exactly the policy
//! `iam-policy` prints; a rolled-back deploy leaves it where it was; a deploy of the older revision as
//! it is takes it back; other clusters' and families' targets are never touched; a named rule without
//! such a target is refused before any change.

use aws_sdk_eventbridge::types::{EcsParameters, Target};

use crate::support::{Stack, s, stack};

const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";

fn deploy(stack: &Stack, extra: &[&str]) -> crate::support::Run {
    stack.action().args(["--aws-region", &stack.region, "--cluster", "demo", "--service", "web"]).args(extra).run()
}

async fn target(events: &aws_sdk_eventbridge::Client, rule: &str) -> String {
    let out = events.list_targets_by_rule().rule(rule).send().await.unwrap();
    let arn = out.targets()[0].ecs_parameters().unwrap().task_definition_arn().to_string();
    arn.rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_task_follows_the_service_and_not_a_rolled_back_release() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "1"]);
    let web1 = s(&seeded, "task_definition_arn").to_string();
    let events = aws_sdk_eventbridge::Client::new(&stack.sdk().await);
    for (rule, cluster, revision) in [
        ("nightly", CLUSTER_ARN, web1.as_str()),
        ("elsewhere", "arn:aws:ecs:us-east-1:123456789012:cluster/other", web1.as_str()),
    ] {
        events.put_rule().name(rule).schedule_expression("rate(1 day)").send().await.unwrap();
        let t = Target::builder()
            .id("1")
            .arn(cluster)
            .role_arn("arn:aws:iam::123456789012:role/ecsEventsRole")
            .ecs_parameters(EcsParameters::builder().task_definition_arn(revision).task_count(1).build().unwrap())
            .build()
            .unwrap();
        events.put_targets().rule(rule).targets(t).send().await.unwrap();
    }

    let missing = deploy(&stack, &["--image", &stack.image, "--scheduled-tasks", "nightly, weekly"]);
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(missing.stdout.contains("EventBridge rule `weekly`"), "{missing}");

    let args = ["--image", &stack.image, "--scheduled-tasks", "auto", "--environment-variables", "APP_VERSION=2"];
    let printed = stack
        .action()
        .args(["iam-policy", "--aws-region", &stack.region, "--cluster", "demo", "--service", "web"])
        .args(args)
        .run();
    assert_eq!(printed.code, Some(0), "{printed}");
    let policy: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    let (id, secret) = stack.iam_user("scheduler", &policy);
    stack.enforce_iam(true).await;
    let moved = stack
        .action()
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .args(["--aws-region", &stack.region, "--cluster", "demo", "--service", "web"])
        .args(args)
        .run();
    stack.enforce_iam(false).await;
    assert_eq!(moved.code, Some(0), "with exactly the printed policy:\n{moved}");
    assert!(
        moved.stdout.contains("schedule: nightly (target 1) runs web:1; after success, the new revision of web"),
        "{moved}"
    );
    assert!(moved.stdout.contains("scheduled task: nightly now runs web:2"), "{moved}");
    assert!(!moved.stdout.contains("warning"), "{moved}");
    assert_eq!(target(&events, "nightly").await, "web:2");
    assert_eq!(target(&events, "elsewhere").await, "web:1", "another cluster's target is not ours");
    let t = events.list_targets_by_rule().rule("nightly").send().await.unwrap();
    let t = &t.targets()[0];
    assert_eq!(
        (t.role_arn(), t.ecs_parameters().unwrap().task_count()),
        (Some("arn:aws:iam::123456789012:role/ecsEventsRole"), Some(1)),
        "its other settings as they were"
    );

    let failed = deploy(
        &stack,
        &[
            "--image",
            &stack.image,
            "--scheduled-tasks",
            "nightly",
            "--environment-variables",
            "CRASH_ON_START=1",
            "--wait-timeout",
            "30s",
        ],
    );
    assert_eq!(failed.code, Some(1), "{failed}");
    assert_eq!(target(&events, "nightly").await, "web:2", "a rolled-back release moves no schedule");

    let back = deploy(&stack, &["--task-definition", "web:1", "--scheduled-tasks", "nightly"]);
    assert_eq!(back.code, Some(0), "{back}");
    assert_eq!(target(&events, "nightly").await, "web:1", "back with the service to the revision deployed as it is");
}
