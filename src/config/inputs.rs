//! The action's inputs, defined once: read from `INPUT_*` variables in GitHub Actions and from the same
//! names as command-line flags locally (`--help` lists them). Values stay raw text here; `Config`
//! validates them.

use clap::{CommandFactory, FromArgMatches, Parser};

/// Build, push and deploy to Amazon ECS from one GitHub Actions step.
///
/// Every flag is also an action input of the same name (`aws-region:` in a workflow, `--aws-region`
/// here). In Actions the inputs come from INPUT_* variables; flags given here win over them.
///
/// `ecs-deploy-action iam-policy [--offline] <flags>` prints the IAM policy a deploy with these flags
/// needs; `iam-policy --trust --repository owner/repo (--environment NAME | --ref REF)` the role's
/// OIDC trust policy (README, "Permissions").
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "ecs-deploy-action", version, args_override_self = true, max_term_width = 100)]
pub(crate) struct Inputs {
    /// Region of ECR and ECS (required), e.g. us-east-1 [default: $AWS_REGION, $AWS_DEFAULT_REGION]
    #[arg(long, value_name = "REGION", help_heading = "AWS")]
    pub(crate) aws_region: Option<String>,
    /// IAM role ARN to assume: by web identity with GitHub OIDC, else with sts:AssumeRole from the
    /// ambient credentials. Unset: use the ambient credentials as they are
    #[arg(long, value_name = "ARN", help_heading = "AWS")]
    pub(crate) role_to_assume: Option<String>,
    /// OIDC audience [default: sts.amazonaws.com]
    #[arg(long, value_name = "AUDIENCE", help_heading = "AWS")]
    pub(crate) audience: Option<String>,
    /// Role session name, 2-64 characters of [A-Za-z0-9+=,.@_-] [default: ecs-deploy-action-<run id>]
    #[arg(long, value_name = "NAME", help_heading = "AWS")]
    pub(crate) role_session_name: Option<String>,
    /// Session duration in seconds, 900-43200 [default: 3600]
    #[arg(long, value_name = "SECONDS", help_heading = "AWS")]
    pub(crate) role_duration_seconds: Option<String>,
    /// One endpoint for every AWS service (moto, LocalStack, act runs)
    #[arg(long, value_name = "URL", help_heading = "AWS")]
    pub(crate) aws_endpoint_url: Option<String>,

    /// Deploy this existing image (no build, no push), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:...
    #[arg(long, value_name = "IMAGE", help_heading = "Image")]
    pub(crate) image: Option<String>,
    /// ECR repository to push to (required unless --image)
    #[arg(long, value_name = "NAME", help_heading = "Image")]
    pub(crate) ecr_repository: Option<String>,
    /// Registry host[:port] instead of ECR's endpoint (pull-through caches, private endpoints, local stacks)
    #[arg(long, value_name = "HOST", help_heading = "Image")]
    pub(crate) registry: Option<String>,
    /// Build context directory [default: .]
    #[arg(long, value_name = "DIR", help_heading = "Image")]
    pub(crate) context: Option<String>,
    /// Dockerfile, relative to the context [default: Dockerfile]
    #[arg(long, value_name = "PATH", help_heading = "Image")]
    pub(crate) file: Option<String>,
    /// Former name of --file (accepted, with a warning)
    #[arg(long, value_name = "PATH", help_heading = "Image")]
    pub(crate) dockerfile: Option<String>,
    /// Build stage to stop at
    #[arg(long, value_name = "STAGE", help_heading = "Image")]
    pub(crate) target: Option<String>,
    /// Build arguments, one KEY=VALUE a line
    #[arg(long, value_name = "KEY=VALUE...", help_heading = "Image")]
    pub(crate) build_args: Option<String>,
    /// Build secrets, one ID=VALUE a line, for `RUN --mount=type=secret,id=ID` (BuildKit); masked,
    /// never in the image
    #[arg(long, value_name = "ID=VALUE...", help_heading = "Image")]
    pub(crate) secrets: Option<String>,
    /// `auto`: BuildKit when the engine offers it (API 1.39+), else the classic builder; `classic`:
    /// always the classic builder [default: auto]
    #[arg(long, value_name = "auto|classic", help_heading = "Image")]
    pub(crate) builder: Option<String>,
    /// Target platform, one for now, e.g. linux/amd64 or linux/arm64
    #[arg(long, value_name = "OS/ARCH", help_heading = "Image")]
    pub(crate) platforms: Option<String>,
    /// Former name of --platforms (accepted, with a warning)
    #[arg(long, value_name = "OS/ARCH", help_heading = "Image")]
    pub(crate) platform: Option<String>,
    /// Tags to push, comma or newline separated; the first is what the service runs (by digest). An
    /// existing tag is reused only when its image was built from this commit [default: the
    /// workspace's checked-out commit, else $GITHUB_SHA]
    #[arg(long, value_name = "TAG,...", help_heading = "Image")]
    pub(crate) tags: Option<String>,
    /// Former name of --tags, one tag (accepted, with a warning)
    #[arg(long, value_name = "TAG", help_heading = "Image")]
    pub(crate) image_tag: Option<String>,
    /// Image labels, one KEY=VALUE a line, besides the OCI ones (source, revision, created, version)
    #[arg(long, value_name = "KEY=VALUE...", help_heading = "Image")]
    pub(crate) labels: Option<String>,
    /// Build without the engine's or the registry's cache [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Image")]
    pub(crate) no_cache: Option<String>,
    /// Pull base images even when the engine has them [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Image")]
    pub(crate) pull: Option<String>,
    /// Images whose BuildKit cache the build may reuse, a tag of the repository or a full reference, one a
    /// line [default: buildcache]
    #[arg(long, value_name = "REF...", help_heading = "Image")]
    pub(crate) cache_from: Option<String>,
    /// Where the build's cache goes (inline, with the image): a tag of the repository, or `none`
    /// [default: buildcache]
    #[arg(long, value_name = "TAG", help_heading = "Image")]
    pub(crate) cache_to: Option<String>,

    /// ECS cluster (with --service; without both the run stops once the image is pushed)
    #[arg(long, value_name = "NAME", help_heading = "Deploy")]
    pub(crate) cluster: Option<String>,
    /// ECS service to deploy; several (comma or newline separated) roll out together, the first with --strategy
    #[arg(long, value_name = "NAME", help_heading = "Deploy")]
    pub(crate) service: Option<String>,
    /// Container that gets the new image [default: the only container]
    #[arg(long, value_name = "NAME", help_heading = "Deploy")]
    pub(crate) container_name: Option<String>,
    /// Task definition JSON file to render from [default: the service's current task definition]
    #[arg(long, value_name = "PATH", help_heading = "Deploy")]
    pub(crate) task_definition: Option<String>,
    /// Run once with the new revision before any service changes (migrations): a JSON array, or words
    #[arg(long, value_name = "COMMAND", help_heading = "Deploy")]
    pub(crate) pre_deploy_command: Option<String>,
    /// Task count to set on the service with the new revision (the previous count comes back with an undo)
    #[arg(long, value_name = "N", help_heading = "Deploy")]
    pub(crate) desired_count: Option<String>,
    /// After a successful deploy, deregister each family's ACTIVE revisions older than the newest N
    /// that no service of the cluster and no scheduled task uses [default: keep all]
    #[arg(long, value_name = "N", help_heading = "Deploy")]
    pub(crate) keep_revisions: Option<String>,
    /// Services of `service` rolled out at the same time at most (the others start as one ends);
    /// one failure still stops and restores every changed service [default: all of them]
    #[arg(long, value_name = "N", help_heading = "Deploy")]
    pub(crate) parallel: Option<String>,
    /// EventBridge rules whose ECS targets run the deployed family in this cluster, moved to the new
    /// revision after a successful deploy: names (comma or newline separated), or `auto` for every
    /// such rule [default: none]
    #[arg(long, value_name = "RULES|auto", help_heading = "Deploy")]
    pub(crate) scheduled_tasks: Option<String>,
    /// A service whose revision or task count changed since this action last deployed it (the
    /// console, the CLI, Terraform): `warn` and overwrite it, or `refuse` the run [default: warn]
    #[arg(long, value_name = "warn|refuse", help_heading = "Deploy")]
    pub(crate) drift: Option<String>,
    /// Environment variables for the container, one KEY=VALUE a line
    #[arg(long, value_name = "KEY=VALUE...", help_heading = "Deploy")]
    pub(crate) environment_variables: Option<String>,
    /// rolling or canary [default: rolling]
    #[arg(long, value_name = "STRATEGY", help_heading = "Deploy")]
    pub(crate) strategy: Option<String>,
    /// How long each wait may take (service stable, targets healthy) [default: 15m]
    #[arg(long, value_name = "DURATION", help_heading = "Deploy")]
    pub(crate) wait_timeout: Option<String>,
    /// Undo a failed deploy [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Deploy")]
    pub(crate) rollback: Option<String>,
    /// A deployment already in progress on a service: false refuses the run naming it, true waits
    /// for it to end (at most wait-timeout) and plans against the result [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Deploy")]
    pub(crate) wait_for_deployment: Option<String>,
    /// Print the plan and change nothing [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Deploy")]
    pub(crate) dry_run: Option<String>,

    /// Canary steps: weight%:bake, strictly increasing, ending at 100% [default: 10%:2m, 50%:2m, 100%]
    #[arg(long, value_name = "STEPS", help_heading = "Canary")]
    pub(crate) canary_steps: Option<String>,
    /// Service that runs the new revision during a canary [default: <service>-canary]
    #[arg(long, value_name = "NAME", help_heading = "Canary")]
    pub(crate) canary_service: Option<String>,
    /// ALB listener whose default action forwards to both target groups
    #[arg(long, value_name = "ARN", help_heading = "Canary")]
    pub(crate) listener_arn: Option<String>,
    /// ALB listener rule that forwards to both target groups
    #[arg(long, value_name = "ARN", help_heading = "Canary")]
    pub(crate) listener_rule_arn: Option<String>,
    /// CloudWatch alarm names (comma or newline separated); any in ALARM fails the gate
    #[arg(long, value_name = "NAMES", help_heading = "Canary")]
    pub(crate) alarms: Option<String>,
    /// Highest 5xx rate of the canary target group over the bake window: `1%`, or `stable + 1%`
    #[arg(long, value_name = "PERCENT", help_heading = "Canary")]
    pub(crate) max_error_rate: Option<String>,
    /// Highest response time of the canary target group: `p99 < 800ms`, `avg < 200ms`, `p99 < stable × 1.3`
    #[arg(long, value_name = "STAT < LIMIT", help_heading = "Canary")]
    pub(crate) max_latency: Option<String>,
    /// Requests the canary must have answered in a step, on top of what each statistic needs,
    /// before the error rate or latency may pass; a step with fewer by the end of its bake fails
    /// [default: 0: a step the gates could not judge passes with a warning]
    #[arg(long, value_name = "N", help_heading = "Canary")]
    pub(crate) min_requests: Option<String>,
    /// Failing checks in a row before an error-rate, latency or probe gate fails its step (an alarm
    /// in ALARM, a lost target or a breach ten times the limit fail it at once) [default: 2]
    #[arg(long, value_name = "N", help_heading = "Canary")]
    pub(crate) failure_limit: Option<String>,
    /// Confidence of the error-rate test and of "enough requests" [default: 99%]
    #[arg(long, value_name = "PERCENT", help_heading = "Canary")]
    pub(crate) gate_confidence: Option<String>,
    /// URL that must answer 2xx at every check
    #[arg(long, value_name = "URL", help_heading = "Canary")]
    pub(crate) probe_url: Option<String>,
    /// How often gates are checked during a bake [default: 10s]
    #[arg(long, value_name = "DURATION", help_heading = "Canary")]
    pub(crate) check_interval: Option<String>,
    /// Stop for people at one of ECS's pauses, `before-production` or `after-first-shift` (ECS's own
    /// strategies): the job ends `paused`, a later run answers with --resume
    #[arg(long, value_name = "WHEN", help_heading = "ECS's own strategies")]
    pub(crate) approval: Option<String>,
    /// Answer a deploy paused for approval: `continue` (after the gates judge the paused window) or
    /// `rollback`
    #[arg(long, value_name = "ACTION", help_heading = "ECS's own strategies")]
    pub(crate) resume: Option<String>,
    /// The paused service deployment --resume answers [default: the service's one waiting at a pause]
    #[arg(long, value_name = "ARN", help_heading = "ECS's own strategies")]
    pub(crate) service_deployment_arn: Option<String>,

    /// On `pull_request` events: deploy the pull request to a service of its own,
    /// `<service>-pr-<number>`, behind a rule of `listener-arn`; remove it when the pull request closes
    /// [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Previews")]
    pub(crate) preview: Option<String>,
    /// Domain whose wildcard DNS record points at the load balancer: the preview answers at
    /// `pr-<number>.<domain>` [default: none: the path `/pr-<number>/` of the listener]
    #[arg(long, value_name = "DOMAIN", help_heading = "Previews")]
    pub(crate) preview_domain: Option<String>,
    /// Open previews of one service at most; a new one beyond it is refused [default: 10]
    #[arg(long, value_name = "N", help_heading = "Previews")]
    pub(crate) preview_limit: Option<String>,

    /// Token for the PR comment and Deployments [default in Actions: github.token; else $GITHUB_TOKEN]
    #[arg(long, value_name = "TOKEN", help_heading = "Report")]
    pub(crate) github_token: Option<String>,
    /// Comment on the pull request the run belongs to [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Report")]
    pub(crate) pr_comment: Option<String>,
    /// Create a GitHub Deployment in this environment
    #[arg(long, value_name = "NAME", help_heading = "Report")]
    pub(crate) deployment_environment: Option<String>,
    /// URL of the deployed environment, shown on the Deployment
    #[arg(long, value_name = "URL", help_heading = "Report")]
    pub(crate) environment_url: Option<String>,
    /// Print each stage's time and the AWS calls per service at the end [default: false; in Actions
    /// they are debug lines, shown when the run is re-run with debug logging]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Report")]
    pub(crate) verbose: Option<String>,
}

impl Inputs {
    /// The kebab-case names of every input, as in action.yml.
    pub(crate) fn names() -> Vec<String> {
        Self::command().get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect()
    }

    /// Inputs from `INPUT_<NAME>` variables (GitHub keeps the hyphens and upper-cases the name; an
    /// unset optional input arrives as ""), overridden by `args` (the command line, program name
    /// first).
    pub(crate) fn from_env_and_args<I, T>(var: impl Fn(&str) -> Option<String>, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let program = if args.is_empty() { "ecs-deploy-action".into() } else { args.remove(0) };
        let mut merged = vec![program];
        for name in Self::names() {
            let key = format!("INPUT_{}", name.to_ascii_uppercase());
            if let Some(value) = var(&key).filter(|v| !v.trim().is_empty()) {
                merged.push(format!("--{name}={value}").into());
            }
        }
        merged.extend(args);
        let matches = Self::command().try_get_matches_from(merged)?;
        Self::from_arg_matches(&matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn reads_hyphenated_input_variables_and_treats_empty_as_unset() {
        let inputs = Inputs::from_env_and_args(
            env(&[
                ("INPUT_AWS-REGION", "eu-west-1"),
                ("INPUT_ROLE-TO-ASSUME", ""),
                ("INPUT_CANARY-STEPS", "10%:1m,\n100%"),
            ]),
            ["ecs-deploy-action"],
        )
        .unwrap();
        assert_eq!(inputs.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(inputs.role_to_assume, None);
        assert_eq!(inputs.canary_steps.as_deref(), Some("10%:1m,\n100%"));
    }

    #[test]
    fn flags_win_over_input_variables() {
        let inputs = Inputs::from_env_and_args(
            env(&[("INPUT_AWS-REGION", "eu-west-1")]),
            ["x", "--aws-region", "us-east-2", "--dry-run"],
        )
        .unwrap();
        assert_eq!(inputs.aws_region.as_deref(), Some("us-east-2"));
        assert_eq!(inputs.dry_run.as_deref(), Some("true"));
    }

    #[test]
    fn values_that_look_like_flags_survive_from_the_environment() {
        let inputs = Inputs::from_env_and_args(env(&[("INPUT_BUILD-ARGS", "--weird=1")]), ["x"]).unwrap();
        assert_eq!(inputs.build_args.as_deref(), Some("--weird=1"));
    }

    #[test]
    fn unknown_flags_are_refused() {
        assert!(Inputs::from_env_and_args(env(&[]), ["x", "--clustr", "a"]).is_err());
    }
}
