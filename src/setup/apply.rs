//! The changes made, in order, each said as it is made; when one fails, what this run made is undone
//! in reverse (traffic first), so a failed `setup --apply` leaves things as it found them.

use anyhow::{Context as _, Result, anyhow};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};
use aws_sdk_ecs::types::LoadBalancer;

use super::args::SetupArgs;
use super::changes::{CanaryTargetGroup, Change, Changes};
use super::survey::Survey;
use super::{ALARM, describe};
use crate::aws::{Aws, call_failed};
use crate::ecs::copies::{self, CANARY_OF};
use crate::gha::Gha;
use crate::listener;
use crate::plan::cloudwatch_dimension;

/// What this run made, for the undo.
enum Made {
    TargetGroup(String),
    Forward,
    CanaryService,
    Alarm,
}

/// Makes `changes`; on a failure undoes what it made and returns the failure, with what is left.
pub(crate) async fn apply(aws: &Aws, args: &SetupArgs, survey: &Survey, changes: &Changes, gha: &Gha) -> Result<()> {
    let mut made = Vec::new();
    let mut canary_tg = match &changes.canary_tg {
        CanaryTargetGroup::Existing(arn) => Some(arn.clone()),
        CanaryTargetGroup::New(_) => None,
    };
    for (i, change) in changes.changes.iter().enumerate() {
        gha.info(&format!(
            "  {}/{} {}",
            i + 1,
            changes.changes.len(),
            describe(change, args, survey, &changes.canary_tg)
        ));
        let result = make(aws, args, survey, change, &mut canary_tg).await;
        match result {
            Ok(m) => made.push(m),
            Err(e) => {
                return Err(failed(e, undo(aws, args, survey, made, gha).await));
            }
        }
    }
    Ok(())
}

async fn make(
    aws: &Aws,
    args: &SetupArgs,
    survey: &Survey,
    change: &Change,
    canary_tg: &mut Option<String>,
) -> Result<Made> {
    let tg = |c: &Option<String>| c.clone().ok_or_else(|| anyhow!("the canary's target group is not made yet"));
    match change {
        Change::TargetGroup => {
            let name = super::survey::target_group_name(&args.canary_service);
            let arn = clone_target_group(aws, &name, &args.service, survey).await?;
            *canary_tg = Some(arn.clone());
            Ok(Made::TargetGroup(arn))
        }
        Change::Forward => {
            listener::set_weights(&aws.elb, &args.source, &survey.binding.target_group_arn, &tg(canary_tg)?, (100, 0))
                .await?;
            Ok(Made::Forward)
        }
        Change::CanaryService => {
            let target = LoadBalancer::builder()
                .target_group_arn(tg(canary_tg)?)
                .container_name(&survey.binding.container_name)
                .container_port(survey.binding.container_port)
                .build();
            let copy = copies::Copy {
                name: &args.canary_service,
                task_definition: None,
                desired: 0,
                target,
                tags: copies::canary_of(&args.service),
            };
            copies::create_like(&aws.ecs, &survey.service, copy).await?;
            Ok(Made::CanaryService)
        }
        Change::Alarm => {
            let tg = tg(canary_tg)?;
            let dimension = |name: &str, arn: &str| {
                cloudwatch_dimension(arn).map(|v| Dimension::builder().name(name).value(v).build())
            };
            aws.cloudwatch
                .put_metric_alarm()
                .alarm_name(&args.alarm_name)
                .alarm_description(format!(
                    "5xx answered by {}'s canary: a gate of its canary deploys (ecs-deploy-action setup)",
                    args.service
                ))
                .namespace(ALARM.namespace)
                .metric_name(ALARM.metric)
                .set_dimensions(Some(
                    [dimension("TargetGroup", &tg), dimension("LoadBalancer", &survey.load_balancer_arn)]
                        .into_iter()
                        .flatten()
                        .collect(),
                ))
                .statistic(Statistic::Sum)
                .unit(StandardUnit::Count)
                .period(ALARM.period)
                .evaluation_periods(1)
                .threshold(ALARM.threshold)
                .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                .treat_missing_data("notBreaching")
                .send()
                .await
                .map_err(|e| call_failed("CloudWatch PutMetricAlarm", &e))
                .with_context(|| format!("could not create alarm `{}`", args.alarm_name))?;
            Ok(Made::Alarm)
        }
    }
}

/// Creates target group `name` as a clone of the service's (tagged as `service`'s), with its
/// deregistration delay.
pub(crate) async fn clone_target_group(aws: &Aws, name: &str, service: &str, survey: &Survey) -> Result<String> {
    let tags = [(CANARY_OF.to_string(), service.to_string())];
    crate::elb::clone_target_group(&aws.elb, name, &survey.stable_tg, &tags, survey.deregistration_delay.as_deref())
        .await
}

/// Deletes a target group this run made (nothing forwards to it any more).
pub(crate) async fn delete_target_group(aws: &Aws, arn: &str) -> Result<()> {
    crate::elb::delete_target_group(&aws.elb, arn).await
}

/// Undoes `made`, newest first; `None` when all of it is undone, else what is left and how to remove it.
async fn undo(aws: &Aws, args: &SetupArgs, survey: &Survey, made: Vec<Made>, gha: &Gha) -> Option<String> {
    let mut left = Vec::new();
    for m in made.into_iter().rev() {
        let (what, result) = match &m {
            Made::Alarm => (
                format!("alarm `{}` (aws cloudwatch delete-alarms --alarm-names {})", args.alarm_name, args.alarm_name),
                aws.cloudwatch
                    .delete_alarms()
                    .alarm_names(&args.alarm_name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| call_failed("CloudWatch DeleteAlarms", &e)),
            ),
            Made::CanaryService => (
                format!(
                    "service `{}` (aws ecs delete-service --cluster {} --service {} --force)",
                    args.canary_service, args.cluster, args.canary_service
                ),
                copies::delete(&aws.ecs, &args.cluster, &args.canary_service).await,
            ),
            Made::Forward => (
                format!(
                    "{} changed to a weighted forward (100% still to `{}`)",
                    super::changes::source_words(&args.source),
                    args.service
                ),
                listener::put_actions(&aws.elb, &args.source, survey.actions.clone()).await,
            ),
            Made::TargetGroup(arn) => (
                format!("target group `{arn}` (aws elbv2 delete-target-group --target-group-arn {arn})"),
                delete_target_group(aws, arn).await,
            ),
        };
        said_undone(what, result, &mut left, gha);
    }
    (!left.is_empty()).then(|| left.join("; "))
}

/// One undo said: done, or a warning and `what` (with its command) added to what is `left`.
pub(crate) fn said_undone(what: String, result: Result<()>, left: &mut Vec<String>, gha: &Gha) {
    match result {
        Ok(()) => gha.info(&format!("  undone: {}", what.split(" (").next().unwrap_or(&what))),
        Err(e) => {
            gha.warning(&format!("could not undo {what}: {e:#}"));
            left.push(what);
        }
    }
}

/// A change that failed, with what its undo left (`None`: nothing).
pub(crate) fn failed(e: anyhow::Error, left: Option<String>) -> anyhow::Error {
    match left {
        None => anyhow!(
            "{e:#}\nsetup changed nothing: what it had made before the failure is undone; run it again once the cause is fixed"
        ),
        Some(left) => anyhow!(
            "{e:#}\nsetup could not undo all it had made; left: {left}; a second run finishes the setup from there"
        ),
    }
}
