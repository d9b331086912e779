//! The strategies' inputs: the canary's steps, service, listener or rule and gates, and the gates of
//! ECS's own strategies, with the warnings for inputs a strategy does not use.

use std::time::Duration;

use super::tests::{LISTENER, RULE, base, parse, with};
use super::*;

#[test]
fn a_valid_canary_run_resolves_defaults() {
    let config = parse(&base(), &[("GITHUB_RUN_ID", "42"), ("GITHUB_WORKSPACE", "/ws")]).unwrap();
    assert_eq!(config.aws.region, "us-east-1");
    assert_eq!(config.aws.audience, "sts.amazonaws.com");
    assert_eq!(config.aws.role_session_name, "ecs-deploy-action-42");
    assert_eq!(config.aws.role_duration, Duration::from_secs(3600));
    let ImageSource::Build(build) = &config.image else { panic!("expected a build") };
    assert_eq!(build.context, std::path::PathBuf::from("/ws/."));
    assert_eq!(build.dockerfile, "Dockerfile");
    assert_eq!(build.tag, "abc123");
    let deploy = config.deploy.as_ref().unwrap();
    assert_eq!(deploy.wait_timeout, Duration::from_secs(900));
    assert!(deploy.rollback);
    let Strategy::Canary(canary) = &deploy.strategy else { panic!("expected canary") };
    assert_eq!(canary.canary_service, "web-canary");
    assert_eq!(canary.traffic, TrafficSource::ListenerDefault(LISTENER.into()));
    assert_eq!(crate::config::steps::format(&canary.steps), "10%:2m, 50%:2m, 100%");
    assert_eq!(canary.check_interval, Duration::from_secs(10));
    assert_eq!((canary.gates.failure_limit, canary.gates.confidence, canary.gates.min_requests), (2, 0.99, 0));
    assert!(config.report.pr_comment);
    assert!(!config.dry_run);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn gates_and_rule_are_typed() {
    let config = parse(
        &with(&[
            ("listener-arn", ""),
            ("listener-rule-arn", RULE),
            ("alarms", "api-5xx, api-latency\nqueue-depth"),
            ("max-error-rate", "0.5%"),
            ("min-requests", "50"),
            ("failure-limit", "3"),
            ("gate-confidence", "95%"),
            ("probe-url", "http://127.0.0.1:8080/health"),
            ("check-interval", "1s"),
            ("canary-steps", "25%:5s\n100%:5s"),
        ]),
        &[],
    )
    .unwrap();
    let Strategy::Canary(canary) = config.deploy.unwrap().strategy else { panic!() };
    assert_eq!(canary.traffic, TrafficSource::Rule(RULE.into()));
    assert_eq!(canary.gates.alarms, ["api-5xx", "api-latency", "queue-depth"]);
    assert_eq!(canary.gates.max_error_rate, Some(thresholds::ErrorRateLimit::Absolute(0.005)));
    assert_eq!(canary.gates.min_requests, 50);
    assert_eq!((canary.gates.failure_limit, canary.gates.confidence), (3, 0.95));
    assert_eq!(canary.gates.probe_url.as_deref(), Some("http://127.0.0.1:8080/health"));
    assert_eq!(canary.check_interval, Duration::from_secs(1));
    assert_eq!(canary.steps.len(), 2);
}

#[test]
fn canary_inputs_on_a_rolling_deploy_warn() {
    let config = parse(&with(&[("strategy", "rolling"), ("alarms", "x")]), &[]).unwrap();
    assert_eq!(
        config.warnings,
        [
            "`listener-arn` has no effect unless `strategy` is `canary`",
            "`alarms` has no effect unless `strategy` is `canary` or `ecs` (the gates judge those)"
        ]
    );
}

#[test]
fn gates_judge_ecs_own_strategies_and_the_default_follows_the_service() {
    // Unset: the service decides (ECS's own strategy when it has one), with the gates given.
    let config = parse(&with(&[("strategy", ""), ("listener-arn", ""), ("alarms", "web-5xx")]), &[]).unwrap();
    let Strategy::Ecs(ecs) = config.deploy.unwrap().strategy else { panic!("expected ecs") };
    assert!(!ecs.named);
    assert_eq!(ecs.gates.alarms, ["web-5xx"]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // Named: the plan refuses a service ECS would only roll.
    let config = parse(&with(&[("strategy", "ecs"), ("max-error-rate", "stable + 1%")]), &[]).unwrap();
    let Strategy::Ecs(ecs) = config.deploy.unwrap().strategy else { panic!("expected ecs") };
    assert!(ecs.named && ecs.gates.max_error_rate.is_some());
    // ECS takes steps and rules from the service: the canary's inputs say they do nothing.
    assert_eq!(
        config.warnings,
        [
            "`listener-arn` has no effect unless `strategy` is `canary` (ECS's own strategies take their steps and listener rules from the service)"
        ]
    );
}

#[test]
fn an_approval_stops_ecs_own_strategy_and_a_later_run_resumes_it() {
    let ecs = [("strategy", "ecs"), ("listener-arn", "")];
    let approved = |extra: &[(&'static str, &str)]| {
        let changes: Vec<(&'static str, &str)> = ecs.iter().chain(extra).copied().collect();
        parse(&with(&changes), &[])
    };
    let config = approved(&[("approval", "after-first-shift")]).unwrap();
    let Strategy::Ecs(settings) = config.deploy.unwrap().strategy else { panic!("expected ecs") };
    assert_eq!(settings.approval, Some(Approval::AfterFirstShift));
    // The run that answers: no image, the same gates, the service's paused deployment.
    let arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/abc";
    let resume = [("ecr-repository", ""), ("tags", ""), ("resume", "continue"), ("service-deployment-arn", arn)];
    let config = approved(&resume).unwrap();
    assert_eq!(config.image, ImageSource::AsRegistered, "a resumed run builds nothing");
    let deploy = config.deploy.unwrap();
    assert_eq!(deploy.resume, Some(Resume { proceed: true, deployment: Some(arn.into()) }));
    let rollback = approved(&[("ecr-repository", ""), ("tags", ""), ("resume", "rollback")]).unwrap();
    assert_eq!(rollback.deploy.unwrap().resume, Some(Resume { proceed: false, deployment: None }));

    let inputs = |extra: &[(&'static str, &str)]| {
        let changes: Vec<(&'static str, &str)> = ecs.iter().chain(extra).copied().collect();
        with(&changes)
    };
    let refused = |inputs: Vec<(&'static str, String)>, input: &str, fix: &str| {
        let errors = parse(&inputs, &[]).expect_err("must be refused").0;
        assert!(errors.iter().any(|e| e.input == input && e.message.contains(fix)), "{input}: {errors:?}");
    };
    refused(inputs(&[("approval", "later")]), "approval", "before-production");
    refused(with(&[("approval", "before-production")]), "approval", "remove `strategy` or set it to `ecs`");
    refused(inputs(&[("service", "web,worker"), ("approval", "before-production")]), "approval", "in a run of its own");
    refused(inputs(&[("resume", "continue")]), "ecr-repository", "remove it");
    let no_image = [("ecr-repository", ""), ("tags", "")];
    let both = [no_image.as_slice(), &[("resume", "continue"), ("approval", "before-production")]].concat();
    refused(inputs(&both), "resume", "both set");
    refused(inputs(&[no_image.as_slice(), &[("resume", "yes")]].concat()), "resume", "`continue`");
}

#[test]
fn a_preview_needs_a_pull_request_event_a_listener_and_a_rolled_out_service() {
    let dir = std::env::temp_dir().join(format!("preview-event-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let event = dir.join("event.json");
    let payload = r#"{"action":"opened","number":7,"pull_request":{"number":7,"head":{"repo":{"full_name":"o/a"}},"base":{"repo":{"full_name":"o/a"}}}}"#;
    std::fs::write(&event, payload).unwrap();
    let path = event.to_string_lossy().into_owned();
    let pr =
        [("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", path.as_str()), ("GITHUB_REPOSITORY", "o/a")];
    let preview = [("preview", "true"), ("strategy", ""), ("preview-domain", "preview.example.com")];

    let config = parse(&with(&preview), &pr).unwrap();
    let d = config.deploy.unwrap();
    let p = d.preview.unwrap();
    assert_eq!((p.number, p.closing, p.fork, p.limit), (7, false, false, 10));
    assert_eq!((d.strategy, d.desired_count), (Strategy::Rolling, Some(1)), "rolled out, one task by default");
    assert_eq!(config.report.deployment_environment.as_deref(), Some("preview/pr-7"));
    assert!(config.warnings.iter().all(|w| !w.contains("listener-arn")), "{:?}", config.warnings);

    let refused = |changes: &[(&'static str, &str)], env: &[(&str, &str)], input: &str, fix: &str| {
        let mut all = preview.to_vec();
        all.extend_from_slice(changes);
        let errors = parse(&with(&all), env).unwrap_err();
        assert!(errors.0.iter().any(|e| e.input == input && e.message.contains(fix)), "{input}: {fix}\n{errors}");
    };
    refused(&[("strategy", "canary")], &pr, "strategy", "leave `strategy` unset or `rolling`");
    refused(&[("listener-arn", "")], &pr, "listener-arn", "is required with `preview: true`");
    refused(&[("service", "web, worker")], &pr, "service", "a preview copies one service");
    refused(&[], &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_REPOSITORY", "o/a")], "preview", "this run is `push`");
    refused(&[], &pr[..2], "preview", "needs GITHUB_REPOSITORY");
    refused(&[("preview-domain", "localhost")], &pr, "preview-domain", "is not a domain");
    refused(&[("preview-limit", "0")], &pr, "preview-limit", "from 1 to 100");
    let _ = std::fs::remove_dir_all(&dir);
}
