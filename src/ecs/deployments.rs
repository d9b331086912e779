//! ECS's service deployments (its own BLUE_GREEN, LINEAR and CANARY strategies): finding the one an
//! UpdateService started, reading it as plain data, and answering its pauses or stopping it with a
//! rollback. What a read says is parsed here so the strategy never handles SDK types.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use aws_sdk_ecs::primitives::DateTime;
use aws_sdk_ecs::types::{
    CreatedAt, DeploymentLifecycleHookAction, DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType,
    ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentStatus, StopServiceDeploymentStopType,
};

use crate::aws::call_failed;

/// One look at a service deployment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    /// `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_SUCCESSFUL`, … as ECS says it.
    pub(crate) status: String,
    pub(crate) status_reason: Option<String>,
    /// `SCALE_UP`, `PRODUCTION_TRAFFIC_SHIFT`, … (empty before ECS names one).
    pub(crate) stage: String,
    /// Green's requested share of production and of test traffic, in percent.
    pub(crate) production: f64,
    pub(crate) test: f64,
    /// Green's tasks running, of those it asks for.
    pub(crate) green_running: i32,
    pub(crate) green_requested: i32,
    /// PAUSE hooks waiting for an answer: (hook id, when it expires).
    pub(crate) paused: Vec<(String, Option<SystemTime>)>,
    /// Why ECS rolled back, when it did.
    pub(crate) rollback_reason: Option<String>,
    pub(crate) triggered_alarms: Vec<String>,
}

impl Seen {
    pub(crate) fn ended(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "PENDING" | "IN_PROGRESS" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED"
        )
    }

    pub(crate) fn rolling_back(&self) -> bool {
        self.status.starts_with("ROLLBACK")
    }
}

pub(crate) fn seen(d: &ServiceDeployment) -> Seen {
    let target = d.target_service_revision();
    let paused = d
        .lifecycle_hook_details()
        .iter()
        .filter(|h| {
            h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction)
                && h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
        })
        .filter_map(|h| {
            let expires = h.expires_at().and_then(|t| SystemTime::try_from(*t).ok());
            h.hook_id().map(|id| (id.to_string(), expires))
        })
        .collect();
    Seen {
        status: d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        status_reason: d.status_reason().map(str::to_string),
        stage: d.lifecycle_stage().map(|s| s.as_str().to_string()).unwrap_or_default(),
        production: target.and_then(|t| t.requested_production_traffic_weight()).unwrap_or(0.0),
        test: target.and_then(|t| t.requested_test_traffic_weight()).unwrap_or(0.0),
        green_running: target.map(|t| t.running_task_count()).unwrap_or(0),
        green_requested: target.map(|t| t.requested_task_count()).unwrap_or(0),
        paused,
        rollback_reason: d.rollback().and_then(|r| r.reason()).map(str::to_string),
        triggered_alarms: d.alarms().map(|a| a.triggered_alarm_names().to_vec()).unwrap_or_default(),
    }
}

/// The newest service deployment of `service` created at or after `since` (None until ECS lists it:
/// it is eventually consistent).
pub(crate) async fn started_since(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    since: SystemTime,
) -> Result<Option<String>> {
    // A second of slack for the clocks of this runner and of ECS.
    let after = DateTime::from_secs(DateTime::from(since).secs().saturating_sub(1));
    let found = newest_first(ecs, cluster, service, false, Some(after)).await?;
    Ok(found.first().and_then(|d| d.service_deployment_arn()).map(str::to_string))
}

/// The service's deployments (in progress only, or created after a time), newest first.
async fn newest_first(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    in_progress: bool,
    after: Option<DateTime>,
) -> Result<Vec<ServiceDeploymentBrief>> {
    let mut call = ecs.list_service_deployments().cluster(cluster).service(service);
    if in_progress {
        call = call.status(ServiceDeploymentStatus::InProgress);
    }
    if let Some(after) = after {
        call = call.created_at(CreatedAt::builder().after(after).build());
    }
    let out = call
        .send()
        .await
        .map_err(|e| call_failed("ECS ListServiceDeployments", &e))
        .with_context(|| format!("could not list the service deployments of `{service}`"))?;
    let mut found = out.service_deployments().to_vec();
    found.sort_by_key(|d| std::cmp::Reverse(d.created_at().map(|t| (t.secs(), t.subsec_nanos()))));
    Ok(found)
}

pub(crate) async fn describe(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<Seen> {
    Ok(seen(&read(ecs, arn).await?))
}

/// The whole service deployment, as ECS describes it (its configuration, its start).
pub(crate) async fn read(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<ServiceDeployment> {
    let out = ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeServiceDeployments", &e))
        .with_context(|| format!("could not read service deployment {arn}"))?;
    out.service_deployments().first().cloned().ok_or_else(|| anyhow!("ECS does not know the service deployment {arn}"))
}

/// The service's deployments, newest first: (ARN, status, status reason). `in_progress` lists only
/// those not ended.
pub(crate) async fn list(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    in_progress: bool,
) -> Result<Vec<(String, String, Option<String>)>> {
    let found = newest_first(ecs, cluster, service, in_progress, None).await?;
    Ok(found
        .iter()
        .filter_map(|d| {
            let status = d.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            Some((d.service_deployment_arn()?.to_string(), status, d.status_reason().map(str::to_string)))
        })
        .collect())
}

/// Checks, before any change, that this run may follow and answer the service deployments of
/// `service_arn`: the listing, and a read of one by ARN (a name no deployment has: ECS answers it
/// MISSING once the caller may read them). A run that could start a deployment but not follow or
/// stop it must not start it.
pub(crate) async fn can_follow(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    service_arn: &str,
) -> Result<()> {
    list(ecs, cluster, service, true).await.context(
        "a deploy through ECS's own strategy lists the service's deployments to follow the one it starts \
         (ecs:ListServiceDeployments)",
    )?;
    let probe = format!("{}/plan-check", service_arn.replacen(":service/", ":service-deployment/", 1));
    ecs.describe_service_deployments()
        .service_deployment_arns(&probe)
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeServiceDeployments", &e))
        .context(
            "a deploy through ECS's own strategy reads, answers and stops the service deployment it starts \
             (ecs:DescribeServiceDeployments, ContinueServiceDeployment, StopServiceDeployment on its \
             service-deployment ARNs)",
        )?;
    Ok(())
}

/// Answers a pause: CONTINUE to the next stage, or ROLLBACK (ECS puts traffic back on blue first).
pub(crate) async fn answer(ecs: &aws_sdk_ecs::Client, arn: &str, hook_id: &str, proceed: bool) -> Result<()> {
    let action =
        if proceed { DeploymentLifecycleHookAction::Continue } else { DeploymentLifecycleHookAction::Rollback };
    ecs.continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook_id)
        .action(action.clone())
        .send()
        .await
        .map_err(|e| call_failed("ECS ContinueServiceDeployment", &e))
        .with_context(|| format!("could not answer {} at the pause {hook_id} of {arn}", action.as_str()))?;
    Ok(())
}

/// Stops a service deployment with a rollback: ECS puts traffic back on blue, then removes green.
pub(crate) async fn roll_back(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<()> {
    ecs.stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map_err(|e| call_failed("ECS StopServiceDeployment", &e))
        .with_context(|| format!("could not stop {arn} with a rollback"))?;
    Ok(())
}

/// Whether a status is one a rollback ended in.
pub(crate) fn rolled_back(status: &str) -> bool {
    status == ServiceDeploymentStatus::RollbackSuccessful.as_str()
}
