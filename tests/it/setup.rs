//! `ecs-deploy-action setup` on the stack, from a plain service behind a listener as a user has one:
//! the plan changes nothing, `--apply` makes what a canary needs, a second run finds it in place, and
//! a canary deploy then runs with no other preparation, its release judged by the alarm setup made.
//! Every refusal and a failure half-way leave the emulator's state as it was.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
};
use tokio::time::Instant;

use crate::support::{Run, Stack, Traffic, differences, read_back, s, stack};

fn setup(stack: &Stack, args: &[&str]) -> Run {
    stack.action().args(["setup", "--cluster", "demo", "--service", "web"]).args(args).run()
}

fn canary(stack: &Stack, listener: &str, extra: &[&str]) -> Run {
    stack
        .action()
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args([
            "--strategy",
            "canary",
            "--listener-arn",
            listener,
            "--alarms",
            "web-canary-5xx",
            "--check-interval",
            "1s",
        ])
        .args(extra)
        .run()
}

async fn weights(elb: &aws_sdk_elasticloadbalancingv2::Client, listener: &str) -> Vec<(String, i32)> {
    let out = elb.describe_listeners().listener_arns(listener).send().await.unwrap();
    let action = &out.listeners()[0].default_actions()[0];
    let groups = action.forward_config().map(|f| f.target_groups().to_vec()).unwrap_or_default();
    groups
        .iter()
        .map(|g| (g.target_group_arn().unwrap().rsplit('/').nth(1).unwrap().to_string(), g.weight().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_plans_then_applies_once_and_a_canary_runs_on_what_it_made() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "2"]);
    let listener = s(&seeded, "listener_arn");
    let sdk = stack.sdk().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);

    let before = read_back(&stack, listener).await;
    let plan = setup(&stack, &["--listener-arn", listener]);
    assert_eq!(plan.code, Some(0), "{plan}");
    for line in [
        "Plan: 4 changes",
        "1. create target group `web-canary`",
        "aws elbv2 create-target-group --name web-canary",
        "aws ecs create-service --cluster demo --service-name web-canary",
        "Nothing was changed: run again with --apply",
    ] {
        assert!(plan.stdout.contains(line), "{line}:\n{plan}");
    }
    assert_eq!(differences(&before, &read_back(&stack, listener).await), "", "the plan changed nothing");

    let applied = setup(&stack, &["--listener-arn", listener, "--apply"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    assert!(
        applied.stdout.contains("4 changes made") && applied.stdout.contains("alarms: web-canary-5xx"),
        "{applied}"
    );
    assert_eq!(weights(&elb, listener).await, [("web".to_string(), 100), ("web-canary".to_string(), 0)]);
    let ecs = stack.ecs().await;
    let svc = ecs.describe_services().cluster("demo").services("web-canary").send().await.unwrap();
    let svc = &svc.services()[0];
    assert_eq!((svc.desired_count(), svc.task_definition()), (0, Some(s(&seeded, "task_definition_arn"))));
    let tg = elb.describe_target_groups().names("web-canary").send().await.unwrap().target_groups()[0].clone();
    assert_eq!(svc.load_balancers()[0].target_group_arn(), tg.target_group_arn());
    assert_eq!(
        (tg.health_check_path(), tg.health_check_interval_seconds()),
        (Some("/health"), Some(5)),
        "the health check is the service's"
    );
    let attrs =
        elb.describe_target_group_attributes().target_group_arn(tg.target_group_arn().unwrap()).send().await.unwrap();
    assert!(
        attrs
            .attributes()
            .iter()
            .any(|a| a.key() == Some("deregistration_delay.timeout_seconds") && a.value() == Some("30"))
    );

    let after = read_back(&stack, listener).await;
    let again = setup(&stack, &["--listener-arn", listener, "--apply"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("nothing to change"), "{again}");
    assert_eq!(again.stdout.matches("in place:").count(), 4, "{again}");
    assert_eq!(differences(&after, &read_back(&stack, listener).await), "", "a second run changed nothing");

    // A faulty release: the alarm setup made sees the canary's own 5xx and aborts it mid-bake.
    let url = stack.listener_url(listener).await;
    let traffic = Traffic::start(format!("{url}/version"));
    let faulty =
        canary(&stack, listener, &["--canary-steps", "50%:60s, 100%", "--environment-variables", "FAIL_RATE=0.5"]);
    assert_eq!(faulty.code, Some(1), "{faulty}");
    assert!(faulty.stdout.contains("alarms gate failed: web-canary-5xx in ALARM"), "{faulty}");
    assert_eq!(weights(&elb, listener).await, [("web".to_string(), 100), ("web-canary".to_string(), 0)]);
    // With no request on the canary's target group the alarm is OK again (missing data is not breaching).
    let start = Instant::now();
    loop {
        let alarms = cw.describe_alarms().alarm_names("web-canary-5xx").send().await.unwrap();
        if alarms.metric_alarms()[0].state_value().map(|s| s.as_str()) == Some("OK") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the alarm stayed in ALARM with no canary");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let good =
        canary(&stack, listener, &["--canary-steps", "50%:3s, 100%", "--environment-variables", "APP_VERSION=v2"]);
    let statuses = traffic.stop().await;
    assert_eq!(good.code, Some(0), "{good}");
    assert!(good.stdout.contains("Deployed: demo/web → web:3"), "{good}");
    let faults_answer = statuses.iter().filter(|&&c| c != 200 && c != 500).count();
    assert_eq!(faults_answer, 0, "every request answered by a task (the faulty release's own 500s aside)");
}

#[tokio::test]
async fn refusals_change_nothing_and_say_what_to_do() {
    let stack = stack().await;
    stack.seed(&["--desired", "1"]);
    let before = stack.state().await;
    let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2";
    let run = setup(&stack, &["--listener-arn", listener, "--apply"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("service `web` has no load balancer") && run.stdout.contains("Nothing was changed."),
        "{run}"
    );
    assert_eq!(differences(&before, &stack.state().await), "");

    // Traffic reaches the service through a rule: named the listener, setup points at the rule.
    drop(stack);
    let stack = crate::support::stack().await;
    let seeded = stack.seed(&["--alb", "--rule", "--desired", "1"]);
    let (listener, rule) = (s(&seeded, "listener_arn"), s(&seeded, "listener_rule_arn"));
    let before = read_back(&stack, listener).await;
    let run = setup(&stack, &["--listener-arn", listener, "--apply"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains(&format!("run again with --listener-rule-arn {rule}")), "{run}");
    assert_eq!(differences(&before, &read_back(&stack, listener).await), "");
    let run = setup(&stack, &["--listener-rule-arn", rule, "--apply"]);
    assert_eq!(run.code, Some(0), "{run}");

    // A canary left half-way: refused, with the commands that put traffic back.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&stack.sdk().await);
    let canary_tg = elb.describe_target_groups().names("web-canary").send().await.unwrap().target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let split = |a: i32, b: i32| {
        let groups = vec![
            TargetGroupTuple::builder().target_group_arn(s(&seeded, "target_group_arn")).weight(a).build(),
            TargetGroupTuple::builder().target_group_arn(&canary_tg).weight(b).build(),
        ];
        ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(ForwardActionConfig::builder().set_target_groups(Some(groups)).build())
            .build()
    };
    elb.modify_rule().rule_arn(rule).actions(split(80, 20)).send().await.unwrap();
    let before = read_back(&stack, listener).await;
    let run = setup(&stack, &["--listener-rule-arn", rule, "--apply"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("weight 20") && run.stdout.contains(&format!("aws elbv2 modify-rule --rule-arn {rule}")),
        "{run}"
    );
    assert_eq!(differences(&before, &read_back(&stack, listener).await), "");
}

/// What setup reads and could change, read through the API (moto's state dump keeps every object it
/// ever made, deleted ones too, and the data plane's bookkeeping): target groups and their
/// attributes, the listener's actions and its rules', the cluster's services, the alarms.
#[tokio::test]
async fn a_failure_half_way_undoes_what_setup_made() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1"]);
    let listener = s(&seeded, "listener_arn");
    let before_read = read_back(&stack, listener).await;
    // The target group is made and the listener changed before CreateService fails.
    stack.throttle("ecs", Some("CreateService"), 1.0).await;
    let run = setup(&stack, &["--listener-arn", listener, "--apply"]);
    stack.throttle("ecs", Some("CreateService"), 0.0).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("ECS CreateService") && run.stdout.contains("setup changed nothing"), "{run}");
    assert!(run.stdout.contains("undone: the listener's default action changed to a weighted forward"), "{run}");
    assert!(run.stdout.contains("undone: target group"), "{run}");
    // moto's state dump keeps every object it ever made (deleted ones too): read back through the API.
    assert_eq!(differences(&before_read, &read_back(&stack, listener).await), "", "nothing is left of the failed run");
    assert_eq!(
        read_back(&stack, listener).await["target_groups"].as_array().unwrap().len(),
        1,
        "only the service's own"
    );
    let run = setup(&stack, &["--listener-arn", listener, "--apply"]);
    assert_eq!(run.code, Some(0), "once the fault is gone, the same command sets it up:\n{run}");
}

/// `setup --apply` as a user with exactly the policy `iam-policy --setup` prints for the same flags,
/// on the emulator with IAM enforcement on; and without the statement for the canary service, the
/// refused call is named with the policy command, and what was made before it is undone.
#[tokio::test]
async fn setup_runs_with_exactly_the_policy_iam_policy_prints() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "1"]);
    let listener = s(&seeded, "listener_arn");
    let printed = stack
        .action()
        .args(["iam-policy", "--setup", "--cluster", "demo", "--service", "web", "--listener-arn", listener])
        .run();
    assert_eq!(printed.code, Some(0), "{printed}");
    let policy: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();

    let mut without = policy.clone();
    without["Statement"].as_array_mut().unwrap().retain(|st| st["Sid"] != "SetupCanaryService");
    let (id, secret) = stack.iam_user("setup-without-service", &without);
    let before = read_back(&stack, listener).await;
    stack.enforce_iam(true).await;
    let refused = stack
        .action()
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .args(["setup", "--cluster", "demo", "--service", "web", "--listener-arn", listener, "--apply"])
        .run();
    stack.enforce_iam(false).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stdout.contains("ecs:CreateService") && refused.stdout.contains("iam-policy --setup"), "{refused}");
    assert_eq!(differences(&before, &read_back(&stack, listener).await), "", "undone");

    let (id, secret) = stack.iam_user("setup", &policy);
    stack.enforce_iam(true).await;
    let run = stack
        .action()
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .args(["setup", "--cluster", "demo", "--service", "web", "--listener-arn", listener, "--apply"])
        .run();
    let again = stack
        .action()
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .args(["setup", "--cluster", "demo", "--service", "web", "--listener-arn", listener])
        .run();
    stack.enforce_iam(false).await;
    assert_eq!(run.code, Some(0), "with exactly the printed policy:\n{run}");
    assert!(!run.stdout.contains("not authorized"), "{run}");
    assert!(again.code == Some(0) && again.stdout.contains("nothing to change"), "{again}");
}

/// `setup --native linear` from the same plain service, as a user with exactly the policy
/// `iam-policy --setup --native …` prints: a plan that changes nothing, the green target group, a
/// production rule and the service's configuration made, a second run that finds them, and then a
/// deploy with `strategy: ecs` under traffic that ECS shifts step by step without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_native_prepares_a_plain_service_for_ecs_own_strategy() {
    let stack = stack().await;
    let seeded = stack.seed(&["--alb", "--desired", "2"]);
    let listener = s(&seeded, "listener_arn");
    let role = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers";
    let flags =
        ["--cluster", "demo", "--service", "web", "--listener-arn", listener, "--native", "linear", "--role-arn", role];
    let printed = stack.action().args(["iam-policy", "--setup"]).args(flags).run();
    assert_eq!(printed.code, Some(0), "{printed}");
    let policy: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    assert!(printed.stdout.contains("iam:PassRole") && printed.stdout.contains(role), "{printed}");

    let before = read_back(&stack, listener).await;
    let plan = stack.action().args(["setup"]).args(flags).run();
    assert_eq!(plan.code, Some(0), "{plan}");
    for line in [
        "Plan: 3 changes",
        "create target group `web-green`",
        "aws elbv2 create-rule",
        "aws ecs update-service --cluster demo --service web",
    ] {
        assert!(plan.stdout.contains(line), "{line}:\n{plan}");
    }
    assert_eq!(differences(&before, &read_back(&stack, listener).await), "", "the plan changed nothing");

    let (id, secret) = stack.iam_user("setup-native", &policy);
    stack.enforce_iam(true).await;
    let as_user = |apply: bool| {
        let mut a = stack.action();
        a.env("AWS_ACCESS_KEY_ID", &id).env("AWS_SECRET_ACCESS_KEY", &secret).args(["setup"]).args(flags);
        if apply {
            a.args(["--apply"]);
        }
        a.run()
    };
    let applied = as_user(true);
    let again = as_user(true);
    stack.enforce_iam(false).await;
    assert_eq!(applied.code, Some(0), "with exactly the printed policy:\n{applied}");
    assert!(applied.stdout.contains("3 changes made") && applied.stdout.contains("strategy: ecs"), "{applied}");
    assert!(again.code == Some(0) && again.stdout.contains("nothing to change"), "{again}");
    assert_eq!(again.stdout.matches("in place:").count(), 3, "{again}");

    let url = stack.listener_url(listener).await;
    let traffic = Traffic::start(format!("{url}/version"));
    let deploy = stack
        .action()
        .args(["--aws-region", &stack.region, "--image", &stack.image, "--cluster", "demo", "--service", "web"])
        .args(["--strategy", "ecs", "--environment-variables", "APP_VERSION=v2", "--check-interval", "1s"])
        .run();
    let statuses = traffic.stop().await;
    assert_eq!(deploy.code, Some(0), "{deploy}");
    assert!(deploy.stdout.contains("Deployed: demo/web → web:2, ecs LINEAR"), "{deploy}");
    assert!(
        statuses.iter().all(|&c| c == 200),
        "every request answered while ECS shifted: {:?}",
        statuses.iter().filter(|&&c| c != 200).collect::<Vec<_>>()
    );
}
