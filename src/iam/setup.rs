//! The policy `ecs-deploy-action setup` needs (`iam-policy --setup` with the same flags): its reads,
//! and its changes scoped to exactly what it makes, from the flags alone (the listener's or rule's ARN
//! names the account and Region).

use super::Statement;
use crate::config::TrafficSource;
use crate::setup::args::SetupArgs;

/// The statements for `args`: reads, then one statement per kind of change (with its undo).
pub(crate) fn statements(args: &SetupArgs) -> Vec<Statement> {
    let arn = match &args.source {
        TrafficSource::ListenerDefault(a) | TrafficSource::Rule(a) => a.as_str(),
    };
    // arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:listener/…
    let parts: Vec<&str> = arn.split(':').collect();
    let part = |i: usize, default: &'static str| parts.get(i).copied().filter(|p| !p.is_empty()).unwrap_or(default);
    let (partition, account) = (part(1, "aws"), part(4, "ACCOUNT_ID"));
    let region = parts.get(3).copied().filter(|p| !p.is_empty()).unwrap_or(&args.region);
    let service = |name: &str| format!("arn:{partition}:ecs:{region}:{account}:service/{}/{name}", args.cluster);
    let tg = format!(
        "arn:{partition}:elasticloadbalancing:{region}:{account}:targetgroup/{}/*",
        crate::setup::target_group_name(&args.canary_service)
    );
    let alarm = format!("arn:{partition}:cloudwatch:{region}:{account}:alarm:{}", args.alarm_name);
    let (forward_action, forward_resource) = match &args.source {
        TrafficSource::ListenerDefault(a) => ("elasticloadbalancing:ModifyListener", a.clone()),
        TrafficSource::Rule(a) => ("elasticloadbalancing:ModifyRule", a.clone()),
    };
    if let Some((_, role)) = &args.native {
        let at = (partition, region, account);
        return native(args, &service(&args.service), forward_action, &forward_resource, at, role);
    }
    vec![
        Statement::new(
            "SetupReadServices",
            &["ecs:DescribeServices"],
            vec![service(&args.service), service(&args.canary_service)],
        ),
        load_balancing_reads(),
        Statement::new("SetupReadAlarm", &["cloudwatch:DescribeAlarms"], vec![alarm.clone()]),
        Statement::new(
            "SetupCanaryTargetGroup",
            &[
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
            ],
            vec![tg],
        ),
        Statement::new("SetupWeightedForward", &[forward_action], vec![forward_resource]),
        Statement::new(
            "SetupCanaryService",
            &["ecs:CreateService", "ecs:TagResource", "ecs:DeleteService"],
            vec![service(&args.canary_service)],
        ),
        Statement::new("SetupCanaryAlarm", &["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"], vec![alarm]),
    ]
}

/// What setup reads of the load balancer. ELB's Describe calls take no resource: "*" is the narrowest.
fn load_balancing_reads() -> Statement {
    Statement::new(
        "SetupReadLoadBalancing",
        &[
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeRules",
        ],
        vec!["*".into()],
    )
}

/// `setup --native`: the reads, the green target group, the production rule (the given one's forward,
/// or a new rule on the listener), the service's UpdateService and the role it passes to ECS.
fn native(
    args: &SetupArgs,
    service: &str,
    forward_action: &'static str,
    forward_resource: &str,
    (partition, region, account): (&str, &str, &str),
    role: &str,
) -> Vec<Statement> {
    let green = format!(
        "arn:{partition}:elasticloadbalancing:{region}:{account}:targetgroup/{}/*",
        crate::setup::native_green_name(&args.service)
    );
    let rule = match &args.source {
        // A new rule on the listener: created there, and deleted by an undo.
        TrafficSource::ListenerDefault(listener) => Statement::new(
            "SetupProductionRule",
            &["elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"],
            vec![listener.clone(), listener.replacen(":listener/", ":listener-rule/", 1) + "/*"],
        ),
        TrafficSource::Rule(_) => {
            Statement::new("SetupProductionRule", &[forward_action], vec![forward_resource.to_string()])
        }
    };
    vec![
        Statement::new("SetupReadServices", &["ecs:DescribeServices"], vec![service.to_string()]),
        load_balancing_reads(),
        Statement::new(
            "SetupGreenTargetGroup",
            &[
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
            ],
            vec![green],
        ),
        rule,
        Statement::new("SetupServiceConfiguration", &["ecs:UpdateService"], vec![service.to_string()]),
        // ECS shifts the rule's weights as this role: the service's configuration passes it.
        Statement::new("SetupPassInfrastructureRole", &["iam:PassRole"], vec![role.to_string()])
            .when(serde_json::json!({"StringEquals": {"iam:PassedToService": "ecs.amazonaws.com"}})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_scoped_to_what_setup_makes() {
        let rule = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener-rule/app/lb/1/2/3";
        let args = SetupArgs {
            cluster: "prod".into(),
            service: "web".into(),
            source: TrafficSource::Rule(rule.into()),
            canary_service: "web-canary".into(),
            alarm_name: "web-canary-5xx".into(),
            region: "eu-west-1".into(),
            endpoint_url: None,
            apply: true,
            native: None,
        };
        let doc = super::super::document(&statements(&args));
        for expected in [
            "\"arn:aws:ecs:eu-west-1:111122223333:service/prod/web-canary\"",
            "\"arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/web-canary/*\"",
            "\"arn:aws:cloudwatch:eu-west-1:111122223333:alarm:web-canary-5xx\"",
            "\"elasticloadbalancing:ModifyRule\"",
        ] {
            assert!(doc.contains(expected), "{expected} in {doc}");
        }
        assert!(!doc.contains("ModifyListener"), "only the rule is changed: {doc}");
        let creates = statements(&args).into_iter().filter(|s| s.actions.iter().any(|a| a.contains("Create")));
        assert!(creates.flat_map(|s| s.resources).all(|r| r != "*"), "nothing is created anywhere: {doc}");
    }
}
