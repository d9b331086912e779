//! A deployment already in progress on a service, which a run must not plan against: the revision
//! it would go back to might never have worked. Refused naming it, or waited for (`wait-for-deployment`).

use anyhow::Result;
use aws_sdk_ecs::types::{DeploymentRolloutState, Service};

use crate::aws::Aws;
use crate::config::DeploySettings;
use crate::ecs::poll::{Check, Poll, Polled, poll_until};
use crate::ecs::service;
use crate::failure::Refused;
use crate::gha::Gha;
use crate::text::family_revision;

/// The service `name`, once no deployment is in progress on it: with `wait-for-deployment`, waited
/// for (at most `wait-timeout`); otherwise refused, naming it. A run that started while another
/// deployment was in flight would take that revision, which may never have worked, as the one to go
/// back to.
pub(super) async fn settled(settings: &DeploySettings, name: &str, aws: &Aws, gha: &Gha) -> Result<Service> {
    let now = service::describe(&aws.ecs, &settings.cluster, name).await?;
    let Some(flight) = in_flight(&now) else { return Ok(now) };
    // Waiting for people is no deployment to wait out: say how to answer them.
    let arn = now.service_arn().unwrap_or_default();
    if let Some(refusal) = crate::ecs::lease::waiting_for_approval(&aws.ecs, name, arn).await {
        return Err(refusal);
    }
    if !settings.wait_for_deployment {
        return Err(Refused(format!(
            "`{name}` has a deployment in progress: {flight}. Deploying now would make that revision, which may \
             never have worked, the one a rollback goes back to. Wait for it to end and run again, or set \
             `wait-for-deployment: true` to have this run wait for it (at most wait-timeout)"
        ))
        .into());
    }
    gha.info(&format!("`{name}` has a deployment in progress ({flight}): waiting for it to end (wait-for-deployment)"));
    let (ecs, cluster) = (&aws.ecs, settings.cluster.as_str());
    let polled = poll_until(settings.wait_timeout, Poll::default(), None, async || {
        let now = service::describe(ecs, cluster, name).await?;
        Ok(match in_flight(&now) {
            None => Check::Done(now),
            Some(flight) => Check::NotYet(flight),
        })
    })
    .await?;
    // No cancel here: the plan stage as a whole ends at SIGINT/SIGTERM.
    let last = match polled {
        Polled::Done(now) => return Ok(now),
        Polled::TimedOut(last) => last.unwrap_or(flight),
        Polled::Cancelled => flight,
    };
    Err(Refused(format!(
        "`{name}` still has a deployment in progress after wait-timeout {}: {last}. Nothing was changed",
        crate::config::duration::format(settings.wait_timeout)
    ))
    .into())
}

/// The deployment in progress on `service`, in words, or None when it has one settled deployment.
pub(super) fn in_flight(service: &Service) -> Option<String> {
    let deployments = service.deployments();
    let primary = service::primary(deployments)?;
    let rolling = primary.rollout_state() == Some(&DeploymentRolloutState::InProgress);
    if !rolling && deployments.len() <= 1 {
        return None;
    }
    let since = primary
        .created_at()
        .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .unwrap_or_else(|| "an unknown time".into());
    let others: Vec<String> = deployments
        .iter()
        .filter(|d| !std::ptr::eq(*d, primary))
        .map(|d| {
            format!("{} still runs {}", d.task_definition().map(family_revision).unwrap_or("?"), d.running_count())
        })
        .collect();
    let others = if others.is_empty() { String::new() } else { format!("; {}", others.join(", ")) };
    Some(format!(
        "deployment {} of {} ({} since {since}, {}/{} tasks running{others})",
        primary.id().unwrap_or("?"),
        primary.task_definition().map(family_revision).unwrap_or("?"),
        primary.rollout_state().map(|s| s.as_str()).unwrap_or("no rollout state"),
        primary.running_count(),
        primary.desired_count()
    ))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::Deployment;

    use super::*;

    fn deployment(id: &str, revision: u32, state: DeploymentRolloutState, running: i32) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(if id.ends_with('2') { "PRIMARY" } else { "ACTIVE" })
            .task_definition(format!("arn:aws:ecs:us-east-1:123456789012:task-definition/web:{revision}"))
            .rollout_state(state)
            .running_count(running)
            .desired_count(2)
            .created_at(aws_sdk_ecs::primitives::DateTime::from_secs(1_796_000_000))
            .build()
    }

    #[test]
    fn only_one_settled_deployment_is_no_deployment_in_progress() {
        use DeploymentRolloutState::*;
        let service = |d: Vec<Deployment>| Service::builder().set_deployments(Some(d)).build();
        assert_eq!(in_flight(&service(vec![deployment("ecs-svc/2", 7, Completed, 2)])), None);
        assert_eq!(
            in_flight(&service(vec![
                deployment("ecs-svc/2", 8, InProgress, 1),
                deployment("ecs-svc/1", 7, Completed, 2)
            ]))
            .as_deref(),
            Some(
                "deployment ecs-svc/2 of web:8 (IN_PROGRESS since 2026-11-30T00:53:20Z, 1/2 tasks running; web:7 still runs 2)"
            )
        );
        // Completed, but the old deployment still has tasks: still in progress.
        let draining = in_flight(&service(vec![
            deployment("ecs-svc/2", 8, Completed, 2),
            deployment("ecs-svc/1", 7, Completed, 1),
        ]));
        assert!(draining.is_some_and(|d| d.contains("web:7 still runs 1")));
    }
}
