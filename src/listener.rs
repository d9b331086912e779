//! The weighted forward action between the stable and canary target groups, on a listener's default
//! action or on a listener rule: reading the weights (and, for the canary, setting them).

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};

use crate::aws::call_failed;
use crate::config::TrafficSource;

/// The commands a person runs to put all traffic back on the stable target group, and then to stop
/// the canary's tasks, for when the action itself could not.
pub(crate) fn restore_commands(
    source: &TrafficSource,
    stable_tg: &str,
    canary_tg: &str,
    cluster: &str,
    canary_service: &str,
) -> String {
    let forward = format!(
        r#"'[{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"TargetGroupArn":"{stable_tg}","Weight":100}},{{"TargetGroupArn":"{canary_tg}","Weight":0}}]}}}}]'"#
    );
    let traffic = match source {
        TrafficSource::ListenerDefault(arn) => {
            format!("aws elbv2 modify-listener --listener-arn {arn} --default-actions {forward}")
        }
        TrafficSource::Rule(arn) => format!("aws elbv2 modify-rule --rule-arn {arn} --actions {forward}"),
    };
    format!(
        "{traffic}\n# then, once every request goes to the stable target group:\naws ecs update-service --cluster {cluster} --service {canary_service} --desired-count 0"
    )
}

/// The current actions of the listener's default rule or of the listener rule.
pub(crate) async fn actions(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    source: &TrafficSource,
) -> Result<Vec<Action>> {
    match source {
        TrafficSource::ListenerDefault(arn) => Ok(crate::elb::listener(elb, arn).await?.default_actions().to_vec()),
        TrafficSource::Rule(arn) => {
            let out = elb
                .describe_rules()
                .rule_arns(arn)
                .send()
                .await
                .map_err(|e| call_failed("ELB DescribeRules", &e))
                .with_context(|| {
                    format!("could not read listener rule `{arn}`: check `listener-rule-arn` and `aws-region`")
                })?;
            let rule = out.rules().first().ok_or_else(|| anyhow!("listener rule `{arn}` was not found"))?;
            Ok(rule.actions().to_vec())
        }
    }
}

/// Weights `(stable, canary)` of the forward action that names both target groups.
pub(crate) fn weights(
    actions: &[Action],
    stable_tg: &str,
    canary_tg: &str,
    source: &TrafficSource,
) -> Result<(i32, i32)> {
    let where_ = match source {
        TrafficSource::ListenerDefault(_) => "the listener's default action",
        TrafficSource::Rule(_) => "the listener rule",
    };
    if !actions.iter().any(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) {
        bail!(
            "{where_} does not forward to target groups: make it a forward action to the stable and canary target groups (weights 100 and 0)"
        );
    }
    let groups = forwarded(actions);
    let weight_of = |tg: &str| groups.iter().find(|(arn, _)| arn == tg).map(|(_, w)| *w);
    match (weight_of(stable_tg), weight_of(canary_tg)) {
        (Some(s), Some(c)) => Ok((s, c)),
        (stable, _) => {
            let missing = if stable.is_none() { stable_tg } else { canary_tg };
            bail!(
                "{where_} forwards to {} but not to {missing}: add both target groups to one forward action (stable weight 100, canary weight 0)",
                groups.iter().map(|(arn, w)| format!("{arn} (weight {w})")).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// The target groups the first forward action of `actions` sends to, with their weights (a forward in
/// its simple form, `TargetGroupArn` alone, is weight 1 of 1).
pub(crate) fn forwarded(actions: &[Action]) -> Vec<(String, i32)> {
    let Some(forward) = actions.iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) else {
        return Vec::new();
    };
    match forward.forward_config().map(|f| f.target_groups()) {
        Some(groups) if !groups.is_empty() => groups
            .iter()
            .map(|g| (g.target_group_arn().unwrap_or_default().to_string(), g.weight().unwrap_or(1)))
            .collect(),
        _ => forward.target_group_arn().map(|arn| vec![(arn.to_string(), 1)]).unwrap_or_default(),
    }
}

/// Sets the forward weights `(stable, canary)` in one call (ModifyListener or ModifyRule), keeping the
/// rest of the action (stickiness, other target groups) as it was.
pub(crate) async fn set_weights(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    source: &TrafficSource,
    stable_tg: &str,
    canary_tg: &str,
    weights: (i32, i32),
) -> Result<()> {
    use aws_sdk_elasticloadbalancingv2::types::{ForwardActionConfig, TargetGroupTuple};
    let current = actions(elb, source).await?;
    let mut found = false;
    let updated: Vec<Action> = current
        .into_iter()
        .map(|action| {
            if action.r#type() != Some(&ActionTypeEnum::Forward) || found {
                return action;
            }
            found = true;
            let mut groups: Vec<TargetGroupTuple> =
                action.forward_config().map(|f| f.target_groups().to_vec()).unwrap_or_default();
            for (arn, weight) in [(stable_tg, weights.0), (canary_tg, weights.1)] {
                match groups.iter_mut().find(|g| g.target_group_arn() == Some(arn)) {
                    Some(g) => g.weight = Some(weight),
                    None => groups.push(TargetGroupTuple::builder().target_group_arn(arn).weight(weight).build()),
                }
            }
            let forward = ForwardActionConfig::builder()
                .set_target_groups(Some(groups))
                .set_target_group_stickiness_config(
                    action.forward_config().and_then(|f| f.target_group_stickiness_config().cloned()),
                )
                .build();
            let mut action = action;
            action.target_group_arn = None;
            action.forward_config = Some(forward);
            action
        })
        .collect();
    if !found {
        bail!("no forward action to set the weights on");
    }
    put_actions(elb, source, updated)
        .await
        .with_context(|| format!("could not set weights {}/{}", weights.0, weights.1))
}

/// Puts `actions` on the listener's default rule or on the listener rule, in one call.
pub(crate) async fn put_actions(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    source: &TrafficSource,
    actions: Vec<Action>,
) -> Result<()> {
    match source {
        TrafficSource::ListenerDefault(arn) => {
            elb.modify_listener()
                .listener_arn(arn)
                .set_default_actions(Some(actions))
                .send()
                .await
                .map_err(|e| call_failed("ELB ModifyListener", &e))
                .with_context(|| format!("could not change listener {arn}"))?;
        }
        TrafficSource::Rule(arn) => {
            elb.modify_rule()
                .rule_arn(arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map_err(|e| call_failed("ELB ModifyRule", &e))
                .with_context(|| format!("could not change listener rule {arn}"))?;
        }
    }
    Ok(())
}

/// How long a target drains (`deregistration_delay.timeout_seconds`; 300 s when not set).
pub(crate) async fn deregistration_delay(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<std::time::Duration> {
    let out = elb
        .describe_target_group_attributes()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetGroupAttributes", &e))?;
    let seconds = out
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300);
    Ok(std::time::Duration::from_secs(seconds))
}
