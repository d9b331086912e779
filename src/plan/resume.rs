//! The plan of a run that answers a deploy paused for approval (`resume`): the service's service
//! deployment waiting at the action's pause found and read, its blue and green, the action's pauses
//! still ahead, and the configuration to put back once it ends. Read-only, as every plan.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use aws_sdk_ecs::types::{DeploymentConfiguration, DeploymentLifecycleHookStage, Service, ServiceDeployment};

use super::native::{self, NativePlan};
use super::{DeployPlan, ServicePlan, StrategyPlan, TargetGroup};
use crate::aws::Aws;
use crate::config::{DeploySettings, Resume, Strategy};
use crate::ecs::deployments::{self, Seen};
use crate::ecs::{service, taskdef};
use crate::failure::Refused;

/// Where a resumed deploy starts: the pause people answered, and the window the gates judge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumePoint {
    pub(crate) arn: String,
    pub(crate) hook: String,
    /// ECS's view at plan time (stage, green's shares).
    pub(crate) seen: Seen,
    /// When the pause began (its expiry less its timeout): the gates judge the whole paused window.
    pub(crate) paused_since: SystemTime,
    /// When the deployment started (the relative gates' baseline before any shift).
    pub(crate) started: SystemTime,
    /// CONTINUE after the gates pass, or ROLLBACK.
    pub(crate) proceed: bool,
}

pub(super) async fn deploy_plan(settings: &DeploySettings, resume: &Resume, aws: &Aws) -> Result<DeployPlan> {
    let (cluster, name) = (&settings.cluster, &settings.service);
    let svc = service::describe(&aws.ecs, cluster, name).await?;
    native::check_controller(&svc, name)?;
    let Some(strategy) = native::strategy_of(&svc).cloned() else {
        return Err(Refused(format!(
            "input `resume` answers a deploy of ECS's own BLUE_GREEN, LINEAR or CANARY paused for approval, and `{name}` \
             is set up for {}: there is no pause to answer",
            svc.deployment_configuration().and_then(|c| c.strategy()).map(|s| s.as_str()).unwrap_or("ROLLING")
        ))
        .into());
    };
    let deployment = paused_deployment(aws, cluster, name, resume.deployment.as_deref()).await?;
    let arn = deployment.service_deployment_arn().unwrap_or_default().to_string();
    let seen = deployments::seen(&deployment);
    let Some((hook, expires)) = seen.paused.first().cloned() else {
        return Err(Refused(format!(
            "service deployment {arn} of `{name}` is not waiting at a pause: ECS has it {} at {}. Nothing to answer; \
             follow it in the ECS console",
            seen.status, seen.stage
        ))
        .into());
    };
    let sent =
        deployment.deployment_configuration().cloned().unwrap_or_else(|| DeploymentConfiguration::builder().build());
    let ours: Vec<_> = sent.lifecycle_hooks().iter().filter(|h| native::is_ours(h)).collect();
    let Some(timeout) = ours.first().and_then(|h| h.timeout_configuration()).and_then(|t| t.timeout_in_minutes())
    else {
        return Err(Refused(format!(
            "service deployment {arn} of `{name}` waits at a PAUSE hook this action did not add: answer it yourself \
             (aws ecs continue-service-deployment --service-deployment-arn {arn} --hook-id {hook} --action CONTINUE)"
        ))
        .into());
    };
    let pauses: Vec<DeploymentLifecycleHookStage> = native::JUDGED_AT
        .into_iter()
        .filter(|stage| ours.iter().any(|h| h.lifecycle_stages().contains(stage)))
        .collect();
    let Strategy::Ecs(ecs) = &settings.strategy else {
        return Err(anyhow!("input `resume` needs ECS's own strategy (the inputs' check refuses any other)"));
    };
    let wiring = native::wiring(&svc, name, &strategy)?;
    let (blue, green) = green_and_blue(aws, &wiring, &seen).await?;
    let desired = svc.desired_count();
    let has_test_rule = wiring.test_rule.is_some();
    let (steps, _) = native::steps_and_pauses(&strategy, &sent, desired, false, has_test_rule, None);
    let (revision, previous) = revisions(&svc, name)?;
    let (definition, tags) = service::task_definition(&aws.ecs, &revision).await?;
    let rendered = taskdef::render(&definition, settings.container_name.as_deref(), None, &settings.environment)
        .map_err(|message| anyhow!("{message}"))?;
    // The service's configuration without the action's hooks: what it is put back to at the end.
    let (configuration, _) = native::without_ours(svc.deployment_configuration().unwrap_or(&sent));
    let minutes = Duration::from_secs(u64::try_from(timeout.max(1)).unwrap_or(1) * 60);
    let now = SystemTime::now();
    let paused_since = expires.and_then(|at| at.checked_sub(minutes)).filter(|t| *t <= now).unwrap_or(now);
    let started = deployment.started_at().and_then(|t| SystemTime::try_from(*t).ok()).unwrap_or(paused_since);
    let ecs_alarms = native::rollback_alarms(&sent);
    let plan = NativePlan {
        strategy: strategy.as_str().to_string(),
        steps,
        production_rule: wiring.production_rule,
        test_rule: wiring.test_rule,
        blue,
        green,
        configuration,
        pauses,
        pause_timeout_minutes: timeout,
        gates: ecs.gates.clone(),
        check_interval: ecs.check_interval,
        ecs_alarms,
        approval: None,
        resume: Some(ResumePoint { arn, hook, seen, paused_since, started, proceed: resume.proceed }),
    };
    let first = ServicePlan {
        service: name.clone(),
        service_arn: svc.service_arn().unwrap_or_default().to_string(),
        desired_count: desired,
        new_desired_count: None,
        previous_task_definition_arn: previous,
        tags,
        deployed_by: None,
        // The paused deploy is the action's own: nothing to compare with.
        drift: Vec::new(),
        as_is: Some(revision),
        rendered,
        strategy: StrategyPlan::Native(Box::new(plan)),
    };
    Ok(DeployPlan {
        cluster: cluster.clone(),
        services: vec![first],
        wait_timeout: settings.wait_timeout,
        rollback: settings.rollback,
        keep_revisions: settings.keep_revisions,
        scheduled: Vec::new(),
        parallel: None,
        pre_deploy: None,
    })
}

/// The deployment to answer: the one named, or the service's one in progress; refused with what
/// became of the newest when none is.
async fn paused_deployment(aws: &Aws, cluster: &str, name: &str, named: Option<&str>) -> Result<ServiceDeployment> {
    let running = deployments::list(&aws.ecs, cluster, name, true).await?;
    let arn = match (named, running.first()) {
        (Some(named), _) if running.iter().any(|(arn, ..)| arn == named) => named.to_string(),
        (None, Some((arn, ..))) => arn.clone(),
        _ => {
            let newest = deployments::list(&aws.ecs, cluster, name, false).await?;
            let wanted = named.map(|n| newest.iter().find(|(arn, ..)| arn == n)).unwrap_or(newest.first());
            let what = match wanted {
                Some((arn, status, reason)) => format!(
                    "service deployment {arn} ended {status}{}",
                    reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                ),
                None if named.is_some() => "ECS lists no such service deployment of it".to_string(),
                None => "ECS lists no service deployment of it".to_string(),
            };
            return Err(Refused(format!(
                "input `resume`: no deployment of `{name}` is waiting for approval: {what}. A pause nobody answered \
                 times out into ECS's rollback; deploy again to start over"
            ))
            .into());
        }
    };
    deployments::read(&aws.ecs, &arn).await
}

/// Blue and green of a deployment in flight: green is where the test rule sends traffic, or the side
/// of the production rule that has green's share.
async fn green_and_blue(aws: &Aws, wiring: &native::Wiring, seen: &Seen) -> Result<(TargetGroup, TargetGroup)> {
    let (pair, rule) = (&wiring.pair, &wiring.production_rule);
    let on_test = match &wiring.test_rule {
        Some(test) if seen.test > 0.0 => Some(native::rule_weights(aws, test, pair).await?),
        _ => None,
    };
    let (a, b) = native::rule_weights(aws, rule, pair).await?;
    let share = |w: i32| if a + b > 0 { 100.0 * f64::from(w) / f64::from(a + b) } else { 0.0 };
    let green_first = match on_test {
        Some((ta, tb)) if (ta > 0) != (tb > 0) => ta > 0,
        _ => {
            let (da, db) = ((share(a) - seen.production).abs(), (share(b) - seen.production).abs());
            if (da - db).abs() < 1e-6 {
                return Err(Refused(format!(
                    "cannot tell green from blue on `{rule}` ({a}/{b}, green at {}%): answer the pause with aws ecs \
                     continue-service-deployment",
                    seen.production
                ))
                .into());
            }
            da < db
        }
    };
    let (green, blue) = if green_first { (&pair[0], &pair[1]) } else { (&pair[1], &pair[0]) };
    native::target_groups(aws, blue, green).await
}

/// The revision the paused deployment rolls out (the service's) and the one it replaces (the
/// other deployment ECS lists).
fn revisions(svc: &Service, name: &str) -> Result<(String, String)> {
    let revision = svc.task_definition().ok_or_else(|| anyhow!("service `{name}` has no task definition"))?.to_string();
    let previous = svc
        .deployments()
        .iter()
        .filter_map(|d| d.task_definition())
        .find(|td| *td != revision)
        .map(str::to_string)
        .with_context(|| format!("service `{name}` lists no deployment of the revision the paused one replaces"))?;
    Ok((revision, previous))
}

/// The pause is still there, unanswered, after the lease was taken: another run did not answer it
/// meanwhile.
pub(crate) async fn recheck(aws: &Aws, point: &ResumePoint) -> Result<()> {
    let now = deployments::describe(&aws.ecs, &point.arn).await?;
    if now.paused.iter().any(|(hook, _)| *hook == point.hook) {
        return Ok(());
    }
    Err(Refused(format!(
        "the pause {} of {} was answered or timed out since this run planned (ECS has it {} at {}): nothing was changed",
        point.hook, point.arn, now.status, now.stage
    ))
    .into())
}
