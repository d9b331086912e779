//! ECS services: reading them and their task definitions, and the one call that changes them, with
//! errors that say what to check.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_ecs::types::{Deployment, DeploymentConfiguration, Service, Tag, TaskDefinition, TaskDefinitionField};

use crate::aws::call_failed;

/// The service `name` in `cluster`, which must exist and be ACTIVE.
pub(crate) async fn describe(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> Result<Service> {
    let service = find(ecs, cluster, name).await?.ok_or_else(|| {
        anyhow!(
            "service `{name}` was not found in cluster `{cluster}`: check `cluster`, `service` and `aws-region` (the service must exist; this action deploys to it, it does not create it)"
        )
    })?;
    match service.status() {
        Some("ACTIVE") => Ok(service),
        status => bail!(
            "service `{name}` in cluster `{cluster}` is {}: only an ACTIVE service can be deployed to",
            status.unwrap_or("in an unknown state")
        ),
    }
}

/// The service `name` in `cluster` in whatever state it is (ACTIVE, DRAINING, INACTIVE), or `None`
/// when ECS has never had it.
pub(crate) async fn find(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> Result<Option<Service>> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeServices", &e))
        .with_context(|| format!("could not describe service `{name}` in cluster `{cluster}`"))?;
    if let Some(failure) = out.failures().first() {
        let reason = failure.reason().unwrap_or("unknown reason");
        if reason == "MISSING" {
            return Ok(None);
        }
        bail!("service `{name}` in cluster `{cluster}`: {reason}");
    }
    Ok(out.services().first().cloned())
}

/// The one UpdateService of the action: a service to `revision`, to `tasks` tasks, or both. Returns
/// the deployment ECS answered as PRIMARY, when it named one: with a new revision, the deployment this
/// call started, which later reads (ECS is eventually consistent) may not show at once.
pub(crate) async fn update(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    revision: Option<&str>,
    tasks: Option<i32>,
) -> Result<Option<Deployment>> {
    update_configured(ecs, cluster, name, revision, tasks, None).await
}

/// `update` with a deployment configuration sent along (ECS's own strategies: the action's pauses
/// added for a deploy, the service's own put back after it).
pub(crate) async fn update_configured(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    revision: Option<&str>,
    tasks: Option<i32>,
    configuration: Option<DeploymentConfiguration>,
) -> Result<Option<Deployment>> {
    let out = ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .set_task_definition(revision.map(str::to_string))
        .set_desired_count(tasks)
        .set_deployment_configuration(configuration)
        .send()
        .await
        .map_err(|e| call_failed("ECS UpdateService", &e))
        .with_context(|| match (revision, tasks) {
            (Some(revision), None) => {
                format!("could not update service {name} to {}", crate::text::family_revision(revision))
            }
            (_, Some(tasks)) => format!("could not scale {name} to {tasks} task(s)"),
            (None, None) => format!("could not update the deployment configuration of service {name}"),
        })?;
    Ok(primary(out.service().map(Service::deployments).unwrap_or_default()).cloned())
}

/// The PRIMARY deployment among `deployments`: the one ECS is moving the service to.
pub(crate) fn primary(deployments: &[Deployment]) -> Option<&Deployment> {
    deployments.iter().find(|d| d.status() == Some("PRIMARY"))
}

/// A task definition (by ARN or family:revision) with its tags, so a new revision keeps them.
pub(crate) async fn task_definition(ecs: &aws_sdk_ecs::Client, reference: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
    let out = ecs
        .describe_task_definition()
        .task_definition(reference)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| call_failed("ECS DescribeTaskDefinition", &e))
        .with_context(|| format!("could not describe task definition `{reference}`"))?;
    let td = out.task_definition().cloned().ok_or_else(|| anyhow!("task definition `{reference}` was not found"))?;
    Ok((td, out.tags().to_vec()))
}

/// Tags a service with `tags` (who deployed what on it), replacing the values of the same keys.
pub(crate) async fn tag(ecs: &aws_sdk_ecs::Client, service_arn: &str, tags: Vec<Tag>) -> Result<()> {
    ecs.tag_resource()
        .resource_arn(service_arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| call_failed("ECS TagResource", &e))
        .with_context(|| format!("could not tag service {service_arn} with who deployed it"))?;
    Ok(())
}
