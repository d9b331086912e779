//! `setup --native`: what ECS's own BLUE_GREEN, LINEAR or CANARY needs from a plain service behind
//! an ALB: a green target group, a production listener rule forwarding 100/0 to blue and green, and
//! the service's deployment configuration with the load balancer's advanced configuration. Planned
//! from the survey (pure), printed with its AWS CLI, made with `--apply`, undone in reverse on a failure.

use anyhow::{Context as _, Result, anyhow, bail};
use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentConfiguration, DeploymentStrategy, LinearConfiguration,
    LoadBalancer,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, RuleCondition, TargetGroupTuple,
};

use super::args::{Native, SetupArgs};
use super::changes::{CanaryTargetGroup, forwarded, same_shape, source_words};
use super::survey::{Survey, target_group_name};
use crate::aws::{Aws, call_failed};
use crate::config::TrafficSource;
use crate::ecs::copies::configure_load_balancing;
use crate::gha::Gha;
use crate::listener;

/// ECS's own strategy's settings `setup` gives: the final bake, and the steps of LINEAR and CANARY.
pub(super) const BAKE_MINUTES: i32 = 5;
const LINEAR_STEP: (f64, i32) = (20.0, 2);
const CANARY_STEP: (f64, i32) = (10.0, 5);

/// The green target group's name: `<service>-green`, cut to ELB's 32 characters.
pub(crate) fn green_name(service: &str) -> String {
    target_group_name(&format!("{service}-green"))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NativeChange {
    GreenTargetGroup,
    /// The given rule's forward made weighted, 100 to blue and 0 to green.
    WeightedRule(String),
    /// A rule on the listener matching every path, at this priority (after the listener's others).
    NewRule(i32),
    Service,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NativePlan {
    pub(crate) changes: Vec<NativeChange>,
    pub(crate) in_place: Vec<String>,
    pub(super) green: CanaryTargetGroup,
    /// The production rule, when it exists before the run.
    pub(super) rule: Option<String>,
}

/// The changes that give `survey`'s service ECS's `kind` strategy, or the refusal.
pub(crate) fn plan(args: &SetupArgs, survey: &Survey, kind: Native) -> Result<NativePlan> {
    let service = &args.service;
    if let Some(controller) =
        survey.service.deployment_controller().map(|c| c.r#type().as_str()).filter(|k| *k != "ECS")
    {
        bail!(
            "service `{service}` is deployed by the {controller} deployment controller; ECS's own strategies need the ECS controller"
        );
    }
    let stable = &survey.binding.target_group_arn;
    let (mut changes, mut in_place) = (Vec::new(), Vec::new());
    let name = green_name(service);
    let green = match &survey.green_tg {
        Some(tg) => {
            same_shape(&survey.stable_tg, tg)?;
            in_place.push(format!("target group `{name}` exists (the same protocol, port, target type and VPC)"));
            CanaryTargetGroup::Existing(tg.target_group_arn().unwrap_or_default().to_string())
        }
        None => {
            changes.push(NativeChange::GreenTargetGroup);
            CanaryTargetGroup::New(name.clone())
        }
    };
    let is_green = |arn: &str| matches!(&green, CanaryTargetGroup::Existing(g) if g == arn);
    let weighted = |groups: &[(String, i32)]| {
        groups.len() == 2
            && groups.iter().any(|(a, w)| a == stable && *w > 0)
            && groups.iter().any(|(a, w)| is_green(a) && *w == 0)
    };
    let where_ = source_words(&args.source);
    let rule = match &args.source {
        TrafficSource::Rule(arn) => {
            let groups = forwarded(&survey.actions);
            if weighted(&groups) {
                in_place.push(format!("{where_} forwards 100% to `{service}`'s target group and 0% to `{name}`"));
            } else if groups.len() == 1 && groups[0].0 == *stable {
                changes.push(NativeChange::WeightedRule(arn.clone()));
            } else {
                bail!(
                    "{where_} forwards to {}: setup makes a rule that forwards to `{service}`'s target group alone weighted (100 to it, 0 to green), and will not decide for other target groups or a split in progress",
                    groups.iter().map(|(a, w)| format!("`{a}` (weight {w})")).collect::<Vec<_>>().join(", ")
                );
            }
            Some(arn.clone())
        }
        TrafficSource::ListenerDefault(_) => {
            if !forwarded(&survey.actions).iter().any(|(a, _)| a == stable) {
                let hint = match survey.forwarding_rules.as_slice() {
                    [rule] => format!("the listener rule `{rule}` does: run again with --listener-rule-arn {rule}"),
                    _ => "name the rule that does with --listener-rule-arn".to_string(),
                };
                bail!("{where_} does not forward to `{service}`'s target group `{stable}`; {hint}");
            }
            match survey.rules.iter().find(|r| weighted(&forwarded(r.actions()))) {
                Some(r) => {
                    let arn = r.rule_arn().unwrap_or_default().to_string();
                    in_place.push(format!(
                        "listener rule `{arn}` forwards 100% to `{service}`'s target group and 0% to `{name}`"
                    ));
                    Some(arn)
                }
                None => {
                    changes.push(NativeChange::NewRule(free_priority(survey)?));
                    None
                }
            }
        }
    };
    let lb = survey.service.load_balancers().iter().find(|lb| lb.target_group_arn() == Some(stable));
    let advanced = lb.and_then(|lb| lb.advanced_configuration());
    let strategy =
        survey.service.deployment_configuration().and_then(|c| c.strategy()).map(|s| s.as_str()).unwrap_or("ROLLING");
    let wired = advanced.is_some_and(|a| {
        a.alternate_target_group_arn().is_some_and(&is_green)
            && rule.as_deref().is_some_and(|r| a.production_listener_rule() == Some(r))
            && a.role_arn() == args.native.as_ref().map(|(_, role)| role.as_str())
    });
    if wired && strategy == strategy_of(kind).as_str() {
        in_place.push(format!("service `{service}` deploys with ECS's {strategy} strategy through `{name}`"));
    } else if strategy != "ROLLING" || advanced.is_some() {
        bail!(
            "service `{service}` already has ECS's {strategy} strategy or a blue/green load balancer configuration, not the one setup would make: setup does not change it; change it with `aws ecs update-service --deployment-configuration … --load-balancers …`"
        );
    } else {
        changes.push(NativeChange::Service);
    }
    Ok(NativePlan { changes, in_place, green, rule })
}

pub(super) fn strategy_of(kind: Native) -> DeploymentStrategy {
    match kind {
        Native::BlueGreen => DeploymentStrategy::BlueGreen,
        Native::Linear => DeploymentStrategy::Linear,
        Native::Canary => DeploymentStrategy::Canary,
    }
}

/// The highest priority no rule of the listener has: the new rule comes after every other one.
fn free_priority(survey: &Survey) -> Result<i32> {
    let used: Vec<i32> = survey.rules.iter().filter_map(|r| r.priority().and_then(|p| p.parse().ok())).collect();
    (1..=50_000).rev().find(|p| !used.contains(p)).ok_or_else(|| anyhow!("the listener has no free rule priority"))
}

/// The service's deployment configuration with `kind`'s strategy and steps, the rest kept.
pub(super) fn configuration(survey: &Survey, kind: Native) -> DeploymentConfiguration {
    let mut c = survey
        .service
        .deployment_configuration()
        .cloned()
        .unwrap_or_else(|| DeploymentConfiguration::builder().build());
    c.strategy = Some(strategy_of(kind));
    c.bake_time_in_minutes = Some(BAKE_MINUTES);
    match kind {
        Native::Linear => {
            let (step, bake) = LINEAR_STEP;
            c.linear_configuration =
                Some(LinearConfiguration::builder().step_percent(step).step_bake_time_in_minutes(bake).build());
        }
        Native::Canary => {
            let (share, bake) = CANARY_STEP;
            c.canary_configuration =
                Some(CanaryConfiguration::builder().canary_percent(share).canary_bake_time_in_minutes(bake).build());
        }
        Native::BlueGreen => {}
    }
    c
}

/// A change as the plan says it.
pub(crate) fn describe(change: &NativeChange, args: &SetupArgs, survey: &Survey) -> String {
    let name = green_name(&args.service);
    let blue = survey.stable_tg.target_group_name().unwrap_or_default();
    match change {
        NativeChange::GreenTargetGroup => {
            format!("create target group `{name}` (green), a clone of `{blue}` (protocol, port, VPC, health check)")
        }
        NativeChange::WeightedRule(_) => format!(
            "make the listener rule a weighted forward: 100% to `{blue}`, 0% to `{name}` (the traffic does not change)"
        ),
        NativeChange::NewRule(p) => format!(
            "create a listener rule at priority {p} (after the others) matching every path: 100% to `{blue}`, 0% to `{name}` (the default action's traffic, unchanged)"
        ),
        NativeChange::Service => {
            let (kind, role) = args.native.clone().unwrap_or((Native::BlueGreen, String::new()));
            let steps = match kind {
                Native::Linear => format!(", {}% steps {} min apart", LINEAR_STEP.0, LINEAR_STEP.1),
                Native::Canary => format!(", {}% for {} min first", CANARY_STEP.0, CANARY_STEP.1),
                Native::BlueGreen => String::new(),
            };
            format!(
                "set service `{}`'s deployment configuration: ECS's {} strategy{steps}, bake {BAKE_MINUTES} min; green `{name}`, the production rule, role {role} (nothing is deployed)",
                args.service,
                strategy_of(kind).as_str()
            )
        }
    }
}

/// What this run made, for the undo.
enum Made {
    TargetGroup(String),
    RuleWeighted,
    RuleCreated(String),
    Service,
}

/// Makes the plan's changes; on a failure undoes what it made, newest first.
pub(crate) async fn apply(aws: &Aws, args: &SetupArgs, survey: &Survey, plan: &NativePlan, gha: &Gha) -> Result<()> {
    let Some((kind, role)) = &args.native else { bail!("not a --native setup") };
    let mut green = match &plan.green {
        CanaryTargetGroup::Existing(arn) => Some(arn.clone()),
        CanaryTargetGroup::New(_) => None,
    };
    let mut rule = plan.rule.clone();
    let mut made = Vec::new();
    let stable = &survey.binding.target_group_arn;
    for (i, change) in plan.changes.iter().enumerate() {
        gha.info(&format!("  {}/{} {}", i + 1, plan.changes.len(), describe(change, args, survey)));
        let green_arn = || green.clone().ok_or_else(|| anyhow!("the green target group is not made yet"));
        let result = match change {
            NativeChange::GreenTargetGroup => {
                let arn =
                    super::apply::clone_target_group(aws, &green_name(&args.service), &args.service, survey).await;
                arn.map(|arn| {
                    green = Some(arn.clone());
                    Made::TargetGroup(arn)
                })
            }
            NativeChange::WeightedRule(arn) => match green_arn() {
                Ok(g) => listener::set_weights(&aws.elb, &TrafficSource::Rule(arn.clone()), stable, &g, (100, 0))
                    .await
                    .map(|()| Made::RuleWeighted),
                Err(e) => Err(e),
            },
            NativeChange::NewRule(priority) => match green_arn() {
                Ok(g) => create_rule(aws, args, stable, &g, *priority).await.map(|arn| {
                    rule = Some(arn.clone());
                    Made::RuleCreated(arn)
                }),
                Err(e) => Err(e),
            },
            NativeChange::Service => match (green_arn(), rule.clone()) {
                (Ok(g), Some(r)) => {
                    let advanced = AdvancedConfiguration::builder()
                        .alternate_target_group_arn(g)
                        .production_listener_rule(r)
                        .role_arn(role)
                        .build();
                    let lb = LoadBalancer::builder()
                        .target_group_arn(stable)
                        .container_name(&survey.binding.container_name)
                        .container_port(survey.binding.container_port)
                        .advanced_configuration(advanced)
                        .build();
                    let c = configuration(survey, *kind);
                    configure_load_balancing(&aws.ecs, &args.cluster, &args.service, c, vec![lb])
                        .await
                        .map(|()| Made::Service)
                }
                (Err(e), _) => Err(e),
                (_, None) => Err(anyhow!("the production rule is not made yet")),
            },
        };
        match result {
            Ok(m) => made.push(m),
            Err(e) => return Err(super::apply::failed(e, undo(aws, args, survey, made, gha).await)),
        }
    }
    Ok(())
}

async fn create_rule(aws: &Aws, args: &SetupArgs, stable: &str, green: &str, priority: i32) -> Result<String> {
    let TrafficSource::ListenerDefault(listener) = &args.source else { bail!("a new rule goes on a listener") };
    let groups =
        [(stable, 100), (green, 0)].map(|(arn, w)| TargetGroupTuple::builder().target_group_arn(arn).weight(w).build());
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(ForwardActionConfig::builder().set_target_groups(Some(groups.to_vec())).build())
        .build();
    let out = aws
        .elb
        .create_rule()
        .listener_arn(listener)
        .priority(priority)
        .conditions(RuleCondition::builder().field("path-pattern").values("/*").build())
        .actions(forward)
        .send()
        .await
        .map_err(|e| call_failed("ELB CreateRule", &e))
        .with_context(|| format!("could not create the production listener rule on `{listener}`"))?;
    out.rules()
        .first()
        .and_then(|r| r.rule_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("ELB created a rule without saying its ARN"))
}

async fn undo(aws: &Aws, args: &SetupArgs, survey: &Survey, made: Vec<Made>, gha: &Gha) -> Option<String> {
    let mut left = Vec::new();
    for m in made.into_iter().rev() {
        let (what, result) = match &m {
            Made::Service => {
                let before = survey
                    .service
                    .deployment_configuration()
                    .cloned()
                    .unwrap_or_else(|| DeploymentConfiguration::builder().build());
                let lbs = survey.service.load_balancers().to_vec();
                (
                    format!("service `{}`'s deployment configuration", args.service),
                    configure_load_balancing(&aws.ecs, &args.cluster, &args.service, before, lbs).await,
                )
            }
            Made::RuleCreated(arn) => (
                format!("listener rule `{arn}` (aws elbv2 delete-rule --rule-arn {arn})"),
                aws.elb
                    .delete_rule()
                    .rule_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("ELB DeleteRule", &e)),
            ),
            Made::RuleWeighted => (
                "the listener rule's weighted forward".to_string(),
                listener::put_actions(&aws.elb, &args.source, survey.actions.clone()).await,
            ),
            Made::TargetGroup(arn) => (
                format!("target group `{arn}` (aws elbv2 delete-target-group --target-group-arn {arn})"),
                super::apply::delete_target_group(aws, arn).await,
            ),
        };
        super::apply::said_undone(what, result, &mut left, gha);
    }
    (!left.is_empty()).then(|| left.join("; "))
}
