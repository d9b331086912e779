//! ECS's own strategies in the plan: each service's deployment controller and strategy are read
//! before any change. CODE_DEPLOY and EXTERNAL are refused; BLUE_GREEN, LINEAR and CANARY are planned
//! as ECS will run them (its shifts and bakes, blue and green from the production rule's weights) with
//! the pauses where the gates judge; the action's own canary and `rolling` are refused on them.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentControllerType, DeploymentLifecycleHook, DeploymentLifecycleHookAction,
    DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType, DeploymentStrategy, Service,
};
use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;

use super::{PlannedStep, TargetGroup};
use crate::aws::{Aws, call_failed};
use crate::config::{Approval, EcsSettings, Gates};
use crate::failure::Refused;

/// One of ECS's own strategies, planned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NativePlan {
    /// `BLUE_GREEN`, `LINEAR` or `CANARY`.
    pub(crate) strategy: String,
    /// ECS's production shifts: green's share after each, and the wait after it (the last one's is
    /// the bake before blue goes).
    pub(crate) steps: Vec<PlannedStep>,
    pub(crate) production_rule: String,
    pub(crate) test_rule: Option<String>,
    /// Where production traffic is now (the production rule's 100).
    pub(crate) blue: TargetGroup,
    /// Where ECS starts the new revision's tasks (the rule's 0).
    pub(crate) green: TargetGroup,
    /// The service's deployment configuration as it is: sent with the pauses added, put back after.
    pub(crate) configuration: DeploymentConfiguration,
    /// Where the action pauses ECS to judge, in the order ECS reaches them (empty without gates).
    pub(crate) pauses: Vec<DeploymentLifecycleHookStage>,
    /// Each pause's timeout, after which ECS rolls back by itself (nobody left to judge).
    pub(crate) pause_timeout_minutes: i32,
    pub(crate) gates: Gates,
    pub(crate) check_interval: Duration,
    /// Alarms ECS itself rolls back on (`deploymentConfiguration.alarms` with rollback).
    pub(crate) ecs_alarms: Vec<String>,
    /// Where the deploy stops for people (`approval`): the job ends there, paused.
    pub(crate) approval: Option<Approval>,
    /// A run that answers a deploy paused for approval starts at its pause, not with an update.
    pub(crate) resume: Option<super::resume::ResumePoint>,
}

impl NativePlan {
    /// Whether the action judges at all (any gate configured): without, it watches ECS only.
    pub(crate) fn judged(&self) -> bool {
        has_gates(&self.gates)
    }

    /// Whether the pause ECS holds now (green on `production`%) is the one people approve.
    pub(crate) fn approval_due(&self, production: f64) -> bool {
        match self.approval {
            Some(Approval::BeforeProduction) => production <= 0.0,
            Some(Approval::AfterFirstShift) => production > 0.0,
            None => false,
        }
    }
}

/// Whether a hook of a service's configuration is one the action adds (a PAUSE at the stages where
/// it judges, timing out into ROLLBACK): a service's own PAUSE there is refused by the plan, so none
/// is mistaken for ours.
pub(crate) fn is_ours(hook: &DeploymentLifecycleHook) -> bool {
    hook.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
        && hook.timeout_configuration().and_then(|t| t.action()) == Some(&DeploymentLifecycleHookAction::Rollback)
        && !hook.lifecycle_stages().is_empty()
        && hook.lifecycle_stages().iter().all(|s| JUDGED_AT.contains(s))
}

/// The stages where the action pauses ECS, in the order ECS reaches them.
pub(super) const JUDGED_AT: [DeploymentLifecycleHookStage; 2] =
    [DeploymentLifecycleHookStage::PostTestTrafficShift, DeploymentLifecycleHookStage::PreProductionTrafficShift];

pub(crate) fn has_gates(gates: &Gates) -> bool {
    !gates.alarms.is_empty()
        || gates.max_error_rate.is_some()
        || gates.max_latency.is_some()
        || gates.probe_url.is_some()
}

/// Refuses a service another controller deploys: the action's UpdateService would fail late, or
/// bypass CodeDeploy's own process.
pub(crate) fn check_controller(service: &Service, name: &str) -> Result<()> {
    let controller = service.deployment_controller().map(|c| c.r#type());
    match controller {
        None | Some(DeploymentControllerType::Ecs) => Ok(()),
        Some(other) => Err(Refused(format!(
            "service `{name}` is deployed by the {} deployment controller, not ECS: this action deploys services of \
             the ECS controller (rolling, its own canary, or ECS's BLUE_GREEN, LINEAR and CANARY strategies). \
             Deploy it with {}, or move it to ECS's own blue/green (deploymentController ECS with \
             deploymentConfiguration.strategy BLUE_GREEN) and run again",
            other.as_str(),
            match other {
                DeploymentControllerType::CodeDeploy => "AWS CodeDeploy (aws deploy create-deployment)",
                _ => "the tool that manages its task sets",
            }
        ))
        .into()),
    }
}

/// The service's own strategy when it is one of ECS's traffic-shifting ones.
pub(crate) fn strategy_of(service: &Service) -> Option<&DeploymentStrategy> {
    service.deployment_configuration().and_then(|c| c.strategy()).filter(|s| {
        matches!(s, DeploymentStrategy::BlueGreen | DeploymentStrategy::Linear | DeploymentStrategy::Canary)
    })
}

/// Refuses the action's own `rolling` or `canary` on a service ECS deploys with its own strategy.
pub(crate) fn refuse_ours_on_native(service: &Service, name: &str, ours: &str) -> Result<()> {
    let Some(strategy) = strategy_of(service) else { return Ok(()) };
    let why = match ours {
        "canary" => format!(
            "`strategy: canary` shifts weights between `{name}` and a second service, but `{name}` is set up for ECS's own \
             {} strategy, which shifts traffic itself between its blue and green target groups: the two would fight \
             over the listener. Use `strategy: ecs` (ECS runs the shifts, the action's gates judge them at pauses), or \
             set the service's deploymentConfiguration.strategy to ROLLING to use the action's canary",
            strategy.as_str()
        ),
        _ => format!(
            "`strategy: rolling`, but ECS deploys `{name}` with its {} strategy, not a rolling update: remove `strategy` \
             (or write `strategy: ecs`) to deploy it as ECS is set up to, judged by the gates",
            strategy.as_str()
        ),
    };
    Err(Refused(why).into())
}

/// The plan of a native deploy of `service` (None when ECS would roll it: ROLLING).
pub(crate) async fn plan(
    name: &str,
    settings: &EcsSettings,
    service: &Service,
    wait_timeout: Duration,
    desired: i32,
    aws: &Aws,
    gha: &crate::gha::Gha,
) -> Result<Option<NativePlan>> {
    let Some(strategy) = strategy_of(service).cloned() else {
        if settings.named {
            return Err(Refused(format!(
                "`strategy: ecs` judges ECS's own BLUE_GREEN, LINEAR or CANARY deployments, and `{name}` is set up for \
                 {}: set its deploymentConfiguration.strategy (with an alternate target group and listener rules: see \
                 the README, \"ECS's own strategies\"), or use `strategy: rolling` or `canary`",
                service.deployment_configuration().and_then(|c| c.strategy()).map(|s| s.as_str()).unwrap_or("ROLLING")
            ))
            .into());
        }
        return Ok(None);
    };
    let configuration =
        service.deployment_configuration().cloned().unwrap_or_else(|| DeploymentConfiguration::builder().build());
    // A pause for approval nobody answered left the action's hooks on the service: they are not
    // the service's own, and go with this deploy.
    let (configuration, left) = without_ours(&configuration);
    if !left.is_empty() {
        let stages: Vec<&str> = left.iter().flat_map(|h| h.lifecycle_stages()).map(|s| s.as_str()).collect();
        gha.info(&format!(
            "`{name}` still has the PAUSE hooks an earlier run of this action added ({}): removed with this deploy",
            stages.join(", ")
        ));
    }
    let wiring = wiring(service, name, &strategy)?;
    let (blue_arn, green_arn) = production_sides(aws, &wiring.production_rule, &wiring.pair).await?;
    let (blue, green) = target_groups(aws, &blue_arn, &green_arn).await?;
    let (steps, pauses) = steps_and_pauses(
        &strategy,
        &configuration,
        desired,
        has_gates(&settings.gates),
        wiring.test_rule.is_some(),
        settings.approval,
    );
    if settings.approval == Some(Approval::AfterFirstShift) && steps.len() < 2 {
        return Err(Refused(format!(
            "input `approval`: `after-first-shift` stops after green's first share of production, and ECS's {} moves \
             all of it at once: use `approval: before-production` (green on the test route, before production)",
            strategy.as_str()
        ))
        .into());
    }
    refuse_pauses_of_others(&configuration, &pauses, name)?;
    let cluster = service.cluster_arn().map(|c| c.rsplit('/').next().unwrap_or(c)).unwrap_or_default();
    crate::ecs::deployments::can_follow(&aws.ecs, cluster, name, service.service_arn().unwrap_or_default()).await?;
    let ecs_alarms = rollback_alarms(&configuration);
    let minutes = wait_timeout.as_secs().div_ceil(60).max(1);
    Ok(Some(NativePlan {
        strategy: strategy.as_str().to_string(),
        steps,
        production_rule: wiring.production_rule,
        test_rule: wiring.test_rule,
        blue,
        green,
        configuration,
        pauses,
        pause_timeout_minutes: i32::try_from(minutes).unwrap_or(i32::MAX),
        gates: settings.gates.clone(),
        check_interval: settings.check_interval,
        ecs_alarms,
        approval: settings.approval,
        resume: None,
    }))
}

/// ECS's blue/green wiring of a service, from its load balancer's advancedConfiguration.
pub(super) struct Wiring {
    pub(super) production_rule: String,
    pub(super) test_rule: Option<String>,
    /// The service's target group and the alternate one (which is blue depends on the rule's weights).
    pub(super) pair: [String; 2],
}

pub(super) fn wiring(service: &Service, name: &str, strategy: &DeploymentStrategy) -> Result<Wiring> {
    let lb = service
        .load_balancers()
        .iter()
        .find(|lb| lb.advanced_configuration().is_some())
        .ok_or_else(|| anyhow!("service `{name}` uses ECS's {} strategy but none of its load balancers has an advancedConfiguration (alternate target group, production listener rule): fix the service", strategy.as_str()))?;
    let advanced = lb.advanced_configuration().ok_or_else(|| anyhow!("no advancedConfiguration"))?;
    let production_rule = advanced
        .production_listener_rule()
        .ok_or_else(|| anyhow!("service `{name}`: advancedConfiguration has no productionListenerRule"))?
        .to_string();
    let pair = [
        lb.target_group_arn().unwrap_or_default().to_string(),
        advanced.alternate_target_group_arn().unwrap_or_default().to_string(),
    ];
    Ok(Wiring { production_rule, test_rule: advanced.test_listener_rule().map(str::to_string), pair })
}

/// Blue's and green's target groups as ELB describes them.
pub(super) async fn target_groups(aws: &Aws, blue: &str, green: &str) -> Result<(TargetGroup, TargetGroup)> {
    let groups = super::resolve::describe_target_groups(aws, &[blue.to_string(), green.to_string()]).await?;
    let find = |arn: &str| {
        groups.iter().find(|tg| tg.arn == arn).cloned().ok_or_else(|| anyhow!("target group {arn} was not found"))
    };
    Ok((find(blue)?, find(green)?))
}

/// `config` without the action's own PAUSE hooks, and those hooks.
pub(super) fn without_ours(
    config: &DeploymentConfiguration,
) -> (DeploymentConfiguration, Vec<DeploymentLifecycleHook>) {
    let (ours, theirs): (Vec<_>, Vec<_>) = config.lifecycle_hooks().iter().cloned().partition(is_ours);
    let mut config = config.clone();
    if !ours.is_empty() {
        config.lifecycle_hooks = (!theirs.is_empty()).then_some(theirs);
    }
    (config, ours)
}

/// The alarms ECS itself rolls back on (`deploymentConfiguration.alarms` with rollback).
pub(super) fn rollback_alarms(config: &DeploymentConfiguration) -> Vec<String> {
    config.alarms().filter(|a| a.enable() && a.rollback()).map(|a| a.alarm_names().to_vec()).unwrap_or_default()
}

/// ECS's shifts for `strategy` (green's share after each, and the wait after it) and the stages where
/// the action pauses ECS to judge: after the test shift (the probe through the test rule), and, for
/// LINEAR and CANARY, before each production shift (the last shift's traffic, since its step bake).
/// ECS allows no pause during BAKE_TIME: the gates judge it as it runs, and a failure stops the
/// deployment with a rollback. An `approval` adds the pause people answer: after the test shift
/// (before production: the pause before the first production shift without a test rule), or after
/// the first production shift.
pub(crate) fn steps_and_pauses(
    strategy: &DeploymentStrategy,
    config: &DeploymentConfiguration,
    desired: i32,
    gates: bool,
    test_rule: bool,
    approval: Option<Approval>,
) -> (Vec<PlannedStep>, Vec<DeploymentLifecycleHookStage>) {
    let minutes = |m: Option<i32>, default: i32| {
        Duration::from_secs(u64::try_from(m.unwrap_or(default).max(0)).unwrap_or(0) * 60)
    };
    let bake = minutes(config.bake_time_in_minutes(), 0);
    let shares: Vec<(f64, Duration)> = match strategy {
        DeploymentStrategy::Linear => {
            let linear = config.linear_configuration();
            let step = linear.and_then(|l| l.step_percent()).unwrap_or(10.0).clamp(0.1, 100.0);
            let wait = minutes(linear.and_then(|l| l.step_bake_time_in_minutes()), 6);
            let n = (100.0 / step - 1e-9).ceil() as usize;
            (1..=n).map(|k| ((step * k as f64).min(100.0), wait)).collect()
        }
        DeploymentStrategy::Canary => {
            let canary = config.canary_configuration();
            let percent = canary.and_then(|c| c.canary_percent()).unwrap_or(5.0);
            vec![(percent, minutes(canary.and_then(|c| c.canary_bake_time_in_minutes()), 10)), (100.0, Duration::ZERO)]
        }
        _ => vec![(100.0, Duration::ZERO)],
    };
    let last = shares.len().saturating_sub(1);
    let steps = shares
        .iter()
        .enumerate()
        .map(|(i, (share, wait))| PlannedStep {
            weight: share.round().clamp(1.0, 100.0) as u8,
            bake: if i == last { bake } else { *wait },
            canary_tasks: desired,
        })
        .collect();
    let before = approval == Some(Approval::BeforeProduction);
    let mut pauses = Vec::new();
    if test_rule && (gates || before) {
        pauses.push(DeploymentLifecycleHookStage::PostTestTrafficShift);
    }
    if (gates && shares.len() > 1) || (before && !test_rule) || approval == Some(Approval::AfterFirstShift) {
        pauses.push(DeploymentLifecycleHookStage::PreProductionTrafficShift);
    }
    (steps, pauses)
}

/// Green's and blue's target groups: blue takes the production rule's traffic (100), green none.
async fn production_sides(aws: &Aws, rule: &str, pair: &[String; 2]) -> Result<(String, String)> {
    let (a, b) = rule_weights(aws, rule, pair).await?;
    match (a > 0, b > 0) {
        (true, false) => Ok((pair[0].clone(), pair[1].clone())),
        (false, true) => Ok((pair[1].clone(), pair[0].clone())),
        _ => Err(Refused(format!(
            "production traffic is split {a}/{b} between the service's target groups on `{rule}`: a deployment of ECS's \
             own strategy is in flight or was stopped half-way. Let it end (or roll it back: aws ecs \
             stop-service-deployment --stop-type ROLLBACK) and run again"
        ))
        .into()),
    }
}

/// The weights `rule` forwards to each of `pair` (a plain forward to one is its 1).
pub(super) async fn rule_weights(aws: &Aws, rule: &str, pair: &[String; 2]) -> Result<(i32, i32)> {
    let out = aws
        .elb
        .describe_rules()
        .rule_arns(rule)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeRules", &e))
        .with_context(|| format!("could not read the listener rule `{rule}` of ECS's blue/green setup"))?;
    let forward = out
        .rules()
        .first()
        .and_then(|r| r.actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward)))
        .ok_or_else(|| anyhow!("the listener rule `{rule}` does not forward to target groups"))?;
    let weight = |arn: &str| {
        forward
            .forward_config()
            .and_then(|f| f.target_groups().iter().find(|g| g.target_group_arn() == Some(arn)))
            .and_then(|g| g.weight())
            .unwrap_or(if forward.target_group_arn() == Some(arn) { 1 } else { 0 })
    };
    Ok((weight(&pair[0]), weight(&pair[1])))
}

/// A PAUSE hook the service has of its own at a stage where the action pauses would be answered by
/// the action's judgement, which is not what its owner set it up for.
fn refuse_pauses_of_others(
    config: &DeploymentConfiguration,
    ours: &[DeploymentLifecycleHookStage],
    name: &str,
) -> Result<()> {
    for hook in config.lifecycle_hooks() {
        if hook.target_type() != Some(&DeploymentLifecycleHookTargetType::Pause) {
            continue;
        }
        if let Some(stage) = hook.lifecycle_stages().iter().find(|s| ours.contains(s)) {
            return Err(Refused(format!(
                "service `{name}` has a PAUSE hook of its own at {}, where the action pauses ECS to run the gates: the \
                 action would answer it. Remove that hook from the service's deploymentConfiguration, or remove the gates \
                 to leave the pause to people",
                stage.as_str()
            ))
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{CanaryConfiguration, LinearConfiguration};

    use super::*;

    fn weights(steps: &[PlannedStep]) -> Vec<(u8, u64)> {
        steps.iter().map(|s| (s.weight, s.bake.as_secs())).collect()
    }

    #[test]
    fn ecs_shifts_as_the_reference_describes_them_with_the_bake_after_the_last() {
        let linear = DeploymentConfiguration::builder()
            .bake_time_in_minutes(3)
            .linear_configuration(
                LinearConfiguration::builder().step_percent(25.0).step_bake_time_in_minutes(2).build(),
            )
            .build();
        let (steps, pauses) = steps_and_pauses(&DeploymentStrategy::Linear, &linear, 4, true, true, None);
        assert_eq!(weights(&steps), [(25, 120), (50, 120), (75, 120), (100, 180)]);
        assert_eq!(
            pauses,
            [
                DeploymentLifecycleHookStage::PostTestTrafficShift,
                DeploymentLifecycleHookStage::PreProductionTrafficShift
            ]
        );
        // A step that does not divide 100 ends on 100, as ECS's last shift does.
        let odd = DeploymentConfiguration::builder()
            .linear_configuration(LinearConfiguration::builder().step_percent(30.0).build())
            .build();
        assert_eq!(
            weights(&steps_and_pauses(&DeploymentStrategy::Linear, &odd, 1, false, false, None).0),
            [(30, 360), (60, 360), (90, 360), (100, 0)]
        );
        let canary = DeploymentConfiguration::builder()
            .bake_time_in_minutes(1)
            .canary_configuration(
                CanaryConfiguration::builder().canary_percent(10.0).canary_bake_time_in_minutes(5).build(),
            )
            .build();
        let (steps, pauses) = steps_and_pauses(&DeploymentStrategy::Canary, &canary, 2, true, false, None);
        assert_eq!(weights(&steps), [(10, 300), (100, 60)]);
        assert_eq!(
            pauses,
            [DeploymentLifecycleHookStage::PreProductionTrafficShift],
            "no test rule: no pause after it"
        );
        let blue_green = DeploymentConfiguration::builder().bake_time_in_minutes(5).build();
        let (steps, pauses) = steps_and_pauses(&DeploymentStrategy::BlueGreen, &blue_green, 2, false, true, None);
        assert_eq!(weights(&steps), [(100, 300)]);
        assert!(pauses.is_empty(), "no gates: ECS runs it unpaused");
    }

    #[test]
    fn an_approval_adds_the_pause_people_answer_even_without_gates() {
        use DeploymentLifecycleHookStage::{
            PostTestTrafficShift as PostTest, PreProductionTrafficShift as PreProduction,
        };
        let before = Some(Approval::BeforeProduction);
        let after = Some(Approval::AfterFirstShift);
        let config = DeploymentConfiguration::builder().bake_time_in_minutes(1).build();
        let pauses =
            |strategy, test_rule, approval| steps_and_pauses(strategy, &config, 2, false, test_rule, approval).1;
        assert_eq!(pauses(&DeploymentStrategy::BlueGreen, true, before), [PostTest], "green on the test route");
        assert_eq!(pauses(&DeploymentStrategy::BlueGreen, false, before), [PreProduction], "no test route");
        assert_eq!(pauses(&DeploymentStrategy::Canary, false, after), [PreProduction], "ECS pauses before each shift");
        assert_eq!(pauses(&DeploymentStrategy::Linear, true, after), [PreProduction]);
        let hook = |stage, action| {
            DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::Pause)
                .lifecycle_stages(stage)
                .timeout_configuration(
                    aws_sdk_ecs::types::DeploymentLifecycleHookTimeoutConfiguration::builder()
                        .timeout_in_minutes(5)
                        .action(action)
                        .build(),
                )
                .build()
        };
        assert!(is_ours(&hook(PostTest, DeploymentLifecycleHookAction::Rollback)));
        assert!(!is_ours(&hook(PostTest, DeploymentLifecycleHookAction::Continue)), "a pause that goes on by itself");
        let elsewhere = hook(DeploymentLifecycleHookStage::PostScaleUp, DeploymentLifecycleHookAction::Rollback);
        assert!(!is_ours(&elsewhere), "the action never pauses there");
    }
}
