//! The deployment plan: everything one run will do, resolved with read-only calls before the first
//! change. `dry-run` prints it and stops; the executor consumes it.

mod budget;
pub(crate) mod drift;
mod image;
mod in_flight;
mod json;
mod native;
pub(crate) mod preview;
mod print;
mod resolve;
mod resume;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use aws_sdk_ecs::types::Tag;

pub(crate) use budget::{BUILD_ALLOWANCE, run_worst_case, worst_case};
pub(crate) use image::caller_account;
pub(crate) use json::json;
pub(crate) use native::NativePlan;
pub(crate) use print::{gates_line, gates_line_for, markdown, text};
pub(crate) use resolve::{recheck, resolve};
pub(crate) use resume::ResumePoint;

use crate::config::{Gates, TrafficSource};
use crate::ecs::taskdef::Rendered;

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) image: ImagePlan,
    /// None: build-only run.
    pub(crate) deploy: Option<DeployPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ImagePlan {
    Existing {
        uri: String,
        /// The host that may get ECR's token besides ECR (`registry`).
        registry: Option<String>,
    },
    /// A known revision's own image (the container's), deployed unchanged.
    AsRegistered { uri: String },
    Build {
        context: PathBuf,
        dockerfile: String,
        target: Option<String>,
        platform: Option<String>,
        /// Names only: values may be secrets.
        build_arg_names: Vec<String>,
        /// host[:port] of the registry (ECR's endpoint unless `registry` was set).
        registry: String,
        repository: String,
        tag: String,
    },
}

impl ImagePlan {
    /// The image the task definition is rendered with (a build's digest replaces its tag after the push).
    pub(crate) fn reference(&self) -> String {
        match self {
            ImagePlan::Existing { uri, .. } | ImagePlan::AsRegistered { uri } => uri.clone(),
            ImagePlan::Build { registry, repository, tag, .. } => format!("{registry}/{repository}:{tag}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DeployPlan {
    pub(crate) cluster: String,
    /// Every service of the run, in the order `service` names them; never empty. Each is deployed
    /// by its own strategy, all at the same time (a canary takes the first: it has one listener).
    pub(crate) services: Vec<ServicePlan>,
    pub(crate) wait_timeout: Duration,
    pub(crate) rollback: bool,
    /// `keep-revisions`: after success, each family's newest N revisions are kept, older unused ones pruned.
    pub(crate) keep_revisions: Option<u32>,
    /// `scheduled-tasks`: the EventBridge targets moved to their family's new revision after success.
    pub(crate) scheduled: Vec<crate::schedules::Scheduled>,
    /// Services rolled out at the same time at most (`parallel`); None: all of them.
    pub(crate) parallel: Option<usize>,
    /// The pre-deploy command, run with the first service's new revision, and how that service runs
    /// tasks (to run it the same way).
    pub(crate) pre_deploy: Option<(Vec<String>, crate::ecs::pre_deploy::RunAs)>,
}

/// One service of a run: what it runs now, its new revision rendered with the run's image, and its
/// strategy.
#[derive(Debug, Clone)]
pub(crate) struct ServicePlan {
    pub(crate) service: String,
    /// Where the deploy lease is written.
    pub(crate) service_arn: String,
    pub(crate) desired_count: i32,
    /// The count `desired-count` sets with the new revision (the current one comes back on undo).
    pub(crate) new_desired_count: Option<i32>,
    pub(crate) previous_task_definition_arn: String,
    /// Tags of the current revision, carried to the new one (with who and what deploys it,
    /// `provenance::carried`, at registration).
    pub(crate) tags: Vec<Tag>,
    /// Who deployed the current revision, from its tags, when the action registered it.
    pub(crate) deployed_by: Option<String>,
    /// What changed outside the action since it last deployed the service (`drift::of`).
    pub(crate) drift: Vec<String>,
    pub(crate) rendered: Rendered,
    /// A known revision deployed as it is (no image, no environment change): nothing is registered.
    pub(crate) as_is: Option<String>,
    pub(crate) strategy: StrategyPlan,
}

impl DeployPlan {
    /// The first service named: its comment, its pre-deploy task, its revision in the outputs.
    pub(crate) fn first(&self) -> &ServicePlan {
        // `resolve` plans at least the first service; a plan without one is never built.
        &self.services[0]
    }

    /// Whether the run deploys more than one service.
    pub(crate) fn several(&self) -> bool {
        self.services.len() > 1
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrategyPlan {
    Rolling,
    Canary(Box<CanaryPlan>),
    /// ECS's own BLUE_GREEN, LINEAR or CANARY, judged at its pauses.
    Native(Box<NativePlan>),
    /// A pull request's preview: its service (made with its target group and rule the first time),
    /// rolled out.
    Preview(Box<preview::PreviewPlan>),
}

impl StrategyPlan {
    pub(crate) fn canary(&self) -> Option<&CanaryPlan> {
        match self {
            StrategyPlan::Canary(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn native(&self) -> Option<&NativePlan> {
        match self {
            StrategyPlan::Native(n) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn preview(&self) -> Option<&preview::PreviewPlan> {
        match self {
            StrategyPlan::Preview(p) => Some(p),
            _ => None,
        }
    }

    /// How the comment names it: `rolling`, `canary 10%:2m, 100%`, `ecs LINEAR`.
    pub(crate) fn label(&self) -> String {
        match self {
            StrategyPlan::Rolling => "rolling".into(),
            StrategyPlan::Canary(c) => {
                let steps: Vec<String> = c
                    .steps
                    .iter()
                    .map(|s| match s.bake.is_zero() {
                        true => format!("{}%", s.weight),
                        false => format!("{}%:{}", s.weight, crate::config::duration::format(s.bake)),
                    })
                    .collect();
                format!("canary {}", steps.join(", "))
            }
            StrategyPlan::Native(n) => format!("ecs {}", n.strategy),
            StrategyPlan::Preview(_) => "preview (rolling)".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanaryPlan {
    pub(crate) canary_service: String,
    pub(crate) stable_target_group: TargetGroup,
    pub(crate) canary_target_group: TargetGroup,
    pub(crate) traffic: TrafficSource,
    pub(crate) steps: Vec<PlannedStep>,
    pub(crate) gates: Gates,
    pub(crate) check_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetGroup {
    pub(crate) arn: String,
    pub(crate) name: String,
    /// CloudWatch dimension values (`targetgroup/name/id`, `app/lb/id`) for the 5xx-rate gate.
    pub(crate) dimension: String,
    pub(crate) load_balancer_dimension: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PlannedStep {
    pub(crate) weight: u8,
    pub(crate) bake: Duration,
    /// Tasks the canary service runs at this step: ceil(stable desired × weight), at least 1.
    pub(crate) canary_tasks: i32,
}

/// The canary's task count for a step: enough to take `weight`% of the stable service's load.
pub(crate) fn canary_tasks(stable_desired: i32, weight: u8) -> i32 {
    let wanted = (u64::from(stable_desired.max(0).unsigned_abs()) * u64::from(weight)).div_ceil(100);
    i32::try_from(wanted).unwrap_or(i32::MAX).max(1)
}

impl TargetGroup {
    /// A target group as ELB described it. Without an ARN of the usual form there is no CloudWatch
    /// dimension to ask for its metrics: an error here, never an empty dimension (whose metrics are
    /// empty, so an error-rate gate on it would pass on no evidence).
    pub(crate) fn described(arn: Option<&str>, name: Option<&str>, load_balancer: Option<&String>) -> Result<Self> {
        let arn = arn.ok_or_else(|| anyhow!("ELB described a target group without its ARN"))?;
        let dimension = cloudwatch_dimension(arn).ok_or_else(|| {
            anyhow!("target group ARN `{arn}` is not of the form arn:…:targetgroup/<name>/<id>: CloudWatch could not be asked for its metrics")
        })?;
        Ok(TargetGroup {
            name: name.unwrap_or(arn).to_string(),
            dimension,
            load_balancer_dimension: load_balancer.and_then(|lb| cloudwatch_dimension(lb)),
            arn: arn.to_string(),
        })
    }
}

/// The resource part of an ELB ARN as CloudWatch names it: `targetgroup/name/id`, `app/name/id`.
pub(crate) fn cloudwatch_dimension(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    match resource.strip_prefix("loadbalancer/") {
        Some(lb) => Some(lb.to_string()),
        None if resource.starts_with("targetgroup/") => Some(resource.to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_group_without_a_dimension_is_an_error_not_an_empty_dimension() {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-canary/0123456789abcdef";
        let lb =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188".to_string();
        let tg = TargetGroup::described(Some(arn), Some("web-canary"), Some(&lb)).unwrap();
        assert_eq!(tg.dimension, "targetgroup/web-canary/0123456789abcdef");
        assert_eq!(tg.load_balancer_dimension.as_deref(), Some("app/web/50dc6c495c0c9188"));
        let no_arn = TargetGroup::described(None, Some("web-canary"), None).unwrap_err();
        assert!(no_arn.to_string().contains("without its ARN"), "{no_arn}");
        let odd = TargetGroup::described(Some("web-canary"), None, None).unwrap_err();
        assert!(odd.to_string().contains("could not be asked for its metrics"), "{odd}");
    }

    #[test]
    fn canary_task_counts_round_up_and_never_reach_zero() {
        assert_eq!(canary_tasks(4, 10), 1);
        assert_eq!(canary_tasks(4, 50), 2);
        assert_eq!(canary_tasks(5, 50), 3);
        assert_eq!(canary_tasks(3, 100), 3);
        assert_eq!(canary_tasks(0, 10), 1);
        assert_eq!(canary_tasks(20, 1), 1);
    }

    #[test]
    fn dimensions_from_arns() {
        assert_eq!(
            cloudwatch_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067"
            ),
            Some("targetgroup/web/73e2d6bc24d8a067".into())
        );
        assert_eq!(
            cloudwatch_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
            ),
            Some("app/web/50dc6c495c0c9188".into())
        );
        assert_eq!(cloudwatch_dimension("nonsense"), None);
    }
}
