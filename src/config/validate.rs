//! The checks behind `Config::from_inputs`: every input parsed (parse.rs), every problem collected,
//! and the rules that tie inputs together. Messages name the input and show a value that would work.

use std::path::PathBuf;
use std::time::Duration;

use super::check::Check;
use super::parse::{
    arn, boolean, ecr_repository_name, ecs_name, http_url, image_reference, image_tag, key_values, looks_like_a_secret,
    platform, positive_duration, region, registry_host, service_names, session_name,
};
use super::{
    AwsSettings, BuildSettings, Builder, CACHE_TAG, Config, DeploySettings, ImageSource, InputErrors, Inputs,
    ReportSettings, Strategy, TaskDefinitionSource,
};
use crate::secret::Secret;

pub(super) fn config(inputs: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> Result<Config, InputErrors> {
    let mut c = Check::default();
    let i = inputs;

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

    let image_source = image(&mut c, i, var);
    let dry_run = c.parse("dry-run", i.dry_run.as_deref(), boolean).unwrap_or(false);
    let deploy = deploy(&mut c, i, var, region.as_deref());
    let report = report(&mut c, i);

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

/// Where the image comes from: an existing one, or a build pushed to ECR.
fn image(c: &mut Check, i: &Inputs, var: &dyn Fn(&str) -> Option<String>) -> Option<ImageSource> {
    let image = set(&i.image);
    let ecr_repository = set(&i.ecr_repository);
    match (image, ecr_repository) {
        (Some(_), Some(_)) => {
            c.fail("image", "and `ecr-repository` are both set: use `image` to deploy an existing image, or `ecr-repository` to build and push one, not both");
            None
        }
        (None, None) if set(&i.task_definition).as_deref().and_then(known_revision).is_some() => {
            Some(ImageSource::AsRegistered)
        }
        (None, None) => {
            c.fail("ecr-repository", "is required to build and push an image: set it to your ECR repository name (e.g. `my-app`), set `image` to deploy an existing image, or set `task-definition` to a known revision (`family:revision`) to deploy it as it is");
            None
        }
        (Some(image), None) => {
            for (name, value) in [
                ("tags", &i.tags),
                ("image-tag", &i.image_tag),
                ("build-args", &i.build_args),
                ("secrets", &i.secrets),
                ("builder", &i.builder),
                ("target", &i.target),
                ("platforms", &i.platforms),
                ("platform", &i.platform),
                ("file", &i.file),
                ("labels", &i.labels),
                ("no-cache", &i.no_cache),
                ("pull", &i.pull),
                ("cache-from", &i.cache_from),
                ("cache-to", &i.cache_to),
            ] {
                if set(value).is_some() {
                    c.warnings.push(format!("`{name}` has no effect with `image`: nothing is built or pushed"));
                }
            }
            let registry = c.parse("registry", i.registry.as_deref(), registry_host);
            c.parse("image", Some(&image), image_reference).map(|uri| ImageSource::Existing { uri, registry })
        }
        (None, Some(repository)) => {
            let repository = c.parse("ecr-repository", Some(&repository), ecr_repository_name);
            let registry = c.parse("registry", i.registry.as_deref(), registry_host);
            let build_args = c.parse("build-args", i.build_args.as_deref(), build_args).unwrap_or_default();
            let secrets = c.parse("secrets", i.secrets.as_deref(), build_secrets).unwrap_or_default();
            let builder = c.parse("builder", i.builder.as_deref(), builder).unwrap_or(Builder::Auto);
            if builder == Builder::Classic && !secrets.is_empty() {
                c.fail(
                    "secrets",
                    "need BuildKit (`RUN --mount=type=secret`), and `builder` is `classic`: set `builder: auto`",
                );
            }
            let platforms = renamed(c, ("platforms", &i.platforms), ("platform", &i.platform));
            let platform = c.parse("platforms", platforms.as_deref(), one_platform);
            // The commit the workspace has checked out, which is what gets built; GITHUB_SHA otherwise.
            let commit = super::git::built_commit(var);
            let tags = match renamed(c, ("tags", &i.tags), ("image-tag", &i.image_tag)).or_else(|| commit.clone()) {
                Some(tags) => {
                    c.parse("tags", Some(&tags), |v| tag_list(v, i.ecr_repository.as_deref().unwrap_or_default()))
                }
                None => {
                    c.fail("tags", "is not set and GITHUB_SHA is empty (not in GitHub Actions?): pass a tag, e.g. `--tags \"$(git rev-parse HEAD)\"`");
                    None
                }
            };
            let labels = c.parse("labels", i.labels.as_deref(), image_labels).unwrap_or_default();
            let no_cache = c.parse("no-cache", i.no_cache.as_deref(), boolean).unwrap_or(false);
            let pull = c.parse("pull", i.pull.as_deref(), boolean).unwrap_or(false);
            let cache_from =
                c.parse("cache-from", i.cache_from.as_deref(), cache_refs).unwrap_or_else(|| vec![CACHE_TAG.into()]);
            let cache_to = match set(&i.cache_to).as_deref().map(str::trim) {
                Some("none") => None,
                Some(tag) => c.parse("cache-to", Some(tag), image_tag),
                None => Some(CACHE_TAG.into()),
            };
            let dockerfile = renamed(c, ("file", &i.file), ("dockerfile", &i.dockerfile));
            let context = workspace_path(set(&i.context).unwrap_or_else(|| ".".into()), var);
            match (repository, tags) {
                (Some(ecr_repository), Some(mut tags)) => {
                    let tag = tags.remove(0);
                    Some(ImageSource::Build(Box::new(BuildSettings {
                        ecr_repository,
                        registry,
                        context,
                        dockerfile: dockerfile.unwrap_or_else(|| "Dockerfile".into()),
                        target: set(&i.target),
                        build_args,
                        secrets,
                        builder,
                        platform,
                        source: commit.unwrap_or_else(|| tag.clone()),
                        tag,
                        extra_tags: tags,
                        labels,
                        no_cache,
                        pull,
                        cache_from,
                        cache_to,
                    })))
                }
                _ => None,
            }
        }
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
        "rolling" | "canary" => Ok(v.to_string()),
        other => Err(format!("`{other}` is not a strategy: use `rolling` or `canary`")),
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
                ("pre-deploy-command", &i.pre_deploy_command),
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
                _ => Some(Strategy::Rolling),
            };
            let desired_count = c.parse("desired-count", i.desired_count.as_deref(), task_count);
            let pre_deploy =
                c.parse("pre-deploy-command", i.pre_deploy_command.as_deref(), super::command::parse_command);
            if let Some(Strategy::Canary(canary)) = &strategy
                && also.contains(&canary.canary_service)
            {
                c.fail("service", format!("names `{}`, the canary service: it runs the new revision during a canary and is not deployed on its own", canary.canary_service));
            }
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
                    pre_deploy,
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
            ("max-latency", &i.max_latency),
            ("min-requests", &i.min_requests),
            ("failure-limit", &i.failure_limit),
            ("gate-confidence", &i.gate_confidence),
            ("probe-url", &i.probe_url),
            ("check-interval", &i.check_interval),
        ] {
            if set(value).is_some() {
                c.warnings.push(format!("`{name}` has no effect unless `strategy` is `canary`"));
            }
        }
    }
    deploy
}

/// Where the run reports: the pull-request comment and the GitHub Deployment.
fn report(c: &mut Check, i: &Inputs) -> ReportSettings {
    let pr_comment = c.parse("pr-comment", i.pr_comment.as_deref(), boolean).unwrap_or(true);
    let environment_url =
        c.parse("environment-url", i.environment_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));
    let deployment_environment = set(&i.deployment_environment);
    if environment_url.is_some() && deployment_environment.is_none() {
        c.warnings.push("`environment-url` has no effect without `deployment-environment`".into());
    }
    ReportSettings {
        github_token: set(&i.github_token).map(Secret::new),
        pr_comment,
        deployment_environment,
        environment_url,
    }
}

/// A set input, trimmed; None when unset or blank (GitHub passes "" for unset inputs).
fn set(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
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

/// `KEY=VALUE` lines whose values are not credentials: the classic builder writes every build-arg
/// value into the image's history (`docker history --no-trunc`), for anyone who can pull the image.
fn build_args(v: &str) -> Result<Vec<(String, String)>, String> {
    let pairs = key_values(v, "build argument")?;
    for (key, value) in &pairs {
        if let Some(kind) = looks_like_a_secret(value) {
            return Err(format!(
                "the value of `{key}` looks like {kind} (not shown). Build-arg values are recorded in the image's \
                 history, readable by anyone who can pull the image: give the running service its secrets through \
                 the task definition's `secrets`; a credential the build itself needs goes in `secrets` and is read \
                 with `RUN --mount=type=secret,id={}`",
                key.to_ascii_lowercase()
            ));
        }
    }
    Ok(pairs)
}

/// The value of an input that has a former name: the new one, or the former with a warning that names
/// the new one; both set is an error.
fn renamed(
    c: &mut Check,
    (name, value): (&'static str, &Option<String>),
    (former, old): (&'static str, &Option<String>),
) -> Option<String> {
    match (set(value), set(old)) {
        (Some(_), Some(_)) => {
            c.fail(name, format!("and `{former}` are both set: `{former}` is its former name; keep `{name}`"));
            None
        }
        (Some(v), None) => Some(v),
        (None, Some(v)) => {
            c.warnings.push(format!(
                "`{former}` is now `{name}`, as docker/build-push-action names it: rename it (the former name works in this version)"
            ));
            Some(v)
        }
        (None, None) => None,
    }
}

/// `platforms`: one platform for now.
fn one_platform(v: &str) -> Result<String, String> {
    let all: Vec<&str> = v.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()).collect();
    match all.as_slice() {
        [one] => platform(one),
        _ => Err(format!(
            "`{v}`: one platform for now (a multi-platform image needs a builder this engine does not have)"
        )),
    }
}

/// `tags`: tags of the repository, comma or newline separated, each a tag or `<registry>/<repository>:tag`
/// of the deploy's own repository (as docker/build-push-action writes them).
fn tag_list(v: &str, repository: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for item in v.split([',', '\n']).map(str::trim).filter(|t| !t.is_empty()) {
        let tag = match item.contains('/') {
            true => {
                let not_ours = || {
                    format!(
                        "`{item}` is not a tag of `{repository}`: give the tag (`v1.2`) or `<registry>/{repository}:v1.2`"
                    )
                };
                let (name, tag) = item.rsplit_once(':').filter(|(_, t)| !t.contains('/')).ok_or_else(not_ours)?;
                if repository.is_empty() || !name.ends_with(&format!("/{repository}")) {
                    return Err(not_ours());
                }
                tag
            }
            false => item,
        };
        let tag = image_tag(tag)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err("names no tag: give at least one, e.g. the commit".into());
    }
    Ok(tags)
}

/// `labels`: `KEY=VALUE` lines, keys as OCI writes them (`org.opencontainers.image.title`, `team`).
fn image_labels(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    for (n, line) in v.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim().starts_with('#')) {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {} is not KEY=VALUE", n + 1))?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')) {
            return Err(format!("line {}: `{key}` is not a label name: letters, digits, `.`, `-`, `_`, `/`", n + 1));
        }
        labels.push((key.to_string(), value.trim().to_string()));
    }
    Ok(labels)
}

/// `cache-from`: tags of the repository or full references, one a line.
fn cache_refs(v: &str) -> Result<Vec<String>, String> {
    let refs: Vec<String> = v.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    for r in &refs {
        if !r.contains('/') {
            image_tag(r)?;
        } else if r.contains(char::is_whitespace) {
            return Err(format!("`{r}` is not an image reference"));
        }
    }
    Ok(refs)
}

/// `ID=VALUE` lines: the build's secrets. Errors name the id, never the value.
fn build_secrets(v: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut out: Vec<(String, Secret)> = Vec::new();
    for (n, line) in v.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((id, value)) = line.split_once('=') else {
            return Err(format!("line {} is not ID=VALUE (its text is not shown: it may be a secret)", n + 1));
        };
        let id = id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(format!(
                "line {}: the id must be letters, digits, `_`, `-` or `.`, as `RUN --mount=type=secret,id=npm_token` names it",
                n + 1
            ));
        }
        if out.iter().any(|(seen, _)| seen == id) {
            return Err(format!("`{id}` is given twice"));
        }
        if value.is_empty() {
            return Err(format!("`{id}` is empty: a secret the build reads must have a value"));
        }
        out.push((id.to_string(), Secret::new(value)));
    }
    Ok(out)
}

/// `auto` or `classic`.
fn builder(v: &str) -> Result<Builder, String> {
    match v.trim() {
        "auto" => Ok(Builder::Auto),
        "classic" => Ok(Builder::Classic),
        _ => Err(format!("`{v}` is not a builder: write `auto` (BuildKit when the engine offers it) or `classic`")),
    }
}

/// A service's task count: a whole number up to ECS's 5,000 tasks a service.
fn task_count(v: &str) -> Result<i32, String> {
    match v.trim().parse::<i32>() {
        Ok(n @ 0..=5000) => Ok(n),
        _ => Err(format!("`{v}` is not a task count: a whole number from 0 to 5000 (ECS's limit per service)")),
    }
}

/// `family:revision` or a task definition ARN (`arn:aws:ecs:…:task-definition/family:revision`):
/// a registered revision rather than a file.
fn known_revision(v: &str) -> Option<String> {
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
