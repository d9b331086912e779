//! What `setup` will change, decided from the survey alone (no I/O): each change with the sentence the
//! plan prints, or a refusal that says why nothing can be changed and what to do. A resource that is
//! already as the canary needs it is left alone and said to be in place.

use anyhow::{Result, bail};
use aws_sdk_elasticloadbalancingv2::types::TargetGroup;

use super::args::SetupArgs;
use super::survey::{Survey, target_group_name};
use crate::config::TrafficSource;
pub(crate) use crate::listener::forwarded;

/// One change, in the order they are applied: the target group first (the forward names it), then the
/// forward at 100/0 (traffic unchanged; ECS needs the target group attached to a load balancer before a
/// service may use it), then the service and the alarm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    TargetGroup,
    Forward,
    CanaryService,
    Alarm,
}

/// The canary's target group: made by this run, or there already.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CanaryTargetGroup {
    New(String),
    Existing(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Changes {
    pub(crate) changes: Vec<Change>,
    /// What is already as the canary needs it, a sentence each.
    pub(crate) in_place: Vec<String>,
    pub(crate) canary_tg: CanaryTargetGroup,
}

/// The changes that make `survey` what a canary deploy of `args.service` needs, or the refusal.
pub(crate) fn plan(args: &SetupArgs, survey: &Survey) -> Result<Changes> {
    let service = &args.service;
    refuse_other_controllers(args, survey)?;
    let stable = &survey.binding.target_group_arn;
    let mut changes = Vec::new();
    let mut in_place = Vec::new();
    let tg_name = target_group_name(&args.canary_service);
    let canary_tg = match &survey.canary_tg {
        Some(tg) => {
            same_shape(&survey.stable_tg, tg)?;
            in_place.push(format!(
                "target group `{tg_name}` exists (the same protocol, port, target type and VPC as `{service}`'s)"
            ));
            CanaryTargetGroup::Existing(tg.target_group_arn().unwrap_or_default().to_string())
        }
        None => {
            changes.push(Change::TargetGroup);
            CanaryTargetGroup::New(tg_name.clone())
        }
    };
    let where_ = source_words(&args.source);
    let groups = forwarded(&survey.actions);
    if !groups.iter().any(|(arn, _)| arn == stable) {
        let hint = match survey.forwarding_rules.as_slice() {
            [] => "make it forward to the service's target group (the listener's default action, or a rule named with --listener-rule-arn)".to_string(),
            [rule] => format!("the listener rule `{rule}` does: run again with --listener-rule-arn {rule}"),
            rules => format!(
                "{} rules of the listener do ({}): the canary splits one of them, so name it with --listener-rule-arn",
                rules.len(),
                rules.join(", ")
            ),
        };
        bail!("{where_} does not forward to `{service}`'s target group `{stable}`; {hint}");
    }
    let others: Vec<&(String, i32)> = groups.iter().filter(|(arn, _)| arn != stable).collect();
    let stable_weight = groups.iter().find(|(arn, _)| arn == stable).map(|(_, w)| *w).unwrap_or_default();
    match (others.as_slice(), &canary_tg) {
        ([], _) => changes.push(Change::Forward),
        ([(arn, 0)], CanaryTargetGroup::Existing(canary)) if arn == canary && stable_weight > 0 => {
            in_place.push(format!("{where_} forwards 100% to `{service}` and 0% to `{tg_name}`"))
        }
        ([(arn, weight)], CanaryTargetGroup::Existing(canary)) if arn == canary => {
            let restore =
                crate::listener::restore_commands(&args.source, stable, canary, &args.cluster, &args.canary_service);
            bail!(
                "{where_} sends weight {weight} to the canary's target group and {stable_weight} to `{service}`'s: a canary deploy is in progress or was left half-way; let it finish, or put all traffic back on `{service}` with:\n{restore}"
            )
        }
        (others, _) => bail!(
            "{where_} forwards to {} besides `{service}`'s target group: setup makes it a forward between `{service}`'s target group and the canary's alone, and will not decide for the others; remove them (or set up the canary by hand: README, \"Canary\")",
            others.iter().map(|(arn, w)| format!("`{arn}` (weight {w})")).collect::<Vec<_>>().join(", ")
        ),
    }
    match &survey.canary_service {
        None => changes.push(Change::CanaryService),
        Some(existing) => {
            check_canary_service(args, survey, existing, &canary_tg)?;
            in_place.push(format!(
                "service `{}` exists (the same task definition family, behind `{tg_name}`)",
                args.canary_service
            ));
        }
    }
    match &survey.alarm {
        None => changes.push(Change::Alarm),
        Some(_) => in_place.push(format!("alarm `{}` exists (left as it is)", args.alarm_name)),
    }
    Ok(Changes { changes, in_place, canary_tg })
}

/// `the listener's default action` / `the listener rule`, for sentences.
pub(crate) fn source_words(source: &TrafficSource) -> &'static str {
    match source {
        TrafficSource::ListenerDefault(_) => "the listener's default action",
        TrafficSource::Rule(_) => "the listener rule",
    }
}

fn refuse_other_controllers(args: &SetupArgs, survey: &Survey) -> Result<()> {
    let service = &args.service;
    if let Some(kind) = survey.service.deployment_controller().map(|c| c.r#type().as_str()).filter(|k| *k != "ECS") {
        bail!(
            "service `{service}` is deployed by the {kind} deployment controller: its traffic is shifted by that controller, not by listener weights a canary sets; deploy it the way it is set up"
        );
    }
    let strategy = survey.service.deployment_configuration().and_then(|c| c.strategy()).map(|s| s.as_str());
    if let Some(native) = strategy.filter(|s| *s != "ROLLING") {
        bail!(
            "service `{service}` uses ECS's own {native} strategy: it already has its blue and green target groups; deploy it with `strategy: ecs` (no setup needed)"
        );
    }
    Ok(())
}

/// An existing canary target group must take the same targets as the stable one.
pub(crate) fn same_shape(stable: &TargetGroup, canary: &TargetGroup) -> Result<()> {
    let name = canary.target_group_name().unwrap_or_default();
    let pairs = [
        (
            "protocol",
            stable.protocol().map(|p| p.as_str().to_string()),
            canary.protocol().map(|p| p.as_str().to_string()),
        ),
        ("port", stable.port().map(|p| p.to_string()), canary.port().map(|p| p.to_string())),
        (
            "target type",
            stable.target_type().map(|t| t.as_str().to_string()),
            canary.target_type().map(|t| t.as_str().to_string()),
        ),
        ("VPC", stable.vpc_id().map(str::to_string), canary.vpc_id().map(str::to_string)),
    ];
    for (what, a, b) in pairs {
        if a != b {
            bail!(
                "target group `{name}` exists with {what} {} where the service's has {}: it cannot take the canary's tasks; delete it, or name another canary service with --canary-service",
                b.unwrap_or_else(|| "unset".into()),
                a.unwrap_or_else(|| "unset".into())
            );
        }
    }
    Ok(())
}

fn check_canary_service(
    args: &SetupArgs,
    survey: &Survey,
    existing: &aws_sdk_ecs::types::Service,
    tg: &CanaryTargetGroup,
) -> Result<()> {
    let name = &args.canary_service;
    let other = "name another with --canary-service";
    if existing.status() != Some("ACTIVE") {
        bail!(
            "service `{name}` is {}: wait until ECS has finished deleting it, or {other}",
            existing.status().unwrap_or("in an unknown state")
        );
    }
    let family = |s: &aws_sdk_ecs::types::Service| {
        crate::text::family_revision(s.task_definition().unwrap_or_default())
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    if family(existing) != family(&survey.service) {
        bail!(
            "service `{name}` exists and runs task definition family `{}`, not `{}`'s `{}`: it is not this service's canary; {other}",
            family(existing),
            args.service,
            family(&survey.service)
        );
    }
    let behind: Vec<&str> = existing.load_balancers().iter().filter_map(|lb| lb.target_group_arn()).collect();
    match tg {
        CanaryTargetGroup::Existing(arn) if behind == [arn.as_str()] => Ok(()),
        _ => bail!(
            "service `{name}` exists behind {} instead of the canary's target group `{}`: ECS cannot change a service's target groups in place; delete it, or {other}",
            if behind.is_empty() { "no target group".to_string() } else { behind.join(", ") },
            target_group_name(name)
        ),
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
