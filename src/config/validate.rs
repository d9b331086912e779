//! The checks behind `Config::from_inputs`: every input parsed (parse.rs), every problem collected,
//! and the rules that tie inputs together. Messages name the input and show a value that would work.

use std::path::PathBuf;
use std::time::Duration;

use super::check::Check;
use super::parse::{
    arn, boolean, ecs_name, http_url, key_values, positive_duration, region, service_names, session_name,
};
use super::{
    AwsSettings, Config, DeploySettings, EcsSettings, InputErrors, Inputs, ReportSettings, Strategy,
    TaskDefinitionSource,
};
use crate::secret::Secret;

pub(super) fn config(inputs: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> Result<Config, InputErrors> {
    let mut c = Check::default();
    let i = inputs;

    // AWS
    // Outside a workflow the AWS CLI's own variables name the region too.
    let region = match set(&i.aws_region).or_else(|| var("AWS_REGION")).or_else(|| var("AWS_DEFAULT_REGION")) {
        None => {
            c.fail(
                "aws-region",
                "is required: set the region of your ECR repository and ECS cluster, e.g. `aws-region: us-east-1` \
                 (or AWS_REGION in the environment)",
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

    let image_source = match set(&i.resume) {
        Some(_) => super::approval::resumed_image(&mut c, i),
        None => super::image::image(&mut c, i, var),
    };
    let dry_run = c.parse("dry-run", i.dry_run.as_deref(), boolean).unwrap_or(false);
    let verbose = c.parse("verbose", i.verbose.as_deref(), boolean).unwrap_or(false);
    let deploy = deploy(&mut c, i, var, region.as_deref());
    let mut report = report(&mut c, i, var);
    if let Some(p) = deploy.as_ref().and_then(|d| d.preview.as_ref()) {
        // The preview's own environment; its URL is known once the plan has read the listener.
        report.deployment_environment = Some(format!("preview/pr-{}", p.number));
        report.environment_url = None;
    }

    let audience = set(&i.audience).unwrap_or_else(|| "sts.amazonaws.com".into());
    match (c.errors.is_empty(), region, image_source) {
        (true, Some(region), Some(image)) => Ok(Config {
            aws: AwsSettings { region, role_to_assume, audience, role_session_name, role_duration, endpoint_url },
            image,
            deploy,
            report,
            dry_run,
            verbose,
            warnings: c.warnings,
        }),
        _ => Err(InputErrors(c.errors)),
    }
}

/// The service to deploy to and how; None when the run only builds and pushes.
fn deploy(
    c: &mut Check,
    i: &Inputs,
    var: &dyn Fn(&str) -> Option<String>,
    region: Option<&str>,
) -> Option<DeploySettings> {
    let strategy_name = c.parse("strategy", i.strategy.as_deref(), |v| match v {
        "rolling" | "canary" | "ecs" => Ok(v.to_string()),
        other => Err(format!(
            "`{other}` is not a strategy: use `rolling`, `canary` (the action's own steps over listener weights) or `ecs` (the service's BLUE_GREEN, LINEAR or CANARY, run by ECS and judged by the gates)"
        )),
    });
    let wait_timeout =
        c.parse("wait-timeout", i.wait_timeout.as_deref(), positive_duration).unwrap_or(Duration::from_secs(15 * 60));
    let rollback = c.parse("rollback", i.rollback.as_deref(), boolean).unwrap_or(true);
    let wait_for_deployment =
        c.parse("wait-for-deployment", i.wait_for_deployment.as_deref(), boolean).unwrap_or(false);
    let deploy = match (set(&i.cluster), set(&i.service)) {
        (None, None) => {
            for (name, value) in [
                ("container-name", &i.container_name),
                ("task-definition", &i.task_definition),
                ("environment-variables", &i.environment_variables),
                ("strategy", &i.strategy),
                ("desired-count", &i.desired_count),
                ("keep-revisions", &i.keep_revisions),
                ("drift", &i.drift),
                ("scheduled-tasks", &i.scheduled_tasks),
                ("parallel", &i.parallel),
                ("pre-deploy-command", &i.pre_deploy_command),
                ("approval", &i.approval),
                ("resume", &i.resume),
                ("preview", &i.preview),
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
            let services = c.parse("service", Some(&service), service_names);
            let (service, also) = match services {
                Some((first, also)) => (Some(first), also),
                None => (None, Vec::new()),
            };
            let new_image = set(&i.image).is_some() || set(&i.ecr_repository).is_some();
            if !also.is_empty() && !new_image && set(&i.task_definition).as_deref().and_then(known_revision).is_some() {
                c.fail("task-definition", "names a known revision to deploy as it is, and `service` names several services: the others get the new image rendered into their own task definitions, so give `image` or `ecr-repository` (or deploy one service)");
            }
            let container_name = set(&i.container_name);
            let task_definition = set(&i.task_definition).map(|v| match known_revision(&v) {
                Some(revision) => TaskDefinitionSource::Revision(revision),
                None => TaskDefinitionSource::File(workspace_path(v, var)),
            });
            let environment = c
                .parse("environment-variables", i.environment_variables.as_deref(), |v| {
                    key_values(v, "environment variable")
                })
                .unwrap_or_default();
            let strategy = match strategy_name.as_deref() {
                Some("canary") => service
                    .as_deref()
                    .and_then(|s| super::canary::settings(c, i, s, region))
                    .map(|s| Strategy::Canary(Box::new(s))),
                Some("rolling") => Some(Strategy::Rolling),
                named => {
                    let (gates, check_interval) = super::canary::judging(c, i);
                    let approval = super::approval::approval(c, i);
                    let named = named == Some("ecs");
                    Some(Strategy::Ecs(Box::new(EcsSettings { gates, check_interval, named, approval })))
                }
            };
            let resume = super::approval::resume(c, i);
            let approval = set(&i.approval).is_some();
            super::approval::rules(c, i, approval, resume.is_some(), !also.is_empty());
            let desired_count = c.parse("desired-count", i.desired_count.as_deref(), task_count);
            let keep_revisions = c.parse("keep-revisions", i.keep_revisions.as_deref(), revisions_kept);
            let scheduled_tasks = c.parse("scheduled-tasks", i.scheduled_tasks.as_deref(), |v| match v {
                "auto" => Ok(None),
                names => {
                    let names: Vec<String> = names
                        .split([',', '\n'])
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect();
                    match names.iter().find(|n| !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))) {
                        Some(bad) => Err(format!("`{bad}` is not an EventBridge rule name (letters, digits, `.`, `_`, `-`): name the rules, or write `auto`")),
                        None if names.is_empty() => Err("names no rule: name the rules, or write `auto`".into()),
                        None => Ok(Some(names)),
                    }
                }
            });
            let parallel = c.parse("parallel", i.parallel.as_deref(), |v| match v.parse::<usize>() {
                Ok(n @ 1..=100) => Ok(n),
                _ => Err(format!("`{v}` is not a number of services at a time: a whole number from 1 to 100")),
            });
            if parallel.is_some() && also.is_empty() {
                c.warnings.push("`parallel` has no effect with one service".into());
            }
            let refuse_drift = c
                .parse("drift", i.drift.as_deref(), |v| match v {
                    "warn" => Ok(false),
                    "refuse" => Ok(true),
                    other => Err(format!(
                        "`{other}` is not a drift policy: `warn` (say what changed outside the action, then deploy over it) or `refuse` (stop before any change)"
                    )),
                })
                .unwrap_or(false);
            let pre_deploy =
                c.parse("pre-deploy-command", i.pre_deploy_command.as_deref(), super::command::parse_command);
            if let Some(Strategy::Canary(canary)) = &strategy
                && also.contains(&canary.canary_service)
            {
                c.fail("service", format!("names `{}`, the canary service: it runs the new revision during a canary and is not deployed on its own", canary.canary_service));
            }
            let preview = super::preview::settings(c, i, var, strategy.as_ref(), !also.is_empty());
            // A preview is rolled out, one task unless `desired-count` says otherwise.
            let (strategy, desired_count) = match &preview {
                Some(_) => (Some(Strategy::Rolling), desired_count.or(Some(1))),
                None => (strategy, desired_count),
            };
            if desired_count == Some(0) && matches!(strategy, Some(Strategy::Canary(_))) {
                c.fail("desired-count", "is 0, and a canary compares a running stable service with the new revision: deploy to 0 tasks with `strategy: rolling`");
            }
            match (cluster, service, strategy) {
                (Some(cluster), Some(service), Some(strategy)) => Some(DeploySettings {
                    cluster,
                    service,
                    also,
                    container_name,
                    task_definition,
                    environment,
                    strategy,
                    wait_timeout,
                    rollback,
                    wait_for_deployment,
                    desired_count,
                    keep_revisions,
                    pre_deploy,
                    resume,
                    preview,
                    refuse_drift,
                    scheduled_tasks,
                    parallel,
                }),
                _ => None,
            }
        }
    };
    let strategy = deploy.as_ref().map(|d| &d.strategy);
    if matches!(strategy, Some(Strategy::Ecs(_))) {
        // ECS's own strategies read their steps and listener rules from the service.
        for (name, value) in [
            ("canary-steps", &i.canary_steps),
            ("canary-service", &i.canary_service),
            ("listener-arn", &i.listener_arn),
            ("listener-rule-arn", &i.listener_rule_arn),
        ] {
            if set(value).is_some() {
                c.warnings.push(format!(
                    "`{name}` has no effect unless `strategy` is `canary` (ECS's own strategies take their steps and listener rules from the service)"
                ));
            }
        }
    } else if !matches!(strategy, Some(Strategy::Canary(_))) {
        for (name, value) in [
            ("canary-steps", &i.canary_steps),
            ("canary-service", &i.canary_service),
            ("listener-arn", &i.listener_arn),
            ("listener-rule-arn", &i.listener_rule_arn),
            ("alarms", &i.alarms),
            ("max-error-rate", &i.max_error_rate),
            ("max-latency", &i.max_latency),
            ("min-requests", &i.min_requests),
            ("failure-limit", &i.failure_limit),
            ("gate-confidence", &i.gate_confidence),
            ("probe-url", &i.probe_url),
            ("check-interval", &i.check_interval),
        ] {
            let previewed = deploy.as_ref().is_some_and(|d| d.preview.is_some());
            if set(value).is_some() && !(previewed && name == "listener-arn") {
                let unless = match name.starts_with("canary-") || name.starts_with("listener-") {
                    true => "unless `strategy` is `canary`",
                    false => "unless `strategy` is `canary` or `ecs` (the gates judge those)",
                };
                c.warnings.push(format!("`{name}` has no effect {unless}"));
            }
        }
    }
    deploy
}

/// Where the run reports: the pull-request comment and the GitHub Deployment.
fn report(c: &mut Check, i: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> ReportSettings {
    let pr_comment = c.parse("pr-comment", i.pr_comment.as_deref(), boolean).unwrap_or(true);
    let environment_url =
        c.parse("environment-url", i.environment_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));
    let deployment_environment = set(&i.deployment_environment);
    if environment_url.is_some() && deployment_environment.is_none() {
        c.warnings.push("`environment-url` has no effect without `deployment-environment`".into());
    }
    ReportSettings {
        // A workflow passes `github.token` by default; a terminal has GITHUB_TOKEN (`gh auth token`).
        github_token: set(&i.github_token).or_else(|| var("GITHUB_TOKEN")).map(Secret::new),
        pr_comment,
        deployment_environment,
        environment_url,
    }
}

/// A set input, trimmed; None when unset or blank (GitHub passes "" for unset inputs).
pub(super) fn set(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

fn default_session_name(run_id: Option<String>) -> String {
    match run_id {
        Some(id) if id.chars().all(|c| c.is_ascii_alphanumeric()) => format!("ecs-deploy-action-{id}"),
        _ => "ecs-deploy-action-local".into(),
    }
}

pub(super) fn workspace_path(path: String, var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let path = PathBuf::from(path);
    match var("GITHUB_WORKSPACE") {
        Some(ws) if path.is_relative() => PathBuf::from(ws).join(path),
        _ => path,
    }
}

/// A service's task count: a whole number up to ECS's 5,000 tasks a service.
fn task_count(v: &str) -> Result<i32, String> {
    match v.trim().parse::<i32>() {
        Ok(n @ 0..=5000) => Ok(n),
        _ => Err(format!("`{v}` is not a task count: a whole number from 0 to 5000 (ECS's limit per service)")),
    }
}

/// How many revisions `keep-revisions` keeps: at least the newest one (the one just deployed).
fn revisions_kept(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n @ 1..=1000) => Ok(n),
        _ => Err(format!(
            "`{v}` is not a number of revisions to keep: a whole number from 1 (the one just deployed) to 1000"
        )),
    }
}

/// `family:revision` or a task definition ARN (`arn:aws:ecs:…:task-definition/family:revision`):
/// a registered revision rather than a file.
pub(super) fn known_revision(v: &str) -> Option<String> {
    let v = v.trim();
    let name = match v.strip_prefix("arn:") {
        Some(_) if v.contains(":ecs:") => v.split_once(":task-definition/")?.1,
        Some(_) => return None,
        None => v,
    };
    let (family, revision) = name.rsplit_once(':')?;
    let family_ok = !family.is_empty()
        && family.len() <= 255
        && family.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (family_ok && !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_string())
}
