//! The plan as AWS CLI commands, for people who review or apply changes by hand: the same calls
//! `--apply` makes, in the same order, with the new target group's ARN kept in `$CANARY_TG`.

use serde_json::{Value, json};

use super::ALARM;
use super::args::SetupArgs;
use super::changes::{CanaryTargetGroup, Change, Changes};
use super::survey::{Survey, target_group_name};
use crate::config::TrafficSource;
use crate::plan::cloudwatch_dimension;

/// One command (or two) per change.
pub(crate) fn commands(args: &SetupArgs, survey: &Survey, changes: &Changes) -> Vec<String> {
    let mut out = Vec::new();
    if let CanaryTargetGroup::Existing(arn) = &changes.canary_tg {
        out.push(format!("CANARY_TG={arn}"));
    }
    for change in &changes.changes {
        match change {
            Change::TargetGroup => out.extend(target_group(args, survey)),
            Change::Forward => out.push(forward(args, survey)),
            Change::CanaryService => out.push(service(args, survey)),
            Change::Alarm => out.push(alarm(args, survey)),
        }
    }
    out
}

fn quoted(v: &Value) -> String {
    format!("'{}'", v.to_string().replace('\'', r"'\''"))
}

fn target_group(args: &SetupArgs, survey: &Survey) -> Vec<String> {
    let s = &survey.stable_tg;
    let mut c = format!("CANARY_TG=$(aws elbv2 create-target-group --name {}", target_group_name(&args.canary_service));
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            c.push_str(&format!(" --{name} {v}"));
        }
    };
    flag("protocol", s.protocol().map(|p| p.as_str().to_string()));
    flag("port", s.port().map(|p| p.to_string()));
    flag("vpc-id", s.vpc_id().map(str::to_string));
    flag("target-type", s.target_type().map(|t| t.as_str().to_string()));
    flag("health-check-protocol", s.health_check_protocol().map(|p| p.as_str().to_string()));
    flag("health-check-path", s.health_check_path().map(str::to_string));
    flag("health-check-interval-seconds", s.health_check_interval_seconds().map(|v| v.to_string()));
    flag("health-check-timeout-seconds", s.health_check_timeout_seconds().map(|v| v.to_string()));
    flag("healthy-threshold-count", s.healthy_threshold_count().map(|v| v.to_string()));
    flag("unhealthy-threshold-count", s.unhealthy_threshold_count().map(|v| v.to_string()));
    flag("matcher", s.matcher().and_then(|m| m.http_code()).map(|h| format!("HttpCode={h}")));
    c.push_str(" --query 'TargetGroups[0].TargetGroupArn' --output text)");
    let mut out = vec![c];
    if let Some(delay) = &survey.deregistration_delay {
        out.push(format!(
            "aws elbv2 modify-target-group-attributes --target-group-arn \"$CANARY_TG\" --attributes Key=deregistration_delay.timeout_seconds,Value={delay}"
        ));
    }
    out
}

fn forward(args: &SetupArgs, survey: &Survey) -> String {
    let stable = &survey.binding.target_group_arn;
    // The canary's ARN comes from the shell: the JSON's quotes are closed around it.
    let actions = json!([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": stable, "Weight": 100}, {"TargetGroupArn": "@CANARY_TG@", "Weight": 0}]}}]);
    let actions = quoted(&actions).replace("@CANARY_TG@", "'\"$CANARY_TG\"'");
    match &args.source {
        TrafficSource::ListenerDefault(arn) => {
            format!("aws elbv2 modify-listener --listener-arn {arn} --default-actions {actions}")
        }
        TrafficSource::Rule(arn) => format!("aws elbv2 modify-rule --rule-arn {arn} --actions {actions}"),
    }
}

fn service(args: &SetupArgs, survey: &Survey) -> String {
    let s = &survey.service;
    let b = &survey.binding;
    let mut c = format!(
        "aws ecs create-service --cluster {} --service-name {} --task-definition {} --desired-count 0",
        args.cluster,
        args.canary_service,
        crate::text::family_revision(s.task_definition().unwrap_or_default())
    );
    if s.capacity_provider_strategy().is_empty()
        && let Some(launch) = s.launch_type()
    {
        c.push_str(&format!(" --launch-type {}", launch.as_str()));
    }
    if let Some(net) = s.network_configuration().and_then(|n| n.awsvpc_configuration()) {
        let mut vpc = json!({"subnets": net.subnets(), "securityGroups": net.security_groups()});
        if let Some(ip) = net.assign_public_ip() {
            vpc["assignPublicIp"] = json!(ip.as_str());
        }
        c.push_str(&format!(" --network-configuration {}", quoted(&json!({"awsvpcConfiguration": vpc}))));
    }
    c.push_str(&format!(
        " --load-balancers targetGroupArn=\"$CANARY_TG\",containerName={},containerPort={}",
        b.container_name, b.container_port
    ));
    c.push_str(&format!(" --tags key=ecs-deploy-action:canary-of,value={}", args.service));
    c.push_str(&format!("  # and {}'s deployment configuration, placement and tag propagation", args.service));
    c
}

fn alarm(args: &SetupArgs, survey: &Survey) -> String {
    let lb = cloudwatch_dimension(&survey.load_balancer_arn).unwrap_or_default();
    format!(
        "aws cloudwatch put-metric-alarm --alarm-name {} --namespace {} --metric-name {} --dimensions Name=TargetGroup,Value=\"${{CANARY_TG##*:}}\" Name=LoadBalancer,Value={lb} --statistic Sum --unit Count --period {} --evaluation-periods 1 --threshold {} --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching",
        args.alarm_name, ALARM.namespace, ALARM.metric, ALARM.period, ALARM.threshold
    )
}
