//! The checks behind `Config::from_inputs`: one function per kind of value, and the rules that tie
//! inputs together. Messages name the problem and show a value that would work.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    AwsSettings, BuildSettings, CanarySettings, Config, DeploySettings, Gates, ImageSource, InputError, InputErrors,
    Inputs, ReportSettings, Strategy, TrafficSource, duration,
};
use crate::canary::steps;
use crate::secret::Secret;

const DEFAULT_CANARY_STEPS: &str = "10%:2m, 50%:2m, 100%";

/// Collects every problem instead of stopping at the first.
#[derive(Default)]
struct Check {
    errors: Vec<InputError>,
    warnings: Vec<String>,
}

impl Check {
    fn fail(&mut self, input: &'static str, message: impl Into<String>) {
        self.errors.push(InputError { input, message: message.into() });
    }

    /// Runs `parse` on a set input; records its error under the input's name.
    fn parse<T>(
        &mut self,
        input: &'static str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        match parse(value.trim()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.fail(input, message);
                None
            }
        }
    }
}

pub(super) fn config(inputs: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> Result<Config, InputErrors> {
    let mut c = Check::default();
    let i = inputs;
    let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);

    // AWS
    let region = match set(&i.aws_region) {
        None => {
            c.fail(
                "aws-region",
                "is required: set the region of your ECR repository and ECS cluster, e.g. `aws-region: us-east-1`",
            );
            None
        }
        Some(r) => c.parse("aws-region", Some(&r), region),
    };
    let role_to_assume =
        c.parse("role-to-assume", i.role_to_assume.as_deref(), |v| arn(v, "iam", "role/").map(|_| v.to_string()));
    let role_session_name = c
        .parse("role-session-name", i.role_session_name.as_deref(), session_name)
        .unwrap_or_else(|| default_session_name(var("GITHUB_RUN_ID")));
    let role_duration = c
        .parse("role-duration-seconds", i.role_duration_seconds.as_deref(), |v| match v.parse::<u64>() {
            Ok(s @ 900..=43200) => Ok(Duration::from_secs(s)),
            _ => Err(format!(
                "`{v}` is not a whole number of seconds from 900 to 43200 (15 minutes to 12 hours), e.g. 3600"
            )),
        })
        .unwrap_or(Duration::from_secs(3600));
    if role_to_assume.is_none() && set(&i.role_duration_seconds).is_some() {
        c.warnings.push("`role-duration-seconds` has no effect without `role-to-assume`".into());
    }
    let endpoint_url =
        c.parse("aws-endpoint-url", i.aws_endpoint_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));

    // Image
    let image = set(&i.image);
    let ecr_repository = set(&i.ecr_repository);
    let image_source = match (image, ecr_repository) {
        (Some(_), Some(_)) => {
            c.fail("image", "and `ecr-repository` are both set: use `image` to deploy an existing image, or `ecr-repository` to build and push one, not both");
            None
        }
        (None, None) => {
            c.fail("ecr-repository", "is required to build and push an image: set it to your ECR repository name (e.g. `my-app`), or set `image` to deploy an existing image");
            None
        }
        (Some(image), None) => {
            for (name, value) in [
                ("registry", &i.registry),
                ("image-tag", &i.image_tag),
                ("build-args", &i.build_args),
                ("target", &i.target),
                ("platform", &i.platform),
            ] {
                if set(value).is_some() {
                    c.warnings.push(format!("`{name}` has no effect with `image`: nothing is built or pushed"));
                }
            }
            c.parse("image", Some(&image), image_reference).map(ImageSource::Existing)
        }
        (None, Some(repository)) => {
            let repository = c.parse("ecr-repository", Some(&repository), ecr_repository_name);
            let registry = c.parse("registry", i.registry.as_deref(), registry_host);
            let build_args =
                c.parse("build-args", i.build_args.as_deref(), |v| key_values(v, "build argument")).unwrap_or_default();
            let platform = c.parse("platform", i.platform.as_deref(), platform);
            let tag = match set(&i.image_tag).or_else(|| var("GITHUB_SHA")) {
                Some(tag) => c.parse("image-tag", Some(&tag), image_tag),
                None => {
                    c.fail("image-tag", "is not set and GITHUB_SHA is empty (not in GitHub Actions?): pass a tag, e.g. `--image-tag \"$(git rev-parse HEAD)\"`");
                    None
                }
            };
            let context = workspace_path(set(&i.context).unwrap_or_else(|| ".".into()), var);
            match (repository, tag) {
                (Some(ecr_repository), Some(tag)) => Some(ImageSource::Build(BuildSettings {
                    ecr_repository,
                    registry,
                    context,
                    dockerfile: set(&i.dockerfile).unwrap_or_else(|| "Dockerfile".into()),
                    target: set(&i.target),
                    build_args,
                    platform,
                    tag,
                })),
                _ => None,
            }
        }
    };

    // Deploy
    let strategy_name = c.parse("strategy", i.strategy.as_deref(), |v| match v {
        "rolling" | "canary" => Ok(v.to_string()),
        other => Err(format!("`{other}` is not a strategy: use `rolling` or `canary`")),
    });
    let wait_timeout =
        c.parse("wait-timeout", i.wait_timeout.as_deref(), positive_duration).unwrap_or(Duration::from_secs(15 * 60));
    let rollback = c.parse("rollback", i.rollback.as_deref(), boolean).unwrap_or(true);
    let dry_run = c.parse("dry-run", i.dry_run.as_deref(), boolean).unwrap_or(false);
    let deploy = match (set(&i.cluster), set(&i.service)) {
        (None, None) => {
            for (name, value) in [
                ("container-name", &i.container_name),
                ("task-definition", &i.task_definition),
                ("environment-variables", &i.environment_variables),
                ("strategy", &i.strategy),
            ] {
                if set(value).is_some() {
                    c.fail(name, "needs `cluster` and `service`: without them nothing is deployed (the run stops once the image is pushed)");
                }
            }
            None
        }
        (Some(_), None) => {
            c.fail("service", "is required with `cluster`: name the ECS service to deploy");
            None
        }
        (None, Some(_)) => {
            c.fail("cluster", "is required with `service`: name the ECS cluster the service runs in");
            None
        }
        (Some(cluster), Some(service)) => {
            let cluster = c.parse("cluster", Some(&cluster), |v| ecs_name(v, "cluster"));
            let service = c.parse("service", Some(&service), |v| ecs_name(v, "service"));
            let container_name = set(&i.container_name);
            let task_definition = set(&i.task_definition).map(|p| workspace_path(p, var));
            let environment = c
                .parse("environment-variables", i.environment_variables.as_deref(), |v| {
                    key_values(v, "environment variable")
                })
                .unwrap_or_default();
            let strategy = match strategy_name.as_deref() {
                Some("canary") => {
                    service.as_deref().and_then(|s| canary(&mut c, i, s, region.as_deref())).map(Strategy::Canary)
                }
                _ => Some(Strategy::Rolling),
            };
            match (cluster, service, strategy) {
                (Some(cluster), Some(service), Some(strategy)) => Some(DeploySettings {
                    cluster,
                    service,
                    container_name,
                    task_definition,
                    environment,
                    strategy,
                    wait_timeout,
                    rollback,
                }),
                _ => None,
            }
        }
    };
    if !matches!(deploy.as_ref().map(|d| &d.strategy), Some(Strategy::Canary(_))) {
        for (name, value) in [
            ("canary-steps", &i.canary_steps),
            ("canary-service", &i.canary_service),
            ("listener-arn", &i.listener_arn),
            ("listener-rule-arn", &i.listener_rule_arn),
            ("alarms", &i.alarms),
            ("max-error-rate", &i.max_error_rate),
            ("probe-url", &i.probe_url),
            ("check-interval", &i.check_interval),
        ] {
            if set(value).is_some() {
                c.warnings.push(format!("`{name}` has no effect unless `strategy` is `canary`"));
            }
        }
    }

    // Report
    let pr_comment = c.parse("pr-comment", i.pr_comment.as_deref(), boolean).unwrap_or(true);
    let environment_url =
        c.parse("environment-url", i.environment_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));
    let deployment_environment = set(&i.deployment_environment);
    if environment_url.is_some() && deployment_environment.is_none() {
        c.warnings.push("`environment-url` has no effect without `deployment-environment`".into());
    }
    let report = ReportSettings {
        github_token: set(&i.github_token).map(Secret::new),
        pr_comment,
        deployment_environment,
        environment_url,
    };

    let audience = set(&i.audience).unwrap_or_else(|| "sts.amazonaws.com".into());
    match (c.errors.is_empty(), region, image_source) {
        (true, Some(region), Some(image)) => Ok(Config {
            aws: AwsSettings { region, role_to_assume, audience, role_session_name, role_duration, endpoint_url },
            image,
            deploy,
            report,
            dry_run,
            warnings: c.warnings,
        }),
        _ => Err(InputErrors(c.errors)),
    }
}

fn canary(c: &mut Check, i: &Inputs, service: &str, region: Option<&str>) -> Option<CanarySettings> {
    let steps = c.parse("canary-steps", Some(i.canary_steps.as_deref().unwrap_or(DEFAULT_CANARY_STEPS)), steps::parse);
    let canary_service = match i.canary_service.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(name) => c.parse("canary-service", Some(name), |v| ecs_name(v, "service")),
        None => Some(format!("{service}-canary")),
    };
    if canary_service.as_deref() == Some(service) {
        c.fail(
            "canary-service",
            format!(
                "is the stable service `{service}` itself: the canary runs in a second service, e.g. `{service}-canary`"
            ),
        );
    }
    let in_region = |arn_region: &str| match region {
        Some(r) if r != arn_region => Err(format!(
            "is in region {arn_region}, but `aws-region` is {r}: use the listener of the load balancer in {r}"
        )),
        _ => Ok(()),
    };
    let listener = c.parse("listener-arn", i.listener_arn.as_deref(), |v| {
        let parts = arn(v, "elasticloadbalancing", "listener/")?;
        in_region(&parts.region)?;
        Ok(v.to_string())
    });
    let rule = c.parse("listener-rule-arn", i.listener_rule_arn.as_deref(), |v| {
        let parts = arn(v, "elasticloadbalancing", "listener-rule/")?;
        in_region(&parts.region)?;
        Ok(v.to_string())
    });
    let listener_set = i.listener_arn.as_deref().is_some_and(|v| !v.trim().is_empty());
    let rule_set = i.listener_rule_arn.as_deref().is_some_and(|v| !v.trim().is_empty());
    let traffic = match (listener, rule) {
        _ if listener_set && rule_set => {
            c.fail("listener-rule-arn", "and `listener-arn` are both set: give the one whose forward action splits traffic between the stable and canary target groups");
            None
        }
        (Some(l), None) => Some(TrafficSource::ListenerDefault(l)),
        (None, Some(r)) => Some(TrafficSource::Rule(r)),
        _ if !listener_set && !rule_set => {
            c.fail("listener-arn", "is required for `strategy: canary` (or `listener-rule-arn`): the ALB listener whose forward action splits traffic between the stable and canary target groups");
            None
        }
        _ => None,
    };
    let alarms = c.parse("alarms", i.alarms.as_deref(), alarm_names).unwrap_or_default();
    let max_error_rate = c.parse("max-error-rate", i.max_error_rate.as_deref(), percent);
    let probe_url = c.parse("probe-url", i.probe_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));
    let check_interval =
        c.parse("check-interval", i.check_interval.as_deref(), positive_duration).unwrap_or(Duration::from_secs(10));
    Some(CanarySettings {
        steps: steps?,
        canary_service: canary_service?,
        traffic: traffic?,
        gates: Gates { alarms, max_error_rate, probe_url },
        check_interval,
    })
}

fn default_session_name(run_id: Option<String>) -> String {
    match run_id {
        Some(id) if id.chars().all(|c| c.is_ascii_alphanumeric()) => format!("ecs-deploy-action-{id}"),
        _ => "ecs-deploy-action-local".into(),
    }
}

fn workspace_path(path: String, var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let path = PathBuf::from(path);
    match var("GITHUB_WORKSPACE") {
        Some(ws) if path.is_relative() => PathBuf::from(ws).join(path),
        _ => path,
    }
}

fn region(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not an AWS region: write it like `us-east-1` or `eu-central-1`"))
    }
}

pub(crate) struct ArnParts {
    pub(crate) region: String,
}

/// Checks `arn:<partition>:<service>:<region>:<account>:<resource>` with a resource starting with
/// `resource_prefix`.
fn arn(v: &str, service: &str, resource_prefix: &str) -> Result<ArnParts, String> {
    let example = match service {
        "iam" => "arn:aws:iam::123456789012:role/deploy",
        _ if resource_prefix == "listener-rule/" => {
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
        }
        _ => "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
    };
    let bad = |why: &str| Err(format!("`{v}` is not a valid ARN ({why}): it looks like `{example}`"));
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("it should have six `:`-separated parts starting with `arn`");
    }
    if !parts[1].starts_with("aws") {
        return bad("unknown partition");
    }
    if parts[2] != service {
        return bad(&format!("it is a `{}` ARN, not `{service}`", parts[2]));
    }
    let account = parts[4];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the account id should be 12 digits");
    }
    if service != "iam" && region(parts[3]).is_err() {
        return bad("no region");
    }
    if !parts[5].starts_with(resource_prefix) || parts[5].len() <= resource_prefix.len() {
        return bad(&format!("the resource should start with `{resource_prefix}`"));
    }
    Ok(ArnParts { region: parts[3].to_string() })
}

fn session_name(v: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if (2..=64).contains(&v.len()) && v.chars().all(ok_char) {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` must be 2 to 64 characters of letters, digits and +=,.@_-"))
    }
}

fn http_url(v: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(v) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => Ok(u),
        _ => Err(format!("`{v}` is not an http(s) URL: write it like `https://example.com/health`")),
    }
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean: use `true` or `false`")),
    }
}

fn positive_duration(v: &str) -> Result<Duration, String> {
    match duration::parse(v)? {
        d if d.is_zero() => Err(format!("`{v}` must be longer than zero, e.g. 10s")),
        d => Ok(d),
    }
}

fn percent(v: &str) -> Result<f64, String> {
    let bad = || format!("`{v}` is not a percentage: write it like `1%` or `0.5%`");
    let number = v.strip_suffix('%').ok_or_else(bad)?.trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(bad()),
    }
}

fn key_values(v: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (n, line) in v.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: `{line}` is not KEY=VALUE: write one {what} a line, e.g. `LOG_LEVEL=info`",
                n + 1
            ));
        };
        let key = key.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(format!(
                "line {}: `{key}` is not a valid {what} name: use letters, digits and _ (not starting with a digit)",
                n + 1
            ));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("line {}: `{key}` is set twice: keep one", n + 1));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

fn alarm_names(v: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> =
        v.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if let Some(long) = names.iter().find(|n| n.len() > 255) {
        return Err(format!("`{long}` is longer than 255 characters, the limit for a CloudWatch alarm name"));
    }
    Ok(names)
}

fn image_reference(v: &str) -> Result<String, String> {
    if v.contains("://") || v.chars().any(char::is_whitespace) || v.starts_with('/') || v.ends_with([':', '@', '/']) {
        return Err(format!(
            "`{v}` is not an image reference: write it like `123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:<digest>` (no scheme)"
        ));
    }
    Ok(v.to_string())
}

fn ecr_repository_name(v: &str) -> Result<String, String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if v.contains(".amazonaws.com") || v.contains(':') || v.split('/').next().is_some_and(|f| f.contains('.')) {
        return Err(format!(
            "`{v}` looks like an image address: give only the repository name (e.g. `my-app`); set `registry` to change the host"
        ));
    }
    if (2..=256).contains(&v.len()) && v.split('/').all(component_ok) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{v}` is not an ECR repository name: lowercase letters, digits, and . _ - / between them, e.g. `team/my-app`"
        ))
    }
}

fn registry_host(v: &str) -> Result<String, String> {
    if v.contains("://") || v.contains('/') || v.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{v}` is not a registry host: write host or host:port without scheme or path, e.g. `127.0.0.1:5000`"
        ));
    }
    if let Some((_, port)) = v.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{v}`: `{port}` is not a port number"));
    }
    Ok(v.to_string())
}

fn image_tag(v: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not a valid tag: up to 128 letters, digits, _ . - (not starting with . or -)"))
    }
}

fn platform(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not a platform: write os/arch, e.g. `linux/amd64` or `linux/arm64`"))
    }
}

/// A cluster or service name, or its ARN.
fn ecs_name(v: &str, what: &str) -> Result<String, String> {
    if v.starts_with("arn:") {
        return arn(v, "ecs", &format!("{what}/")).map(|_| v.to_string());
    }
    if (1..=255).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not an ECS {what} name: up to 255 letters, digits, - and _ (or the {what}'s ARN)"))
    }
}
