//! The plan's decisions from surveys of each shape a user's setup can have.

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentController, DeploymentControllerType, DeploymentStrategy, LoadBalancer, Service,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetGroup, TargetGroupTuple,
};

use super::*;
use crate::setup::survey::Binding;

const STABLE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1";
const CANARY: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-canary/2";
const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/lb/1/2";

fn args() -> SetupArgs {
    SetupArgs {
        cluster: "prod".into(),
        service: "web".into(),
        source: TrafficSource::ListenerDefault(LISTENER.into()),
        canary_service: "web-canary".into(),
        alarm_name: "web-canary-5xx".into(),
        region: "us-east-1".into(),
        endpoint_url: None,
        apply: false,
        native: None,
    }
}

fn tg(arn: &str, name: &str, port: i32) -> TargetGroup {
    TargetGroup::builder()
        .target_group_arn(arn)
        .target_group_name(name)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id("vpc-1")
        .build()
}

fn service(name: &str, tg: &str, family: &str) -> Service {
    Service::builder()
        .service_name(name)
        .status("ACTIVE")
        .task_definition(format!("arn:aws:ecs:us-east-1:1:task-definition/{family}:3"))
        .load_balancers(LoadBalancer::builder().target_group_arn(tg).container_name("web").container_port(8080).build())
        .build()
}

fn forward(groups: &[(&str, i32)]) -> Vec<Action> {
    let tuples =
        groups.iter().map(|(arn, w)| TargetGroupTuple::builder().target_group_arn(*arn).weight(*w).build()).collect();
    vec![
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(ForwardActionConfig::builder().set_target_groups(Some(tuples)).build())
            .build(),
    ]
}

/// A plain service: one target group, the listener forwarding to it in the simple form.
fn plain() -> Survey {
    Survey {
        service: service("web", STABLE, "web"),
        binding: Binding { target_group_arn: STABLE.into(), container_name: "web".into(), container_port: 8080 },
        stable_tg: tg(STABLE, "web", 8080),
        deregistration_delay: Some("30".into()),
        actions: vec![Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(STABLE).build()],
        load_balancer_arn: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/lb/1".into(),
        forwarding_rules: vec![],
        canary_service: None,
        canary_tg: None,
        alarm: None,
        green_tg: None,
        rules: vec![],
    }
}

/// What a completed setup leaves.
fn done() -> Survey {
    Survey {
        actions: forward(&[(STABLE, 100), (CANARY, 0)]),
        canary_service: Some(service("web-canary", CANARY, "web")),
        canary_tg: Some(tg(CANARY, "web-canary", 8080)),
        alarm: Some(aws_sdk_cloudwatch::types::MetricAlarm::builder().alarm_name("web-canary-5xx").build()),
        ..plain()
    }
}

#[test]
fn a_plain_service_gets_everything_in_order() {
    let c = plan(&args(), &plain()).unwrap();
    assert_eq!(c.changes, [Change::TargetGroup, Change::Forward, Change::CanaryService, Change::Alarm]);
    assert_eq!(c.canary_tg, CanaryTargetGroup::New("web-canary".into()));
    assert!(c.in_place.is_empty());
}

#[test]
fn a_second_run_finds_everything_in_place() {
    let c = plan(&args(), &done()).unwrap();
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    assert_eq!(c.in_place.len(), 4, "{:?}", c.in_place);
}

#[test]
fn a_run_stopped_half_way_is_finished_from_where_it_stopped() {
    let half = Survey { canary_service: None, alarm: None, ..done() };
    assert_eq!(plan(&args(), &half).unwrap().changes, [Change::CanaryService, Change::Alarm]);
}

fn refusal(survey: Survey) -> String {
    format!("{:#}", plan(&args(), &survey).unwrap_err())
}

#[test]
fn a_canary_in_progress_is_refused_with_the_commands_that_restore_it() {
    let e = refusal(Survey { actions: forward(&[(STABLE, 90), (CANARY, 10)]), ..done() });
    assert!(e.contains("weight 10") && e.contains("in progress"), "{e}");
    assert!(e.contains("aws elbv2 modify-listener --listener-arn") && e.contains("--desired-count 0"), "{e}");
}

#[test]
fn a_forward_that_is_not_the_services_alone_is_refused() {
    let e = refusal(Survey { actions: forward(&[(STABLE, 50), ("arn:other", 50)]), ..plain() });
    assert!(e.contains("`arn:other` (weight 50)") && e.contains("will not decide"), "{e}");
    let rule = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/lb/1/2/3";
    let e = refusal(Survey { actions: forward(&[("arn:other", 1)]), forwarding_rules: vec![rule.into()], ..plain() });
    assert!(
        e.contains("does not forward to `web`'s target group") && e.contains(&format!("--listener-rule-arn {rule}")),
        "{e}"
    );
    let e = refusal(Survey { actions: vec![], forwarding_rules: vec!["r1".into(), "r2".into()], ..plain() });
    assert!(e.contains("2 rules of the listener do (r1, r2)"), "{e}");
}

#[test]
fn existing_resources_that_are_not_the_canarys_are_never_taken_over() {
    let e = refusal(Survey { canary_tg: Some(tg(CANARY, "web-canary", 9090)), ..plain() });
    assert!(e.contains("port 9090 where the service's has 8080"), "{e}");
    let e = refusal(Survey { canary_service: Some(service("web-canary", CANARY, "billing")), ..done() });
    assert!(e.contains("family `billing`") && e.contains("--canary-service"), "{e}");
    let e = refusal(Survey { canary_service: Some(service("web-canary", "arn:elsewhere", "web")), ..done() });
    assert!(e.contains("behind arn:elsewhere"), "{e}");
    let e = refusal(Survey { canary_service: Some(service("web-canary", CANARY, "web")), canary_tg: None, ..plain() });
    assert!(e.contains("cannot change a service's target groups"), "{e}");
}

#[test]
fn services_deployed_some_other_way_are_refused() {
    let mut s = plain();
    s.service.deployment_controller =
        Some(DeploymentController::builder().r#type(DeploymentControllerType::CodeDeploy).build().unwrap());
    assert!(refusal(s).contains("CODE_DEPLOY deployment controller"));
    let mut s = plain();
    s.service.deployment_configuration =
        Some(DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).build());
    assert!(refusal(s).contains("`strategy: ecs`"));
}

mod native {
    use super::*;
    use crate::setup::args::Native;
    use crate::setup::native::{NativeChange, plan};

    const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/3";
    const ROLE: &str = "arn:aws:iam::1:role/infra";

    fn native_args() -> SetupArgs {
        SetupArgs { native: Some((Native::Linear, ROLE.into())), ..args() }
    }

    #[test]
    fn a_plain_service_gets_green_a_rule_after_the_others_and_its_configuration() {
        let mut survey = plain();
        survey.rules = vec![aws_sdk_elasticloadbalancingv2::types::Rule::builder().priority("50000").build()];
        let p = plan(&native_args(), &survey, Native::Linear).unwrap();
        assert_eq!(p.changes, [NativeChange::GreenTargetGroup, NativeChange::NewRule(49_999), NativeChange::Service]);
    }

    #[test]
    fn a_rule_named_is_made_weighted_and_a_split_or_a_stranger_is_refused() {
        let rule = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/lb/1/2/3";
        let a = SetupArgs { source: TrafficSource::Rule(rule.into()), ..native_args() };
        let p = plan(&a, &plain(), Native::Linear).unwrap();
        assert_eq!(p.changes[1], NativeChange::WeightedRule(rule.into()));
        let split = Survey {
            actions: forward(&[(STABLE, 90), (GREEN, 10)]),
            green_tg: Some(tg(GREEN, "web-green", 8080)),
            ..plain()
        };
        let e = format!("{:#}", plan(&a, &split, Native::Linear).unwrap_err());
        assert!(e.contains("weight 10") && e.contains("will not decide"), "{e}");
    }

    #[test]
    fn a_service_already_on_another_native_configuration_is_left_alone() {
        let mut s = plain();
        s.service.deployment_configuration =
            Some(DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).build());
        let e = format!("{:#}", plan(&native_args(), &s, Native::Linear).unwrap_err());
        assert!(e.contains("already has ECS's BLUE_GREEN strategy") && e.contains("aws ecs update-service"), "{e}");
    }
}
