//! Target groups and listener rules of an Application Load Balancer: the reads and the few changes
//! `setup` and the previews make (a target group cloned from a service's, a rule at a free priority,
//! both deleted again), with errors that name what to check.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Listener, Rule, RuleCondition, Tag, TargetGroup, TargetGroupAttribute,
};

use crate::aws::call_failed;

type Elb = aws_sdk_elasticloadbalancingv2::Client;

/// The listener `arn`.
pub(crate) async fn listener(elb: &Elb, arn: &str) -> Result<Listener> {
    let out = elb
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeListeners", &e))
        .with_context(|| format!("could not read listener `{arn}`: check `listener-arn` and `aws-region`"))?;
    out.listeners().first().cloned().ok_or_else(|| anyhow!("listener `{arn}` was not found"))
}

/// The DNS name of load balancer `arn`.
pub(crate) async fn dns_name(elb: &Elb, arn: &str) -> Result<String> {
    let out = elb
        .describe_load_balancers()
        .load_balancer_arns(arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeLoadBalancers", &e))
        .with_context(|| format!("could not read load balancer `{arn}`"))?;
    out.load_balancers()
        .first()
        .and_then(|lb| lb.dns_name())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("load balancer `{arn}` was not found"))
}

/// The listeners of load balancer `arn`.
pub(crate) async fn listeners_of(elb: &Elb, arn: &str) -> Result<Vec<String>> {
    let out = elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeListeners", &e))
        .with_context(|| format!("could not read the listeners of load balancer `{arn}`"))?;
    Ok(out.listeners().iter().filter_map(|l| l.listener_arn().map(str::to_string)).collect())
}

/// The listener's rules but its default one, by priority.
pub(crate) async fn rules(elb: &Elb, listener_arn: &str) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    let mut marker = None;
    loop {
        let out = elb
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| call_failed("ELB DescribeRules", &e))
            .with_context(|| format!("could not read the rules of listener `{listener_arn}`"))?;
        rules.extend(out.rules().iter().filter(|r| r.is_default() != Some(true)).cloned());
        match out.next_marker() {
            Some(next) => marker = Some(next.to_string()),
            None => break,
        }
    }
    rules.sort_by_key(priority);
    Ok(rules)
}

/// A rule's priority as a number (the default rule's, "default", is last).
pub(crate) fn priority(rule: &Rule) -> i32 {
    rule.priority().and_then(|p| p.parse().ok()).unwrap_or(i32::MAX)
}

/// The tags of each resource (target groups, rules), 20 a call.
pub(crate) async fn tags(elb: &Elb, arns: &[String]) -> Result<HashMap<String, Vec<(String, String)>>> {
    let mut all = HashMap::new();
    for chunk in arns.chunks(20) {
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| call_failed("ELB DescribeTags", &e))
            .context("could not read the tags of the load balancer's rules and target groups")?;
        for description in out.tag_descriptions() {
            let pairs = description
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                .collect();
            all.insert(description.resource_arn().unwrap_or_default().to_string(), pairs);
        }
    }
    Ok(all)
}

/// Target group `arn`.
pub(crate) async fn target_group(elb: &Elb, arn: &str) -> Result<TargetGroup> {
    let out = elb
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetGroups", &e))
        .with_context(|| format!("could not read the service's target group `{arn}`"))?;
    out.target_groups().first().cloned().ok_or_else(|| anyhow!("target group `{arn}` was not found"))
}

/// The target group called `name`, if there is one.
pub(crate) async fn target_group_named(elb: &Elb, name: &str) -> Result<Option<TargetGroup>> {
    match elb.describe_target_groups().names(name).send().await {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception()) => Ok(None),
        Err(e) => Err(call_failed("ELB DescribeTargetGroups", &e))
            .with_context(|| format!("could not look for target group `{name}`")),
    }
}

/// Creates target group `name` like `like` (protocol, port, VPC, target type, health check,
/// matcher), with `tags` and, when given, its deregistration delay; deleted again if the delay
/// cannot be set. Returns its ARN.
pub(crate) async fn clone_target_group(
    elb: &Elb,
    name: &str,
    like: &TargetGroup,
    tags: &[(String, String)],
    deregistration_delay: Option<&str>,
) -> Result<String> {
    let out = elb
        .create_target_group()
        .name(name)
        .set_protocol(like.protocol().cloned())
        .set_protocol_version(like.protocol_version().map(str::to_string))
        .set_port(like.port())
        .set_vpc_id(like.vpc_id().map(str::to_string))
        .set_target_type(like.target_type().cloned())
        .set_ip_address_type(like.ip_address_type().cloned())
        .set_health_check_protocol(like.health_check_protocol().cloned())
        .set_health_check_port(like.health_check_port().map(str::to_string))
        .set_health_check_enabled(like.health_check_enabled())
        .set_health_check_path(like.health_check_path().map(str::to_string))
        .set_health_check_interval_seconds(like.health_check_interval_seconds())
        .set_health_check_timeout_seconds(like.health_check_timeout_seconds())
        .set_healthy_threshold_count(like.healthy_threshold_count())
        .set_unhealthy_threshold_count(like.unhealthy_threshold_count())
        .set_matcher(like.matcher().cloned())
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(|e| call_failed("ELB CreateTargetGroup", &e))
        .with_context(|| format!("could not create target group `{name}`"))?;
    let arn = out
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("ELB created target group `{name}` without saying its ARN"))?;
    if let Some(delay) = deregistration_delay {
        let attribute =
            TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds").value(delay).build();
        if let Err(e) = elb.modify_target_group_attributes().target_group_arn(&arn).attributes(attribute).send().await {
            let _ = delete_target_group(elb, &arn).await;
            return Err(call_failed("ELB ModifyTargetGroupAttributes", &e))
                .with_context(|| format!("could not set the deregistration delay of target group `{name}`"));
        }
    }
    Ok(arn)
}

/// Deletes target group `arn` (nothing may forward to it any more).
pub(crate) async fn delete_target_group(elb: &Elb, arn: &str) -> Result<()> {
    let deleted = elb.delete_target_group().target_group_arn(arn).send().await;
    deleted.map(|_| ()).map_err(|e| call_failed("ELB DeleteTargetGroup", &e))
}

/// Attempts at a free priority: another run may take the one read as free first.
const PRIORITY_ATTEMPTS: u32 = 5;

/// Adds a rule forwarding `conditions` to `target_group_arn` at the lowest free priority of the
/// listener, read again when another rule took it meanwhile. Returns the rule's ARN and priority.
pub(crate) async fn create_rule(
    elb: &Elb,
    listener_arn: &str,
    conditions: Vec<RuleCondition>,
    target_group_arn: &str,
    tags: &[(String, String)],
) -> Result<(String, i32)> {
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build();
    let mut attempt = 1;
    loop {
        let taken: Vec<i32> = rules(elb, listener_arn).await?.iter().map(priority).collect();
        let free = lowest_free(&taken);
        let created = elb
            .create_rule()
            .listener_arn(listener_arn)
            .set_conditions(Some(conditions.clone()))
            .priority(free)
            .actions(forward.clone())
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await;
        match created {
            Ok(out) => {
                let arn = out.rules().first().and_then(|r| r.rule_arn()).map(str::to_string);
                return arn.map(|a| (a, free)).ok_or_else(|| anyhow!("ELB created a rule without saying its ARN"));
            }
            Err(e)
                if attempt < PRIORITY_ATTEMPTS
                    && e.as_service_error().is_some_and(|e| e.is_priority_in_use_exception()) =>
            {
                attempt += 1;
                // Another run took it between our read and our create: read again, a little later.
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => {
                return Err(call_failed("ELB CreateRule", &e))
                    .with_context(|| format!("could not add a rule to listener `{listener_arn}`"));
            }
        }
    }
}

/// The lowest priority (1–50000) no rule has.
pub(crate) fn lowest_free(taken: &[i32]) -> i32 {
    (1..=50_000).find(|p| !taken.contains(p)).unwrap_or(50_000)
}

/// Deletes listener rule `arn`.
pub(crate) async fn delete_rule(elb: &Elb, arn: &str) -> Result<()> {
    let deleted = elb.delete_rule().rule_arn(arn).send().await;
    deleted.map(|_| ()).map_err(|e| call_failed("ELB DeleteRule", &e))
}

fn elb_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_free_priority_fills_gaps() {
        assert_eq!(lowest_free(&[]), 1);
        assert_eq!(lowest_free(&[1, 2, 4]), 3);
        assert_eq!(lowest_free(&[2, 100]), 1);
    }
}
