//! What is there now, read-only: the service and how it is reached, and whatever of the canary's
//! resources a previous run (or a person) already made. `changes` decides from it.

use anyhow::{Context as _, Result, anyhow, bail};
use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_sdk_ecs::types::Service;
use aws_sdk_elasticloadbalancingv2::types::{Action, Rule, TargetGroup};

use super::args::SetupArgs;
use crate::aws::{Aws, call_failed};
use crate::config::TrafficSource;
use crate::ecs::service;
use crate::listener;

/// The service's own binding to a load balancer: its target group, container and port.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub(crate) target_group_arn: String,
    pub(crate) container_name: String,
    pub(crate) container_port: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Survey {
    pub(crate) service: Service,
    pub(crate) binding: Binding,
    pub(crate) stable_tg: TargetGroup,
    /// The stable target group's deregistration delay, when set (the clone gets it).
    pub(crate) deregistration_delay: Option<String>,
    /// The actions of the listener's default rule, or of the listener rule.
    pub(crate) actions: Vec<Action>,
    pub(crate) load_balancer_arn: String,
    /// With a listener: its rules that forward to the service's target group (where traffic really
    /// comes from when the default action does not).
    pub(crate) forwarding_rules: Vec<String>,
    pub(crate) canary_service: Option<Service>,
    pub(crate) canary_tg: Option<TargetGroup>,
    pub(crate) alarm: Option<MetricAlarm>,
    /// With `--native`: the green target group, when it exists (the canary's three are not read).
    pub(crate) green_tg: Option<TargetGroup>,
    /// With a listener: its rules (the default one aside).
    pub(crate) rules: Vec<Rule>,
}

/// The service's one load balancer entry with a target group; refused when it has none or several.
pub(crate) fn binding(service: &Service) -> Result<Binding> {
    let name = service.service_name().unwrap_or_default();
    let entries: Vec<_> = service.load_balancers().iter().filter(|lb| lb.target_group_arn().is_some()).collect();
    match entries.as_slice() {
        [one] => Ok(Binding {
            target_group_arn: one.target_group_arn().unwrap_or_default().to_string(),
            container_name: one.container_name().unwrap_or_default().to_string(),
            container_port: one.container_port().unwrap_or_default(),
        }),
        [] => bail!(
            "service `{name}` has no load balancer: a canary splits a listener's traffic between two target groups, so the service must be behind an Application Load Balancer target group first (its `loadBalancers`, set when the service is created), or deploy it with `strategy: rolling`"
        ),
        several => bail!(
            "service `{name}` is behind {} target groups ({}): setup cannot tell which one the canary should mirror; set up the canary by hand (README, \"Canary\")",
            several.len(),
            several.iter().filter_map(|lb| lb.target_group_arn()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Reads everything `changes` needs, with read-only calls.
pub(crate) async fn read(aws: &Aws, args: &SetupArgs) -> Result<Survey> {
    let service = service::describe(&aws.ecs, &args.cluster, &args.service).await?;
    let binding = binding(&service)?;
    let stable_tg = crate::elb::target_group(&aws.elb, &binding.target_group_arn).await?;
    let deregistration_delay =
        attribute(aws, &binding.target_group_arn, "deregistration_delay.timeout_seconds").await?;
    let listener_arn = match &args.source {
        TrafficSource::ListenerDefault(arn) => arn.clone(),
        TrafficSource::Rule(arn) => listener_of(arn)?,
    };
    // Read once: its default actions (when they are the source) and its load balancer.
    let listener = crate::elb::listener(&aws.elb, &listener_arn).await?;
    let actions = match &args.source {
        TrafficSource::ListenerDefault(_) => listener.default_actions().to_vec(),
        TrafficSource::Rule(_) => listener::actions(&aws.elb, &args.source).await?,
    };
    let load_balancer_arn = listener
        .load_balancer_arn()
        .ok_or_else(|| anyhow!("listener `{listener_arn}` names no load balancer"))?
        .to_string();
    let rules = match &args.source {
        TrafficSource::ListenerDefault(arn) => crate::elb::rules(&aws.elb, arn).await?,
        TrafficSource::Rule(_) => Vec::new(),
    };
    let forwarding_rules = rules
        .iter()
        .filter(|r| super::changes::forwarded(r.actions()).iter().any(|(arn, _)| *arn == binding.target_group_arn))
        .filter_map(|r| r.rule_arn().map(str::to_string))
        .collect();
    let (mut canary_service, mut canary_tg, mut alarm_found, mut green_tg) = (None, None, None, None);
    if args.native.is_some() {
        green_tg = crate::elb::target_group_named(&aws.elb, &super::native::green_name(&args.service)).await?;
    } else {
        canary_service = service::find(&aws.ecs, &args.cluster, &args.canary_service)
            .await?
            .filter(|s| s.status() != Some("INACTIVE"));
        canary_tg = crate::elb::target_group_named(&aws.elb, &target_group_name(&args.canary_service)).await?;
        alarm_found = alarm(aws, &args.alarm_name).await?;
    }
    Ok(Survey {
        canary_tg,
        alarm: alarm_found,
        green_tg,
        rules,
        service,
        binding,
        stable_tg,
        deregistration_delay,
        actions,
        load_balancer_arn,
        forwarding_rules,
        canary_service,
    })
}

/// The canary's target group's name: the canary service's, cut to ELB's 32 characters.
pub(crate) fn target_group_name(canary_service: &str) -> String {
    let name: String =
        canary_service.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(32).collect();
    name.trim_matches('-').to_string()
}

/// A rule's listener: `…:listener-rule/app/lb/1/2/3` → `…:listener/app/lb/1/2`.
fn listener_of(rule_arn: &str) -> Result<String> {
    let listener = rule_arn.replacen(":listener-rule/", ":listener/", 1);
    listener
        .rsplit_once('/')
        .map(|(l, _)| l.to_string())
        .ok_or_else(|| anyhow!("`{rule_arn}` is not a listener rule's ARN"))
}

async fn attribute(aws: &Aws, tg: &str, key: &str) -> Result<Option<String>> {
    let out = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetGroupAttributes", &e))
        .with_context(|| format!("could not read the attributes of target group `{tg}`"))?;
    Ok(out.attributes().iter().find(|a| a.key() == Some(key)).and_then(|a| a.value()).map(str::to_string))
}

async fn alarm(aws: &Aws, name: &str) -> Result<Option<MetricAlarm>> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch DescribeAlarms", &e))
        .with_context(|| format!("could not look for alarm `{name}`"))?;
    Ok(out.metric_alarms().first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::LoadBalancer;

    #[test]
    fn the_service_must_have_exactly_one_target_group() {
        let lb =
            |tg: &str| LoadBalancer::builder().target_group_arn(tg).container_name("web").container_port(8080).build();
        let service =
            |lbs: Vec<LoadBalancer>| Service::builder().service_name("web").set_load_balancers(Some(lbs)).build();
        assert_eq!(binding(&service(vec![lb("tg-a")])).unwrap().target_group_arn, "tg-a");
        let none = binding(&service(vec![])).unwrap_err().to_string();
        assert!(none.contains("has no load balancer") && none.contains("strategy: rolling"), "{none}");
        let two = binding(&service(vec![lb("tg-a"), lb("tg-b")])).unwrap_err().to_string();
        assert!(two.contains("2 target groups (tg-a, tg-b)"), "{two}");
    }

    #[test]
    fn names_derived_for_elb() {
        assert_eq!(target_group_name("web_api-canary"), "web-api-canary");
        assert_eq!(target_group_name(&"x".repeat(40)).len(), 32);
        assert_eq!(
            listener_of("arn:aws:elasticloadbalancing:r:1:listener-rule/app/lb/1/2/3").unwrap(),
            "arn:aws:elasticloadbalancing:r:1:listener/app/lb/1/2"
        );
    }
}
