//! A dry run resolves the whole plan with read-only calls: the emulator's entire state is the same
//! before and after, for rolling and canary; and a canary that cannot start safely is refused.

use crate::support::{Stack, s, stack};

fn rolling_args(stack: &Stack, seeded: &serde_json::Value) -> Vec<String> {
    [
        "--aws-region",
        &stack.region,
        "--ecr-repository",
        "demo-app",
        "--registry",
        &stack.registry,
        "--tags",
        "abc123",
        "--cluster",
        s(seeded, "cluster"),
        "--service",
        s(seeded, "service"),
        "--environment-variables",
        "LOG_LEVEL=debug\nAPP_ENV=staging",
        "--dry-run",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn rolling_dry_run_prints_the_plan_and_changes_nothing() {
    let stack = stack().await;
    let seeded = stack.seed(&["--desired", "3"]);
    let before = stack.state().await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let mut run = stack
        .action()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .args(rolling_args(&stack, &seeded))
        .run();
    run.outputs = std::fs::read_to_string(&outputs).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{run}");
    // The plan as data for later steps, with the environment's names and none of its values.
    assert_eq!(crate::support::output(&run, "status"), "planned", "{run}");
    let plan: serde_json::Value = serde_json::from_str(&crate::support::output(&run, "plan")).unwrap();
    let service = &plan["deploy"]["services"][0];
    assert_eq!((service["service"].as_str(), service["strategy"].as_str()), (Some("web"), Some("rolling")), "{plan:#}");
    assert_eq!(service["previous_task_definition"], "web:1", "{plan:#}");
    assert_eq!(service["changes"][1], serde_json::json!({"environment_added": "LOG_LEVEL"}), "{plan:#}");
    assert!(!plan.to_string().contains("staging"), "an environment value reached the plan output: {plan:#}");
    assert_eq!(stack.state().await, before, "a dry run changed the emulator's state");
    let image_line = format!("image {} → 127.0.0.1:5000/demo-app:abc123", stack.image);
    for line in [
        "service:  demo/web (3 desired), now on web:1",
        image_line.as_str(),
        "env LOG_LEVEL added",
        "env APP_ENV changed",
        "strategy: rolling",
        "DRY RUN OK",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?}:\n{run}");
    }
    assert!(!run.stdout.contains("staging"), "an environment value reached the log:\n{run}");
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("### Deployment plan (dry run: nothing was changed)"), "{summary}");
    assert!(!summary.contains("staging"), "{summary}");
}

fn canary_args(stack: &Stack, seeded: &serde_json::Value) -> Vec<String> {
    let mut args = rolling_args(stack, seeded);
    args.extend(
        [
            "--strategy",
            "canary",
            "--listener-arn",
            s(seeded, "listener_arn"),
            "--canary-steps",
            "10%:5s, 50%:5s, 100%",
            "--alarms",
            "api-5xx",
            "--max-error-rate",
            "1%",
        ]
        .map(String::from),
    );
    args
}

#[tokio::test]
async fn canary_dry_run_prints_steps_and_changes_nothing() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--desired", "4", "--alarms", "api-5xx"]);
    let before = stack.state().await;
    let run = stack.action().args(canary_args(&stack, &seeded)).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(stack.state().await, before, "a dry run changed the emulator's state");
    for line in [
        "stable: web → target group web-stable (weight 100)",
        "canary: web-canary → target group web-canary (weight 0, idle)",
        "step 1: 1 task(s) of the new revision on web-canary, weights 90/10, bake 5s",
        "step 2: 2 task(s) of the new revision on web-canary, weights 50/50, bake 5s",
        "step 3: 4 task(s) of the new revision on web-canary, weights 0/100, no bake",
        "alarms not in ALARM: api-5xx",
        "5xx rate ≤ 1%",
        "DRY RUN OK",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?}:\n{run}");
    }
}

#[tokio::test]
async fn canary_dry_run_through_a_listener_rule() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--rule"]);
    let before = stack.state().await;
    let mut args = rolling_args(&stack, &seeded);
    args.extend(["--strategy", "canary", "--listener-rule-arn", s(&seeded, "listener_rule_arn")].map(String::from));
    let run = stack.action().args(args).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("strategy: canary via listener rule arn:"), "{run}");
    assert_eq!(stack.state().await, before);
}

#[tokio::test]
async fn canary_is_refused_while_traffic_is_split() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--weights", "50,50", "--alarms", "api-5xx"]);
    let before = stack.state().await;
    let run = stack.action().env("GITHUB_ACTIONS", "true").args(canary_args(&stack, &seeded)).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("::error title=Deploy refused::traffic is split stable 50 / canary 50, not 100 / 0"),
        "{run}"
    );
    assert!(run.stdout.contains("Nothing was changed."), "{run}");
    assert_eq!(stack.state().await, before);
}

#[tokio::test]
async fn canary_is_refused_while_the_canary_service_runs_tasks() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary", "--canary-desired", "2", "--alarms", "api-5xx"]);
    let run = stack.action().args(canary_args(&stack, &seeded)).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("canary service `web-canary` is not idle (desired 2"), "{run}");
    assert!(run.stdout.contains("--desired-count 0"), "the refusal should say how to recover:\n{run}");
}

#[tokio::test]
async fn missing_service_and_alarm_are_named() {
    let stack = stack().await;
    let seeded = stack.seed(&["--canary"]);
    let mut args = canary_args(&stack, &seeded);
    let run = stack.action().args(&args).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("no CloudWatch alarm named `api-5xx`"), "{run}");

    let at = args.iter().position(|a| a == "--service").unwrap();
    args[at + 1] = "api".into();
    let run = stack.action().args(&args).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("service `api` was not found in cluster `demo`"), "{run}");
}

#[tokio::test]
async fn several_containers_without_container_name_are_listed() {
    let stack = stack().await;
    let seeded = stack.seed(&["--containers", "web,envoy"]);
    let run = stack.action().args(rolling_args(&stack, &seeded)).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("has 2 containers (`web`, `envoy`): set `container-name`"), "{run}");
    let mut args = rolling_args(&stack, &seeded);
    args.extend(["--container-name", "envoy"].map(String::from));
    let run = stack.action().args(args).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("in container envoy"), "{run}");
}

#[tokio::test]
async fn a_missing_ecr_repository_is_named_before_anything_is_built() {
    let stack = stack().await;
    stack.seed(&[]);
    // No `registry`: the plan asks ECR itself, as it would in AWS.
    let args = |repo: &str| {
        [
            "--aws-region",
            &stack.region,
            "--ecr-repository",
            repo,
            "--tags",
            "v1",
            "--cluster",
            "demo",
            "--service",
            "web",
        ]
        .map(String::from)
        .into_iter()
        .chain([String::from("--dry-run")])
        .collect::<Vec<_>>()
    };
    let run = stack.action().args(args("missing-app")).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("there is no ECR repository `missing-app`"), "{run}");
    assert!(run.stdout.contains("aws ecr create-repository --repository-name missing-app"), "{run}");

    let sdk = stack.sdk().await;
    aws_sdk_ecr::Client::new(&sdk).create_repository().repository_name("present-app").send().await.unwrap();
    let run = stack.action().args(args("present-app")).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("push 123456789012.dkr.ecr.us-east-1.amazonaws.com/present-app:v1"), "{run}");
}

#[test]
fn an_aws_endpoint_that_never_answers_ends_the_run_instead_of_hanging_it() {
    // A black hole on loopback: it accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            held.push(stream);
        }
    });
    let mut child = crate::support::Action::new()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["--aws-region", "us-east-1", "--aws-endpoint-url", &format!("http://127.0.0.1:{port}")])
        .args(["--image", "127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"])
        .args(["--cluster", "demo", "--service", "web", "--dry-run"])
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run still waited on a silent endpoint after 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let run = crate::support::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("AWS did not answer within 30s"), "{run}");
}
