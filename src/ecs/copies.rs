//! Services made in the image of another (the same network, placement and deployment settings,
//! behind a target group of their own): the canary service `setup` creates, a pull request's preview;
//! found by their tags, scaled down and deleted again; and `setup --native`'s UpdateService of the
//! deployment configuration.

use anyhow::{Context, Result, anyhow};
use aws_sdk_ecs::types::{LoadBalancer, Service, Tag};

use crate::aws::call_failed;

/// The tag that marks a service as the canary of another (its value: that service's name).
pub(crate) const CANARY_OF: &str = "ecs-deploy-action:canary-of";

/// What a copy differs in from the service it copies.
pub(crate) struct Copy<'a> {
    pub(crate) name: &'a str,
    /// The revision it runs (None: the one `from` runs).
    pub(crate) task_definition: Option<&'a str>,
    pub(crate) desired: i32,
    /// Its only load balancer entry.
    pub(crate) target: LoadBalancer,
    pub(crate) tags: Vec<Tag>,
}

/// Creates `copy` in `from`'s cluster with `from`'s settings. Not copied: service discovery and
/// Service Connect (a copy takes requests only through its own target group) and the deployment
/// controller's own strategy fields nothing sets on a rolling service.
pub(crate) async fn create_like(ecs: &aws_sdk_ecs::Client, from: &Service, copy: Copy<'_>) -> Result<Service> {
    let cluster = from.cluster_arn().unwrap_or_default();
    let launch_type = from.capacity_provider_strategy().is_empty().then(|| from.launch_type().cloned()).flatten();
    let name = copy.name;
    let task_definition = copy.task_definition.or(from.task_definition()).map(str::to_string);
    let out = ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .set_task_definition(task_definition)
        .desired_count(copy.desired)
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
        .load_balancers(copy.target)
        .set_tags(Some(copy.tags))
        .send()
        .await
        .map_err(|e| call_failed("ECS CreateService", &e))
        .with_context(|| format!("could not create service `{name}`"))?;
    out.service().cloned().ok_or_else(|| anyhow!("ECS created service `{name}` without describing it"))
}

/// The canary's tag: it marks a service as the canary of `service`.
pub(crate) fn canary_of(service: &str) -> Vec<Tag> {
    vec![Tag::builder().key(CANARY_OF).value(service).build()]
}

/// The services of `cluster` (ACTIVE ones, with their tags) with tag `key`, of `value` when given:
/// the previews of a service, or all of them.
pub(crate) async fn tagged(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    key: &str,
    value: Option<&str>,
) -> Result<Vec<Service>> {
    let mut arns = Vec::new();
    let mut next = None;
    loop {
        let out = ecs
            .list_services()
            .cluster(cluster)
            .set_next_token(next)
            .max_results(100)
            .send()
            .await
            .map_err(|e| call_failed("ECS ListServices", &e))
            .with_context(|| format!("could not list the services of cluster `{cluster}`"))?;
        arns.extend(out.service_arns().iter().cloned());
        match out.next_token() {
            Some(token) => next = Some(token.to_string()),
            None => break,
        }
    }
    let mut found = Vec::new();
    for chunk in arns.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .map_err(|e| call_failed("ECS DescribeServices", &e))
            .with_context(|| format!("could not describe the services of cluster `{cluster}`"))?;
        found.extend(
            out.services()
                .iter()
                .filter(|s| s.status() == Some("ACTIVE") && tag(s, key).is_some_and(|v| value.is_none_or(|w| v == w)))
                .cloned(),
        );
    }
    found.sort_by(|a, b| a.service_name().cmp(&b.service_name()));
    Ok(found)
}

/// Service `name` of `cluster` with its tags, if it is there and not yet deleted.
pub(crate) async fn find_with_tags(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> Result<Option<Service>> {
    // `service::find` reads the tags along (one DescribeServices).
    Ok(super::service::find(ecs, cluster, name).await?.filter(|s| s.status() != Some("INACTIVE")))
}

/// A service's tag `key`, as ECS described it.
pub(crate) fn tag<'a>(service: &'a Service, key: &str) -> Option<&'a str> {
    service.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// Scales `name` to 0 tasks, then deletes it (its tasks stop as ECS drains them from its target group).
pub(crate) async fn scale_down_and_delete(ecs: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> Result<()> {
    ecs.update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| call_failed("ECS UpdateService", &e))
        .with_context(|| format!("could not scale service `{name}` to 0 tasks"))?;
    delete(ecs, cluster, name).await
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
