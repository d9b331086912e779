//! The validated, typed configuration of one run. Every input is checked here, before any I/O, and
//! every problem is reported at once, each naming the input and how to fix it.

pub mod duration;
pub mod inputs;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use inputs::Inputs;

use crate::canary::steps::CanaryStep;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    pub aws: AwsSettings,
    pub image: ImageSource,
    /// None: a build-only run that stops once the image is pushed.
    pub deploy: Option<DeploySettings>,
    pub report: ReportSettings,
    pub dry_run: bool,
    /// Inputs that are valid but have no effect as given; logged as warnings.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    pub region: String,
    pub role_to_assume: Option<String>,
    pub audience: String,
    pub role_session_name: String,
    pub role_duration: Duration,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Deploy this image as it is.
    Existing(String),
    Build(BuildSettings),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildSettings {
    pub ecr_repository: String,
    /// host[:port]; None: ECR's endpoint for the account and region.
    pub registry: Option<String>,
    pub context: PathBuf,
    pub dockerfile: String,
    pub target: Option<String>,
    pub build_args: Vec<(String, String)>,
    pub platform: Option<String>,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploySettings {
    pub cluster: String,
    pub service: String,
    pub container_name: Option<String>,
    pub task_definition: Option<PathBuf>,
    pub environment: Vec<(String, String)>,
    pub strategy: Strategy,
    pub wait_timeout: Duration,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    Rolling,
    Canary(CanarySettings),
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::Canary(_) => "canary",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CanarySettings {
    pub steps: Vec<CanaryStep>,
    pub canary_service: String,
    pub traffic: TrafficSource,
    pub gates: Gates,
    pub check_interval: Duration,
}

/// Where the weighted forward action between the stable and canary target groups lives.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficSource {
    ListenerDefault(String),
    Rule(String),
}

impl TrafficSource {
    pub fn arn(&self) -> &str {
        match self {
            TrafficSource::ListenerDefault(arn) | TrafficSource::Rule(arn) => arn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gates {
    pub alarms: Vec<String>,
    /// Highest accepted 5xx share of requests, as a fraction (1% is 0.01).
    pub max_error_rate: Option<f64>,
    pub probe_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub github_token: Option<Secret>,
    pub pr_comment: bool,
    pub deployment_environment: Option<String>,
    pub environment_url: Option<String>,
}

/// One invalid input: which, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub input: &'static str,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input `{}`: {}", self.input, self.message)
    }
}

/// Every invalid input of a run, reported together so one edit of the workflow fixes them all.
#[derive(Debug, Clone, PartialEq)]
pub struct InputErrors(pub Vec<InputError>);

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
    pub fn from_inputs(inputs: &Inputs, var: impl Fn(&str) -> Option<String>) -> Result<Config, InputErrors> {
        validate::config(inputs, &|name| var(name).filter(|v| !v.trim().is_empty()))
    }
}

#[cfg(test)]
mod tests;
