//! The validated, typed configuration of one run. Every input is checked here, before any I/O, and
//! every problem is reported at once, each naming the input and how to fix it.

mod approval;
mod canary;
mod check;
pub(crate) mod command;
pub(crate) mod duration;
pub(crate) mod git;
mod image;
pub(crate) mod inputs;
mod parse;
mod preview;
pub(crate) mod steps;
pub(crate) mod thresholds;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use inputs::Inputs;

use crate::secret::Secret;
use steps::CanaryStep;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) aws: AwsSettings,
    pub(crate) image: ImageSource,
    /// None: a build-only run that stops once the image is pushed.
    pub(crate) deploy: Option<DeploySettings>,
    pub(crate) report: ReportSettings,
    pub(crate) dry_run: bool,
    /// Stage timings and AWS call counts as log lines (else debug lines in Actions, nothing locally).
    pub(crate) verbose: bool,
    /// Inputs that are valid but have no effect as given; logged as warnings.
    pub(crate) warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwsSettings {
    pub(crate) region: String,
    pub(crate) role_to_assume: Option<String>,
    pub(crate) audience: String,
    pub(crate) role_session_name: String,
    pub(crate) role_duration: Duration,
    pub(crate) endpoint_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ImageSource {
    /// Deploy this image as it is. `registry`: a host that gets ECR's token besides ECR's own
    /// (an ECR stand-in); every other registry is asked anonymously.
    Existing {
        uri: String,
        registry: Option<String>,
    },
    Build(Box<BuildSettings>),
    /// No image given, and `task-definition` names a known revision: its own images, unchanged.
    AsRegistered,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BuildSettings {
    pub(crate) ecr_repository: String,
    /// host[:port]; None: ECR's endpoint for the account and region.
    pub(crate) registry: Option<String>,
    pub(crate) context: PathBuf,
    pub(crate) dockerfile: String,
    pub(crate) target: Option<String>,
    pub(crate) build_args: Vec<(String, String)>,
    /// Build secrets by id, for `RUN --mount=type=secret` (BuildKit only).
    pub(crate) secrets: Vec<(String, Secret)>,
    pub(crate) builder: Builder,
    pub(crate) platform: Option<String>,
    pub(crate) tag: String,
    /// What the image is built from: the commit checked out (or `GITHUB_SHA`), else the tag itself.
    /// An image already under the tag is reused only when its revision label says the same.
    pub(crate) source: String,
    /// More tags of the repository pushed with the image (`tags` after the first).
    pub(crate) extra_tags: Vec<String>,
    /// The user's labels, besides the OCI ones.
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    /// Images whose inline cache the build reads: tags of the repository, or full references.
    pub(crate) cache_from: Vec<String>,
    /// The repository's tag that gets the build (and its inline cache); None: `cache-to: none`.
    pub(crate) cache_to: Option<String>,
}

/// The repository's tag that holds the build cache by default (an image with inline cache metadata).
pub(crate) const CACHE_TAG: &str = "buildcache";

/// Which of the engine's builders builds the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builder {
    /// BuildKit when the engine offers it (API 1.39+), else the classic builder.
    Auto,
    /// The classic builder (a Dockerfile that needs BuildKit is refused before anything runs).
    Classic,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeploySettings {
    pub(crate) cluster: String,
    /// The first service of `service`: it gets `strategy`, `task-definition`, `desired-count`.
    pub(crate) service: String,
    /// The other services of `service`: each rolls out its own revision of its own task definition,
    /// with the same image, at the same time as the first.
    pub(crate) also: Vec<String>,
    pub(crate) container_name: Option<String>,
    pub(crate) task_definition: Option<TaskDefinitionSource>,
    pub(crate) environment: Vec<(String, String)>,
    pub(crate) strategy: Strategy,
    pub(crate) wait_timeout: Duration,
    pub(crate) rollback: bool,
    /// A deployment in progress at plan time is waited for (true) or refused (false).
    pub(crate) wait_for_deployment: bool,
    /// The service's task count to set with the new revision (`desired-count`).
    pub(crate) desired_count: Option<i32>,
    /// After a successful deploy, keep each family's newest N ACTIVE revisions and deregister the
    /// older ones nothing uses (`keep-revisions`).
    pub(crate) keep_revisions: Option<u32>,
    /// Run once with the new revision before any service changes (`pre-deploy-command`).
    pub(crate) pre_deploy: Option<Vec<String>>,
    /// Answer a deploy of ECS's own strategy paused for approval instead of starting one (`resume`).
    pub(crate) resume: Option<Resume>,
    /// A preview of the pull request: `service` is its base, copied into a service of its own.
    pub(crate) preview: Option<PreviewSettings>,
    /// A service changed outside the action since its last deploy is refused (`drift: refuse`);
    /// otherwise a warning.
    pub(crate) refuse_drift: bool,
    /// EventBridge rules whose ECS targets follow the deployed revision (`scheduled-tasks`): `None`
    /// inside for `auto`.
    pub(crate) scheduled_tasks: Option<Option<Vec<String>>>,
    /// Services rolled out at the same time at most (`parallel`); None: all of them.
    pub(crate) parallel: Option<usize>,
}

/// `preview: true`: the pull request, what happened to it, and where its preview is reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreviewSettings {
    pub(crate) number: u64,
    /// The pull request closed: the preview is removed instead of deployed.
    pub(crate) closing: bool,
    /// The pull request's head is another repository's: GitHub gives its runs no OIDC token or
    /// secrets, so nothing is made.
    pub(crate) fork: bool,
    /// The listener that gets the preview's rule.
    pub(crate) listener_arn: String,
    /// `pr-<number>.<domain>` routes to the preview; None: the path `/pr-<number>/`.
    pub(crate) domain: Option<String>,
    /// Open previews of the base service at most.
    pub(crate) limit: u32,
    /// `owner/name`, in every preview resource's tags.
    pub(crate) repository: String,
    /// The run that deploys it, in its resources' tags.
    pub(crate) run_url: Option<String>,
}

/// Where a deploy of ECS's own strategy stops for people (`approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Approval {
    /// At the last pause before green takes production traffic (after the test shift, if any).
    BeforeProduction,
    /// At the pause after green's first production shift baked (LINEAR, CANARY).
    AfterFirstShift,
}

/// The answer to a paused deploy (`resume`, `service-deployment-arn`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resume {
    /// CONTINUE once the gates passed over the paused window; else ROLLBACK.
    pub(crate) proceed: bool,
    /// Which paused service deployment (None: the service's one waiting at a pause).
    pub(crate) deployment: Option<String>,
}

/// Where the task definition to render comes from (`task-definition`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskDefinitionSource {
    /// A JSON file in the workspace.
    File(PathBuf),
    /// A registered revision: `family:revision` or its ARN.
    Revision(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Strategy {
    /// `strategy: rolling`: UpdateService watched to steady state (refused on a service set up for
    /// ECS's own strategies: ECS would not roll it).
    Rolling,
    Canary(Box<CanarySettings>),
    /// `strategy: ecs`, and `strategy` not given: the strategy the service is set up with. A ROLLING
    /// service rolls (refused when `ecs` was named: there is nothing of ECS's to judge); BLUE_GREEN,
    /// LINEAR and CANARY run as ECS runs them, judged by the gates at pause hooks.
    Ecs(Box<EcsSettings>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EcsSettings {
    pub(crate) gates: Gates,
    pub(crate) check_interval: Duration,
    /// `strategy: ecs` was written (not left to the service).
    pub(crate) named: bool,
    /// Where the deploy stops for people, if it does.
    pub(crate) approval: Option<Approval>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanarySettings {
    pub(crate) steps: Vec<CanaryStep>,
    pub(crate) canary_service: String,
    pub(crate) traffic: TrafficSource,
    pub(crate) gates: Gates,
    pub(crate) check_interval: Duration,
}

/// Where the weighted forward action between the stable and canary target groups lives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TrafficSource {
    ListenerDefault(String),
    Rule(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gates {
    pub(crate) alarms: Vec<String>,
    /// Highest accepted 5xx share of requests, absolute or against the stable version.
    pub(crate) max_error_rate: Option<thresholds::ErrorRateLimit>,
    /// Highest accepted response time statistic of the canary target group.
    pub(crate) max_latency: Option<thresholds::LatencyGate>,
    /// The user's floor of canary requests in a step before the error rate or latency may pass, on
    /// top of what each statistic needs (0: none; a step left unjudged then passes with a warning).
    pub(crate) min_requests: u64,
    /// Failing checks in a row before a gate that can be noisy fails its step.
    pub(crate) failure_limit: u32,
    /// Of the error-rate test and of the requests a rate needs, as a fraction (0.99).
    pub(crate) confidence: f64,
    pub(crate) probe_url: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReportSettings {
    pub(crate) github_token: Option<Secret>,
    pub(crate) pr_comment: bool,
    pub(crate) deployment_environment: Option<String>,
    pub(crate) environment_url: Option<String>,
}

impl Gates {
    /// No gate: a strategy only watched (another service of the run under ECS's own strategy).
    pub(crate) fn none() -> Self {
        Gates {
            alarms: Vec::new(),
            max_error_rate: None,
            max_latency: None,
            min_requests: 0,
            failure_limit: 1,
            confidence: 0.99,
            probe_url: None,
        }
    }
}

/// One invalid input: which, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputError {
    pub(crate) input: &'static str,
    pub(crate) message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input `{}`: {}", self.input, self.message)
    }
}

/// Every invalid input of a run, reported together so one edit of the workflow fixes them all.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl Config {
    /// Validates `inputs`; `var` supplies the run's context (`GITHUB_SHA`, `GITHUB_RUN_ID`,
    /// `GITHUB_WORKSPACE`). Pure: no file, network or AWS access.
    pub(crate) fn from_inputs(inputs: &Inputs, var: impl Fn(&str) -> Option<String>) -> Result<Config, InputErrors> {
        validate::config(inputs, &|name| var(name).filter(|v| !v.trim().is_empty()))
    }
}

#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod tests;
