//! Table tests: every input's refusals name the input and the fix; good inputs become typed values.

use super::*;

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub(super) const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
pub(super) const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

/// A valid canary run; each case changes one thing.
pub(super) fn base() -> Vec<(&'static str, String)> {
    [
        ("aws-region", "us-east-1"),
        ("ecr-repository", "demo-app"),
        ("tags", "abc123"),
        ("cluster", "prod"),
        ("service", "web"),
        ("strategy", "canary"),
        ("listener-arn", LISTENER),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

pub(super) fn with(changes: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut inputs = base();
    for (k, v) in changes {
        inputs.retain(|(name, _)| name != k);
        inputs.push((k, v.to_string()));
    }
    inputs
}

pub(super) fn parse(inputs: &[(&'static str, String)], env: &[(&str, &str)]) -> Result<Config, InputErrors> {
    let vars: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (format!("INPUT_{}", k.to_ascii_uppercase()), v.clone()))
        .chain(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let parsed = Inputs::from_env_and_args(var, ["ecs-deploy-action"]).expect("inputs parse");
    Config::from_inputs(&parsed, var)
}

/// (changes to a valid config, the input that must be named, part of the fix it must give)
type Case<'a> = (&'a [(&'static str, &'a str)], &'a str, &'a str);

#[test]
fn at_least_thirty_bad_inputs_are_refused_naming_the_input_and_the_fix() {
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[("aws-region", "")], "aws-region", "is required"),
        (&[("service", "web, worker, web")], "service", "names `web` twice"),
        (&[("service", " , \n ")], "service", "names no service"),
        (&[("service", "web, web-canary")], "service", "the canary service"),
        (&[("service", "web, bad name")], "service", "is not an ECS service name"),
        (&[("service", "web\nworker"), ("ecr-repository", ""), ("task-definition", "web:42")], "task-definition", "give `image` or `ecr-repository`"),
        (&[("aws-region", "US-EAST-1")], "aws-region", "like `us-east-1`"),
        (&[("aws-region", "useast1")], "aws-region", "not an AWS region"),
        (&[("role-to-assume", "deploy-role")], "role-to-assume", "arn:aws:iam::123456789012:role/deploy"),
        (&[("role-to-assume", "arn:aws:iam::1234:role/x")], "role-to-assume", "12 digits"),
        (&[("role-to-assume", "arn:aws:iam::123456789012:user/bob")], "role-to-assume", "start with `role/`"),
        (&[("role-to-assume", "arn:aws:s3:::bucket")], "role-to-assume", "not `iam`"),
        (&[("role-session-name", "a")], "role-session-name", "2 to 64"),
        (&[("role-session-name", "has space")], "role-session-name", "+=,.@_-"),
        (&[("role-duration-seconds", "60")], "role-duration-seconds", "900 to 43200"),
        (&[("role-duration-seconds", "1h")], "role-duration-seconds", "whole number"),
        (&[("aws-endpoint-url", "localhost:5100")], "aws-endpoint-url", "http(s) URL"),
        (&[("ecr-repository", "")], "ecr-repository", "is required"),
        (&[("ecr-repository", "My-App")], "ecr-repository", "lowercase"),
        (&[("ecr-repository", "123456789012.dkr.ecr.us-east-1.amazonaws.com/app")], "ecr-repository", "set `registry`"),
        (&[("image", "repo@sha256:abc")], "image", "not both"),
        (&[("ecr-repository", ""), ("image", "repo@sha256:abc")], "image", "64 lowercase hex digits"),
        (&[("ecr-repository", ""), ("image", &format!("repo@sha512:{DIGEST}"))], "image", "must be `sha256:`"),
        (&[("ecr-repository", ""), ("image", &format!("repo@sha256:{}", DIGEST.to_uppercase()))], "image", "lowercase hex"),
        (&[("registry", "https://127.0.0.1:5000")], "registry", "without scheme"),
        (&[("registry", "localhost:http")], "registry", "not a port number"),
        (&[("build-args", "VERSION")], "build-args", "KEY=VALUE"),
        (&[("build-args", "NPM_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345")], "build-args", "`NPM_TOKEN` looks like a GitHub token (not shown)"),
        (&[("build-args", "KEY=AKIAIOSFODNN7EXAMPLE")], "build-args", "image's history"),
        (&[("build-args", "1X=2")], "build-args", "not a valid build argument name"),
        (&[("platforms", "amd64")], "platforms", "os/arch"),
        (&[("tags", "-latest")], "tags", "not a valid tag"),
        (&[("tags", "has:colon")], "tags", "not a valid tag"),
        (&[("tags", "ghcr.io/other/app:v1")], "tags", "not a tag of `demo-app`"),
        (&[("tags", "v1"), ("image-tag", "v1")], "tags", "`image-tag` is its former name"),
        (&[("platforms", "linux/amd64,linux/arm64")], "platforms", "one platform for now"),
        (&[("no-cache", "maybe")], "no-cache", "`true` or `false`"),
        (&[("cache-to", "a b")], "cache-to", "not a valid tag"),
        (&[("service", "")], "service", "is required with `cluster`"),
        (&[("cluster", "")], "cluster", "is required with `service`"),
        (&[("cluster", "my cluster")], "cluster", "not an ECS cluster name"),
        (&[("environment-variables", "A=1\nA=2")], "environment-variables", "set twice"),
        (&[("environment-variables", "NO_EQUALS")], "environment-variables", "KEY=VALUE"),
        (&[("strategy", "blue-green")], "strategy", "use `rolling`, `canary`"),
        (&[("wait-timeout", "15")], "wait-timeout", "no unit"),
        (&[("wait-timeout", "0s")], "wait-timeout", "longer than zero"),
        // Once accepted, then a panic mid-deploy when the deadline overflowed the clock.
        (&[("wait-timeout", "10000000000000000000s")], "wait-timeout", "longer than 24h"),
        (&[("wait-timeout", "25h")], "wait-timeout", "use at most 24h"),
        (&[("rollback", "yes please")], "rollback", "`true` or `false`"),
        (&[("dry-run", "maybe")], "dry-run", "`true` or `false`"),
        (&[("canary-steps", "50%:1m, 10%:1m")], "canary-steps", "must be above step 1"),
        (&[("canary-steps", "10%:1m, 50%:1m")], "canary-steps", "end with `100%`"),
        (&[("canary-steps", "10%, 100%")], "canary-steps", "needs a bake time"),
        (&[("canary-steps", "ten:1m, 100%")], "canary-steps", "percent sign"),
        (&[("canary-service", "web")], "canary-service", "second service"),
        (&[("listener-arn", "")], "listener-arn", "is required for `strategy: canary`"),
        (&[("listener-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1")], "listener-arn", "start with `listener/`"),
        (&[("listener-arn", &LISTENER.replace("us-east-1", "eu-west-1"))], "listener-arn", "but `aws-region` is us-east-1"),
        (&[("listener-rule-arn", RULE)], "listener-rule-arn", "both set"),
        (&[("max-error-rate", "1")], "max-error-rate", "like `1%`"),
        (&[("max-error-rate", "150%")], "max-error-rate", "not a percentage"),
        (&[("min-requests", "lots")], "min-requests", "like `50`"),
        (&[("desired-count", "-1")], "desired-count", "from 0 to 5000"),
        (&[("desired-count", "0")], "desired-count", "with `strategy: rolling`"),
        (&[("min-requests", "-5")], "min-requests", "not a whole number"),
        (&[("min-requests", "99999999")], "min-requests", "at most 1000000"),
        (&[("min-requests", "50"), ("canary-steps", "10%:1m, 100%")], "min-requests", "step 2 (100%) has no bake time: write it like `100%:1m`"),
        (&[("failure-limit", "0")], "failure-limit", "from 1 to 10"),
        (&[("failure-limit", "twice")], "failure-limit", "write it like `2`"),
        (&[("gate-confidence", "50%")], "gate-confidence", "from 80% to 99.9%"),
        (&[("gate-confidence", "0.99")], "gate-confidence", "like `99%`"),
        (&[("max-latency", "p99 < stable × 1.3 + lots")], "max-latency", "no slack"),
        (&[("probe-url", "ftp://example.com")], "probe-url", "http(s) URL"),
        (&[("check-interval", "0s")], "check-interval", "shorter than 1s"),
        (&[("check-interval", "500ms")], "check-interval", "at most once a second"),
        (&[("check-interval", "2d")], "check-interval", "unknown unit"),
        (&[("canary-steps", "10%:48h, 100%")], "canary-steps", "longer than 24h"),
        (&[("check-interval", "often")], "check-interval", "not a duration"),
        (&[("pr-comment", "nope")], "pr-comment", "`true` or `false`"),
        (&[("environment-url", "not a url")], "environment-url", "http(s) URL"),
        (&[("tags", "")], "tags", "GITHUB_SHA is empty"),
    ];
    assert!(cases.len() >= 30);
    for (changes, input, fix) in cases {
        let errors = match parse(&with(changes), &[]) {
            Ok(_) => panic!("{changes:?} was accepted"),
            Err(e) => e,
        };
        let text = errors.to_string();
        assert!(
            errors.0.iter().any(|e| e.input == *input && e.to_string().contains(fix)),
            "{changes:?}: expected input `{input}` with {fix:?}, got:\n{text}"
        );
        assert!(text.contains(&format!("input `{input}`")), "{text}");
    }
}

#[test]
fn container_settings_without_a_service_are_refused() {
    let inputs = vec![
        ("aws-region", "us-east-1".to_string()),
        ("ecr-repository", "app".to_string()),
        ("tags", "v1".to_string()),
        ("container-name", "web".to_string()),
    ];
    let errors = parse(&inputs, &[]).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors.to_string().contains("input `container-name`: needs `cluster` and `service`"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = parse(
        &with(&[
            ("aws-region", "nowhere"),
            ("strategy", "canary"),
            ("canary-steps", "50%:1m, 10%:1m"),
            ("wait-timeout", "5"),
        ]),
        &[],
    )
    .unwrap_err();
    let inputs: Vec<&str> = errors.0.iter().map(|e| e.input).collect();
    assert_eq!(inputs, ["aws-region", "wait-timeout", "canary-steps"]);
}

#[test]
fn tag_defaults_to_the_commit() {
    let config = parse(&with(&[("tags", "")]), &[("GITHUB_SHA", "0123abcd")]).unwrap();
    let ImageSource::Build(build) = config.image else { panic!() };
    assert_eq!(build.tag, "0123abcd");
}

#[test]
fn an_existing_image_needs_no_repository_and_warns_about_build_inputs() {
    let config = parse(
        &with(&[
            ("ecr-repository", ""),
            ("tags", ""),
            ("image", &format!("registry.example/app@sha256:{DIGEST}")),
            ("strategy", "rolling"),
            ("listener-arn", ""),
            ("platform", "linux/amd64"),
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(
        config.image,
        ImageSource::Existing { uri: format!("registry.example/app@sha256:{DIGEST}"), registry: None }
    );
    assert_eq!(config.deploy.unwrap().strategy, Strategy::Rolling);
    assert_eq!(config.warnings, ["`platform` has no effect with `image`: nothing is built or pushed"]);
}

#[test]
fn build_only_run_has_no_deploy() {
    let inputs = vec![
        ("aws-region", "us-east-1".to_string()),
        ("ecr-repository", "app".to_string()),
        ("tags", "v1".to_string()),
    ];
    let config = parse(&inputs, &[]).unwrap();
    assert!(config.deploy.is_none());
}

#[test]
fn the_github_token_is_a_secret() {
    let config = parse(&with(&[("github-token", "ghs_supersecret")]), &[]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("ghs_supersecret"), "{debug}");
    assert_eq!(config.report.github_token.unwrap().expose(), "ghs_supersecret");
}

#[test]
fn a_pem_in_environment_variables_is_refused_by_line_number_without_a_fragment_of_it() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq9Zr+Jb1c3Ff2w==\n-----END PRIVATE KEY-----";
    let errors =
        parse(&with(&[("environment-variables", &format!("LOG_LEVEL=info\nTLS_KEY={pem}"))]), &[]).unwrap_err();
    let text: String = errors.0.iter().map(|e| e.to_string()).collect();
    assert!(text.contains("line 2: the value of `TLS_KEY` starts a PEM block (not shown)"), "{text}");
    assert!(text.contains("belongs in the task definition's `secrets`"), "{text}");
    for fragment in ["MIIEvQ", "q9Zr", "PRIVATE KEY", "BgkqhkiG9w0"] {
        assert!(!text.contains(fragment), "a fragment of the value reached the error: {text}");
    }
    // A line of a value pasted without its first line: refused by number, never echoed.
    let errors =
        parse(&with(&[("environment-variables", "KEY=a\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7")]), &[])
            .unwrap_err();
    let text: String = errors.0.iter().map(|e| e.to_string()).collect();
    assert!(text.contains("line 2 is not KEY=VALUE (its text is not shown: it may be part of a secret)"), "{text}");
    assert!(!text.contains("MIIEvQ"), "{text}");
    // One that happens to hold a `=` (base64 padding) is refused the same way.
    let errors = parse(&with(&[("environment-variables", "KEY=a\nq9Zr+Jb1c3Ff2w==")]), &[]).unwrap_err();
    let text: String = errors.0.iter().map(|e| e.to_string()).collect();
    assert!(text.contains("line 2: the name before `=` is not a valid environment variable name (not shown"), "{text}");
    assert!(!text.contains("q9Zr"), "{text}");
}

#[test]
fn the_default_tag_is_the_commit_checked_out_in_the_workspace() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join(".git")).unwrap();
    let head = "34c5c7793cb3b279e22454cb6750c80560547b3a";
    std::fs::write(ws.path().join(".git/HEAD"), head).unwrap();
    let workspace = ws.path().to_str().unwrap();
    let config = parse(&with(&[("tags", "")]), &[("GITHUB_SHA", "0123abcd"), ("GITHUB_WORKSPACE", workspace)]).unwrap();
    let ImageSource::Build(build) = config.image else { panic!() };
    assert_eq!(build.tag, head, "on issue_comment GITHUB_SHA is the default branch; the PR head is what is built");
}

#[test]
fn a_known_revision_is_deployed_as_it_is_without_an_image() {
    let config = parse(
        &with(&[("ecr-repository", ""), ("strategy", "rolling"), ("listener-arn", ""), ("task-definition", "web:12")]),
        &[],
    )
    .unwrap();
    assert_eq!(config.image, ImageSource::AsRegistered);
    let deploy = config.deploy.unwrap();
    assert_eq!(deploy.task_definition, Some(TaskDefinitionSource::Revision("web:12".into())));
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:12";
    let config = parse(
        &with(&[("ecr-repository", ""), ("strategy", "rolling"), ("listener-arn", ""), ("task-definition", arn)]),
        &[],
    )
    .unwrap();
    assert_eq!(config.deploy.unwrap().task_definition, Some(TaskDefinitionSource::Revision(arn.into())));
    // A file is still a file, and with a build the known revision is the base that gets rendered.
    let config = parse(&with(&[("task-definition", "deploy/td.json")]), &[]).unwrap();
    assert!(matches!(config.deploy.unwrap().task_definition, Some(TaskDefinitionSource::File(_))));
    let config = parse(&with(&[("task-definition", "web:12")]), &[]).unwrap();
    assert!(matches!(config.image, ImageSource::Build(_)));
}

#[test]
fn several_services_split_on_commas_and_newlines_the_first_one_first() {
    let config = parse(&with(&[("service", "web, worker\n scheduler\n")]), &[]).unwrap();
    let deploy = config.deploy.unwrap();
    assert_eq!(deploy.service, "web");
    assert_eq!(deploy.also, ["worker", "scheduler"]);
    let one = parse(&base(), &[]).unwrap().deploy.unwrap();
    assert!(one.also.is_empty());
}

#[test]
fn build_inputs_as_docker_build_push_action_names_them() {
    let config = parse(
        &with(&[
            ("tags", "v1, 127.0.0.1:5000/demo-app:latest\nv1"),
            ("labels", "team=payments\norg.opencontainers.image.title=api"),
            ("no-cache", "true"),
            ("pull", "true"),
            ("cache-to", "none"),
            ("file", "docker/api.Dockerfile"),
        ]),
        &[("GITHUB_SHA", "0123abcd")],
    )
    .unwrap();
    let ImageSource::Build(build) = &config.image else { panic!("expected a build") };
    assert_eq!((build.tag.as_str(), build.extra_tags.as_slice()), ("v1", &["latest".to_string()][..]));
    assert_eq!(build.source, "0123abcd", "what it is built from, whatever the tags");
    assert_eq!(build.labels[0], ("team".into(), "payments".into()));
    assert!(build.no_cache && build.pull);
    assert_eq!((build.cache_from.as_slice(), build.cache_to.as_deref()), (&["buildcache".to_string()][..], None));
    assert_eq!(build.dockerfile, "docker/api.Dockerfile");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    // The former names work, each with a warning that names its new one.
    let config = parse(&with(&[("tags", ""), ("image-tag", "v2"), ("dockerfile", "Dockerfile.prod")]), &[]).unwrap();
    let ImageSource::Build(build) = &config.image else { panic!("expected a build") };
    assert_eq!((build.tag.as_str(), build.dockerfile.as_str()), ("v2", "Dockerfile.prod"));
    assert_eq!(build.source, "v2", "no commit known: the tag is the source");
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings.iter().any(|w| w.starts_with("`image-tag` is now `tags`")), "{:?}", config.warnings);
    assert!(config.warnings.iter().any(|w| w.starts_with("`dockerfile` is now `file`")), "{:?}", config.warnings);
}

#[test]
fn the_region_and_the_token_come_from_the_environment_when_the_inputs_are_unset() {
    let unset = with(&[("aws-region", ""), ("strategy", "rolling"), ("listener-arn", "")]);
    let config = parse(&unset, &[("AWS_DEFAULT_REGION", "eu-west-1")]).unwrap();
    assert_eq!(config.aws.region, "eu-west-1");
    let config = parse(&unset, &[("AWS_REGION", "eu-central-1"), ("AWS_DEFAULT_REGION", "eu-west-1")]).unwrap();
    assert_eq!(config.aws.region, "eu-central-1", "AWS_REGION first, as the AWS CLI reads them");
    let config = parse(&base(), &[("AWS_REGION", "eu-central-1")]).unwrap();
    assert_eq!(config.aws.region, "us-east-1", "the input wins");
    let config = parse(&base(), &[("GITHUB_TOKEN", "ghs_x")]).unwrap();
    assert_eq!(config.report.github_token.map(|t| t.expose().to_string()).as_deref(), Some("ghs_x"));
}
