//! Builds the `Plan` from the config with read-only AWS calls only (Describe*, GetCallerIdentity):
//! nothing here changes anything, which the dry-run tests check against the emulator's whole state.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_ecs::types::Service;

use super::in_flight::{in_flight, settled};
use super::native;
use super::{
    CanaryPlan, DeployPlan, ImagePlan, Plan, PlannedStep, ServicePlan, StrategyPlan, TargetGroup, canary_tasks,
};
use crate::aws::{Aws, call_failed};
use crate::config::{CanarySettings, Config, DeploySettings, Strategy, TaskDefinitionSource};
use crate::ecs::{service, taskdef, taskdef_file};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::listener;
use crate::provenance;

pub(crate) async fn resolve(config: &Config, aws: &Aws, gha: &Gha) -> Result<Plan> {
    let mut image = super::image::image_plan(config, aws).await?;
    let new_image = match &image {
        ImagePlan::AsRegistered { .. } => None,
        other => Some(other.reference()),
    };
    let deploy = match &config.deploy {
        Some(settings) => Some(match &settings.resume {
            Some(resume) => super::resume::deploy_plan(settings, resume, aws).await?,
            None => deploy_plan(settings, new_image.as_deref(), aws, gha).await?,
        }),
        None => None,
    };
    if let (ImagePlan::AsRegistered { uri }, Some(d)) = (&mut image, &deploy) {
        *uri = taskdef::container_image(&d.first().rendered).unwrap_or_default();
    }
    Ok(Plan { image, deploy })
}

/// `image`: the new image for the container; None keeps the task definition's (a known revision).
async fn deploy_plan(settings: &DeploySettings, image: Option<&str>, aws: &Aws, gha: &Gha) -> Result<DeployPlan> {
    // A preview copies its base service whatever that one is doing: only the preview must be settled.
    let stable = match &settings.preview {
        Some(_) => service::describe(&aws.ecs, &settings.cluster, &settings.service).await?,
        None => settled(settings, &settings.service, aws, gha).await?,
    };
    let current_arn = stable
        .task_definition()
        .ok_or_else(|| anyhow!("service `{}` has no task definition", settings.service))?
        .to_string();
    let mut known = None;
    let (current, tags) = match &settings.task_definition {
        Some(TaskDefinitionSource::File(path)) => taskdef_file::read(path).await.context("input `task-definition`")?,
        Some(TaskDefinitionSource::Revision(revision)) => {
            let (td, tags) = service::task_definition(&aws.ecs, revision)
                .await
                .with_context(|| format!("input `task-definition`: the revision `{revision}`"))?;
            known = td.task_definition_arn().map(str::to_string);
            (td, tags)
        }
        None => service::task_definition(&aws.ecs, &current_arn).await?,
    };
    let deployed_by = match &settings.task_definition {
        None => provenance::describe(&tags),
        Some(_) => None,
    };

    let rendered = taskdef::render(&current, settings.container_name.as_deref(), image, &settings.environment)
        .map_err(|message| anyhow!("{message}"))?;
    let first_image = current
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(rendered.container.as_str()))
        .and_then(|c| c.image())
        .map(taskdef::repository_of);
    let mut others = Vec::new();
    for name in &settings.also {
        others.push(other_service(settings, name, image, first_image, aws, gha).await?);
    }
    native::check_controller(&stable, &settings.service)?;
    let desired = settings.desired_count.unwrap_or(stable.desired_count());
    let strategy = match &settings.strategy {
        Strategy::Rolling => {
            native::refuse_ours_on_native(&stable, &settings.service, "rolling")?;
            StrategyPlan::Rolling
        }
        Strategy::Canary(canary) => {
            native::refuse_ours_on_native(&stable, &settings.service, "canary")?;
            StrategyPlan::Canary(Box::new(canary_plan(settings, canary, &stable, aws).await?))
        }
        Strategy::Ecs(ecs) => {
            match native::plan(&settings.service, ecs, &stable, settings.wait_timeout, desired, aws, gha).await? {
                Some(plan) => StrategyPlan::Native(Box::new(plan)),
                None => {
                    if native::has_gates(&ecs.gates) {
                        gha.warning(&format!(
                        "`{}` rolls (ECS's ROLLING strategy): the gates judge `strategy: canary` and ECS's BLUE_GREEN, LINEAR and CANARY, so they have no effect here",
                        settings.service
                    ));
                    }
                    StrategyPlan::Rolling
                }
            }
        }
    };
    let first = ServicePlan {
        service: settings.service.clone(),
        service_arn: stable.service_arn().unwrap_or_default().to_string(),
        desired_count: stable.desired_count(),
        new_desired_count: settings.desired_count,
        previous_task_definition_arn: current_arn,
        tags,
        deployed_by,
        drift: super::drift::of(&stable),
        as_is: known.filter(|_| rendered.changes.is_empty() && image.is_none()),
        rendered,
        strategy,
    };
    let first = match &settings.preview {
        Some(preview) => super::preview::plan(settings, preview, &stable, first, aws, gha).await?,
        None => first,
    };
    let drift: Vec<String> = std::iter::once(&first).chain(&others).flat_map(|s| s.drift.iter().cloned()).collect();
    super::drift::judge(&drift, settings.refuse_drift, gha)?;
    let scheduled = match &settings.scheduled_tasks {
        Some(named) => {
            let mut families: Vec<String> = std::iter::once(&first)
                .chain(&others)
                .filter_map(|s| s.rendered.task_definition.family().map(str::to_string))
                .collect();
            families.sort();
            families.dedup();
            let cluster_arn = stable.cluster_arn().unwrap_or_default();
            crate::schedules::find(aws, cluster_arn, &families, named.as_deref()).await?
        }
        None => Vec::new(),
    };
    Ok(DeployPlan {
        cluster: settings.cluster.clone(),
        services: std::iter::once(first).chain(others).collect(),
        wait_timeout: settings.wait_timeout,
        rollback: settings.rollback,
        keep_revisions: settings.keep_revisions,
        scheduled,
        parallel: settings.parallel,
        pre_deploy: settings.pre_deploy.clone().map(|command| {
            let run_as = crate::ecs::pre_deploy::RunAs {
                network: stable.network_configuration().cloned(),
                launch_type: stable.launch_type().cloned(),
                capacity: stable.capacity_provider_strategy().to_vec(),
            };
            (command, run_as)
        }),
    })
}

/// Another service of the run: its current revision rendered with the run's image and environment,
/// rolled out (`desired-count`, `task-definition` and the canary belong to the first service).
async fn other_service(
    settings: &DeploySettings,
    name: &str,
    image: Option<&str>,
    repository: Option<&str>,
    aws: &Aws,
    gha: &Gha,
) -> Result<ServicePlan> {
    let svc = settled(settings, name, aws, gha).await.context("input `service`")?;
    native::check_controller(&svc, name)?;
    // The gates and steps belong to the first service: another one of ECS's own strategies runs
    // as ECS is set up, watched and unjudged.
    let strategy = match (&settings.strategy, native::strategy_of(&svc)) {
        (_, None) => StrategyPlan::Rolling,
        (Strategy::Rolling, Some(_)) => {
            native::refuse_ours_on_native(&svc, name, "rolling")?;
            StrategyPlan::Rolling
        }
        (_, Some(_)) => {
            let unjudged = crate::config::EcsSettings {
                gates: crate::config::Gates::none(),
                check_interval: std::time::Duration::from_secs(10),
                named: false,
                approval: None,
            };
            let planned =
                native::plan(name, &unjudged, &svc, settings.wait_timeout, svc.desired_count(), aws, gha).await?;
            planned.map(|p| StrategyPlan::Native(Box::new(p))).unwrap_or(StrategyPlan::Rolling)
        }
    };
    let current_arn =
        svc.task_definition().ok_or_else(|| anyhow!("service `{name}` has no task definition"))?.to_string();
    let (current, tags) = service::task_definition(&aws.ecs, &current_arn).await?;
    let deployed_by = provenance::describe(&tags);
    let rendered = taskdef::pick_container(&current, settings.container_name.as_deref(), repository)
        .and_then(|container| taskdef::render(&current, container.as_deref(), image, &settings.environment))
        .map_err(|message| anyhow!("service `{name}`: {message}"))?;
    Ok(ServicePlan {
        service: name.to_string(),
        service_arn: svc.service_arn().unwrap_or_default().to_string(),
        desired_count: svc.desired_count(),
        new_desired_count: None,
        previous_task_definition_arn: current_arn,
        tags,
        deployed_by,
        drift: super::drift::of(&svc),
        rendered,
        as_is: None,
        strategy,
    })
}

async fn canary_plan(
    settings: &DeploySettings,
    canary: &CanarySettings,
    stable: &Service,
    aws: &Aws,
) -> Result<CanaryPlan> {
    let cluster = &settings.cluster;
    let canary_service = service::describe(&aws.ecs, cluster, &canary.canary_service).await.map_err(|e| {
        anyhow!(
            "{e:#}\nhint: a canary deploy needs a second service (`canary-service`, default `<service>-canary`) with desired count 0, attached to its own target group: see the README, \"Canary setup\""
        )
    })?;
    check_canary_idle(&canary_service, cluster, &canary.canary_service)?;
    let actions = listener::actions(&aws.elb, &canary.traffic).await?;
    let stable_tg = pick_target_group(stable, &settings.service, &actions)?;
    let canary_tg = pick_target_group(&canary_service, &canary.canary_service, &actions)?;
    if stable_tg == canary_tg {
        bail!(
            "services `{}` and `{}` use the same target group {stable_tg}: give the canary service its own target group",
            settings.service,
            canary.canary_service
        );
    }
    let weights = listener::weights(&actions, &stable_tg, &canary_tg, &canary.traffic)?;
    let restore =
        || listener::restore_commands(&canary.traffic, &stable_tg, &canary_tg, cluster, &canary.canary_service);
    check_weights(weights, restore)?;
    let target_groups = describe_target_groups(aws, &[stable_tg.clone(), canary_tg.clone()]).await?;
    let find = |arn: &str| {
        target_groups
            .iter()
            .find(|tg| tg.arn == arn)
            .cloned()
            .ok_or_else(|| anyhow!("target group {arn} was not found"))
    };
    let (stable_target_group, canary_target_group) = (find(&stable_tg)?, find(&canary_tg)?);
    check_alarms_exist(aws, &canary.gates.alarms).await?;
    let steps = canary
        .steps
        .iter()
        .map(|s| PlannedStep {
            weight: s.weight,
            bake: s.bake,
            canary_tasks: canary_tasks(settings.desired_count.unwrap_or(stable.desired_count()), s.weight),
        })
        .collect();
    Ok(CanaryPlan {
        canary_service: canary.canary_service.clone(),
        stable_target_group,
        canary_target_group,
        traffic: canary.traffic.clone(),
        steps,
        gates: canary.gates.clone(),
        check_interval: canary.check_interval,
    })
}

/// The service's target group that the forward action uses (a service may have several).
fn pick_target_group(
    service: &Service,
    name: &str,
    actions: &[aws_sdk_elasticloadbalancingv2::types::Action],
) -> Result<String> {
    let attached: Vec<&str> = service.load_balancers().iter().filter_map(|lb| lb.target_group_arn()).collect();
    let forwarded = |arn: &str| {
        actions.iter().any(|a| {
            a.target_group_arn() == Some(arn)
                || a.forward_config()
                    .is_some_and(|f| f.target_groups().iter().any(|g| g.target_group_arn() == Some(arn)))
        })
    };
    match attached.as_slice() {
        [] => bail!(
            "service `{name}` is not attached to a target group: a canary needs each service behind its own target group of the load balancer"
        ),
        [only] => Ok(only.to_string()),
        several => several.iter().find(|arn| forwarded(arn)).map(|arn| arn.to_string()).ok_or_else(|| {
            anyhow!("none of the target groups of service `{name}` ({}) is in the forward action", several.join(", "))
        }),
    }
}

pub(super) async fn describe_target_groups(aws: &Aws, arns: &[String]) -> Result<Vec<TargetGroup>> {
    let out = aws
        .elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetGroups", &e))
        .with_context(|| format!("could not describe the target groups {}", arns.join(", ")))?;
    out.target_groups()
        .iter()
        .map(|tg| {
            TargetGroup::described(tg.target_group_arn(), tg.target_group_name(), tg.load_balancer_arns().first())
        })
        .collect()
}

async fn check_alarms_exist(aws: &Aws, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let found = crate::alarms::alarm_states(aws, names)
        .await
        .context("could not read the CloudWatch alarms named in `alarms`")?;
    let missing: Vec<&str> = names.iter().map(String::as_str).filter(|n| !found.iter().any(|a| a.name == *n)).collect();
    if !missing.is_empty() {
        bail!(
            "input `alarms`: no CloudWatch alarm named {} in this account and region: check the names (they are case-sensitive)",
            missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// Idle: no task wanted. Tasks still running with a desired count of 0 are a finished run's, draining
/// from the canary target group until ECS stops them: they take no new request.
fn check_canary_idle(canary_service: &Service, cluster: &str, name: &str) -> Result<()> {
    if canary_service.desired_count() != 0 {
        return Err(Refused(format!(
            "canary service `{name}` is not idle (desired {}, running {}): another deploy is in flight or was abandoned. \
             If none is running, recover by setting the listener weights back to stable 100 / canary 0 and then: \
             aws ecs update-service --cluster {cluster} --service {name} --desired-count 0",
            canary_service.desired_count(),
            canary_service.running_count(),
        ))
        .into());
    }
    Ok(())
}

/// Traffic must be all on stable before a canary starts; otherwise the refusal carries the commands
/// (`restore`) that put it back.
fn check_weights(weights: (i32, i32), restore: impl FnOnce() -> String) -> Result<()> {
    if weights != (100, 0) {
        return Err(Refused(format!(
            "traffic is split stable {} / canary {}, not 100 / 0: a canary deploy is in flight or was abandoned. \
             Once nothing else is deploying, put all traffic back on the stable service and run again:\n{}",
            weights.0,
            weights.1,
            restore()
        ))
        .into());
    }
    Ok(())
}

/// What the plan assumed, asked again once this run holds the deploy lease (a run that ended
/// between our plan and our lease may have left the service elsewhere): the stable service still
/// runs the planned revision, and for a canary the canary service is idle and traffic is 100 / 0.
pub(crate) async fn recheck(deploy: &DeployPlan, aws: &Aws) -> Result<()> {
    for planned_service in &deploy.services {
        if let Some(point) = planned_service.strategy.native().and_then(|n| n.resume.as_ref()) {
            super::resume::recheck(aws, point).await?;
            continue;
        }
        if planned_service.strategy.preview().is_some_and(|p| p.create.is_some()) {
            continue;
        }
        let (name, planned) = (&planned_service.service, &planned_service.previous_task_definition_arn);
        let now = service::describe(&aws.ecs, &deploy.cluster, name).await?;
        if let Some(flight) = in_flight(&now) {
            return Err(Refused(format!(
                "`{name}` has a deployment in progress that started after this run planned: {flight}. Another \
                 deploy ran meanwhile: run again once it ended"
            ))
            .into());
        }
        if now.task_definition() != Some(planned.as_str()) {
            return Err(Refused(format!(
                "`{name}` changed since this run planned: it runs {}, not {planned}. Another deploy ran meanwhile: run again",
                now.task_definition().unwrap_or("no task definition"),
            ))
            .into());
        }
    }
    for c in deploy.services.iter().filter_map(|s| s.strategy.canary()) {
        let canary_service = service::describe(&aws.ecs, &deploy.cluster, &c.canary_service).await?;
        check_canary_idle(&canary_service, &deploy.cluster, &c.canary_service)?;
        let actions = listener::actions(&aws.elb, &c.traffic).await?;
        let (stable_tg, canary_tg) = (&c.stable_target_group.arn, &c.canary_target_group.arn);
        let weights = listener::weights(&actions, stable_tg, canary_tg, &c.traffic)?;
        check_weights(weights, || {
            listener::restore_commands(&c.traffic, stable_tg, canary_tg, &deploy.cluster, &c.canary_service)
        })?;
    }
    Ok(())
}
