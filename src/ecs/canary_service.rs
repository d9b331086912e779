//! The canary service `setup` creates in the image of a service (the same task definition, network,
//! placement and deployment settings, behind its own target group, at 0 tasks), and deletes again
//! when `setup` undoes a run that failed half-way; and `setup --native`'s UpdateService of the
//! deployment configuration.

use anyhow::{Context, Result};
use aws_sdk_ecs::types::{LoadBalancer, Service, Tag};

use crate::aws::call_failed;

/// The tag that marks a service as the canary of another (its value: that service's name).
pub(crate) const CANARY_OF: &str = "ecs-deploy-action:canary-of";

/// Creates `name` in `from`'s cluster with `from`'s settings, `target` as its only load balancer and
/// no task. Not copied: service discovery and Service Connect (the canary takes requests only through
/// the listener's weights) and the deployment controller's own strategy fields nothing sets on a
/// rolling service.
pub(crate) async fn create_like(
    ecs: &aws_sdk_ecs::Client,
    from: &Service,
    name: &str,
    target: LoadBalancer,
) -> Result<()> {
    let cluster = from.cluster_arn().unwrap_or_default();
    let launch_type = from.capacity_provider_strategy().is_empty().then(|| from.launch_type().cloned()).flatten();
    ecs.create_service()
        .cluster(cluster)
        .service_name(name)
        .set_task_definition(from.task_definition().map(str::to_string))
        .desired_count(0)
        .set_launch_type(launch_type)
        .set_capacity_provider_strategy(Some(from.capacity_provider_strategy().to_vec()).filter(|s| !s.is_empty()))
        .set_platform_version(from.platform_version().map(str::to_string))
        .set_network_configuration(from.network_configuration().cloned())
        .set_deployment_configuration(from.deployment_configuration().cloned())
        .set_placement_constraints(Some(from.placement_constraints().to_vec()).filter(|p| !p.is_empty()))
        .set_placement_strategy(Some(from.placement_strategy().to_vec()).filter(|p| !p.is_empty()))
        .set_health_check_grace_period_seconds(from.health_check_grace_period_seconds())
        .set_propagate_tags(from.propagate_tags().cloned())
        .enable_ecs_managed_tags(from.enable_ecs_managed_tags())
        .enable_execute_command(from.enable_execute_command())
        .load_balancers(target)
        .tags(Tag::builder().key(CANARY_OF).value(from.service_name().unwrap_or_default()).build())
        .send()
        .await
        .map_err(|e| call_failed("ECS CreateService", &e))
        .with_context(|| format!("could not create the canary service `{name}`"))?;
    Ok(())
}

/// Deletes `name` (created by this run, with no task) from `cluster`.
pub(crate) async fn delete(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> Result<()> {
    ecs.delete_service()
        .cluster(cluster)
        .service(name)
        .force(true)
        .send()
        .await
        .map_err(|e| call_failed("ECS DeleteService", &e))
        .with_context(|| format!("could not delete service `{name}`"))?;
    Ok(())
}

/// `setup --native`'s one UpdateService: the service's deployment configuration and load balancers
/// (the advanced configuration ECS's own strategies need), or the ones it had, for its undo. No new
/// revision and no task count: nothing is deployed.
pub(crate) async fn configure_load_balancing(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    configuration: aws_sdk_ecs::types::DeploymentConfiguration,
    load_balancers: Vec<LoadBalancer>,
) -> Result<()> {
    ecs.update_service()
        .cluster(cluster)
        .service(name)
        .deployment_configuration(configuration)
        .set_load_balancers(Some(load_balancers))
        .send()
        .await
        .map_err(|e| call_failed("ECS UpdateService", &e))
        .with_context(|| format!("could not set the deployment configuration of service `{name}`"))?;
    Ok(())
}
