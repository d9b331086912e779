//! The plan as AWS CLI commands (the canary's and `--native`'s), for people who review or apply
//! changes by hand: the same calls `--apply` makes, in the same order, with what they make kept in
//! shell variables (`$CANARY_TG`, `$GREEN_TG`, `$RULE`).

use serde_json::{Value, json};

use super::ALARM;
use super::args::SetupArgs;
use super::changes::{CanaryTargetGroup, Change, Changes};
use super::native::{self, NativePlan};
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
            Change::TargetGroup => {
                out.extend(target_group(&target_group_name(&args.canary_service), "CANARY_TG", survey))
            }
            Change::Forward => out.push(forward(args, survey)),
            Change::CanaryService => out.push(service(args, survey)),
            Change::Alarm => out.push(alarm(args, survey)),
        }
    }
    out
}

pub(crate) fn quoted(v: &Value) -> String {
    format!("'{}'", v.to_string().replace('\'', r"'\''"))
}

/// The clone of the service's target group named `name`, its ARN kept in `$var`.
pub(crate) fn target_group(name: &str, var: &str, survey: &Survey) -> Vec<String> {
    let s = &survey.stable_tg;
    let mut c = format!("{var}=$(aws elbv2 create-target-group --name {name}");
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
            "aws elbv2 modify-target-group-attributes --target-group-arn \"${var}\" --attributes Key=deregistration_delay.timeout_seconds,Value={delay}"
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
    if let Some(config) = s.deployment_configuration() {
        c.push_str(&format!(" --deployment-configuration {}", quoted(&deployment_configuration(config))));
    }
    c.push_str(&format!("  # and {}'s placement and tag propagation, if any", args.service));
    c
}

/// A deployment configuration's rolling settings as the CLI takes them.
fn deployment_configuration(c: &aws_sdk_ecs::types::DeploymentConfiguration) -> Value {
    let mut config = json!({});
    if let Some(max) = c.maximum_percent() {
        config["maximumPercent"] = json!(max);
    }
    if let Some(min) = c.minimum_healthy_percent() {
        config["minimumHealthyPercent"] = json!(min);
    }
    if let Some(b) = c.deployment_circuit_breaker() {
        config["deploymentCircuitBreaker"] = json!({"enable": b.enable(), "rollback": b.rollback()});
    }
    config
}

fn alarm(args: &SetupArgs, survey: &Survey) -> String {
    let lb = cloudwatch_dimension(&survey.load_balancer_arn).unwrap_or_default();
    format!(
        "aws cloudwatch put-metric-alarm --alarm-name {} --namespace {} --metric-name {} --dimensions Name=TargetGroup,Value=\"${{CANARY_TG##*:}}\" Name=LoadBalancer,Value={lb} --statistic Sum --unit Count --period {} --evaluation-periods 1 --threshold {} --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching",
        args.alarm_name, ALARM.namespace, ALARM.metric, ALARM.period, ALARM.threshold
    )
}

/// `--native`'s plan as AWS CLI commands.
pub(crate) fn native_commands(args: &SetupArgs, survey: &Survey, plan: &NativePlan) -> Vec<String> {
    let mut out = Vec::new();
    if let CanaryTargetGroup::Existing(arn) = &plan.green {
        out.push(format!("GREEN_TG={arn}"));
    }
    if let Some(rule) = &plan.rule {
        out.push(format!("RULE={rule}"));
    }
    let stable = &survey.binding.target_group_arn;
    let forward = quoted(&json!([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": stable, "Weight": 100}, {"TargetGroupArn": "@GREEN@", "Weight": 0}]}}]))
    .replace("@GREEN@", "'\"$GREEN_TG\"'");
    for change in &plan.changes {
        match change {
            native::NativeChange::GreenTargetGroup => {
                out.extend(target_group(&native::green_name(&args.service), "GREEN_TG", survey))
            }
            native::NativeChange::WeightedRule(arn) => {
                out.push(format!("aws elbv2 modify-rule --rule-arn {arn} --actions {forward}"))
            }
            native::NativeChange::NewRule(p) => {
                let listener = match &args.source {
                    TrafficSource::ListenerDefault(l) | TrafficSource::Rule(l) => l,
                };
                out.push(format!(
                    "RULE=$(aws elbv2 create-rule --listener-arn {listener} --priority {p} --conditions Field=path-pattern,Values='/*' --actions {forward} --query 'Rules[0].RuleArn' --output text)"
                ));
            }
            native::NativeChange::Service => {
                let Some((kind, role)) = &args.native else { continue };
                let c = native::configuration(survey, *kind);
                // The whole configuration: UpdateService replaces it, the service's own settings included.
                let mut config = deployment_configuration(&c);
                config["strategy"] = json!(native::strategy_of(*kind).as_str());
                config["bakeTimeInMinutes"] = json!(native::BAKE_MINUTES);
                if let Some(l) = c.linear_configuration() {
                    config["linearConfiguration"] = json!({"stepPercent": l.step_percent(), "stepBakeTimeInMinutes": l.step_bake_time_in_minutes()});
                }
                if let Some(k) = c.canary_configuration() {
                    config["canaryConfiguration"] = json!({"canaryPercent": k.canary_percent(), "canaryBakeTimeInMinutes": k.canary_bake_time_in_minutes()});
                }
                let b = &survey.binding;
                let lbs = json!([{"targetGroupArn": stable, "containerName": b.container_name, "containerPort": b.container_port,
                    "advancedConfiguration": {"alternateTargetGroupArn": "@GREEN@", "productionListenerRule": "@RULE@", "roleArn": role}}]);
                let lbs = quoted(&lbs).replace("@GREEN@", "'\"$GREEN_TG\"'").replace("@RULE@", "'\"$RULE\"'");
                out.push(format!(
                    "aws ecs update-service --cluster {} --service {} --deployment-configuration {} --load-balancers {lbs}",
                    args.cluster,
                    args.service,
                    quoted(&config)
                ));
            }
        }
    }
    out
}
